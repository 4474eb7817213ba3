//! CORS for license endpoints, per tenant.
//!
//! A preflight carries no token, so it is answered for any origin; the tenant's allowed origins are enforced on the
//! actual request, which is refused (5003) and answered without `Access-Control-Allow-Origin` when the origin is not
//! allowed, so the browser hides the answer from the page as well.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

/// Headers a player may send to license endpoints.
const ALLOWED_REQUEST_HEADERS: &str =
    "content-type, x-clavis-token, authorization, pallycon-customdata-v2, x-dt-auth-token, x-axdrm-message";
/// Headers a player may read from license answers.
const EXPOSED_HEADERS: &str = "x-clavis-error, x-request-id";

pub fn request_origin(req: &HttpRequest) -> Option<String> {
    req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).filter(|v| v.len() <= 512).map(str::to_owned)
}

/// Answer a preflight for any origin.
pub fn preflight(req: &HttpRequest) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    if let Some(origin) = request_origin(req).and_then(|o| HeaderValue::from_str(&o).ok()) {
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, GET, OPTIONS"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_REQUEST_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
    }
    response.insert_header((header::VARY, "Origin, Access-Control-Request-Headers"));
    response.finish()
}

/// Add CORS answer headers when the origin may read the answer.
pub fn apply(response: &mut HttpResponse, origin: Option<&str>, allowed: bool) {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let (true, Some(origin)) = (allowed, origin.and_then(|o| HeaderValue::from_str(o).ok())) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    }
}
