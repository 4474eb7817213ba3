//! The one policy model every token format maps onto and every DRM reads.
//!
//! A tenant has a default policy; a token carries a policy that may narrow it, never widen it. The token API refuses
//! a widening policy (naming the field); the license path computes the effective policy as the narrowest of both, so
//! a self-signed token that asks for more than the tenant allows still gets no more.

use serde::{Deserialize, Serialize};

use crate::error::{ClavisError, ErrorCode};

/// Longest license duration a policy may ask for (ten years).
pub const MAX_LICENSE_DURATION_SECONDS: u64 = 10 * 365 * 24 * 3600;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Seconds a license stays valid after it is issued; 0 means no limit. Unset takes the tenant default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_duration_seconds: Option<u64>,
    /// Whether the license may be stored for offline playback. Unset takes the tenant default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<bool>,
}

impl Policy {
    /// The tenant default when none is configured: one-day temporary licenses.
    pub fn platform_default() -> Policy {
        Policy { license_duration_seconds: Some(86_400), persistent: Some(false) }
    }

    pub fn validate(&self) -> Result<(), ClavisError> {
        if let Some(seconds) = self.license_duration_seconds
            && seconds > MAX_LICENSE_DURATION_SECONDS
        {
            return Err(ClavisError::field(
                ErrorCode::PolicyInvalid,
                "policy.license_duration_seconds",
                format!("must be at most {MAX_LICENSE_DURATION_SECONDS} (ten years); 0 means unlimited"),
            ));
        }
        Ok(())
    }

    /// Refuse a `narrower` policy that asks for more than `self` allows, naming the field.
    pub fn check_narrows(&self, narrower: &Policy) -> Result<(), ClavisError> {
        narrower.validate()?;
        if let (Some(allowed), Some(asked)) = (self.license_duration_seconds, narrower.license_duration_seconds)
            && allowed != 0
            && (asked == 0 || asked > allowed)
        {
            return Err(ClavisError::field(
                ErrorCode::PolicyInvalid,
                "policy.license_duration_seconds",
                format!("may not exceed the tenant default of {allowed} seconds"),
            ));
        }
        if self.persistent == Some(false) && narrower.persistent == Some(true) {
            return Err(ClavisError::field(
                ErrorCode::PolicyInvalid,
                "policy.persistent",
                "the tenant default does not allow persistent licenses",
            ));
        }
        Ok(())
    }

    /// The effective policy: each field the narrowest of `self` (the default) and `token`.
    pub fn narrowed_by(&self, token: &Policy) -> Policy {
        let license_duration_seconds = narrow_limit(self.license_duration_seconds, token.license_duration_seconds);
        let persistent = match (self.persistent, token.persistent) {
            (Some(a), Some(b)) => Some(a && b),
            (a, b) => a.or(b),
        };
        Policy { license_duration_seconds, persistent }
    }

    pub fn allows_persistence(&self) -> bool {
        self.persistent.unwrap_or(false)
    }
}

/// The narrower of two limits where `None` is "unspecified" and `Some(0)` is "unlimited".
fn narrow_limit(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(0), x) | (x, Some(0)) => x,
        (Some(a), Some(b)) => Some(a.min(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> impl Strategy<Value = Policy> {
        (proptest::option::of(0u64..100_000), proptest::option::of(any::<bool>()))
            .prop_map(|(license_duration_seconds, persistent)| Policy { license_duration_seconds, persistent })
    }

    fn duration_allows(limit: Option<u64>, asked: Option<u64>) -> bool {
        match (limit, asked) {
            (None | Some(0), _) => true,
            (Some(_), None | Some(0)) => false,
            (Some(l), Some(a)) => a <= l,
        }
    }

    proptest! {
        #[test]
        fn narrowing_never_widens(default in policy(), token in policy()) {
            let effective = default.narrowed_by(&token);
            prop_assert!(duration_allows(default.license_duration_seconds, effective.license_duration_seconds));
            prop_assert!(duration_allows(token.license_duration_seconds, effective.license_duration_seconds));
            if default.persistent == Some(false) || token.persistent == Some(false) {
                prop_assert!(!effective.allows_persistence());
            }
        }

        #[test]
        fn accepted_token_policies_survive_narrowing(default in policy(), token in policy()) {
            if default.check_narrows(&token).is_ok() {
                let effective = default.narrowed_by(&token);
                if let Some(asked) = token.license_duration_seconds {
                    prop_assert_eq!(effective.license_duration_seconds, Some(asked));
                }
            }
        }

        #[test]
        fn policy_json_round_trips(p in policy()) {
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);
        }
    }

    #[test]
    fn widening_is_refused_with_the_field() {
        let default = Policy { license_duration_seconds: Some(3600), persistent: Some(false) };
        let err =
            default.check_narrows(&Policy { license_duration_seconds: Some(7200), persistent: None }).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("policy.license_duration_seconds"));
        let err =
            default.check_narrows(&Policy { license_duration_seconds: None, persistent: Some(true) }).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("policy.persistent"));
        assert!(serde_json::from_str::<Policy>(r#"{"license_duration": 5}"#).is_err(), "unknown fields are refused");
    }
}
