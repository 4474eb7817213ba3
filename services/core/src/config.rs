//! Layered configuration: built-in defaults, then an optional TOML file, then `CLAVIS_*` environment variables.
//!
//! The file format is versioned (`version = 1`) and rejects unknown keys, so a typo fails loudly at start instead of
//! silently using a default. Secrets are `SecretString`s: their `Debug` prints `[REDACTED]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The configuration keys that `CLAVIS_*` environment variables may set (`CLAVIS_LISTEN` sets `listen`, ...).
/// Other `CLAVIS_*` variables (the test suite's, say) are not configuration and are ignored here.
pub const ENV_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "data_dir",
    "master_key",
    "master_key_previous",
    "public_url",
    "smtp_url",
    "smtp_from",
    "log_format",
    "log_level",
    "workers",
    "callback_allow_private_networks",
];

/// The configuration file's current version.
pub const CONFIG_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default for a terminal).
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The configuration format version; only 1 exists.
    pub version: u32,
    /// `host:port` to listen on.
    pub listen: String,
    /// `sqlite://...` or `postgres://...`; unset means the embedded SQLite database under `data_dir`.
    pub database_url: Option<SecretString>,
    /// Where the embedded database, the generated master key and the mail outbox live.
    pub data_dir: PathBuf,
    /// Base64 of 32 bytes; required unless the database is the embedded default.
    pub master_key: Option<SecretString>,
    /// Earlier master keys (comma-separated base64), accepted only to open secrets sealed before a rotation, until
    /// `clavis master-key rotate` has re-wrapped them under `master_key`.
    pub master_key_previous: Option<SecretString>,
    /// The URL players and browsers reach Clavis at (license URLs in PSSH, links in mail).
    pub public_url: Option<String>,
    /// `smtp://user:pass@host:port` or `smtps://...`; unset writes mail to `data_dir/outbox/`.
    pub smtp_url: Option<SecretString>,
    /// The From address of mail Clavis sends.
    pub smtp_from: String,
    pub log_format: LogFormat,
    /// A tracing filter directive such as `info` or `clavis=debug,info`.
    pub log_level: String,
    /// HTTP worker threads; unset means one per CPU core.
    pub workers: Option<usize>,
    /// Let tenants' license callbacks reach loopback, private, link-local, CGNAT and metadata addresses (and plain
    /// http). Off by default: a tenant-chosen URL must not become a way into the operator's own network.
    pub callback_allow_private_networks: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: CONFIG_VERSION,
            listen: "127.0.0.1:8080".into(),
            database_url: None,
            data_dir: PathBuf::from("./data"),
            master_key: None,
            master_key_previous: None,
            public_url: None,
            smtp_url: None,
            smtp_from: "Clavis <no-reply@localhost>".into(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            workers: None,
            callback_allow_private_networks: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration file {path}: {source}")]
    File { path: PathBuf, source: Box<figment::Error> },
}

impl Config {
    /// Defaults, then `file` (when given), then the `CLAVIS_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!("configuration file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("CLAVIS_").only(ENV_KEYS));
        let config: Config = figment.extract().map_err(|source| ConfigError::File {
            path: file.map(Path::to_path_buf).unwrap_or_default(),
            source: Box::new(source),
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version != CONFIG_VERSION {
            return Err(ConfigError::Invalid(format!(
                "version {} is not supported; this build reads version {CONFIG_VERSION}",
                self.version
            )));
        }
        self.listen_addr()?;
        if self.workers == Some(0) || self.workers.is_some_and(|w| w > 1024) {
            return Err(ConfigError::Invalid("workers must be 1 to 1024".into()));
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|e| ConfigError::Invalid(format!("public_url: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid("public_url must be an http(s) URL".into()));
            }
        }
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid("database_url must start with sqlite: or postgres://".into()));
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        use std::net::ToSocketAddrs;
        self.listen
            .to_socket_addrs()
            .map_err(|e| ConfigError::Invalid(format!("listen {:?}: {e}", self.listen)))?
            .next()
            .ok_or_else(|| ConfigError::Invalid(format!("listen {:?} resolves to no address", self.listen)))
    }

    /// True when Clavis runs on its own SQLite file under `data_dir` (no database URL configured).
    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
    }

    /// The database URL to connect to (the embedded default when none is configured).
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("clavis.db").display()),
        }
    }

    /// The base URL that goes into license URLs and mail links.
    pub fn public_base_url(&self, bound: Option<SocketAddr>) -> String {
        match (&self.public_url, bound) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(addr)) => format!("http://{addr}"),
            (None, None) => format!("http://{}", self.listen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn unknown_file_keys_are_rejected() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "version = 1\nlisten = \"127.0.0.1:9000\"\nlistne = \"typo\"").unwrap();
        let err = Config::load(Some(file.path())).unwrap_err().to_string();
        assert!(err.contains("listne"), "{err}");
    }

    #[test]
    fn file_values_apply_and_secrets_do_not_print() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "version = 1\nlisten = \"127.0.0.1:9000\"\nmaster_key = \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=\""
        )
        .unwrap();
        let config = Config::load(Some(file.path())).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000");
        let printed = format!("{config:?}");
        assert!(!printed.contains("c2VjcmV0"), "{printed}");
    }

    #[test]
    fn other_versions_are_refused() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "version = 2").unwrap();
        assert!(Config::load(Some(file.path())).unwrap_err().to_string().contains("version 2"));
    }

    #[test]
    fn embedded_default_lives_in_data_dir() {
        let config = Config::default();
        assert!(config.is_embedded());
        assert_eq!(config.effective_database_url(), "sqlite://./data/clavis.db?mode=rwc");
    }
}
