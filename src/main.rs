//! `clavis`: serve the platform, migrate its database, create tenants and staff, print the OpenAPI document.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use clavis::ServiceSet;
use clavis::startup::{self, Migrations};
use clavis_core::config::Config;
use clavis_tenant::{Directory, Email, NewTenant};
use secrecy::SecretString;

#[derive(Parser)]
#[command(name = "clavis", version, about = "Self-hostable multi-tenant DRM license platform")]
struct Cli {
    /// A TOML configuration file (version = 1). CLAVIS_* environment variables override it.
    #[arg(long, global = true, env = "CLAVIS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the services and the web console.
    Serve {
        /// Comma-separated subset: tenant, keys, tokens, licenses, web.
        #[arg(long, default_value = "tenant,keys,tokens,licenses,web")]
        services: ServiceSet,
    },
    /// Apply database migrations (the only migrator in a multi-instance deployment).
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage platform support accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Rotate the master key: re-wrap every stored secret under CLAVIS_MASTER_KEY (see docs/operations.md).
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
    /// Device license bundles (see docs/offline.md).
    Bundles {
        #[command(subcommand)]
        command: BundlesCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Print the error-code reference (Markdown).
    Errors,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant with an owner account; prints JSON with the API key (shown only here).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// Read the owner's password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum BundlesCommand {
    /// Write a device's current bundles as static files, at the paths Clavis serves them under
    /// (OUT/license/devices/{site_id}/{device_id}/bundles/{content_id}); prints the paths as JSON.
    Export {
        /// The tenant's site id.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        device: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Create a platform support account.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Re-wrap every secret sealed under a key of CLAVIS_MASTER_KEY_PREVIOUS so that CLAVIS_MASTER_KEY alone opens it.
    /// One transaction per batch; safe to interrupt and run again. Prints one JSON line per committed batch.
    Rotate {
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: u64,
        /// Pause between batches (milliseconds), to spread the load on a live database.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
    /// Count the stored secrets per master key id (rotation is done when only the current id remains).
    Status,
}

/// Every column that holds sealed secrets. A crate that adds one must add it here, or rotation would miss it.
fn sealed_columns() -> [clavis_core::rekey::SealedColumn; 3] {
    [clavis_tenant::secrets::SEALED, clavis_keys::SEALED, clavis_tokens::signing::SEALED]
}

fn read_password_stdin() -> anyhow::Result<SecretString> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("reading the password from standard input")?;
    let password = input.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(SecretString::from(password))
}

#[tokio::main]
async fn main() {
    // One TLS provider for the whole process (outgoing SMTP today): ring, the only one compiled in. Installing it
    // explicitly keeps a dependency that enables another provider from making rustls refuse to choose at first use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(err) = run().await {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            print!("{}", clavis::openapi::pretty_json());
            return Ok(());
        }
        Command::Errors => {
            print!("{}", clavis_web::errors_markdown());
            return Ok(());
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    clavis_core::telemetry::init_logging(config.log_format, &config.log_level);

    match cli.command {
        Command::Serve { services } => {
            let app = clavis::Application::build(config, services).await?;
            let url = app.platform().public_url.clone();
            tracing::info!(%url, "Clavis is serving");
            println!("Clavis is running: open {url}/ (API reference at {url}/api-docs/)");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let db = startup::connect(&config).await?;
            startup::migrate(&db).await?;
            println!("migrations applied");
        }
        Command::Tenant { command: TenantCommand::Create { name, email, password_stdin } } => {
            let password = if password_stdin { Some(read_password_stdin()?) } else { None };
            let email = Email::parse(&email).map_err(cli_error)?;
            let platform = open_for_cli(config).await?;
            let created =
                Directory::new(platform).create_tenant(NewTenant { name, email, password }).await.map_err(cli_error)?;
            println!("{}", serde_json::to_string(&created)?);
        }
        Command::Bundles { command: BundlesCommand::Export { tenant, device, out } } => {
            let platform = open_for_cli(config).await?;
            let site_id = clavis_core::ids::SiteId::parse(&tenant).map_err(cli_error)?;
            let directory = Directory::new(platform.clone());
            let tenant =
                directory.by_site_id(site_id).await.map_err(cli_error)?.context("no tenant has this site id")?;
            let bundles =
                clavis_licenses::devices::export_bundles(&platform.db, &tenant, &device).await.map_err(cli_error)?;
            let mut written = Vec::with_capacity(bundles.len());
            for (relative, jwe) in bundles {
                let path = out.join(&relative);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&path, jwe).with_context(|| format!("writing {}", path.display()))?;
                written.push(relative);
            }
            println!("{}", serde_json::json!({ "written": written }));
        }
        Command::Staff { command: StaffCommand::Create { email, password_stdin } } => {
            if !password_stdin {
                bail!("pass the password on standard input with --password-stdin");
            }
            let password = read_password_stdin()?;
            let email = Email::parse(&email).map_err(cli_error)?;
            let platform = open_for_cli(config).await?;
            let id = Directory::new(platform).create_staff(email, password).await.map_err(cli_error)?;
            println!("{}", serde_json::json!({ "staff_id": id }));
        }
        Command::MasterKey { command } => {
            let platform = open_for_cli(config).await?;
            let current = platform.master_key.id_hex();
            match command {
                MasterKeyCommand::Rotate { batch_size, pause_ms } => {
                    let reports = clavis_core::rekey::rotate(
                        &platform.db,
                        &platform.master_key,
                        &sealed_columns(),
                        batch_size,
                        std::time::Duration::from_millis(pause_ms),
                        |progress| println!("{}", serde_json::json!({ "progress": progress })),
                    )
                    .await
                    .map_err(cli_error)?;
                    println!("{}", serde_json::json!({ "rotated_to": current, "tables": reports }));
                }
                MasterKeyCommand::Status => {
                    let status =
                        clavis_core::rekey::status(&platform.db, &sealed_columns()).await.map_err(cli_error)?;
                    println!("{}", serde_json::json!({ "current": current, "tables": status }));
                }
            }
        }
        Command::Openapi | Command::Errors => {}
    }
    Ok(())
}

/// A catalog error as one line for the terminal, naming the field at fault.
fn cli_error(err: clavis_core::ClavisError) -> anyhow::Error {
    match &err.field {
        Some(field) => anyhow::anyhow!("{field}: {}", err.detail),
        None => anyhow::anyhow!("{}", err.detail),
    }
}

/// Administrative commands open the platform like `serve` does (migrating only the embedded default).
async fn open_for_cli(config: Config) -> anyhow::Result<clavis_core::Platform> {
    let policy = Migrations::for_serving(&config);
    let public_url = config.public_base_url(None);
    startup::open(config, policy, public_url).await
}
