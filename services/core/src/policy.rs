//! The one policy model every token format maps onto and every DRM reads.
//!
//! A tenant has a default policy (and a content may have its own, layered on top); a token carries a policy that may
//! narrow them, never widen them. The token API refuses a widening policy, naming the field; the license path
//! computes the effective policy as the narrowest of all layers, so a self-signed token that asks for more than the
//! tenant allows still gets no more.
//!
//! Every field is optional: unset means "no opinion", and the other layers decide. What "narrower" means depends on
//! the field, and is spelled out once, in [`Policy::narrowed_by`]:
//! - time limits and counts take the smaller value (for durations, 0 means unlimited);
//! - permissions (`persistent`, AirPlay, AV adapter) need every layer to allow them;
//! - requirements (`single_use`, HDCP on FairPlay, HDCP type 1) hold when any layer asks for them;
//! - security and protection levels take the stricter (higher) level;
//! - sets (tracks, client networks, origins) take the intersection.

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ClavisError, ErrorCode};
use crate::ids::TrackType;

/// Longest license duration a policy may ask for (ten years).
pub const MAX_LICENSE_DURATION_SECONDS: u64 = 10 * 365 * 24 * 3600;
/// Most entries a policy list (networks, origins) may hold.
pub const MAX_LIST_LEN: usize = 100;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Seconds a license stays valid after it is issued; 0 means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_duration_seconds: Option<u64>,
    /// An absolute end: no license is issued after it and none lasts beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the license may be stored for offline playback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<bool>,
    /// Rental window: seconds from the license's issue within which playback must start; 0 means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rental_duration_seconds: Option<u64>,
    /// Playback window: seconds playback may last once started; 0 means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback_duration_seconds: Option<u64>,
    /// Track types whose keys may be delivered. A key made for `ALL` is delivered only when every type is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, example = json!(["SD", "HD", "AUDIO"]))]
    pub allowed_tracks: Option<BTreeSet<TrackType>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widevine: Option<WidevineRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playready: Option<PlayReadyRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairplay: Option<FairPlayRules>,
    /// Most streams one user may play at once (licenses with a renewal interval hold a slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<u32>,
    /// Most distinct devices one user may obtain licenses on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_devices: Option<u32>,
    /// Seconds between license renewals; 0 means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_interval_seconds: Option<u64>,
    /// Client networks (CIDR or single addresses) licenses may be requested from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, example = json!(["203.0.113.0/24"]))]
    pub allowed_client_networks: Option<BTreeSet<IpNetwork>>,
    /// Web origins licenses may be requested from (`https://player.example.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<BTreeSet<String>>,
    /// The token may be used for one license only (its `jti` is remembered until it expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_use: Option<bool>,
}

/// Widevine output and robustness rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidevineRules {
    /// Lowest accepted security level, 1 (software crypto) to 5 (hardware, secure decode): L1 is 5, L3 is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_security_level: Option<u8>,
    /// HDCP version the output must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_hdcp: Option<Hdcp>,
    /// Turn off analog outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_analog_output: Option<bool>,
}

/// PlayReady output and robustness rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayReadyRules {
    /// Lowest accepted client security level: 150, 2000 or 3000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_security_level: Option<u16>,
    /// Output protection level for compressed/uncompressed digital video (100, 250, 270, 300, 301 ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digital_video_protection: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analog_video_protection: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digital_audio_protection: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_hdcp_type_1: Option<bool>,
}

/// FairPlay output rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FairPlayRules {
    /// Require HDCP on external outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdcp_required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_airplay: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_av_adapter: Option<bool>,
}

/// HDCP versions in increasing strictness; `NO_DIGITAL_OUTPUT` forbids digital output altogether.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Hdcp {
    None,
    V1,
    V2,
    #[serde(rename = "V2_1")]
    V2_1,
    #[serde(rename = "V2_2")]
    V2_2,
    #[serde(rename = "V2_3")]
    V2_3,
    NoDigitalOutput,
}

/// An IP network (`203.0.113.0/24`, `2001:db8::/32`, or one address), stored normalized (host bits cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    pub fn parse(s: &str) -> Result<IpNetwork, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("bad prefix in {s:?}"))?,
        };
        Ok(IpNetwork { addr: mask(addr, prefix), prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket is still that IPv4 client.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }

    /// Whether every address of `other` is in `self`.
    pub fn covers(&self, other: &IpNetwork) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6((bits & m).into())
        }
    }
}

impl std::fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IpNetwork::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn invalid(field: &str, detail: impl Into<String>) -> ClavisError {
    ClavisError::field(ErrorCode::PolicyInvalid, format!("policy.{field}"), detail.into())
}

impl Policy {
    /// The tenant default when none is configured: one-day temporary licenses.
    pub fn platform_default() -> Policy {
        Policy { license_duration_seconds: Some(86_400), persistent: Some(false), ..Policy::default() }
    }

    /// Check each field's own range (not against other layers), naming the first bad field.
    pub fn validate(&self) -> Result<(), ClavisError> {
        for (name, value) in [
            ("license_duration_seconds", self.license_duration_seconds),
            ("rental_duration_seconds", self.rental_duration_seconds),
            ("playback_duration_seconds", self.playback_duration_seconds),
            ("renewal_interval_seconds", self.renewal_interval_seconds),
        ] {
            if value.is_some_and(|v| v > MAX_LICENSE_DURATION_SECONDS) {
                return Err(invalid(
                    name,
                    format!("must be at most {MAX_LICENSE_DURATION_SECONDS} (ten years); 0 means unlimited"),
                ));
            }
        }
        if self.allowed_tracks.as_ref().is_some_and(|t| t.contains(&TrackType::All)) {
            return Err(invalid("allowed_tracks", "list the track types (SD, HD, UHD1, UHD2, AUDIO); ALL is not one"));
        }
        if let Some(level) = self.widevine.as_ref().and_then(|w| w.min_security_level)
            && !(1..=5).contains(&level)
        {
            return Err(invalid("widevine.min_security_level", "must be 1 to 5"));
        }
        if let Some(level) = self.playready.as_ref().and_then(|p| p.min_security_level)
            && ![150, 2000, 3000].contains(&level)
        {
            return Err(invalid("playready.min_security_level", "must be 150, 2000 or 3000"));
        }
        if self.allowed_client_networks.as_ref().is_some_and(|n| n.len() > MAX_LIST_LEN) {
            return Err(invalid("allowed_client_networks", format!("at most {MAX_LIST_LEN} entries")));
        }
        if let Some(origins) = &self.allowed_origins {
            if origins.len() > MAX_LIST_LEN {
                return Err(invalid("allowed_origins", format!("at most {MAX_LIST_LEN} entries")));
            }
            if let Some(bad) = origins.iter().find(|o| !is_origin(o)) {
                return Err(invalid("allowed_origins", format!("{bad:?} is not an origin like https://host[:port]")));
            }
        }
        Ok(())
    }

    /// Refuse a `narrower` policy that asks for more than `self` allows, naming the field: every field `narrower`
    /// sets must come out of [`Policy::narrowed_by`] unchanged.
    pub fn check_narrows(&self, narrower: &Policy) -> Result<(), ClavisError> {
        narrower.validate()?;
        let effective = self.narrowed_by(narrower);
        let asked = serde_json::to_value(narrower).unwrap_or(Value::Null);
        let got = serde_json::to_value(&effective).unwrap_or(Value::Null);
        match first_difference(&asked, &got, "") {
            None => Ok(()),
            Some(path) => {
                let allowed = path
                    .split('.')
                    .try_fold(&serde_json::to_value(self).unwrap_or(Value::Null), |v, k| v.get(k))
                    .map_or_else(|| "less".to_owned(), Value::to_string);
                Err(invalid(&path, format!("asks for more than the default allows ({allowed})")))
            }
        }
    }

    /// The effective policy: each field the narrowest of `self` and `other` (see the module documentation).
    pub fn narrowed_by(&self, other: &Policy) -> Policy {
        Policy {
            license_duration_seconds: min_duration(self.license_duration_seconds, other.license_duration_seconds),
            expires_at: min_opt(self.expires_at, other.expires_at),
            persistent: permitted(self.persistent, other.persistent),
            rental_duration_seconds: min_duration(self.rental_duration_seconds, other.rental_duration_seconds),
            playback_duration_seconds: min_duration(self.playback_duration_seconds, other.playback_duration_seconds),
            allowed_tracks: intersect(&self.allowed_tracks, &other.allowed_tracks),
            widevine: merge(&self.widevine, &other.widevine, |a, b| WidevineRules {
                min_security_level: max_opt(a.min_security_level, b.min_security_level),
                required_hdcp: max_opt(a.required_hdcp, b.required_hdcp),
                disable_analog_output: required(a.disable_analog_output, b.disable_analog_output),
            }),
            playready: merge(&self.playready, &other.playready, |a, b| PlayReadyRules {
                min_security_level: max_opt(a.min_security_level, b.min_security_level),
                digital_video_protection: max_opt(a.digital_video_protection, b.digital_video_protection),
                analog_video_protection: max_opt(a.analog_video_protection, b.analog_video_protection),
                digital_audio_protection: max_opt(a.digital_audio_protection, b.digital_audio_protection),
                require_hdcp_type_1: required(a.require_hdcp_type_1, b.require_hdcp_type_1),
            }),
            fairplay: merge(&self.fairplay, &other.fairplay, |a, b| FairPlayRules {
                hdcp_required: required(a.hdcp_required, b.hdcp_required),
                allow_airplay: permitted(a.allow_airplay, b.allow_airplay),
                allow_av_adapter: permitted(a.allow_av_adapter, b.allow_av_adapter),
            }),
            max_concurrent_streams: min_opt(self.max_concurrent_streams, other.max_concurrent_streams),
            max_devices: min_opt(self.max_devices, other.max_devices),
            renewal_interval_seconds: min_duration(self.renewal_interval_seconds, other.renewal_interval_seconds),
            allowed_client_networks: intersect_networks(&self.allowed_client_networks, &other.allowed_client_networks),
            allowed_origins: intersect(&self.allowed_origins, &other.allowed_origins),
            single_use: required(self.single_use, other.single_use),
        }
    }

    pub fn allows_persistence(&self) -> bool {
        self.persistent.unwrap_or(false)
    }

    pub fn is_single_use(&self) -> bool {
        self.single_use.unwrap_or(false)
    }

    /// Whether a key made for `track` may be delivered.
    pub fn allows_track(&self, track: TrackType) -> bool {
        match (&self.allowed_tracks, track) {
            (None, _) => true,
            (Some(allowed), TrackType::All) => {
                TrackType::EVERY.iter().filter(|t| **t != TrackType::All).all(|t| allowed.contains(t))
            }
            (Some(allowed), t) => allowed.contains(&t),
        }
    }

    /// Whether a request from `ip` is allowed.
    pub fn allows_client(&self, ip: Option<IpAddr>) -> bool {
        match (&self.allowed_client_networks, ip) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(networks), Some(ip)) => networks.iter().any(|n| n.contains(ip)),
        }
    }

    /// Whether a request with this `Origin` header is allowed (no header: not a browser, not limited here).
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        match (&self.allowed_origins, origin) {
            (None, _) | (Some(_), None) => true,
            (Some(origins), Some(origin)) => origins.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }

    /// Seconds the license issued `now` may last: the duration, cut short by an absolute expiry. `None` is
    /// unlimited; `Some(0)` means the policy has already expired.
    pub fn license_seconds_at(&self, now: DateTime<Utc>) -> Option<u64> {
        let by_duration = self.license_duration_seconds.filter(|d| *d != 0);
        let by_expiry = self.expires_at.map(|at| u64::try_from((at - now).num_seconds()).unwrap_or(0));
        min_opt(by_duration, by_expiry)
    }
}

fn is_origin(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|host| !host.is_empty() && !host.contains(['/', '?', '#', ' ', '@']))
}

/// The first path (dotted) where `asked` sets a value that `got` does not equal.
fn first_difference(asked: &Value, got: &Value, path: &str) -> Option<String> {
    match asked {
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            first_difference(v, got.get(k).unwrap_or(&Value::Null), &sub)
        }),
        Value::Null => None,
        other => (other != got).then(|| path.to_owned()),
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The narrower of two durations where `Some(0)` is "unlimited".
fn min_duration(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(0), x) | (x, Some(0)) => x,
        (Some(a), Some(b)) => Some(a.min(b)),
    }
}

/// A permission: granted only when no layer refuses it.
fn permitted(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a && b),
        (a, b) => a.or(b),
    }
}

/// A requirement: in force when any layer asks for it.
fn required(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a || b),
        (a, b) => a.or(b),
    }
}

fn intersect<T: Ord + Clone>(a: &Option<BTreeSet<T>>, b: &Option<BTreeSet<T>>) -> Option<BTreeSet<T>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
        (a, b) => a.clone().or_else(|| b.clone()),
    }
}

/// Networks in both sets: each network of one side that a network of the other side covers.
fn intersect_networks(a: &Option<BTreeSet<IpNetwork>>, b: &Option<BTreeSet<IpNetwork>>) -> Option<BTreeSet<IpNetwork>> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let inner = |x: &BTreeSet<IpNetwork>, y: &BTreeSet<IpNetwork>| {
                x.iter().filter(|n| y.iter().any(|m| m.covers(n))).copied().collect::<Vec<_>>()
            };
            Some(inner(a, b).into_iter().chain(inner(b, a)).collect())
        }
        (a, b) => a.clone().or_else(|| b.clone()),
    }
}

fn merge<T: Clone>(a: &Option<T>, b: &Option<T>, both: impl Fn(&T, &T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(both(a, b)),
        (a, b) => a.clone().or_else(|| b.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn duration() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(prop_oneof![Just(0u64), 1u64..100_000])
    }

    fn tracks() -> impl Strategy<Value = Option<BTreeSet<TrackType>>> {
        proptest::option::of(proptest::collection::btree_set(
            prop_oneof![
                Just(TrackType::Sd),
                Just(TrackType::Hd),
                Just(TrackType::Uhd1),
                Just(TrackType::Uhd2),
                Just(TrackType::Audio)
            ],
            0..5,
        ))
    }

    fn networks() -> impl Strategy<Value = Option<BTreeSet<IpNetwork>>> {
        let net = (any::<[u8; 4]>(), 8u8..=32)
            .prop_map(|(a, p)| IpNetwork::parse(&format!("{}/{p}", std::net::Ipv4Addr::from(a))).unwrap());
        proptest::option::of(proptest::collection::btree_set(net, 0..4))
    }

    prop_compose! {
        fn policy()(
            license_duration_seconds in duration(),
            expires in proptest::option::of(0i64..10_000),
            persistent in proptest::option::of(any::<bool>()),
            rental_duration_seconds in duration(),
            playback_duration_seconds in duration(),
            allowed_tracks in tracks(),
            wv in proptest::option::of((proptest::option::of(1u8..=5), proptest::option::of(prop_oneof![Just(Hdcp::None), Just(Hdcp::V1), Just(Hdcp::V2_2), Just(Hdcp::NoDigitalOutput)]), proptest::option::of(any::<bool>()))),
            fp in proptest::option::of((proptest::option::of(any::<bool>()), proptest::option::of(any::<bool>()), proptest::option::of(any::<bool>()))),
            max_concurrent_streams in proptest::option::of(0u32..10),
            max_devices in proptest::option::of(0u32..10),
            renewal_interval_seconds in duration(),
            allowed_client_networks in networks(),
            single_use in proptest::option::of(any::<bool>()),
        ) -> Policy {
            Policy {
                license_duration_seconds,
                expires_at: expires.map(|s| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()),
                persistent,
                rental_duration_seconds,
                playback_duration_seconds,
                allowed_tracks,
                widevine: wv.map(|(min_security_level, required_hdcp, disable_analog_output)| WidevineRules { min_security_level, required_hdcp, disable_analog_output }),
                playready: None,
                fairplay: fp.map(|(hdcp_required, allow_airplay, allow_av_adapter)| FairPlayRules { hdcp_required, allow_airplay, allow_av_adapter }),
                max_concurrent_streams,
                max_devices,
                renewal_interval_seconds,
                allowed_client_networks,
                allowed_origins: None,
                single_use,
            }
        }
    }

    fn duration_within(limit: Option<u64>, got: Option<u64>) -> bool {
        match (limit, got) {
            (None | Some(0), _) => true,
            (Some(_), None | Some(0)) => false,
            (Some(l), Some(g)) => g <= l,
        }
    }

    /// `got` is at least as narrow as `limit` in every field.
    fn within(limit: &Policy, got: &Policy) -> bool {
        duration_within(limit.license_duration_seconds, got.license_duration_seconds)
            && duration_within(limit.rental_duration_seconds, got.rental_duration_seconds)
            && limit.expires_at.is_none_or(|l| got.expires_at.is_some_and(|g| g <= l))
            && (limit.persistent != Some(false) || got.persistent == Some(false))
            && (limit.single_use != Some(true) || got.single_use == Some(true))
            && limit.allowed_tracks.as_ref().is_none_or(|l| got.allowed_tracks.as_ref().is_some_and(|g| g.is_subset(l)))
            && limit.max_devices.is_none_or(|l| got.max_devices.is_some_and(|g| g <= l))
            && limit
                .widevine
                .as_ref()
                .and_then(|w| w.min_security_level)
                .is_none_or(|l| got.widevine.as_ref().and_then(|w| w.min_security_level).is_some_and(|g| g >= l))
            && limit
                .fairplay
                .as_ref()
                .and_then(|f| f.allow_airplay)
                .is_none_or(|l| l || got.fairplay.as_ref().and_then(|f| f.allow_airplay) == Some(false))
            && limit.allowed_client_networks.as_ref().is_none_or(|l| {
                got.allowed_client_networks.as_ref().is_some_and(|g| g.iter().all(|n| l.iter().any(|m| m.covers(n))))
            })
    }

    proptest! {
        #[test]
        fn narrowing_never_widens(default in policy(), token in policy()) {
            let effective = default.narrowed_by(&token);
            prop_assert!(within(&default, &effective), "{default:?} {effective:?}");
            prop_assert!(within(&token, &effective), "{token:?} {effective:?}");
        }

        #[test]
        fn narrowing_is_idempotent_and_symmetric(a in policy(), b in policy()) {
            prop_assert_eq!(a.narrowed_by(&a), a.clone());
            prop_assert_eq!(a.narrowed_by(&b), b.narrowed_by(&a));
            prop_assert_eq!(a.narrowed_by(&Policy::default()), a);
        }

        #[test]
        fn accepted_token_policies_survive_narrowing(default in policy(), token in policy()) {
            if default.check_narrows(&token).is_ok() {
                let effective = default.narrowed_by(&token);
                let asked = serde_json::to_value(&token).unwrap();
                let got = serde_json::to_value(&effective).unwrap();
                prop_assert_eq!(first_difference(&asked, &got, ""), None);
            }
        }

        #[test]
        fn a_policy_narrows_itself_and_anything_wider(p in policy()) {
            prop_assert!(p.check_narrows(&p).is_ok());
            prop_assert!(Policy::default().check_narrows(&p).is_ok());
        }

        #[test]
        fn policy_json_round_trips(p in policy()) {
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);
        }
    }

    #[test]
    fn widening_is_refused_with_the_field() {
        let default = Policy {
            license_duration_seconds: Some(3600),
            persistent: Some(false),
            widevine: Some(WidevineRules { min_security_level: Some(3), ..Default::default() }),
            allowed_tracks: Some([TrackType::Sd, TrackType::Audio].into()),
            ..Policy::default()
        };
        let field = |token: serde_json::Value| {
            let token: Policy = serde_json::from_value(token).unwrap();
            default.check_narrows(&token).err().and_then(|e| e.field).map(|f| f.to_string())
        };
        assert_eq!(
            field(serde_json::json!({"license_duration_seconds": 7200})).as_deref(),
            Some("policy.license_duration_seconds")
        );
        assert_eq!(
            field(serde_json::json!({"license_duration_seconds": 0})).as_deref(),
            Some("policy.license_duration_seconds")
        );
        assert_eq!(field(serde_json::json!({"persistent": true})).as_deref(), Some("policy.persistent"));
        assert_eq!(
            field(serde_json::json!({"widevine": {"min_security_level": 1}})).as_deref(),
            Some("policy.widevine.min_security_level")
        );
        assert_eq!(
            field(serde_json::json!({"allowed_tracks": ["SD", "HD"]})).as_deref(),
            Some("policy.allowed_tracks")
        );
        assert_eq!(
            field(
                serde_json::json!({"license_duration_seconds": 60, "widevine": {"min_security_level": 5}, "allowed_tracks": ["SD"], "single_use": true})
            ),
            None
        );
        assert!(serde_json::from_str::<Policy>(r#"{"license_duration": 5}"#).is_err(), "unknown fields are refused");
        assert!(serde_json::from_str::<Policy>(r#"{"widevine": {"level": 5}}"#).is_err(), "also nested");
    }

    #[test]
    fn validation_names_the_field() {
        let field = |json: &str| {
            serde_json::from_str::<Policy>(json).unwrap().validate().unwrap_err().field.unwrap().to_string()
        };
        assert_eq!(field(r#"{"widevine": {"min_security_level": 9}}"#), "policy.widevine.min_security_level");
        assert_eq!(field(r#"{"playready": {"min_security_level": 1000}}"#), "policy.playready.min_security_level");
        assert_eq!(field(r#"{"allowed_tracks": ["ALL"]}"#), "policy.allowed_tracks");
        assert_eq!(field(r#"{"allowed_origins": ["https://a.example/path"]}"#), "policy.allowed_origins");
        assert_eq!(field(r#"{"renewal_interval_seconds": 999999999999}"#), "policy.renewal_interval_seconds");
        assert!(serde_json::from_str::<Policy>(r#"{"allowed_client_networks": ["10.0.0.0/33"]}"#).is_err());
    }

    #[test]
    fn networks_tracks_and_expiry() {
        let p: Policy = serde_json::from_str(
            r#"{"allowed_client_networks": ["203.0.113.7/24", "2001:db8::1"], "allowed_tracks": ["SD","HD","UHD1","UHD2","AUDIO"]}"#,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&p).unwrap()["allowed_client_networks"][0], "203.0.113.0/24");
        assert!(p.allows_client(Some("203.0.113.200".parse().unwrap())));
        assert!(p.allows_client(Some("::ffff:203.0.113.9".parse().unwrap())), "IPv4-mapped");
        assert!(p.allows_client(Some("2001:db8::1".parse().unwrap())));
        assert!(!p.allows_client(Some("198.51.100.1".parse().unwrap())));
        assert!(!p.allows_client(None));
        assert!(p.allows_track(TrackType::All), "every type allowed, so an ALL key too");
        let sd_only = Policy { allowed_tracks: Some([TrackType::Sd].into()), ..Policy::default() };
        assert!(sd_only.allows_track(TrackType::Sd) && !sd_only.allows_track(TrackType::Hd));
        assert!(!sd_only.allows_track(TrackType::All));

        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let p = Policy {
            license_duration_seconds: Some(3600),
            expires_at: Some(now + chrono::Duration::seconds(60)),
            ..Policy::default()
        };
        assert_eq!(p.license_seconds_at(now), Some(60));
        assert_eq!(p.license_seconds_at(now + chrono::Duration::seconds(120)), Some(0));
        assert_eq!(Policy { license_duration_seconds: Some(0), ..Policy::default() }.license_seconds_at(now), None);
    }
}
