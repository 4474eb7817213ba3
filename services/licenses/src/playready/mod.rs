//! PlayReady as a DRM proxy (`POST /license/playready`, seed document 004): read the KIDs and the CustomData of the
//! SOAP challenge, apply the token and the rules, then forward the challenge untouched to the tenant's PlayReady
//! license server (which derives the keys from the key seed it shares with Clavis) and relay its answer.
//!
//! Issuing a PlayReady license (XMR) needs Microsoft's licensed server SDK, which the tenant's server has. PlayReady
//! clients expect SOAP: refusals are SOAP faults, with the catalog code in `X-Clavis-Error` and in the fault's
//! detail, and the HTTP status of the catalog (never 500); a fault from the upstream server is relayed as it came,
//! under 502 and code 5076.

pub mod challenge;

use actix_web::{HttpRequest, HttpResponse, web};
use clavis_core::ids::Drm;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tokens::Credential;

use crate::api::{RawToken, callback_from, token_from};
use crate::outbound::ReceivedAnswer;
use crate::rules::Message;
use crate::service::{LicenseService, Story};
use crate::upstream::PLAYREADY_PEER;

pub const SOAP_ACTION: &str = "\"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense\"";
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// The PlayReady server status code a client understands for a refusal (the `DRM_E_SERVER_*` codes).
fn status_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::PlayReadyChallengeMalformed | ErrorCode::LicenseRequestMalformed => "0x8004C601", // INVALID_MESSAGE
        ErrorCode::DeviceLimitReached => "0x8004C602", // DEVICE_LIMIT_REACHED
        ErrorCode::Internal | ErrorCode::DatabaseUnavailable => "0x8004C600", // INTERNAL_ERROR
        _ => "0x8004C604",                             // SERVICE_SPECIFIC
    }
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// A refusal as the SOAP fault PlayReady clients read.
pub fn soap_fault(err: &ClavisError) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <soap:Body><soap:Fault><faultcode>soap:{}</faultcode><faultstring>{}: {}</faultstring><detail><Exception>\
         <StatusCode>{}</StatusCode><CustomData>{}</CustomData></Exception></detail></soap:Fault></soap:Body></soap:Envelope>",
        if err.code.status().is_server_error() { "Server" } else { "Client" },
        escape(err.code.title()),
        escape(&err.detail),
        status_code(err.code),
        err.code.code(),
    )
}

fn malformed(e: challenge::ChallengeError) -> ClavisError {
    ClavisError::new(ErrorCode::PlayReadyChallengeMalformed, e.to_string())
}

/// A token in the challenge's CustomData: a native token (a JWT, with dots) or a PallyCon token (base64 JSON).
fn custom_data_token(custom: &str) -> Credential<'_> {
    if custom.contains('.') { Credential::Native(custom) } else { Credential::Pallycon(custom) }
}

/// The upstream's answer: the license, or its fault relayed (as the body, with 502 and 5076).
fn relay(story: &mut Story, answer: ReceivedAnswer) -> Result<Vec<u8>> {
    if (200..300).contains(&answer.status) {
        if !answer.body.contains("AcquireLicenseResponse") {
            return Err(ClavisError::new(
                ErrorCode::UpstreamAnswerMalformed,
                "the PlayReady license server's answer is not an AcquireLicenseResponse",
            ));
        }
        return Ok(answer.raw_body);
    }
    let fault = answer.body.contains("Fault");
    let err = ClavisError::new(
        ErrorCode::UpstreamRefused,
        format!(
            "the PlayReady license server answered HTTP {}{}",
            answer.status,
            if fault { " with a SOAP fault (relayed)" } else { "" }
        ),
    );
    if fault {
        story.relay_error_body(answer.raw_body);
    }
    Err(err)
}

impl LicenseService {
    /// The PlayReady server's answer for the challenge in `body`, or the refusal.
    pub async fn playready(&self, story: &mut Story, token: Option<Credential<'_>>, body: &[u8]) -> Result<Vec<u8>> {
        let parsed = challenge::parse(body).map_err(malformed);
        if let Ok(request) = &parsed {
            story.set_kids(request.kids.clone());
        }
        // The token: a header's (or the query's), else the challenge's CustomData.
        let custom = parsed.as_ref().ok().and_then(|p| p.custom_data.clone());
        let token = match token {
            Some(token) => Some(token),
            None => custom.as_deref().map(custom_data_token),
        };
        let verified = self.authorize(story, token).await?;
        story.set_rule("request");
        let request = parsed?;
        story.facts.message =
            request.license_nonce.as_ref().map(|nonce| Message { id: nonce.clone(), time: request.client_time });
        let keys = self.license_keys(story, &verified, &request.kids).await?;
        story.set_kids(keys.iter().map(|k| k.kid).collect());
        story.set_rule("upstream.settings");
        let upstream = self.upstreams().playready(&verified.tenant).await?;
        let admission = self.admit(story, &verified).await?;
        story.set_rule("upstream");
        let mut headers = vec![("content-type", CONTENT_TYPE.to_owned()), ("soapaction", SOAP_ACTION.to_owned())];
        if let Some(authorization) = &upstream.authorization {
            headers.push(("authorization", authorization.to_string()));
        }
        let outcome = self
            .upstreams()
            .send(&PLAYREADY_PEER, &upstream.url, &headers, &request.soap, upstream.budget, |_| false)
            .await
            .and_then(|answer| relay(story, answer));
        let answer = match outcome {
            Ok(answer) => answer,
            Err(e) => {
                self.abandon(story, &verified, &admission).await;
                return Err(e);
            }
        };
        self.settle(story, &verified, &admission).await?;
        Ok(answer)
    }
}

/// A PlayReady license through the tenant's PlayReady license server. The body is the SOAP AcquireLicense challenge
/// (or the EME `PlayReadyKeyMessage` wrapping it); the token comes in `X-Clavis-Token` (or `?token=`, a configured
/// foreign header, callback mode) or as the challenge's CustomData. The answer is the server's
/// AcquireLicenseResponse; refusals are SOAP faults with the catalog code in `X-Clavis-Error`.
#[utoipa::path(
    post, path = "/license/playready", tag = "licenses",
    params(("token" = Option<String>, Query, description = "The license token, when not sent in X-Clavis-Token or CustomData"), ("callback" = Option<String>, Query, description = "Callback mode: `<site_id>.<session>`, when not sent in X-Clavis-Callback")),
    request_body(content = String, content_type = "text/xml", description = "The PlayReady license challenge"),
    responses(
        (status = 200, description = "The PlayReady server's AcquireLicenseResponse", content_type = "text/xml"),
        (status = 400, description = "SOAP fault: 5001 request headers malformed, 5031 callback value malformed, 5081 challenge malformed", content_type = "text/xml"),
        (status = 401, description = "SOAP fault: 4001-4007 token missing, malformed, bad signature, unknown key, expired, not yet valid, unknown issuer", content_type = "text/xml"),
        (status = 403, description = "SOAP fault: 2003 tenant suspended, 4008 token for another content, 4009 token for another DRM, 4011 single-use token already used, 5002 KID not in content, 5003 origin not allowed, 5006 track not allowed, 5007 client not allowed, 5008 policy expired, 5030 callback refused, 5041 device limit, 5060 request replayed, 5061 request time outside the window, 5062 client state rolled back, 5063 stream limit", content_type = "text/xml"),
        (status = 404, description = "SOAP fault: 4012 token format not configured, 5005 content has no keys, 5020 callback mode not enabled, 5070 no upstream configured", content_type = "text/xml"),
        (status = 413, description = "SOAP fault: 1012 body too large", content_type = "text/xml"),
        (status = 422, description = "SOAP fault: 4010 the token's policy cannot be applied", content_type = "text/xml"),
        (status = 502, description = "SOAP fault: 5023-5029 callback backend failures, 5073 upstream address forbidden, 5074 upstream unreachable, 5076 upstream refused (its own fault relayed), 5077 upstream answer malformed", content_type = "text/xml"),
        (status = 504, description = "SOAP fault: 5025 callback too slow, 5075 upstream too slow", content_type = "text/xml"),
    )
)]
pub async fn license(req: HttpRequest, payload: web::Payload, service: web::Data<LicenseService>) -> HttpResponse {
    let body = clavis_core::http::read_body(payload, challenge::MAX_CHALLENGE_BYTES).await;
    answer(&req, body, &service).await
}

/// The PlayReady answer for a body as read (or the error of reading it).
pub(crate) async fn answer(req: &HttpRequest, body: Result<web::Bytes>, service: &LicenseService) -> HttpResponse {
    let mut story = crate::api::story(req, Drm::PlayReady);
    story.answer_soap_faults();
    let token = token_from(req);
    let result = async {
        story.callback = callback_from(req)?;
        story.read_facts(req.headers())?;
        service.playready(&mut story, token.as_ref().map(RawToken::credential), &body?).await
    }
    .await;
    service.finish(story, result, CONTENT_TYPE).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_carry_the_code_and_escape_the_detail() {
        let fault = soap_fault(&ClavisError::new(ErrorCode::TrackNotAllowed, "a <HD> key & more"));
        assert!(fault.contains("<faultcode>soap:Client</faultcode>"), "{fault}");
        assert!(fault.contains("Track type not allowed: a &lt;HD&gt; key &amp; more"), "{fault}");
        assert!(fault.contains("<StatusCode>0x8004C604</StatusCode><CustomData>5006</CustomData>"), "{fault}");
        let limit = soap_fault(&ClavisError::new(ErrorCode::DeviceLimitReached, "x"));
        assert!(limit.contains("0x8004C602"));
        let gateway = soap_fault(&ClavisError::new(ErrorCode::UpstreamTimeout, "x"));
        assert!(gateway.contains("soap:Server"));
    }

    #[test]
    fn custom_data_names_its_token_format() {
        assert!(matches!(custom_data_token("a.b.c"), Credential::Native("a.b.c")));
        assert!(matches!(custom_data_token("eyJ4IjoxfQ=="), Credential::Pallycon(_)));
    }
}
