//! HTTP plumbing shared by every service: extractor configs that answer from the catalog, bounded body reading,
//! the request-id header, and the fallback for unknown routes.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::error::{ClavisError, ErrorCode};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Largest JSON body the REST APIs accept.
pub const JSON_LIMIT: usize = 256 * 1024;

pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let clavis = match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => ClavisError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is {length} bytes; this endpoint accepts at most {limit}"),
        ),
        JsonPayloadError::Overflow { limit } => {
            ClavisError::new(ErrorCode::PayloadTooLarge, format!("this endpoint accepts at most {limit} bytes"))
        }
        JsonPayloadError::ContentType => {
            ClavisError::new(ErrorCode::UnsupportedMediaType, "send the body as Content-Type: application/json")
        }
        JsonPayloadError::Deserialize(e) => body_error(&e),
        other => ClavisError::new(ErrorCode::MalformedJson, other.to_string()),
    };
    clavis.into()
}

/// A serde_json failure as the catalog sees it: syntax is 1010, a wrong or missing field is 1011 naming the field.
pub fn body_error(e: &serde_json::Error) -> ClavisError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let message = e.to_string();
            let field = field_from_serde_message(&message);
            ClavisError { code: ErrorCode::InvalidField, detail: message.into(), field: field.map(Into::into) }
        }
        _ => ClavisError::new(ErrorCode::MalformedJson, e.to_string()),
    }
}

/// serde names the field in messages such as "missing field `user_id`" or "unknown field `x`, expected ...".
fn field_from_serde_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ClavisError::new(ErrorCode::MalformedRequest, format!("path: {err}")).into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ClavisError::new(ErrorCode::MalformedRequest, format!("query string: {err}")).into()
}

/// The extractor configuration every service registers, so bad bodies, paths and queries answer from the catalog.
pub fn configure_extractors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(JSON_LIMIT).error_handler(json_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::QueryConfig::default().error_handler(query_error));
}

/// A JSON body deserialized with the failing field's full path in the error (`policy.license_duration_seconds`,
/// `keys[0].kid`), so validation errors name the field. The body is read as JSON whatever its Content-Type says
/// (`curl -d` sends form-urlencoded); a body that is not JSON is refused with 1010.
pub struct ValidJson<T>(pub T);

impl<T> ValidJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for ValidJson<T> {
    type Error = ClavisError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ClavisError>>>>;

    fn from_request(_req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let payload = payload.take();
        Box::pin(async move {
            let body = read_body(payload, JSON_LIMIT).await?;
            parse_json(&body).map(ValidJson)
        })
    }
}

/// Deserialize JSON, naming the field at fault by its path.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ClavisError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let mut clavis = body_error(&inner);
        if clavis.code == ErrorCode::InvalidField {
            // For "missing field `x`" the path is the parent; append the field serde names.
            let named = field_from_serde_message(&inner.to_string());
            let full = match (path.as_str(), named) {
                (".", Some(name)) => name,
                (parent, Some(name)) if inner.to_string().starts_with("missing field") => format!("{parent}.{name}"),
                (".", None) => String::new(),
                (parent, _) => parent.to_owned(),
            };
            clavis.field = (!full.is_empty()).then(|| full.into());
        }
        clavis
    })
}

/// Read a raw body of at most `limit` bytes (license challenges, SPCs, XML documents).
pub async fn read_body<S>(mut payload: S, limit: usize) -> Result<Bytes, ClavisError>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ClavisError::new(ErrorCode::MalformedRequest, format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ClavisError::new(
                ErrorCode::PayloadTooLarge,
                format!("this endpoint accepts at most {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Unknown routes answer from the catalog instead of actix's empty 404.
pub async fn route_not_found(req: HttpRequest) -> HttpResponse {
    let err = ClavisError::new(ErrorCode::RouteNotFound, format!("no endpoint at {} {}", req.method(), req.path()));
    actix_web::ResponseError::error_response(&err)
}

/// The request id tracing-actix-web assigned, for the `X-Request-Id` answer header.
pub fn request_id(req: &HttpRequest) -> Option<HeaderValue> {
    req.extensions().get::<tracing_actix_web::RequestId>().and_then(|id| HeaderValue::from_str(&id.to_string()).ok())
}

/// An empty 204 for endpoints that answer nothing.
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// The caller's IP as the socket saw it. Forwarded headers are not trusted here: only a configured proxy may set them.
pub fn peer_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|addr| addr.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_the_field() {
        let err = serde_json::from_str::<std::collections::HashMap<String, u32>>(r#"{"a": "x"}"#).unwrap_err();
        assert_eq!(body_error(&err).code, ErrorCode::InvalidField);
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            user_id: String,
        }
        let err = serde_json::from_str::<Body>("{}").unwrap_err();
        assert_eq!(body_error(&err).field.as_deref(), Some("user_id"));
        let err = serde_json::from_str::<Body>("{").unwrap_err();
        assert_eq!(body_error(&err).code, ErrorCode::MalformedJson);
    }

    #[test]
    fn parse_json_names_nested_fields() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            seconds: u64,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            policy: Inner,
            list: Vec<Inner>,
        }
        let field = |json: &str| parse_json::<Outer>(json.as_bytes()).unwrap_err().field.map(|f| f.to_string());
        assert_eq!(field(r#"{"policy":{"seconds":"x"},"list":[]}"#).as_deref(), Some("policy.seconds"));
        assert_eq!(field(r#"{"policy":{},"list":[]}"#).as_deref(), Some("policy.seconds"));
        assert_eq!(field(r#"{"policy":{"seconds":1},"list":[{"seconds":-1}]}"#).as_deref(), Some("list[0].seconds"));
        assert_eq!(field(r#"{"list":[]}"#).as_deref(), Some("policy"));
        assert_eq!(parse_json::<Outer>(b"{").unwrap_err().code, ErrorCode::MalformedJson);
    }
}
