//! The `syncline` binary: parses the command line and calls into the library crates.

mod config;
mod demo;
mod keys;
mod serve;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;

/// Syncline: Shopify ⇄ Dynamics 365 Finance & Operations integration.
#[derive(Debug, Parser)]
#[command(name = "syncline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: web, workers and scheduler (the default when no command is given).
    Serve {
        /// Which parts this process runs.
        #[arg(long, value_enum, default_value_t = Role::All)]
        role: Role,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Administration tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Try it: the embedded default with the emulators and a demo tenant whose sandbox pair
    /// receives a stream of generated orders. Prints the console URL and the demo login.
    Demo {
        /// Generated Shopify orders per second (0: none; generate them through the emulator).
        #[arg(long, default_value_t = 1.0)]
        orders_per_second: f64,
    },
    /// Run the Shopify and D365 emulators standalone; prints how to reach them as one JSON line.
    Sim {
        /// Address of the Shopify Admin API emulator.
        #[arg(long, default_value = "127.0.0.1:8081")]
        shopify_listen: std::net::SocketAddr,
        /// Address of the D365 F&O emulator (and its Entra token endpoint).
        #[arg(long, default_value = "127.0.0.1:8082")]
        d365_listen: std::net::SocketAddr,
        /// Seed for identities, master data and generated traffic.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Serve D365 over TLS with a self-signed certificate.
        #[arg(long)]
        tls: bool,
        /// Where the TLS certificate (PEM) is written.
        #[arg(long, default_value = "data/sim/d365-cert.pem")]
        tls_cert: std::path::PathBuf,
    },
}

/// The parts of the server a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// HTTP only: console, API, webhook intake.
    Web,
    /// Job workers only.
    Worker,
    /// Everything in one process.
    All,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Print the effective configuration, secrets masked.
    Config,
    /// List tenants.
    Tenants,
    /// Generate a new master key and re-wrap every tenant data key under it, without downtime.
    RotateMasterKey {
        /// Seconds to wait for running processes to load the new key before re-wrapping
        /// (they re-read the key file every 10 s); 0 when nothing else is running.
        #[arg(long, default_value_t = 12)]
        wait: u64,
    },
    /// Print every setting with its default and meaning, as a Markdown table.
    Settings,
    /// Create the first platform administrator and print a one-time password (runs once).
    Bootstrap {
        /// The administrator's email.
        #[arg(long)]
        email: String,
    },
    /// Create a tenant and invite its owner by email, as the console does.
    CreateTenant {
        /// Company name.
        #[arg(long)]
        name: String,
        /// URL handle (derived from the name when omitted).
        #[arg(long)]
        slug: Option<String>,
        /// Who becomes owner.
        #[arg(long)]
        owner_email: String,
    },
}

// glibc's allocator spends more time than the mapping engine itself on an
// order's many small strings; mimalloc roughly halves JSON parsing time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Serve { role: Role::Worker }) = &cli.command {
        // Before the runtime starts its threads, which inherit it: a worker-only process then
        // yields the CPU to the webhook intake and the console on a shared machine.
        if config.worker_nice > 0
            && let Err(error) = syncline_runner::lower_priority(config.worker_nice)
        {
            eprintln!("warning: could not lower the worker's CPU priority: {error}");
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, the whole cause chain: what a person at a terminal needs.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A web-layer error as one line for the terminal, field errors spelled out.
fn describe(error: &syncline_web::AppError) -> String {
    match error {
        syncline_web::AppError::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.public_message(),
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    // One crypto provider for every rustls user in the tree (sqlx, reqwest, lettre).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command.unwrap_or(Command::Serve { role: Role::All }) {
        Command::Serve { role } => {
            telemetry::init(&config)?;
            serve::serve(config, role).await
        }
        Command::Demo { orders_per_second } => {
            telemetry::init(&config)?;
            demo::demo(config, orders_per_second).await
        }
        Command::Sim {
            shopify_listen,
            d365_listen,
            seed,
            tls,
            tls_cert,
        } => {
            telemetry::init(&config)?;
            let options = syncline_sim::SimOptions {
                shopify_listen,
                d365_listen,
                seed,
                d365_tls_cert: tls.then_some(tls_cert),
            };
            let emulators = syncline_sim::start(options).await?;
            // The first line on standard output is the contract with scripts and tests.
            println!("{}", emulators.info());
            serve::wait_for_shutdown_signal().await;
            emulators.shutdown().await;
            Ok(())
        }
        Command::Migrate => {
            telemetry::init(&config)?;
            let store = serve::open_store(&config).await?;
            store.close().await;
            tracing::info!("migrations are up to date");
            Ok(())
        }
        Command::Admin(AdminCommand::Config) => {
            println!("{}", serde_json::to_string_pretty(&config.redacted())?);
            Ok(())
        }
        Command::Admin(AdminCommand::Settings) => {
            print!("{}", config::settings_table());
            Ok(())
        }
        Command::Admin(AdminCommand::Bootstrap { email }) => {
            let store = serve::open_store(&config).await?;
            let (password, generated) = match std::env::var("SYNCLINE_BOOTSTRAP_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
            {
                Some(password) => (password, false),
                None => (
                    syncline_web::auth::secret::random_token()
                        .chars()
                        .take(24)
                        .collect::<String>(),
                    true,
                ),
            };
            let result = syncline_web::accounts::bootstrap_admin(&store, &email, &password).await;
            store.close().await;
            let user = result.map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
            println!("Platform admin created: {}", user.email);
            if generated {
                println!("One-time password: {password}");
                println!(
                    "Sign in at {}login and change it under Your account.",
                    config.public_url
                );
            }
            Ok(())
        }
        Command::Admin(AdminCommand::CreateTenant {
            name,
            slug,
            owner_email,
        }) => {
            telemetry::init(&config)?;
            let state = serve::open_state(&config).await?;
            let result = syncline_web::accounts::create_tenant_with_owner(
                &state,
                "cli",
                &name,
                slug.as_deref(),
                &owner_email,
            )
            .await;
            state.store.close().await;
            let (tenant, invitation) = result.map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
            println!(
                "Tenant created: {} ({}, id {})",
                tenant.name, tenant.slug, tenant.id
            );
            match invitation.link_if_not_emailed {
                None => println!("Invitation emailed to {owner_email}."),
                Some(link) => println!(
                    "Email is not configured; send this one-time invitation link to {owner_email}:\n{link}"
                ),
            }
            Ok(())
        }
        Command::Admin(AdminCommand::RotateMasterKey { wait }) => {
            telemetry::init(&config)?;
            let store = serve::open_store(&config).await?;
            let result = keys::rotate(&config, &store, std::time::Duration::from_secs(wait)).await;
            store.close().await;
            result
        }
        Command::Admin(AdminCommand::Tenants) => {
            let store = serve::open_store(&config).await?;
            for tenant in store.list_tenants().await? {
                println!(
                    "{}\t{}\t{:?}\t{}",
                    tenant.id, tenant.slug, tenant.status, tenant.name
                );
            }
            store.close().await;
            Ok(())
        }
    }
}
