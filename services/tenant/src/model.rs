//! The tenant as the other services see it, and the small types its settings are made of.

use clavis_core::ids::{SiteId, TenantId};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use serde::{Deserialize, Serialize};

use crate::entity::tenants;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }

    fn parse(s: &str) -> TenantStatus {
        // Anything unexpected is treated as suspended: fail closed.
        if s == "active" { TenantStatus::Active } else { TenantStatus::Suspended }
    }
}

/// A tenant and the settings the hot paths read. Held in the directory's cache.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub site_id: SiteId,
    pub status: TenantStatus,
    pub settings: TenantSettings,
}

impl Tenant {
    /// Refuse work for a suspended tenant.
    pub fn ensure_active(&self) -> Result<()> {
        match self.status {
            TenantStatus::Active => Ok(()),
            TenantStatus::Suspended => {
                Err(ClavisError::new(ErrorCode::TenantSuspended, format!("tenant {} is suspended", self.site_id)))
            }
        }
    }

    pub(crate) fn from_row(row: tenants::Model) -> Result<Tenant> {
        let site_id = SiteId::parse(&row.site_id).map_err(|e| ClavisError::internal("stored site id", e))?;
        let default_policy: Policy =
            serde_json::from_str(&row.default_policy).map_err(|e| ClavisError::internal("stored default policy", e))?;
        let allowed_origins: Vec<String> =
            serde_json::from_str(&row.allowed_origins).map_err(|e| ClavisError::internal("stored origins", e))?;
        // Tenants made before server configuration data existed have none stored: they run on the defaults.
        let server_config: ServerConfig = match row.server_config.as_deref() {
            None | Some("") => ServerConfig::default(),
            Some(text) => serde_json::from_str(text).map_err(|e| ClavisError::internal("stored server config", e))?,
        };
        Ok(Tenant {
            id: TenantId(row.id),
            name: row.name,
            site_id,
            status: TenantStatus::parse(&row.status),
            settings: TenantSettings {
                default_policy,
                allowed_origins,
                clock_skew_seconds: u32::try_from(row.clock_skew_seconds).unwrap_or(0),
                token_ttl_seconds: u32::try_from(row.token_ttl_seconds).unwrap_or(DEFAULT_TOKEN_TTL_SECONDS),
                server_config,
            },
        })
    }
}

pub const DEFAULT_CLOCK_SKEW_SECONDS: u32 = 60;
pub const MAX_CLOCK_SKEW_SECONDS: u32 = 3600;
pub const DEFAULT_TOKEN_TTL_SECONDS: u32 = 600;
pub const MAX_TOKEN_TTL_SECONDS: u32 = 30 * 24 * 3600;

/// Settings that license and token requests depend on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantSettings {
    /// The policy a token with an empty policy gets; token policies may only narrow it.
    pub default_policy: Policy,
    /// Browser origins allowed to request licenses (`https://player.example.com`). Empty allows any origin.
    pub allowed_origins: Vec<String>,
    /// Tolerance, in seconds, for token `exp`, `nbf` and `iat` against the server clock.
    pub clock_skew_seconds: u32,
    /// Lifetime of tokens minted by the token API unless the request asks for less.
    pub token_ttl_seconds: u32,
    /// Server configuration data for clients and for the license rules (versioned; see [`ServerConfig`]).
    pub server_config: ServerConfig,
}

/// Server configuration data (seed document 000): settings the license service sends to clients and applies
/// itself. Every change makes a new `version`; a license request that says which version its client holds
/// (`X-Clavis-Config-Version`) gets the current one back when its copy is older.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Starts at 1; Clavis bumps it on every change (a value sent by the tenant is ignored).
    #[serde(default = "first_version")]
    pub version: u32,
    /// How far a client's clock may be set back before the client must stop using stored licenses (the client
    /// enforces it: a clock wound back past this means someone tries to stretch a license).
    #[serde(default = "default_windback")]
    pub clock_windback_tolerance_seconds: u32,
    /// License requests carry a timestamp (Widevine `request_time`, PlayReady `ClientTime`, ClearKey
    /// `X-Clavis-Message-Time`): one further than this from the server clock is refused, and each message id is
    /// remembered this long so it is used once.
    #[serde(default = "default_message_tolerance")]
    pub message_time_tolerance_seconds: u32,
    /// Refuse license requests whose client state counter (`X-Clavis-Client-State`) went backwards.
    #[serde(default = "default_true")]
    pub rollback_detection: bool,
}

pub const DEFAULT_CLOCK_WINDBACK_SECONDS: u32 = 300;
pub const DEFAULT_MESSAGE_TOLERANCE_SECONDS: u32 = 600;
pub const MAX_SERVER_CONFIG_SECONDS: u32 = 7 * 24 * 3600;

fn first_version() -> u32 {
    1
}
fn default_windback() -> u32 {
    DEFAULT_CLOCK_WINDBACK_SECONDS
}
fn default_message_tolerance() -> u32 {
    DEFAULT_MESSAGE_TOLERANCE_SECONDS
}
fn default_true() -> bool {
    true
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            version: 1,
            clock_windback_tolerance_seconds: DEFAULT_CLOCK_WINDBACK_SECONDS,
            message_time_tolerance_seconds: DEFAULT_MESSAGE_TOLERANCE_SECONDS,
            rollback_detection: true,
        }
    }
}

/// A change to the server configuration; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfigPatch {
    pub clock_windback_tolerance_seconds: Option<u32>,
    pub message_time_tolerance_seconds: Option<u32>,
    pub rollback_detection: Option<bool>,
}

impl ServerConfigPatch {
    /// The next configuration: a new version when anything changed, the same one otherwise.
    pub fn apply(&self, current: &ServerConfig) -> Result<ServerConfig> {
        let bounded = |field: &'static str, value: Option<u32>, current: u32, min: u32| -> Result<u32> {
            match value {
                None => Ok(current),
                Some(v) if (min..=MAX_SERVER_CONFIG_SECONDS).contains(&v) => Ok(v),
                Some(_) => Err(ClavisError::invalid(
                    format!("server_config.{field}"),
                    format!("must be {min} to {MAX_SERVER_CONFIG_SECONDS} seconds"),
                )),
            }
        };
        let mut next = ServerConfig {
            version: current.version,
            clock_windback_tolerance_seconds: bounded(
                "clock_windback_tolerance_seconds",
                self.clock_windback_tolerance_seconds,
                current.clock_windback_tolerance_seconds,
                0,
            )?,
            message_time_tolerance_seconds: bounded(
                "message_time_tolerance_seconds",
                self.message_time_tolerance_seconds,
                current.message_time_tolerance_seconds,
                1,
            )?,
            rollback_detection: self.rollback_detection.unwrap_or(current.rollback_detection),
        };
        if next != *current {
            next.version = current.version.saturating_add(1);
        }
        Ok(next)
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            default_policy: Policy::platform_default(),
            allowed_origins: Vec::new(),
            clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
            token_ttl_seconds: DEFAULT_TOKEN_TTL_SECONDS,
            server_config: ServerConfig::default(),
        }
    }
}

impl TenantSettings {
    /// Whether a browser at `origin` may request licenses. Requests without an Origin header (native players,
    /// servers) are not subject to CORS and pass.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(origin) => {
                self.allowed_origins.is_empty() || self.allowed_origins.iter().any(|allowed| allowed == origin)
            }
        }
    }
}

/// A partial update of the settings; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub default_policy: Option<Policy>,
    pub allowed_origins: Option<Vec<String>>,
    pub clock_skew_seconds: Option<u32>,
    pub token_ttl_seconds: Option<u32>,
    /// Server configuration data sent to clients; a change bumps its version.
    #[serde(default)]
    pub server_config: Option<ServerConfigPatch>,
}

impl SettingsPatch {
    pub fn apply(self, current: &TenantSettings) -> Result<TenantSettings> {
        let mut next = current.clone();
        if let Some(policy) = self.default_policy {
            policy
                .validate()
                .map_err(|e| ClavisError { field: e.field.map(|f| format!("default_{f}").into()), ..e })?;
            next.default_policy = policy;
        }
        if let Some(origins) = self.allowed_origins {
            next.allowed_origins = origins.iter().map(|o| normalize_origin(o)).collect::<Result<_>>()?;
        }
        if let Some(skew) = self.clock_skew_seconds {
            if skew > MAX_CLOCK_SKEW_SECONDS {
                return Err(ClavisError::invalid(
                    "clock_skew_seconds",
                    format!("must be at most {MAX_CLOCK_SKEW_SECONDS}"),
                ));
            }
            next.clock_skew_seconds = skew;
        }
        if let Some(ttl) = self.token_ttl_seconds {
            if ttl == 0 || ttl > MAX_TOKEN_TTL_SECONDS {
                return Err(ClavisError::invalid("token_ttl_seconds", format!("must be 1 to {MAX_TOKEN_TTL_SECONDS}")));
            }
            next.token_ttl_seconds = ttl;
        }
        if let Some(config) = &self.server_config {
            next.server_config = config.apply(&current.server_config)?;
        }
        Ok(next)
    }
}

/// An origin as browsers send it: `scheme://host[:port]` (a trailing slash is dropped; a path is refused).
fn normalize_origin(origin: &str) -> Result<String> {
    let invalid = || {
        ClavisError::invalid("allowed_origins", format!("{origin:?} is not an origin like https://player.example.com"))
    };
    let url = url::Url::parse(origin).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.path() != "/"
        || url.query().is_some()
    {
        return Err(invalid());
    }
    Ok(url.origin().ascii_serialization())
}

/// An account email: trimmed, lower-cased, one `@` with text on both sides, at most 254 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Email> {
        let normalized = s.trim().to_lowercase();
        let valid = normalized.len() <= 254
            && !normalized.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(normalized.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'));
        if !valid {
            return Err(ClavisError::invalid("email", "must be an email address like ops@example.com"));
        }
        Ok(Email(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a member of a tenant may do. Ordered from least to most powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Developer,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "developer" => Some(Role::Developer),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Ops@Example.COM ").unwrap().as_str(), "ops@example.com");
        for bad in ["", "a", "a@b", "@b.c", "a b@c.d", "a@b.c@d.e", "a@.com", "a@com."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_are_normalized_and_checked() {
        let patch =
            SettingsPatch { allowed_origins: Some(vec!["https://Player.Example.com".into()]), ..Default::default() };
        let next = patch.apply(&TenantSettings::default()).unwrap();
        assert_eq!(next.allowed_origins, vec!["https://player.example.com".to_owned()]);
        assert!(next.origin_allowed(Some("https://player.example.com")));
        assert!(!next.origin_allowed(Some("https://evil.example.com")));
        assert!(next.origin_allowed(None));
        for bad in ["player.example.com", "https://x.com/path", "ftp://x.com", "https://x.com?q=1"] {
            let patch = SettingsPatch { allowed_origins: Some(vec![bad.into()]), ..Default::default() };
            assert!(patch.apply(&TenantSettings::default()).is_err(), "{bad}");
        }
        assert!(TenantSettings::default().origin_allowed(Some("https://anything.example")));
    }
}
