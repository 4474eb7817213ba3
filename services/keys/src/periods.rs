//! Key periods for live key rotation through the key API: `POST /api/v1/keys` with a `period` makes (or reads) one
//! key per track for that crypto period. The same period always gives the same keys; another period, other keys.
//!
//! A period is named by its index, or by a time and the period length: index = floor(seconds since the Unix epoch
//! / `duration_seconds`), so a packager that rotates every N seconds can ask by wall-clock time and get the key of
//! the period that time falls in.

use chrono::DateTime;
use clavis_core::ids::{ContentId, SiteId, TenantId};
use clavis_core::{ClavisError, Result};
use serde::Deserialize;

use crate::model::{ContentKeySet, KeySource, KeysRequest, KeysResponse, parse_tracks};
use crate::store::{KeySlot, KeyStore};

/// A crypto period: `{"index": 42}`, or `{"start": "2026-11-28T10:00:00Z", "duration_seconds": 60}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodBody {
    /// The period's index, 0 to 4294967295 (Shaka Packager's `crypto_period_index`).
    #[serde(default)]
    #[schema(example = 42)]
    pub index: Option<u64>,
    /// Instead of `index`: a time in the period (RFC 3339); with `duration_seconds`.
    #[serde(default)]
    #[schema(example = "2026-11-28T10:00:00Z")]
    pub start: Option<String>,
    /// The length of every period, in seconds (with `start`).
    #[serde(default)]
    #[schema(example = 60)]
    pub duration_seconds: Option<u64>,
}

impl PeriodBody {
    /// The period index this body names.
    pub fn index(&self) -> Result<u32> {
        match (self.index, self.start.as_deref(), self.duration_seconds) {
            (Some(index), None, None) => {
                u32::try_from(index).map_err(|_| ClavisError::invalid("period.index", "must be 0 to 4294967295"))
            }
            (None, Some(start), Some(duration)) => {
                if duration == 0 {
                    return Err(ClavisError::invalid("period.duration_seconds", "must be at least 1"));
                }
                let start = DateTime::parse_from_rfc3339(start)
                    .map_err(|_| ClavisError::invalid("period.start", "must be an RFC 3339 time"))?;
                let seconds = u64::try_from(start.timestamp())
                    .map_err(|_| ClavisError::invalid("period.start", "must not be before 1970"))?;
                u32::try_from(seconds / duration).map_err(|_| {
                    ClavisError::invalid("period", "start / duration_seconds gives an index beyond 4294967295")
                })
            }
            _ => Err(ClavisError::invalid(
                "period",
                "give either `index`, or `start` (RFC 3339) with `duration_seconds`",
            )),
        }
    }
}

/// `POST /api/v1/keys` with a `period`: the period's keys, one per requested track (made if missing). The answer
/// lists only that period's keys (and PSSH boxes for them); the boolean says whether any was made.
pub(crate) async fn ensure_period_keys(
    store: &KeyStore,
    tenant_id: TenantId,
    site_id: SiteId,
    request: KeysRequest,
    period: &PeriodBody,
) -> Result<(KeysResponse, bool)> {
    let content_id = ContentId::parse(&request.content_id)?;
    if request.keys.is_some() {
        return Err(ClavisError::invalid("keys", "keys cannot be imported into a period; give `tracks` instead"));
    }
    let index = period.index()?;
    let source = match request.source.as_deref() {
        None | Some("random") => KeySource::Random,
        Some("key_seed") => KeySource::KeySeed,
        Some(_) => return Err(ClavisError::invalid("source", "must be \"random\" or \"key_seed\"")),
    };
    let slots: Vec<KeySlot> = parse_tracks(request.tracks)?
        .into_iter()
        .map(|track_type| KeySlot { track_type, period: Some(index) })
        .collect();
    let (keys, created) = store.ensure_slots(tenant_id, &content_id, &slots, source).await?;
    let set = ContentKeySet { content_id, keys, policy: None };
    Ok((KeysResponse::from_set(&set, &store.public_url(), site_id)?, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> PeriodBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_period_is_an_index_or_a_time_and_a_length() {
        assert_eq!(body(r#"{"index": 7}"#).index().unwrap(), 7);
        assert_eq!(body(r#"{"start": "1970-01-01T00:10:00Z", "duration_seconds": 60}"#).index().unwrap(), 10);
        // Any time inside the period names the same period.
        assert_eq!(body(r#"{"start": "1970-01-01T00:10:59+00:00", "duration_seconds": 60}"#).index().unwrap(), 10);
        for bad in [
            r#"{}"#,
            r#"{"index": 4294967296}"#,
            r#"{"index": 1, "start": "1970-01-01T00:00:00Z", "duration_seconds": 1}"#,
            r#"{"start": "1970-01-01T00:00:00Z"}"#,
            r#"{"start": "yesterday", "duration_seconds": 60}"#,
            r#"{"start": "1970-01-01T00:00:00Z", "duration_seconds": 0}"#,
            r#"{"start": "1960-01-01T00:00:00Z", "duration_seconds": 60}"#,
        ] {
            assert!(body(bad).index().is_err(), "{bad}");
        }
    }
}
