//! The `syncline` binary: parses the command line and calls into the library crates.

mod config;
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
    /// Print every setting with its default and meaning, as a Markdown table.
    Settings,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
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

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    // One crypto provider for every rustls user in the tree (sqlx, reqwest, lettre).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command.unwrap_or(Command::Serve { role: Role::All }) {
        Command::Serve { role } => {
            telemetry::init(&config)?;
            serve::serve(config, role).await
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
