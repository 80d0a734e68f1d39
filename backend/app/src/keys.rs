//! The master key ring: from `SYNCLINE_MASTER_KEY`, or a key file (generated with 0600
//! permissions on the embedded default's first start). A key file may hold several keys, one
//! `v<version>:<base64>` per line; the highest version is current, the others keep data keys
//! wrapped under them readable during a rotation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use syncline_store::Store;
use syncline_store::crypto::{Keyring, MasterKey};

use crate::config::Config;

/// Where the key file is, when keys come from a file.
pub fn key_file(config: &Config) -> Option<PathBuf> {
    match (&config.master_key, &config.master_key_file) {
        (Some(_), _) => None,
        (None, Some(path)) => Some(path.clone()),
        (None, None) => Some(config.data_dir.join("master.key")),
    }
}

fn parse_keys(text: &str, origin: &str) -> anyhow::Result<Keyring> {
    let mut keys: Vec<MasterKey> = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        keys.push(
            MasterKey::parse(line).with_context(|| format!("invalid master key in {origin}"))?,
        );
    }
    keys.sort_by_key(|key| std::cmp::Reverse(key.version()));
    let mut keys = keys.into_iter();
    let current = keys
        .next()
        .with_context(|| format!("{origin} holds no master key"))?;
    let mut ring = Keyring::new(current);
    for older in keys {
        ring = ring
            .with_previous(older)
            .with_context(|| format!("duplicate master key version in {origin}"))?;
    }
    Ok(ring)
}

/// Loads the key ring, generating the key file on first start when keys come from the default
/// file location.
pub fn load(config: &Config) -> anyhow::Result<Keyring> {
    if let Some(key) = &config.master_key {
        return parse_keys(key.expose_secret(), "SYNCLINE_MASTER_KEY");
    }
    let Some(path) = key_file(config) else {
        anyhow::bail!("no master key configured")
    };
    if !path.exists() && config.master_key_file.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
        MasterKey::generate_file(&path)
            .with_context(|| format!("cannot create the master key file {}", path.display()))?;
        tracing::warn!(path = %path.display(), "generated a new master key: back this file up; encrypted secrets cannot be read without it");
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the master key file {}", path.display()))?;
    parse_keys(&text, &path.display().to_string())
}

/// Writes the key file atomically with 0600 permissions.
fn write_key_file(path: &Path, keys: &[&MasterKey]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut text = String::from(
        "# Syncline master keys, newest first. Keep this file secret and backed up.\n",
    );
    for key in keys {
        text.push_str(key.to_text().expose_secret());
        text.push('\n');
    }
    let temporary = path.with_extension("new");
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// How long running processes take to notice a changed key file.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// `syncline admin rotate-master-key`: adds a new key to the key file, waits until running
/// processes have loaded it, then re-wraps every tenant data key under it. Secret ciphertexts
/// are untouched and readable throughout.
pub async fn rotate(config: &Config, store: &Store, wait: Duration) -> anyhow::Result<()> {
    let path = key_file(config).context(
        "rotation needs a key file: with SYNCLINE_MASTER_KEY, generate a key, re-wrap with it set as the current key and keep the old one as a previous line of SYNCLINE_MASTER_KEY",
    )?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut existing = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        existing.push(MasterKey::parse(line)?);
    }
    let next_version = existing.iter().map(MasterKey::version).max().unwrap_or(0) + 1;
    let new = MasterKey::generate(next_version)?;
    let mut all: Vec<&MasterKey> = vec![&new];
    all.extend(existing.iter());
    write_key_file(&path, &all)?;
    drop(all);
    println!(
        "Wrote master key version {next_version} to {}; waiting {} s for running processes to load it…",
        path.display(),
        wait.as_secs()
    );
    tokio::time::sleep(wait).await;
    let report = store.rotate_master_key(new).await?;
    println!(
        "Re-wrapped {} tenant data keys ({} already current) under version {}.",
        report.rewrapped, report.already_current, report.new_version
    );
    if !report.failed.is_empty() {
        anyhow::bail!(
            "{} data keys could not be re-wrapped; they stay readable with the previous keys: {:?}",
            report.failed.len(),
            report.failed
        );
    }
    println!(
        "Older keys stay in the file so backups remain readable; remove them only after every backup predating this rotation has expired."
    );
    Ok(())
}

/// Re-reads the key file now and then, so a rotation reaches running processes.
pub fn spawn_reload(config: &Config, store: Store) {
    let Some(path) = key_file(config) else { return };
    let origin = path.display().to_string();
    tokio::spawn(async move {
        let mut last = std::fs::read_to_string(&path).unwrap_or_default();
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if text == last {
                continue;
            }
            match parse_keys(&text, &origin) {
                Ok(ring) => {
                    store.replace_keyring(ring);
                    tracing::info!("master key file changed; key ring reloaded");
                    last = text;
                }
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "master key file changed but cannot be read; keeping the current key ring")
                }
            }
        }
    });
}
