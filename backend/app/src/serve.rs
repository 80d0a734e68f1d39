//! `syncline serve`: opens the store and dispatcher, then runs web and/or workers until a
//! shutdown signal.

use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use syncline_runner::{
    AlertOptions, Dispatcher, FlowOptions, InProcessDispatcher, InProcessRateLimiter, RateLimiter,
    RedisDispatcher, RedisDispatcherOptions, RedisRateLimiter, RuntimeOptions, WorkerPoolOptions,
    spawn_alerts, spawn_runtime,
};
use syncline_store::{SqliteSettings, Store, StoreOptions};
use syncline_web::auth::throttle::{LoginThrottle, RedisCounter, ThrottlePolicy};
use syncline_web::mail::Mailer;
use syncline_web::{AppState, Application, WebSettings};
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
    Ok(store.with_keyring(crate::keys::load(config)?))
}

/// The session secret: configured, or generated once into the data directory (0600).
fn session_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    if let Some(secret) = &config.session_secret {
        let bytes = STANDARD
            .decode(secret.expose_secret().trim())
            .context("SYNCLINE_SESSION_SECRET is not base64")?;
        anyhow::ensure!(
            bytes.len() >= 32,
            "SYNCLINE_SESSION_SECRET must decode to at least 32 bytes"
        );
        return Ok(bytes);
    }
    let path = config.data_dir.join("session.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let bytes = STANDARD
            .decode(text.trim())
            .with_context(|| format!("{} is not base64", path.display()))?;
        anyhow::ensure!(
            bytes.len() >= 32,
            "{} holds fewer than 32 bytes",
            path.display()
        );
        return Ok(bytes);
    }
    let mut bytes = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    write_private(&path, STANDARD.encode(&bytes).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the session secret");
    Ok(bytes)
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Everything the web layer needs, built from configuration.
pub fn build_state(
    config: &Config,
    store: Store,
    dispatcher: Arc<dyn Dispatcher>,
    sandbox: Option<Arc<dyn syncline_web::sandbox::Sandbox>>,
) -> anyhow::Result<AppState> {
    let mailer = Mailer::new(
        config.smtp_url.as_ref().map(|u| u.expose_secret()),
        &config.mail_from,
    )?;
    if !mailer.delivers() {
        tracing::warn!(
            "SYNCLINE_SMTP_URL is not set: invitation and reset emails are written to this log instead of sent"
        );
    }
    let throttle = match &config.redis_url {
        Some(url) => LoginThrottle::new(
            Box::new(RedisCounter::new(url.expose_secret()).map_err(anyhow::Error::msg)?),
            ThrottlePolicy::default(),
        ),
        None => LoginThrottle::in_memory(),
    };
    let shopify_app = match (&config.shopify_app_key, &config.shopify_app_secret) {
        (Some(key), Some(secret)) => Some(syncline_web::ShopifyApp {
            client_id: key.clone(),
            client_secret: secret.clone(),
            oauth_base: None,
        }),
        _ => None,
    };
    let settings = WebSettings {
        public_url: config.public_url.clone(),
        session_secret: session_secret(config)?,
        mailer,
        throttle,
        shopify_app,
        sandbox,
    };
    Ok(AppState::new(store, dispatcher, settings))
}

/// Opens the store and dispatcher and builds the web state, for CLI commands.
pub async fn open_state(config: &Config) -> anyhow::Result<AppState> {
    let store = open_store(config).await?;
    let dispatcher = open_dispatcher(config)?;
    build_state(config, store, dispatcher, None)
}

/// The rate limiter shared by this process's workers (and, with Redis, by every process).
pub fn open_limiter(config: &Config, flows: &FlowOptions) -> anyhow::Result<Arc<dyn RateLimiter>> {
    Ok(match &config.redis_url {
        Some(url) => Arc::new(RedisRateLimiter::new(
            url.expose_secret(),
            "syncline:limits",
            flows.d365_limit,
        )?),
        None => Arc::new(InProcessRateLimiter::new(flows.d365_limit)?),
    })
}

/// Starts the workers and the sweeper of this process.
pub fn start_workers(
    config: &Config,
    role: Role,
    store: Store,
    dispatcher: Arc<dyn Dispatcher>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let options = RuntimeOptions {
        workers: WorkerPoolOptions {
            concurrency: config.workers,
            ..WorkerPoolOptions::default()
        },
        // A worker-only process has lowered its own priority already; in one that also serves
        // HTTP only the workers' threads are lowered, so webhooks are acknowledged first.
        nice: if role == Role::All {
            config.worker_nice
        } else {
            0
        },
        ..RuntimeOptions::default()
    };
    let limiter = open_limiter(config, &options.flows)?;
    // Alerts are evaluated by every worker process; the store makes sure only one of them
    // opens, notifies or resolves a given incident.
    let mailer = Mailer::new(
        config.smtp_url.as_ref().map(|u| u.expose_secret()),
        &config.mail_from,
    )?;
    let alert_options = AlertOptions {
        interval: std::time::Duration::from_secs(config.alert_interval_secs),
        public_url: config.public_url.as_str().trim_end_matches('/').to_owned(),
        webhook_check_interval: std::time::Duration::from_secs(config.webhook_check_interval_secs),
        ..AlertOptions::default()
    };
    let (_, alerts) = spawn_alerts(
        store.clone(),
        Arc::new(mailer),
        alert_options,
        shutdown.clone(),
    )?;
    let runtime = spawn_runtime(store, dispatcher, limiter, options, shutdown)?;
    Ok(tokio::spawn(async move {
        if let Err(error) = runtime.await {
            tracing::error!(%error, "worker runtime ended abnormally");
        }
        if let Err(error) = alerts.await {
            tracing::error!(%error, "alert evaluator ended abnormally");
        }
    }))
}

/// Redis Streams with `REDIS_URL`, else the in-process dispatcher.
pub fn open_dispatcher(config: &Config) -> anyhow::Result<Arc<dyn Dispatcher>> {
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

/// Called once the server listens (before it answers), with its state and the sandbox
/// emulators when they run; `syncline demo` sets up its tenant there.
pub type ReadyHook = Box<
    dyn FnOnce(
            AppState,
            Option<Arc<syncline_web::sandbox::BuiltInSandbox>>,
        ) -> futures::future::BoxFuture<'static, anyhow::Result<()>>
        + Send,
>;

/// Runs until SIGTERM or Ctrl-C, then stops accepting, finishes in-flight work and returns.
pub async fn serve(config: Config, role: Role) -> anyhow::Result<()> {
    serve_with(config, role, None).await
}

/// [`serve`] with a hook run when the server is ready.
pub async fn serve_with(
    config: Config,
    role: Role,
    on_ready: Option<ReadyHook>,
) -> anyhow::Result<()> {
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
        Some(start_workers(
            &config,
            role,
            store.clone(),
            Arc::clone(&dispatcher),
            shutdown.clone(),
        )?)
    } else {
        None
    };

    let web_result = if role != Role::Worker {
        let sandbox = if config.sandbox {
            Some(Arc::new(
                syncline_web::sandbox::BuiltInSandbox::start().await?,
            ))
        } else {
            None
        };
        crate::keys::spawn_reload(&config, store.clone());
        let state = build_state(
            &config,
            store.clone(),
            Arc::clone(&dispatcher),
            sandbox
                .clone()
                .map(|s| s as Arc<dyn syncline_web::sandbox::Sandbox>),
        )?;
        let app = Application::build(config.listen, state.clone())
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        tracing::info!(address = %config.listen, public_url = %config.public_url, "console at {}console", config.public_url);
        if let Some(hook) = on_ready
            && let Err(error) = hook(state, sandbox).await
        {
            shutdown.cancel();
            if let Some(workers) = workers {
                let _ = workers.await;
            }
            return Err(error);
        }
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

/// Resolves on SIGTERM or Ctrl-C.
pub async fn wait_for_shutdown_signal() {
    let token = CancellationToken::new();
    signal_shutdown(token.clone()).await;
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
