//! `syncline serve`: opens the store and dispatcher, then runs web and/or workers until a
//! shutdown signal.

use std::sync::Arc;

use anyhow::Context;
use futures::FutureExt;
use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use syncline_runner::{
    Dispatcher, HandlerError, InProcessDispatcher, Job, JobHandler, RedisDispatcher,
    RedisDispatcherOptions, WorkerPool, WorkerPoolOptions,
};
use syncline_store::{SqliteSettings, Store, StoreOptions};
use syncline_web::{AppState, Application};
use tokio_util::sync::CancellationToken;

use crate::Role;
use crate::config::Config;

/// Connects to the configured database and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let options = match &config.database_url {
        Some(url) => StoreOptions::Postgres {
            url: url.expose_secret().to_owned(),
            max_connections: 20,
        },
        None => StoreOptions::Sqlite(SqliteSettings {
            path: config.sqlite_path(),
        }),
    };
    let store = Store::connect(&options).await?;
    store.migrate().await?;
    Ok(store)
}

fn open_dispatcher(config: &Config) -> anyhow::Result<Arc<dyn Dispatcher>> {
    match &config.redis_url {
        Some(url) => Ok(Arc::new(RedisDispatcher::new(
            RedisDispatcherOptions::new(url.expose_secret()),
        )?)),
        None => {
            if config.database_url.is_some() {
                tracing::warn!(
                    "DATABASE_URL without REDIS_URL: jobs stay inside this process; set REDIS_URL to run separate workers"
                );
            }
            Ok(Arc::new(InProcessDispatcher::new()))
        }
    }
}

/// Runs until SIGTERM or Ctrl-C, then stops accepting, finishes in-flight work and returns.
pub async fn serve(config: Config, role: Role) -> anyhow::Result<()> {
    tracing::info!(config = %config.redacted(), role = ?role, version = env!("CARGO_PKG_VERSION"), "starting syncline");
    let store = open_store(&config).await?;
    let dispatcher = open_dispatcher(&config)?;
    if role == Role::Worker && dispatcher.name() == "in-process" {
        tracing::warn!(
            "a worker-only process without REDIS_URL receives no jobs from other processes"
        );
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));

    let workers = if role != Role::Web {
        let options = WorkerPoolOptions {
            concurrency: config.workers,
            ..WorkerPoolOptions::default()
        };
        Some(tokio::spawn(WorkerPool::run(
            Arc::clone(&dispatcher),
            Arc::new(Handlers),
            options,
            shutdown.clone(),
        )))
    } else {
        None
    };

    let web_result = if role != Role::Worker {
        let app = Application::build(
            config.listen,
            AppState::new(store.clone(), Arc::clone(&dispatcher)),
        )
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
        tracing::info!(address = %config.listen, public_url = %config.public_url, "console at {}console", config.public_url);
        let stop = shutdown.clone();
        app.run_until_stopped(async move { stop.cancelled().await })
            .await
            .context("HTTP server failed")
    } else {
        shutdown.cancelled().await;
        Ok(())
    };
    // If the server failed on its own, stop the workers too.
    shutdown.cancel();

    if let Some(workers) = workers
        && let Err(error) = workers.await
    {
        tracing::error!(%error, "worker pool ended abnormally");
    }
    store.close().await;
    tracing::info!("stopped");
    web_result
}

async fn signal_shutdown(shutdown: CancellationToken) {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
    shutdown.cancel();
}

/// Routes jobs to their handlers by kind. Kinds arrive with the flows; until then any job is
/// an error that is logged and acknowledged, so it cannot loop forever.
struct Handlers;

impl JobHandler for Handlers {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>> {
        async move {
            Err(HandlerError::Permanent(format!(
                "no handler for job kind {:?}",
                job.kind
            )))
        }
        .boxed()
    }
}
