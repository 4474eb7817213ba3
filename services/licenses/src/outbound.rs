//! The outbound HTTP client for tenant-chosen URLs (callback backends, upstream Widevine and PlayReady license
//! servers): one POST, with the SSRF rules.
//!
//! The URL is the tenant's choice, so it must not become a way into the operator's network: the host is resolved
//! here, every resolved address is checked, and the connection goes to a checked address (never re-resolved, so a
//! DNS answer cannot change between the check and the connect). Redirects are not followed (a 3xx is an answer like
//! any other non-2xx). The whole exchange (DNS, connect, TLS, request, answer) runs under one deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clavis_core::{ClavisError, ErrorCode, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use url::{Host, Url};

/// The largest answer read from a peer (a license with many keys stays far below this).
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Who a request goes to: its name in messages and the catalog codes its failures are answered with, so a
/// callback's failure and an upstream license server's failure each carry their own code.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// As messages name it: "callback", "Widevine license service".
    pub name: &'static str,
    /// A URL refused at settings time (scheme, credentials, fragment, no host).
    pub settings_invalid: ErrorCode,
    /// A URL whose literal host is a forbidden address, at settings time.
    pub target_forbidden: ErrorCode,
    /// A host that resolves to a forbidden address, at request time.
    pub address_forbidden: ErrorCode,
    pub unreachable: ErrorCode,
    pub timeout: ErrorCode,
    /// The answer could not be read (too large, cut off).
    pub answer_malformed: ErrorCode,
}

impl Peer {
    fn unreachable(&self, detail: impl Into<std::borrow::Cow<'static, str>>) -> ClavisError {
        ClavisError::new(self.unreachable, detail)
    }
}

/// True for addresses a callback must not reach unless the operator allows private networks: loopback, private
/// (RFC 1918, fc00::/7), link-local (169.254/16 with the cloud metadata address, fe80::/10), CGNAT (100.64/10,
/// where some clouds put their metadata service), unspecified, multicast, broadcast and reserved ranges, and IPv6
/// forms that embed such an IPv4 address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    a == 0                                   // "this network", including 0.0.0.0
        || a == 10                           // RFC 1918
        || a == 127                          // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254)            // link-local, 169.254.169.254 metadata
        || (a == 172 && (16..32).contains(&b)) // RFC 1918
        || (a == 192 && b == 168)            // RFC 1918
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [_, _, _, _, _, _, hi, lo] = segments;
        return forbidden_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata fd00:ec2::254)
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || (segments[0] & 0xff00) == 0xff00 // multicast
        || segments[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::a.b.c.d
}

/// One request as Clavis sent it, for the test endpoint and the tests.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    /// Every header, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The backend's answer as received.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReceivedAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body (lossy UTF-8), at most 64 KiB.
    pub body: String,
    #[serde(skip)]
    pub raw_body: Vec<u8>,
}

impl ReceivedAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The resolved addresses, when every one is allowed. One forbidden address refuses the name: a DNS answer mixing
/// public and private addresses is how a rebinding attack looks.
fn checked(peer: &Peer, addrs: Vec<SocketAddr>, allow_private: bool) -> Result<Vec<SocketAddr>> {
    if addrs.is_empty() {
        return Err(peer.unreachable(format!("the {} host resolves to no address", peer.name)));
    }
    if !allow_private && addrs.iter().any(|a| is_forbidden(a.ip())) {
        return Err(ClavisError::new(
            peer.address_forbidden,
            format!(
                "the {} host resolves to a loopback, private, link-local, CGNAT, multicast or metadata address",
                peer.name
            ),
        ));
    }
    Ok(addrs)
}

pub struct Outbound {
    allow_private: bool,
    tls: tokio_rustls::TlsConnector,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Aborts the connection task when the exchange ends (or its deadline drops it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Outbound {
    pub fn new(allow_private: bool) -> Result<Outbound> {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ClavisError::internal("outbound tls", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Outbound { allow_private, tls: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Refuse a URL at settings time: its scheme, credentials, and a host that is a forbidden literal address.
    pub fn check_url(&self, peer: &Peer, field: &'static str, raw: &str) -> Result<Url> {
        let invalid = |detail: &'static str| ClavisError::field(peer.settings_invalid, field, detail);
        let url = Url::parse(raw).map_err(|_| invalid("must be an absolute https URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            _ => return Err(invalid("must be an https URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials in the URL"));
        }
        if url.fragment().is_some() {
            return Err(invalid("must not carry a fragment"));
        }
        let literal = match url.host() {
            None => return Err(invalid("must name a host")),
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            // A name is checked on what it resolves to, at each request (its DNS answer can change).
            Some(Host::Domain(_)) => None,
        };
        if let Some(ip) = literal
            && !self.allow_private
            && is_forbidden(ip)
        {
            return Err(ClavisError::field(
                peer.target_forbidden,
                field,
                format!("{ip} is a loopback, private, link-local, CGNAT, multicast or metadata address"),
            ));
        }
        Ok(url)
    }

    /// The addresses to connect to: the literal address, or what DNS answered, all of which must be allowed.
    async fn addresses(&self, peer: &Peer, url: &Url) -> Result<Vec<SocketAddr>> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| peer.unreachable(format!("the {} URL has no port", peer.name)))?;
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| peer.unreachable(format!("the {} host {name:?} does not resolve", peer.name)))?
                .collect(),
            None => return Err(peer.unreachable(format!("the {} URL names no host", peer.name))),
        };
        checked(peer, addrs, self.allow_private)
    }

    async fn connect(&self, peer: &Peer, url: &Url) -> Result<Box<dyn Stream>> {
        let mut last_error = None;
        for addr in self.addresses(peer, url).await? {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(tcp) => {
                    tcp.set_nodelay(true).ok();
                    if url.scheme() != "https" {
                        return Ok(Box::new(tcp));
                    }
                    let name = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
                    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
                        .map_err(|_| peer.unreachable(format!("the {} host is not a TLS server name", peer.name)))?;
                    let tls =
                        self.tls.connect(server_name, tcp).await.map_err(|e| {
                            peer.unreachable(format!("TLS handshake with the {} failed: {e}", peer.name))
                        })?;
                    return Ok(Box::new(tls));
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(peer.unreachable(format!(
            "could not connect to the {}: {}",
            peer.name,
            last_error.map_or_else(|| "no address".to_owned(), |e| e.to_string())
        )))
    }

    /// POST `body` with `headers` (the content type among them) to `url` within `budget`. The exchange is recorded
    /// as sent even when it fails (`sent` is filled before the first byte leaves).
    pub async fn post(
        &self,
        peer: &Peer,
        url: &Url,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
        budget: Duration,
        sent: &mut Option<SentRequest>,
    ) -> Result<ReceivedAnswer> {
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut all_headers: Vec<(String, String)> = vec![
            ("host".into(), host),
            ("content-length".into(), body.len().to_string()),
            ("user-agent".into(), concat!("Clavis/", env!("CARGO_PKG_VERSION")).into()),
        ];
        all_headers.extend(headers.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
        *sent = Some(SentRequest {
            method: "POST".into(),
            url: url.to_string(),
            headers: all_headers.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let mut request = hyper::Request::post(target);
        for (name, value) in &all_headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request =
            request.body(Full::new(Bytes::from(body))).map_err(|e| ClavisError::internal("outbound request", e))?;
        let exchange = async {
            let stream = self.connect(peer, url).await?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| peer.unreachable(format!("HTTP handshake with the {} failed: {e}", peer.name)))?;
            let _connection = AbortOnDrop(tokio::spawn(async move {
                connection.await.ok();
            }));
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| peer.unreachable(format!("the {} closed the exchange: {e}", peer.name)))?;
            let (parts, body) = response.into_parts();
            let raw_body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    ClavisError::new(
                        peer.answer_malformed,
                        format!("reading the {}'s answer failed (at most {MAX_ANSWER_BYTES} bytes): {e}", peer.name),
                    )
                })?
                .to_bytes()
                .to_vec();
            Ok(ReceivedAnswer {
                status: parts.status.as_u16(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect(),
                body: String::from_utf8_lossy(&raw_body).into_owned(),
                raw_body,
            })
        };
        tokio::time::timeout(budget, exchange).await.unwrap_or_else(|_| {
            Err(ClavisError::new(
                peer.timeout,
                format!("the {} did not answer within {} ms", peer.name, budget.as_millis()),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} must be forbidden");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} must be allowed");
        }
    }

    const TEST_PEER: Peer = crate::callback::PEER;

    #[test]
    fn resolved_addresses_are_checked() {
        let addr = |s: &str| SocketAddr::new(s.parse().unwrap(), 443);
        for bad in ["127.0.0.1", "10.0.0.7", "169.254.169.254", "fd00:ec2::254"] {
            let err = checked(&TEST_PEER, vec![addr("93.184.215.14"), addr(bad)], false).unwrap_err();
            assert_eq!(err.code, ErrorCode::CallbackAddressForbidden, "{bad}");
            assert!(checked(&TEST_PEER, vec![addr(bad)], true).is_ok());
        }
        assert!(checked(&TEST_PEER, vec![addr("93.184.215.14")], false).is_ok());
        assert_eq!(checked(&TEST_PEER, vec![], true).unwrap_err().code, ErrorCode::CallbackUnreachable);
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_at_request_time() {
        let strict = Outbound::new(false).unwrap();
        let url = strict.check_url(&TEST_PEER, "url", "https://localhost:9/cb").unwrap();
        let mut sent = None;
        let err =
            strict.post(&TEST_PEER, &url, &[], b"{}".to_vec(), Duration::from_secs(1), &mut sent).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::CallbackAddressForbidden);
    }

    #[test]
    fn settings_time_url_checks() {
        let strict = Outbound::new(false).unwrap();
        assert_eq!(
            strict.check_url(&TEST_PEER, "url", "https://10.0.0.5/cb").unwrap_err().code,
            ErrorCode::CallbackTargetForbidden
        );
        assert_eq!(
            strict.check_url(&TEST_PEER, "url", "https://[::1]/cb").unwrap_err().code,
            ErrorCode::CallbackTargetForbidden
        );
        assert_eq!(
            strict.check_url(&TEST_PEER, "url", "http://example.com/cb").unwrap_err().code,
            ErrorCode::CallbackSettingsInvalid
        );
        assert_eq!(
            strict.check_url(&TEST_PEER, "url", "https://u:p@example.com/").unwrap_err().code,
            ErrorCode::CallbackSettingsInvalid
        );
        assert!(strict.check_url(&TEST_PEER, "url", "https://backend.example.com/clavis").is_ok());
        let open = Outbound::new(true).unwrap();
        assert!(open.check_url(&TEST_PEER, "url", "http://127.0.0.1:9000/cb").is_ok());
    }
}
