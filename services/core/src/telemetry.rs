//! Logs, request spans and Prometheus metrics.

use std::sync::OnceLock;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

/// Install the global log subscriber (once per process; later calls are ignored so tests can start many servers).
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_span_events(FmtSpan::NONE).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics() -> Option<&'static PrometheusHandle> {
    METRICS
        .get_or_init(|| {
            let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            PrometheusBuilder::new().set_buckets(&buckets).ok().and_then(|builder| builder.install_recorder().ok())
        })
        .as_ref()
}

/// The root span of every request: tracing-actix-web's fields plus the tenant, filled in once a handler knows it.
pub struct ClavisRootSpan;

impl RootSpanBuilder for ClavisRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(request, tenant_id = tracing::field::Empty)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Metric handles by label set, registered once: building a labelled metric key per request costs microseconds on
/// the hot path, looking a handle up costs a read lock and a hash.
pub struct Handles<K, H> {
    map: std::sync::RwLock<std::collections::HashMap<K, H>>,
}

impl<K: Eq + std::hash::Hash, H: Clone> Handles<K, H> {
    pub fn new() -> Self {
        Handles { map: std::sync::RwLock::new(std::collections::HashMap::new()) }
    }

    /// The handle for `key`, registering it with `make` the first time.
    pub fn get_or(&self, key: K, make: impl FnOnce(&K) -> H) -> H {
        if let Ok(map) = self.map.read()
            && let Some(handle) = map.get(&key)
        {
            return handle.clone();
        }
        let handle = make(&key);
        if let Ok(mut map) = self.map.write() {
            map.entry(key).or_insert_with(|| handle.clone());
        }
        handle
    }
}

impl<K: Eq + std::hash::Hash, H: Clone> Default for Handles<K, H> {
    fn default() -> Self {
        Self::new()
    }
}
