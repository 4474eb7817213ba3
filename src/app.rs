//! The HTTP application: the chosen services mounted on one server.

use std::net::TcpListener;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use clavis_core::Platform;
use clavis_core::config::Config;
use clavis_core::telemetry::{ClavisRootSpan, Handles};
use clavis_keys::KeyStore;
use clavis_licenses::{LicenseLog, LicenseService};
use clavis_tenant::{Directory, SecretVault};
use clavis_tokens::{Issuers, TokenService};
use tracing_actix_web::TracingLogger;

use crate::startup::{self, Migrations};

/// Which services an instance serves (`clavis serve --services tenant,keys,tokens,licenses,web`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceSet {
    pub tenant: bool,
    pub keys: bool,
    pub tokens: bool,
    pub licenses: bool,
    pub web: bool,
}

impl ServiceSet {
    pub const ALL: ServiceSet = ServiceSet { tenant: true, keys: true, tokens: true, licenses: true, web: true };
    pub const NONE: ServiceSet = ServiceSet { tenant: false, keys: false, tokens: false, licenses: false, web: false };
}

impl FromStr for ServiceSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = ServiceSet::NONE;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "tenant" => set.tenant = true,
                "keys" => set.keys = true,
                "tokens" => set.tokens = true,
                "licenses" => set.licenses = true,
                "web" => set.web = true,
                "all" => set = ServiceSet::ALL,
                other => {
                    return Err(format!("unknown service {other:?}; choose from tenant, keys, tokens, licenses, web"));
                }
            }
        }
        if set == ServiceSet::NONE {
            return Err("name at least one service".into());
        }
        Ok(set)
    }
}

/// A running (not yet awaited) server and what tests need to reach it.
pub struct Application {
    port: u16,
    server: Server,
    platform: Platform,
    directory: Arc<Directory>,
    keys: Arc<KeyStore>,
    tokens: Arc<TokenService>,
    licenses: web::Data<LicenseService>,
}

impl Application {
    /// Open the platform and bind the listener (port 0 picks a free port). Migrations follow
    /// [`Migrations::for_serving`]: the embedded default migrates itself, a shared database must be migrated first.
    pub async fn build(config: Config, services: ServiceSet) -> anyhow::Result<Application> {
        // Install the metrics recorder before anything records.
        clavis_core::telemetry::metrics();
        // Make the master key and migrate before binding: a client that can connect must find both in place (a CLI
        // command or a test that waits for the port would otherwise race them on the embedded default).
        startup::master_key(&config)?;
        let policy = Migrations::for_serving(&config);
        if policy == Migrations::Apply {
            let db = startup::connect(&config).await?;
            startup::migrate(&db).await?;
            db.close().await.ok();
        }
        let listener =
            TcpListener::bind(config.listen_addr()?).with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let public_url = config.public_base_url(Some(addr));
        let workers = config.workers;
        let platform = startup::open(config, policy, public_url).await?;

        let directory = Arc::new(Directory::new(platform.clone()));
        let vault = Arc::new(SecretVault::new(platform.clone()));
        let keys = Arc::new(KeyStore::new(platform.clone(), vault.clone()));
        let issuers = Arc::new(Issuers::new(platform.db.clone()));
        let tokens = Arc::new(TokenService::new(platform.clone(), directory.clone(), vault.clone(), issuers.clone()));
        if services.licenses {
            tokens.replay().spawn_sweeper();
        }
        let licenses = web::Data::new(
            LicenseService::new(
                tokens.clone(),
                keys.clone(),
                LicenseLog::start(platform.db.clone()),
                vault.clone(),
                directory.clone(),
                platform.db.clone(),
                platform.config.callback_allow_private_networks,
            )
            .map_err(|e| anyhow::anyhow!("license service: {}", e.detail))?,
        );
        if services.licenses {
            licenses.rules().spawn_sweeper();
        }

        let devices = web::Data::new(clavis_licenses::DeviceService::new(
            platform.db.clone(),
            vault.clone(),
            keys.clone(),
            directory.clone(),
        ));

        let console = web::Data::new(
            clavis_web::Console::new(&platform, directory.clone()).map_err(|e| anyhow::anyhow!("console: {e}"))?,
        );
        let staff_console = web::Data::new(clavis_web::StaffConsole::new(&platform));
        let platform_data = web::Data::new(platform.clone());
        let (directory_handle, keys_handle, tokens_handle) = (directory.clone(), keys.clone(), tokens.clone());
        let directory = web::Data::from(directory);
        let vault = web::Data::from(vault);
        let issuers = web::Data::from(issuers);
        let keys = web::Data::from(keys);
        let tokens = web::Data::from(tokens);
        let licenses_data = licenses.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(request_id_header))
                .wrap(from_fn(http_metrics))
                .wrap(TracingLogger::<ClavisRootSpan>::new())
                .configure(clavis_core::http::configure_extractors)
                .app_data(platform_data.clone())
                .app_data(directory.clone())
                .app_data(vault.clone())
                .app_data(issuers.clone())
                .app_data(keys.clone())
                .app_data(tokens.clone())
                .app_data(licenses_data.clone())
                .app_data(devices.clone())
                .app_data(console.clone())
                .app_data(staff_console.clone())
                // The license routes come first: the router tries patterns in order, and they are the hot path.
                .configure(|cfg| {
                    if services.licenses {
                        clavis_licenses::configure(cfg);
                    }
                })
                .configure(crate::platform_routes::configure)
                .configure(|cfg| {
                    if services.tenant {
                        clavis_tenant::configure(cfg);
                    }
                    if services.keys {
                        clavis_keys::configure(cfg);
                    }
                    if services.tokens {
                        clavis_tokens::configure(cfg);
                        clavis_licenses::configure_inspector(cfg);
                    }
                    if services.web {
                        clavis_web::configure(cfg);
                    }
                })
                .configure(crate::platform_routes::configure_docs)
                .default_service(web::to(clavis_core::http::route_not_found))
        });
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Application {
            port: addr.port(),
            server,
            platform,
            directory: directory_handle,
            keys: keys_handle,
            tokens: tokens_handle,
            licenses,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The tenant directory this server answers from (changes through it apply to the server at once).
    pub fn directory(&self) -> Arc<Directory> {
        self.directory.clone()
    }

    pub fn keys(&self) -> Arc<KeyStore> {
        self.keys.clone()
    }

    pub fn tokens(&self) -> Arc<TokenService> {
        self.tokens.clone()
    }

    /// The license service (tests flush its log through it).
    pub fn licenses(&self) -> web::Data<LicenseService> {
        self.licenses.clone()
    }

    /// Serve until stopped (SIGINT/SIGTERM or the handle), then write the license log's last batch.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.licenses.log().flush().await;
        result
    }
}

/// Answer every request with the id its logs carry.
async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = clavis_core::http::request_id(req.request());
    let mut response = next.call(req).await?;
    if let Some(id) = id {
        response.headers_mut().insert(clavis_core::http::REQUEST_ID_HEADER, id);
    }
    Ok(response)
}

/// Count requests and their latency per route pattern and status.
async fn http_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    type CounterKey = (Method, String, u16);
    static COUNTERS: LazyLock<Handles<CounterKey, metrics::Counter>> = LazyLock::new(Handles::new);
    static DURATIONS: LazyLock<Handles<(Method, String), metrics::Histogram>> = LazyLock::new(Handles::new);
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let response = next.call(req).await?;
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    DURATIONS
        .get_or((method.clone(), route.clone()), |(method, route)| {
            metrics::histogram!("clavis_http_request_duration_seconds", "method" => method.to_string(), "route" => route.clone())
        })
        .record(elapsed);
    COUNTERS
        .get_or((method, route, status), |(method, route, status)| {
            metrics::counter!(
                "clavis_http_requests_total",
                "method" => method.to_string(),
                "route" => route.clone(),
                "status" => status.to_string()
            )
        })
        .increment(1);
    Ok(response)
}
