//! Typed configuration: defaults, then an optional TOML file (`SYNCLINE_CONFIG`), then
//! environment variables. Validated once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;
use url::Url;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The effective configuration of one process.
#[derive(Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Where the embedded default keeps its SQLite file and generated keys.
    pub data_dir: PathBuf,
    /// PostgreSQL URL; `None` selects the embedded SQLite database.
    pub database_url: Option<SecretString>,
    /// Redis URL; `None` selects the in-process dispatcher.
    pub redis_url: Option<SecretString>,
    /// `tracing` filter directives.
    pub log: String,
    /// Text or JSON logs.
    pub log_format: LogFormat,
    /// The URL at which Shopify and browsers reach this installation.
    pub public_url: Url,
    /// Jobs run at once per worker process.
    pub workers: usize,
    /// SMTP server for outgoing email; `None` writes emails to the log.
    pub smtp_url: Option<SecretString>,
    /// Seconds between alert evaluation passes.
    pub alert_interval_secs: u64,
    /// Seconds between two checks of a pair's Shopify webhook subscriptions.
    pub webhook_check_interval_secs: u64,
    /// How much the workers lower their CPU priority (Unix nice, 0 to 19).
    pub worker_nice: i32,
    /// Sender of outgoing email.
    pub mail_from: String,
    /// Secret for session cookies and CSRF tokens (base64, at least 32 bytes); generated into
    /// the data directory when unset.
    pub session_secret: Option<SecretString>,
    /// Master key wrapping every tenant's data key (base64, 32 bytes).
    pub master_key: Option<SecretString>,
    /// File holding the master key; generated (0600) in the data directory when neither is set.
    pub master_key_file: Option<PathBuf>,
    /// Shopify public app client id, for OAuth installs.
    pub shopify_app_key: Option<String>,
    /// Shopify public app client secret.
    pub shopify_app_secret: Option<SecretString>,
    /// Run the built-in emulators for sandbox connections.
    pub sandbox: bool,
}

/// Why the configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file named by `SYNCLINE_CONFIG` could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("invalid configuration file {path}: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's explanation.
        message: String,
    },
    /// A setting has an unusable value.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// The environment variable or file key.
        name: &'static str,
        /// What is wrong, without echoing secrets.
        reason: String,
    },
}

/// The optional file: the same settings as the environment, lower-case without prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    redis_url: Option<String>,
    log: Option<String>,
    log_format: Option<String>,
    public_url: Option<String>,
    workers: Option<usize>,
    alert_interval_secs: Option<u64>,
    webhook_check_interval_secs: Option<u64>,
    worker_nice: Option<i32>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    session_secret: Option<String>,
    master_key: Option<String>,
    master_key_file: Option<PathBuf>,
    shopify_app_key: Option<String>,
    shopify_app_secret: Option<String>,
    sandbox: Option<bool>,
}

/// Every setting with its environment variable, default and meaning; the README's table.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "SYNCLINE_CONFIG",
        "(none)",
        "Optional TOML file with the settings below (lower-case names without the prefix, e.g. `listen`, `database_url`); environment variables override it.",
    ),
    (
        "SYNCLINE_LISTEN",
        "127.0.0.1:8080",
        "Address and port of the HTTP server (console, API, webhooks, health).",
    ),
    (
        "SYNCLINE_DATA_DIR",
        "./data",
        "Directory of the embedded SQLite database and generated key files.",
    ),
    (
        "DATABASE_URL",
        "(none: SQLite in the data directory)",
        "`postgres://user:password@host:port/db` switches to PostgreSQL (cluster mode). TLS follows `sslmode` as libpq does (default `prefer`), except that a server on this machine (loopback address, `localhost`, Unix socket) with no `sslmode` stated is reached without TLS.",
    ),
    (
        "REDIS_URL",
        "(none: in-process dispatcher)",
        "`redis://host:port` switches to the Redis Streams job dispatcher, shared by any number of worker processes.",
    ),
    (
        "SYNCLINE_LOG",
        "info",
        "Log filter, `tracing` syntax (e.g. `info,syncline_web=debug`).",
    ),
    (
        "SYNCLINE_LOG_FORMAT",
        "text",
        "`text` or `json` (one object per line).",
    ),
    (
        "SYNCLINE_PUBLIC_URL",
        "http://<SYNCLINE_LISTEN>",
        "Public base URL: what Shopify calls for webhooks and what links in emails point at.",
    ),
    (
        "SYNCLINE_WORKERS",
        "8",
        "Jobs processed at once by each worker process.",
    ),
    (
        "SYNCLINE_ALERT_INTERVAL",
        "5",
        "Seconds between alert evaluation passes (every worker process evaluates; the database keeps incidents and notifications unique).",
    ),
    (
        "SYNCLINE_WEBHOOK_CHECK_INTERVAL",
        "600",
        "Seconds between two checks of each active pair's Shopify webhook subscriptions (missing ones are re-registered and raise the \"webhook subscription missing\" alert; one process checks a pair at a time).",
    ),
    (
        "SYNCLINE_WORKER_NICE",
        "10",
        "How much the workers lower their CPU priority (Unix nice, 0 to 19), so that webhooks are acknowledged and the console answers first when the machine is busy: a worker-only process (`serve --role worker`) lowers itself, a process that also serves HTTP only its worker threads (Linux). 0 keeps the normal priority.",
    ),
    (
        "SYNCLINE_SMTP_URL",
        "(none: emails are written to the log)",
        "SMTP server for invitations, password resets and alerts: `smtp://host:25`, `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtps://host:465`.",
    ),
    (
        "SYNCLINE_MAIL_FROM",
        "Syncline <syncline@localhost>",
        "Sender address of outgoing email.",
    ),
    (
        "SYNCLINE_SESSION_SECRET",
        "(generated: `<data dir>/session.key`)",
        "Base64 secret (32+ bytes) signing console sessions and CSRF tokens. Set the same value on every web process of a cluster.",
    ),
    (
        "SYNCLINE_MASTER_KEY",
        "(none)",
        "Base64 master key (32 bytes) that wraps every tenant's data key. Keep it out of the database's backups.",
    ),
    (
        "SYNCLINE_MASTER_KEY_FILE",
        "(generated: `<data dir>/master.key`, 0600)",
        "File holding the master key. The embedded default generates it on first start: back it up, secrets are unreadable without it.",
    ),
    (
        "SYNCLINE_SHOPIFY_APP_KEY",
        "(none: OAuth install disabled)",
        "Client id of the Syncline public app, for `/oauth/shopify/install`.",
    ),
    (
        "SYNCLINE_SHOPIFY_APP_SECRET",
        "(none)",
        "Client secret of the public app: verifies OAuth callbacks and the webhooks of OAuth-installed shops.",
    ),
    (
        "SYNCLINE_SANDBOX",
        "on",
        "`on` runs the built-in Shopify and D365 emulators so tenants can create sandbox connections; `off` disables them.",
    ),
    (
        "SYNCLINE_BOOTSTRAP_PASSWORD",
        "(none: generated and printed)",
        "Password given to the first platform admin by `syncline admin bootstrap`.",
    ),
];

/// The settings as the Markdown table the README carries.
pub fn settings_table() -> String {
    let mut table = String::from("| Variable | Default | Meaning |\n|---|---|---|\n");
    for (name, default, meaning) in SETTINGS {
        table.push_str(&format!("| `{name}` | {default} | {meaning} |\n"));
    }
    table
}

impl Config {
    /// Loads from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::load(|name| std::env::var(name).ok())
    }

    /// Loads with `lookup` standing in for the environment (tests pass a map).
    pub fn load(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let file = match env("SYNCLINE_CONFIG") {
            Some(path) => read_file(Path::new(&path))?,
            None => FileConfig::default(),
        };

        let listen_text = env("SYNCLINE_LISTEN")
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
            name: "SYNCLINE_LISTEN",
            reason: format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
        })?;

        let data_dir = env("SYNCLINE_DATA_DIR")
            .map(PathBuf::from)
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));

        let database_url = env("DATABASE_URL").or(file.database_url);
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                reason:
                    "must start with postgres:// (leave it unset for the embedded SQLite database)"
                        .into(),
            });
        }
        let redis_url = env("REDIS_URL").or(file.redis_url);
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(ConfigError::Invalid {
                name: "REDIS_URL",
                reason: "must start with redis:// or rediss://".into(),
            });
        }

        let log = env("SYNCLINE_LOG")
            .or(file.log)
            .unwrap_or_else(|| "info".to_owned());
        let log_format = match env("SYNCLINE_LOG_FORMAT").or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "SYNCLINE_LOG_FORMAT",
                    reason: format!("{other:?} is neither text nor json"),
                });
            }
        };

        let public_text = env("SYNCLINE_PUBLIC_URL")
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"));
        let public_url = Url::parse(&public_text)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| ConfigError::Invalid {
                name: "SYNCLINE_PUBLIC_URL",
                reason: format!("{public_text:?} is not an http(s) URL"),
            })?;

        let workers = match env("SYNCLINE_WORKERS") {
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "SYNCLINE_WORKERS",
                    reason: format!("{text:?} is not a positive number"),
                })?,
            None => file.workers.unwrap_or(8),
        };

        let alert_interval_secs = match env("SYNCLINE_ALERT_INTERVAL") {
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=3600).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "SYNCLINE_ALERT_INTERVAL",
                    reason: format!("{text:?} is not a number of seconds from 1 to 3600"),
                })?,
            None => file.alert_interval_secs.unwrap_or(5),
        };

        let webhook_check_interval_secs = match env("SYNCLINE_WEBHOOK_CHECK_INTERVAL") {
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| (10..=86_400).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "SYNCLINE_WEBHOOK_CHECK_INTERVAL",
                    reason: format!("{text:?} is not a number of seconds from 10 to 86400"),
                })?,
            None => file.webhook_check_interval_secs.unwrap_or(600),
        };

        let worker_nice = match env("SYNCLINE_WORKER_NICE") {
            Some(text) => text
                .parse::<i32>()
                .ok()
                .filter(|n| (0..=19).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "SYNCLINE_WORKER_NICE",
                    reason: format!("{text:?} is not a nice value from 0 to 19"),
                })?,
            None => file.worker_nice.unwrap_or(10),
        };

        let smtp_url = env("SYNCLINE_SMTP_URL").or(file.smtp_url);
        if let Some(url) = &smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return Err(ConfigError::Invalid {
                name: "SYNCLINE_SMTP_URL",
                reason: "must start with smtp:// or smtps://".into(),
            });
        }
        let mail_from = env("SYNCLINE_MAIL_FROM")
            .or(file.mail_from)
            .unwrap_or_else(|| "Syncline <syncline@localhost>".to_owned());
        let session_secret = env("SYNCLINE_SESSION_SECRET").or(file.session_secret);
        let master_key = env("SYNCLINE_MASTER_KEY").or(file.master_key);
        let master_key_file = env("SYNCLINE_MASTER_KEY_FILE")
            .map(PathBuf::from)
            .or(file.master_key_file);
        let shopify_app_key = env("SYNCLINE_SHOPIFY_APP_KEY").or(file.shopify_app_key);
        let shopify_app_secret = env("SYNCLINE_SHOPIFY_APP_SECRET").or(file.shopify_app_secret);
        if shopify_app_key.is_some() != shopify_app_secret.is_some() {
            return Err(ConfigError::Invalid {
                name: "SYNCLINE_SHOPIFY_APP_KEY",
                reason:
                    "set both SYNCLINE_SHOPIFY_APP_KEY and SYNCLINE_SHOPIFY_APP_SECRET, or neither"
                        .into(),
            });
        }
        let sandbox = match env("SYNCLINE_SANDBOX").as_deref() {
            None => file.sandbox.unwrap_or(true),
            Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "SYNCLINE_SANDBOX",
                    reason: format!("{other:?} is neither on nor off"),
                });
            }
        };

        Ok(Config {
            listen,
            data_dir,
            database_url: database_url.map(SecretString::from),
            redis_url: redis_url.map(SecretString::from),
            log,
            log_format,
            public_url,
            workers,
            alert_interval_secs,
            webhook_check_interval_secs,
            worker_nice,
            smtp_url: smtp_url.map(SecretString::from),
            mail_from,
            session_secret: session_secret.map(SecretString::from),
            master_key: master_key.map(SecretString::from),
            master_key_file,
            shopify_app_key,
            shopify_app_secret: shopify_app_secret.map(SecretString::from),
            sandbox,
        })
    }

    /// The SQLite file of the embedded default.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("syncline.db")
    }

    /// The configuration as one log-safe JSON object: passwords in URLs are masked.
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::json!({
            "listen": self.listen.to_string(),
            "data_dir": self.data_dir.display().to_string(),
            "database": match &self.database_url {
                Some(url) => redact_url(url.expose_secret()),
                None => format!("sqlite:{}", self.sqlite_path().display()),
            },
            "dispatcher": match &self.redis_url {
                Some(url) => redact_url(url.expose_secret()),
                None => "in-process".to_owned(),
            },
            "log": self.log,
            "log_format": format!("{:?}", self.log_format).to_lowercase(),
            "public_url": self.public_url.as_str(),
            "workers": self.workers,
            "alert_interval_secs": self.alert_interval_secs,
            "webhook_check_interval_secs": self.webhook_check_interval_secs,
            "worker_nice": self.worker_nice,
            "smtp": match &self.smtp_url {
                Some(url) => redact_url(url.expose_secret()),
                None => "none (emails are logged)".to_owned(),
            },
            "mail_from": self.mail_from,
            "session_secret": if self.session_secret.is_some() { "set" } else { "generated in the data directory" },
            "master_key": match (&self.master_key, &self.master_key_file) {
                (Some(_), _) => "set".to_owned(),
                (None, Some(path)) => format!("file {}", path.display()),
                (None, None) => format!("file {}", self.data_dir.join("master.key").display()),
            },
            "shopify_app": self.shopify_app_key.as_deref().unwrap_or("none"),
            "sandbox": self.sandbox,
        })
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Config({})", self.redacted())
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|error| ConfigError::ParseFile {
        path: path.to_owned(),
        message: error.message().to_owned(),
    })
}

/// Masks the password (and a lone user-info token) of a URL; unparsable input is hidden whole.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            } else if !url.username().is_empty() && url.scheme().starts_with("redis") {
                // redis://token@host: a bare user part is the password.
                let _ = url.set_username("***");
            }
            url.to_string()
        }
        Err(_) => "[unparsable URL hidden]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load(|name| map.get(name).cloned())
    }

    #[test]
    fn readme_documents_every_setting() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .unwrap();
        for (name, default, _) in SETTINGS {
            let row = format!("| `{name}` | {default} |");
            assert!(
                readme.contains(&row),
                "README.md lacks the row for {name}: {row}"
            );
        }
    }

    #[test]
    fn defaults_are_the_embedded_mode() {
        let config = load(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.sqlite_path(), PathBuf::from("./data/syncline.db"));
        assert!(config.database_url.is_none() && config.redis_url.is_none());
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("syncline.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nlog = \"debug\"\nworkers = 3\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let config = load(&[("SYNCLINE_CONFIG", path), ("SYNCLINE_LOG", "warn")]).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000", "from the file");
        assert_eq!(config.log, "warn", "environment wins");
        assert_eq!(config.workers, 3);
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let error = load(&[("SYNCLINE_CONFIG", file.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        assert!(error.contains("lisen"), "{error}");
        let error = load(&[("SYNCLINE_LISTEN", "localhost")])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("invalid SYNCLINE_LISTEN"), "{error}");
        let error = load(&[("DATABASE_URL", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("invalid DATABASE_URL"), "{error}");
    }

    #[test]
    fn secrets_never_appear_in_the_redacted_form_or_debug_output() {
        let config = load(&[
            (
                "DATABASE_URL",
                "postgres://syncline:hunter2@db.internal:5432/syncline",
            ),
            ("REDIS_URL", "redis://:s3cr3t-token@cache:6379/0"),
            (
                "SYNCLINE_SMTP_URL",
                "smtp://mailer:smtp-pa55@mail:587?tls=required",
            ),
            (
                "SYNCLINE_SESSION_SECRET",
                "c2Vzc2lvbi1zZWNyZXQtdGhhdC1pcy1sb25nLWVub3VnaA==",
            ),
        ])
        .unwrap();
        let shown = format!("{} {:?}", config.redacted(), config);
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cr3t-token"),
            "{shown}"
        );
        assert!(
            !shown.contains("smtp-pa55") && !shown.contains("c2Vzc2lvbi1zZWNyZXQ"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://syncline:***@db.internal:5432/syncline"),
            "{shown}"
        );
    }
}
