//! CORS for license endpoints, per tenant.
//!
//! A preflight carries no token, so it is answered for any origin; the tenant's allowed origins are enforced on the
//! actual request, which is refused (5003) and answered without `Access-Control-Allow-Origin` when the origin is not
//! allowed, so the browser hides the answer from the page as well.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

/// Headers a player may send to license endpoints.
const ALLOWED_REQUEST_HEADERS: &str = "content-type, x-clavis-token, authorization, pallycon-customdata-v2, \
     x-dt-auth-token, x-axdrm-message, x-clavis-callback, x-clavis-device, x-clavis-session, x-clavis-message-id, \
     x-clavis-message-time, x-clavis-client-state, x-clavis-config-version, soapaction";
/// Headers a player may read from license answers.
const EXPOSED_HEADERS: &str =
    "x-clavis-error, x-request-id, x-clavis-session, x-clavis-server-config, x-clavis-server-config-version";

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

/// The Flash-era cross-domain policy for legacy players (`GET /license/{site_id}/crossdomain.xml`), made from the
/// same origin list as CORS: an empty list (any origin) allows every domain, otherwise each origin's host, with
/// `secure` set for https origins. Players load it with `Security.loadPolicyFile` since it is not at the host's
/// root (one host serves every tenant, and a root file would have to merge their lists).
pub fn crossdomain_xml(origins: &[String]) -> String {
    fn escape(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }
    let headers = ALLOWED_REQUEST_HEADERS.replace(' ', "");
    let mut entries: Vec<(String, bool)> = if origins.is_empty() {
        vec![("*".to_owned(), false)]
    } else {
        origins
            .iter()
            .filter_map(|o| {
                let (secure, rest) = match o.strip_prefix("https://") {
                    Some(rest) => (true, rest),
                    None => (false, o.strip_prefix("http://")?),
                };
                // The policy names hosts; the port of an origin does not apply to HTTP requests.
                let host = if rest.starts_with('[') {
                    // An IPv6 literal: up to its closing bracket.
                    rest.find(']').map_or(rest, |end| &rest[..=end])
                } else {
                    rest.split(':').next().unwrap_or(rest)
                };
                Some((host.to_owned(), secure))
            })
            .collect()
    };
    entries.dedup();
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE cross-domain-policy SYSTEM \"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd\">\n<cross-domain-policy>\n  <site-control permitted-cross-domain-policies=\"master-only\"/>\n",
    );
    for (domain, secure) in &entries {
        xml.push_str(&format!("  <allow-access-from domain=\"{}\" secure=\"{secure}\"/>\n", escape(domain)));
        xml.push_str(&format!(
            "  <allow-http-request-headers-from domain=\"{}\" headers=\"{headers}\" secure=\"{secure}\"/>\n",
            escape(domain)
        ));
    }
    xml.push_str("</cross-domain-policy>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::crossdomain_xml;

    #[test]
    fn the_policy_names_each_origins_host_and_whether_it_is_secure() {
        let xml = crossdomain_xml(&[
            "https://player.example.com".into(),
            "http://legacy.example.com:8080".into(),
            "https://[2001:db8::1]".into(),
        ]);
        assert!(xml.contains("<allow-access-from domain=\"player.example.com\" secure=\"true\"/>"), "{xml}");
        assert!(xml.contains("<allow-access-from domain=\"legacy.example.com\" secure=\"false\"/>"), "{xml}");
        assert!(xml.contains("<allow-access-from domain=\"[2001:db8::1]\" secure=\"true\"/>"), "{xml}");
        assert!(xml.contains("headers=\"content-type,x-clavis-token,"), "{xml}");
        assert!(!xml.contains("domain=\"*\""));
        assert!(crossdomain_xml(&[]).contains("<allow-access-from domain=\"*\" secure=\"false\"/>"));
    }
}
