//! Envelope encryption of tenant secrets: AES-256-GCM throughout.
//!
//! A [`MasterKey`] (from configuration, never stored in the database) wraps one 256-bit
//! [`DataKey`] per tenant; the data key encrypts that tenant's secrets. Every ciphertext carries
//! associated data that binds it to its tenant (and, for secrets, its secret id), so a blob
//! copied to another row or tenant fails to decrypt. Rotating the master key re-wraps data keys
//! only; secret ciphertexts never change.
//!
//! Blob layouts (all integers big-endian):
//! - wrapped data key: `format(1) 'K' master_version(4) fingerprint(8) tenant(16) nonce(12) ct+tag(48)`
//! - secret: `format(1) 'S' tenant(16) secret(16) nonce(12) ct+tag(n+16)`
//!
//! The ids and the key fingerprint sit in clear in the header only to turn failures into precise
//! errors; authentication always uses the ids the caller expects, never the header's.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::{SecretId, TenantId};

/// Environment variable holding the master key as text (`v<version>:<base64>` or bare base64).
pub const MASTER_KEY_ENV: &str = "SYNCLINE_MASTER_KEY";
/// Environment variable naming a file that holds the master key as text.
pub const MASTER_KEY_FILE_ENV: &str = "SYNCLINE_MASTER_KEY_FILE";

/// The blob format this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Length of every key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const FINGERPRINT_LEN: usize = 8;
const KIND_DATA_KEY: u8 = b'K';
const KIND_SECRET: u8 = b'S';
const DATA_KEY_HEADER_LEN: usize = 1 + 1 + 4 + FINGERPRINT_LEN + 16;
const WRAPPED_KEY_LEN: usize = DATA_KEY_HEADER_LEN + NONCE_LEN + KEY_LEN + TAG_LEN;
const SECRET_HEADER_LEN: usize = 1 + 1 + 16 + 16;

/// Why a key could not be loaded or a blob could not be encrypted or decrypted. Messages never
/// contain key material or plaintext.
#[derive(Debug, Error)]
pub enum CryptoError {
    /// The master key text is not `v<version>:<base64 of 32 bytes>` (or bare base64).
    #[error("invalid master key: {reason}")]
    InvalidMasterKey {
        /// What is wrong with it (never the key itself).
        reason: &'static str,
    },
    /// The master key file could not be read or created.
    #[error("master key file {}: {reason}", path.display())]
    KeyFile {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A data key is wrapped under a master key version the keyring does not hold.
    #[error(
        "master key version {version} is not configured (keyring holds versions {known:?}); \
         add it to the keyring as a previous key"
    )]
    UnknownKeyVersion {
        /// The version the data key was wrapped under.
        version: u32,
        /// The versions the keyring holds.
        known: Vec<u32>,
    },
    /// The configured master key for this version is not the one that wrapped the data key.
    #[error(
        "wrong master key: the configured key for version {version} is not the key that wrapped \
         this data key (fingerprint differs)"
    )]
    WrongMasterKey {
        /// The version concerned.
        version: u32,
    },
    /// Two different keys were given the same version.
    #[error("two different master keys claim version {version}")]
    VersionConflict {
        /// The contested version.
        version: u32,
    },
    /// The ciphertext is bound to another tenant than the one asking.
    #[error("ciphertext is bound to another tenant")]
    OtherTenant,
    /// The secret ciphertext is bound to another secret of the same tenant.
    #[error("ciphertext is bound to another secret")]
    OtherSecret,
    /// Authentication failed: the blob was altered, or the key is not the one that encrypted it.
    #[error("{what} failed authentication: it was altered or encrypted under another key")]
    Tampered {
        /// `wrapped data key` or `secret ciphertext`.
        what: &'static str,
    },
    /// The blob is not in a format this code understands.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// `wrapped data key` or `secret ciphertext`.
        what: &'static str,
        /// Why it could not be parsed.
        reason: &'static str,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
}

fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    OsRng
        .try_fill_bytes(bytes.as_mut())
        .map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// A key-encryption key with its version. Zeroized on drop; `Debug` shows only the version and
/// a fingerprint.
pub struct MasterKey {
    version: u32,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("version", &self.version)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl MasterKey {
    /// A key from raw bytes. Version 0 is reserved (rejected).
    pub fn from_bytes(version: u32, key: [u8; KEY_LEN]) -> Result<MasterKey, CryptoError> {
        let key = Zeroizing::new(key);
        if version == 0 {
            return Err(CryptoError::InvalidMasterKey {
                reason: "version must be 1 or more",
            });
        }
        Ok(MasterKey { version, key })
    }

    /// A fresh random key with this version.
    pub fn generate(version: u32) -> Result<MasterKey, CryptoError> {
        let key = random_bytes::<KEY_LEN>()?;
        MasterKey::from_bytes(version, *key)
    }

    /// Parses `v<version>:<base64>`, or bare base64 meaning version 1 (the form of
    /// `SYNCLINE_MASTER_KEY`). Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<MasterKey, CryptoError> {
        let text = text.trim();
        let (version, encoded) = match text.split_once(':') {
            Some((prefix, encoded)) => {
                let version = prefix
                    .strip_prefix('v')
                    .and_then(|digits| digits.parse::<u32>().ok())
                    .ok_or(CryptoError::InvalidMasterKey {
                        reason: "expected `v<version>:<base64>`",
                    })?;
                (version, encoded)
            }
            None => (1, text),
        };
        let decoded = Zeroizing::new(BASE64.decode(encoded.trim()).map_err(|_| {
            CryptoError::InvalidMasterKey {
                reason: "not valid base64",
            }
        })?);
        let key: [u8; KEY_LEN] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| CryptoError::InvalidMasterKey {
                    reason: "must decode to exactly 32 bytes",
                })?;
        MasterKey::from_bytes(version, key)
    }

    /// Reads a key file written by [`MasterKey::write_new_file`] (or any text [`parse`] accepts).
    ///
    /// [`parse`]: MasterKey::parse
    pub fn load_file(path: &Path) -> Result<MasterKey, CryptoError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| CryptoError::KeyFile {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?,
            );
        warn_if_readable_by_others(path);
        MasterKey::parse(&text)
    }

    /// Generates a version-1 key and writes it to a new file with 0600 permissions; fails if the
    /// file exists, so an existing key is never overwritten.
    pub fn generate_file(path: &Path) -> Result<MasterKey, CryptoError> {
        let key = MasterKey::generate(1)?;
        key.write_new_file(path)?;
        Ok(key)
    }

    /// Writes this key as text to a new file with 0600 permissions; fails if the file exists.
    pub fn write_new_file(&self, path: &Path) -> Result<(), CryptoError> {
        let file_error = |e: std::io::Error| CryptoError::KeyFile {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(file_error)?;
        let text = self.to_text();
        file.write_all(text.expose_secret().as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(file_error)
    }

    /// The key as `v<version>:<base64>`, the form [`MasterKey::parse`] reads back.
    pub fn to_text(&self) -> SecretString {
        let encoded = Zeroizing::new(BASE64.encode(self.key.as_ref()));
        SecretString::from(format!("v{}:{}", self.version, encoded.as_str()))
    }

    /// The key's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// A short one-way fingerprint (hex) that identifies the key in logs without revealing it.
    pub fn fingerprint(&self) -> String {
        self.fingerprint_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn fingerprint_bytes(&self) -> [u8; FINGERPRINT_LEN] {
        let digest = Sha256::new()
            .chain_update(b"syncline master key fingerprint v1\0")
            .chain_update(self.key.as_ref())
            .finalize();
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        out
    }

    fn duplicate(&self) -> MasterKey {
        MasterKey {
            version: self.version,
            key: self.key.clone(),
        }
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "master key file is readable by group or others; restrict it to 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// The current master key plus older ones by version, so data keys wrapped under an older
/// version still unwrap while a rotation is under way.
pub struct Keyring {
    current: u32,
    keys: BTreeMap<u32, MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("versions", &self.versions())
            .finish()
    }
}

impl Keyring {
    /// A keyring whose only key is `current`.
    pub fn new(current: MasterKey) -> Keyring {
        let version = current.version;
        Keyring {
            current: version,
            keys: BTreeMap::from([(version, current)]),
        }
    }

    /// Adds an older key that may still unwrap data keys. The same key twice is harmless; two
    /// different keys with one version are an error.
    pub fn with_previous(mut self, key: MasterKey) -> Result<Keyring, CryptoError> {
        self.insert(key)?;
        Ok(self)
    }

    /// This keyring with `new` as the current key and every key it held kept as previous.
    pub fn rotated_to(&self, new: MasterKey) -> Result<Keyring, CryptoError> {
        let mut keys: BTreeMap<u32, MasterKey> =
            self.keys.iter().map(|(v, k)| (*v, k.duplicate())).collect();
        let current = new.version;
        if let Some(existing) = keys.get(&current) {
            if existing.fingerprint_bytes() != new.fingerprint_bytes() {
                return Err(CryptoError::VersionConflict { version: current });
            }
        } else {
            keys.insert(current, new);
        }
        Ok(Keyring { current, keys })
    }

    fn insert(&mut self, key: MasterKey) -> Result<(), CryptoError> {
        if let Some(existing) = self.keys.get(&key.version) {
            if existing.fingerprint_bytes() != key.fingerprint_bytes() {
                return Err(CryptoError::VersionConflict {
                    version: key.version,
                });
            }
            return Ok(());
        }
        self.keys.insert(key.version, key);
        Ok(())
    }

    /// The version new data keys are wrapped under.
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// Every version held, ascending.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    fn current_key(&self) -> Result<&MasterKey, CryptoError> {
        self.key(self.current)
    }

    fn key(&self, version: u32) -> Result<&MasterKey, CryptoError> {
        self.keys
            .get(&version)
            .ok_or_else(|| CryptoError::UnknownKeyVersion {
                version,
                known: self.versions(),
            })
    }

    /// Wraps a tenant's data key under the current master key.
    pub fn wrap(&self, tenant: TenantId, data_key: &DataKey) -> Result<WrappedKey, CryptoError> {
        let master = self.current_key()?;
        let mut header = Vec::with_capacity(WRAPPED_KEY_LEN);
        header.push(FORMAT_VERSION);
        header.push(KIND_DATA_KEY);
        header.extend_from_slice(&master.version.to_be_bytes());
        header.extend_from_slice(&master.fingerprint_bytes());
        header.extend_from_slice(tenant.0.as_bytes());
        let nonce = random_bytes::<NONCE_LEN>()?;
        let sealed = cipher(&master.key)
            .encrypt(
                Nonce::from_slice(nonce.as_ref()),
                Payload {
                    msg: data_key.key.as_ref(),
                    aad: &data_key_aad(tenant, master.version),
                },
            )
            .map_err(|_| CryptoError::Tampered {
                what: "wrapped data key",
            })?;
        let mut bytes = header;
        bytes.extend_from_slice(nonce.as_ref());
        bytes.extend_from_slice(&sealed);
        Ok(WrappedKey {
            master_version: master.version,
            bytes,
        })
    }

    /// Unwraps a tenant's data key with whichever master key version wrapped it.
    pub fn unwrap(&self, tenant: TenantId, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        const WHAT: &str = "wrapped data key";
        let malformed = |reason| CryptoError::Malformed { what: WHAT, reason };
        if wrapped.len() != WRAPPED_KEY_LEN {
            return Err(malformed("wrong length"));
        }
        let (header, rest) = wrapped.split_at(DATA_KEY_HEADER_LEN);
        if header[0] != FORMAT_VERSION {
            return Err(malformed("unknown format version"));
        }
        if header[1] != KIND_DATA_KEY {
            return Err(malformed("not a data key"));
        }
        let version = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        let fingerprint = &header[6..6 + FINGERPRINT_LEN];
        let bound_tenant = &header[6 + FINGERPRINT_LEN..];
        if bound_tenant != tenant.0.as_bytes() {
            return Err(CryptoError::OtherTenant);
        }
        let master = self.key(version)?;
        if fingerprint != master.fingerprint_bytes() {
            return Err(CryptoError::WrongMasterKey { version });
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let opened = Zeroizing::new(
            cipher(&master.key)
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &data_key_aad(tenant, version),
                    },
                )
                .map_err(|_| CryptoError::Tampered { what: WHAT })?,
        );
        let key: [u8; KEY_LEN] = opened
            .as_slice()
            .try_into()
            .map_err(|_| malformed("wrong key length"))?;
        Ok(DataKey {
            key: Zeroizing::new(key),
        })
    }
}

/// The master key version recorded inside a wrapped data key, without unwrapping it.
pub fn wrapped_key_version(wrapped: &[u8]) -> Option<u32> {
    (wrapped.len() == WRAPPED_KEY_LEN && wrapped[0] == FORMAT_VERSION)
        .then(|| u32::from_be_bytes([wrapped[2], wrapped[3], wrapped[4], wrapped[5]]))
}

fn data_key_aad(tenant: TenantId, master_version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(2 + 16 + 4);
    aad.extend_from_slice(&[FORMAT_VERSION, KIND_DATA_KEY]);
    aad.extend_from_slice(tenant.0.as_bytes());
    aad.extend_from_slice(&master_version.to_be_bytes());
    aad
}

fn secret_aad(tenant: TenantId, secret: SecretId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SECRET_HEADER_LEN);
    aad.extend_from_slice(&[FORMAT_VERSION, KIND_SECRET]);
    aad.extend_from_slice(tenant.0.as_bytes());
    aad.extend_from_slice(secret.0.as_bytes());
    aad
}

/// A data key wrapped by a master key, as stored in `tenant_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The master key version that wrapped it.
    pub master_version: u32,
    /// The blob to store.
    pub bytes: Vec<u8>,
}

/// A tenant's 256-bit data key, which encrypts that tenant's secrets. Zeroized on drop.
pub struct DataKey {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    /// A fresh random data key.
    pub fn generate() -> Result<DataKey, CryptoError> {
        Ok(DataKey {
            key: random_bytes::<KEY_LEN>()?,
        })
    }

    /// Encrypts bytes for one secret of one tenant, under a fresh random nonce.
    pub fn encrypt(
        &self,
        tenant: TenantId,
        secret: SecretId,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let aad = secret_aad(tenant, secret);
        let nonce = random_bytes::<NONCE_LEN>()?;
        let sealed = cipher(&self.key)
            .encrypt(
                Nonce::from_slice(nonce.as_ref()),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Malformed {
                what: "secret ciphertext",
                reason: "plaintext too long",
            })?;
        let mut bytes = aad;
        bytes.reserve(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(nonce.as_ref());
        bytes.extend_from_slice(&sealed);
        Ok(bytes)
    }

    /// Decrypts bytes encrypted by [`DataKey::encrypt`] for exactly this tenant and secret.
    pub fn decrypt(
        &self,
        tenant: TenantId,
        secret: SecretId,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        const WHAT: &str = "secret ciphertext";
        let malformed = |reason| CryptoError::Malformed { what: WHAT, reason };
        if ciphertext.len() < SECRET_HEADER_LEN + NONCE_LEN + TAG_LEN {
            return Err(malformed("too short"));
        }
        let (header, rest) = ciphertext.split_at(SECRET_HEADER_LEN);
        if header[0] != FORMAT_VERSION {
            return Err(malformed("unknown format version"));
        }
        if header[1] != KIND_SECRET {
            return Err(malformed("not a secret"));
        }
        if &header[2..18] != tenant.0.as_bytes() {
            return Err(CryptoError::OtherTenant);
        }
        if &header[18..34] != secret.0.as_bytes() {
            return Err(CryptoError::OtherSecret);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let opened = cipher(&self.key)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &secret_aad(tenant, secret),
                },
            )
            .map_err(|_| CryptoError::Tampered { what: WHAT })?;
        Ok(Zeroizing::new(opened))
    }

    /// Encrypts a secret string; see [`DataKey::encrypt`].
    pub fn encrypt_secret(
        &self,
        tenant: TenantId,
        secret: SecretId,
        plaintext: &SecretString,
    ) -> Result<Vec<u8>, CryptoError> {
        self.encrypt(tenant, secret, plaintext.expose_secret().as_bytes())
    }

    /// Decrypts a secret string; see [`DataKey::decrypt`].
    pub fn decrypt_secret(
        &self,
        tenant: TenantId,
        secret: SecretId,
        ciphertext: &[u8],
    ) -> Result<SecretString, CryptoError> {
        let mut bytes = self.decrypt(tenant, secret, ciphertext)?;
        let owned = std::mem::take(&mut *bytes);
        match String::from_utf8(owned) {
            Ok(text) => Ok(SecretString::from(text)),
            Err(error) => {
                // Keep the failed buffer from lingering in memory.
                drop(Zeroizing::new(error.into_bytes()));
                Err(CryptoError::Malformed {
                    what: "secret ciphertext",
                    reason: "plaintext is not UTF-8",
                })
            }
        }
    }
}

/// Reads the master key from `SYNCLINE_MASTER_KEY` or else `SYNCLINE_MASTER_KEY_FILE`; `None`
/// when neither is set. Setting both is an error, so it is never unclear which key is in use.
pub fn master_key_from_env() -> Result<Option<MasterKey>, CryptoError> {
    let text = std::env::var(MASTER_KEY_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new);
    let file = std::env::var_os(MASTER_KEY_FILE_ENV).filter(|v| !v.is_empty());
    match (text, file) {
        (Some(_), Some(_)) => Err(CryptoError::InvalidMasterKey {
            reason: "set SYNCLINE_MASTER_KEY or SYNCLINE_MASTER_KEY_FILE, not both",
        }),
        (Some(text), None) => MasterKey::parse(&text).map(Some),
        (None, Some(file)) => MasterKey::load_file(Path::new(&file)).map(Some),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::*;

    fn key(version: u32, byte: u8) -> MasterKey {
        MasterKey::from_bytes(version, [byte; KEY_LEN]).unwrap()
    }

    fn ids() -> (TenantId, SecretId) {
        (TenantId::new(), SecretId::new())
    }

    #[test]
    fn parse_accepts_versioned_and_bare_base64_and_rejects_bad_input() {
        let original = MasterKey::generate(7).unwrap();
        let text = original.to_text();
        let parsed = MasterKey::parse(text.expose_secret()).unwrap();
        assert_eq!(parsed.version(), 7);
        assert_eq!(parsed.fingerprint(), original.fingerprint());

        let bare = BASE64.encode([9u8; KEY_LEN]);
        assert_eq!(
            MasterKey::parse(&format!(" {bare}\n")).unwrap().version(),
            1
        );

        for bad in [
            "",
            "not base64 !!",
            "v1:AAAA",
            "x1:AAAA",
            "v0:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            let error = MasterKey::parse(bad).unwrap_err();
            assert!(
                matches!(error, CryptoError::InvalidMasterKey { .. }),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = key(3, 0xAB);
        let text = key.to_text();
        let debug = format!("{key:?} {:?}", Keyring::new(key.duplicate()));
        assert!(!debug.contains(text.expose_secret().trim_start_matches("v3:")));
        assert!(!debug.to_lowercase().contains("abab"));
        assert!(debug.contains("version: 3"));
        assert_eq!(
            format!("{:?}", DataKey::generate().unwrap()),
            "DataKey([redacted])"
        );
    }

    #[test]
    fn generate_file_is_private_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::generate_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = MasterKey::load_file(&path).unwrap();
        assert_eq!(loaded.fingerprint(), key.fingerprint());
        assert_eq!(loaded.version(), 1);
        let again = MasterKey::generate_file(&path).unwrap_err();
        assert!(matches!(again, CryptoError::KeyFile { .. }), "{again}");
        assert_eq!(
            MasterKey::load_file(&path).unwrap().fingerprint(),
            key.fingerprint()
        );
        let missing = MasterKey::load_file(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, CryptoError::KeyFile { .. }));
    }

    #[test]
    fn swapping_secret_ciphertexts_between_tenants_or_secrets_fails() {
        let data_key = DataKey::generate().unwrap();
        let (tenant_a, secret_a) = ids();
        let (tenant_b, secret_b) = ids();
        let blob = data_key.encrypt(tenant_a, secret_a, b"hunter2").unwrap();
        assert_eq!(
            &*data_key.decrypt(tenant_a, secret_a, &blob).unwrap(),
            b"hunter2"
        );
        assert!(matches!(
            data_key.decrypt(tenant_b, secret_a, &blob),
            Err(CryptoError::OtherTenant)
        ));
        assert!(matches!(
            data_key.decrypt(tenant_a, secret_b, &blob),
            Err(CryptoError::OtherSecret)
        ));

        // Rewriting the clear header to match the new owner still fails: the AD is what counts.
        let mut forged = blob.clone();
        forged[18..34].copy_from_slice(secret_b.0.as_bytes());
        assert!(matches!(
            data_key.decrypt(tenant_a, secret_b, &forged),
            Err(CryptoError::Tampered { .. })
        ));
        let mut forged = blob.clone();
        forged[2..18].copy_from_slice(tenant_b.0.as_bytes());
        assert!(matches!(
            data_key.decrypt(tenant_b, secret_a, &forged),
            Err(CryptoError::Tampered { .. })
        ));

        // Another tenant's data key cannot open it either.
        let other_key = DataKey::generate().unwrap();
        assert!(matches!(
            other_key.decrypt(tenant_a, secret_a, &blob),
            Err(CryptoError::Tampered { .. })
        ));
    }

    #[test]
    fn swapping_wrapped_data_keys_between_tenants_fails() {
        let ring = Keyring::new(key(1, 1));
        let (tenant_a, _) = ids();
        let (tenant_b, _) = ids();
        let wrapped = ring.wrap(tenant_a, &DataKey::generate().unwrap()).unwrap();
        assert!(matches!(
            ring.unwrap(tenant_b, &wrapped.bytes),
            Err(CryptoError::OtherTenant)
        ));
        let mut forged = wrapped.bytes.clone();
        forged[14..30].copy_from_slice(tenant_b.0.as_bytes());
        assert!(matches!(
            ring.unwrap(tenant_b, &forged),
            Err(CryptoError::Tampered { .. })
        ));
    }

    #[test]
    fn wrong_master_key_and_unknown_version_are_clear_errors() {
        let (tenant, secret) = ids();
        let right = Keyring::new(key(1, 1));
        let data_key = DataKey::generate().unwrap();
        let wrapped = right.wrap(tenant, &data_key).unwrap();
        assert_eq!(wrapped.master_version, 1);
        assert_eq!(wrapped_key_version(&wrapped.bytes), Some(1));

        let wrong = Keyring::new(key(1, 2));
        let error = wrong.unwrap(tenant, &wrapped.bytes).unwrap_err();
        assert!(
            matches!(error, CryptoError::WrongMasterKey { version: 1 }),
            "{error}"
        );
        assert!(error.to_string().contains("wrong master key"));

        let newer_only = Keyring::new(key(2, 1));
        let error = newer_only.unwrap(tenant, &wrapped.bytes).unwrap_err();
        assert!(
            matches!(&error, CryptoError::UnknownKeyVersion { version: 1, known } if known == &[2]),
            "{error}"
        );
        assert!(error.to_string().contains("version 1 is not configured"));

        // A forged fingerprint gets past the diagnostic check but not authentication.
        let mut forged = wrapped.bytes.clone();
        forged[6..14].copy_from_slice(&key(1, 2).fingerprint_bytes());
        assert!(matches!(
            wrong.unwrap(tenant, &forged),
            Err(CryptoError::Tampered { .. })
        ));

        let unwrapped = right.unwrap(tenant, &wrapped.bytes).unwrap();
        let blob = data_key.encrypt(tenant, secret, b"x").unwrap();
        assert_eq!(&*unwrapped.decrypt(tenant, secret, &blob).unwrap(), b"x");
    }

    #[test]
    fn keyring_rotation_keeps_old_versions_and_rejects_conflicts() {
        let tenant = TenantId::new();
        let old = Keyring::new(key(1, 1));
        let wrapped_old = old.wrap(tenant, &DataKey::generate().unwrap()).unwrap();
        let rotated = old.rotated_to(key(2, 2)).unwrap();
        assert_eq!(rotated.current_version(), 2);
        assert_eq!(rotated.versions(), [1, 2]);
        rotated.unwrap(tenant, &wrapped_old.bytes).unwrap();
        let rewrapped = rotated
            .wrap(tenant, &rotated.unwrap(tenant, &wrapped_old.bytes).unwrap())
            .unwrap();
        assert_eq!(rewrapped.master_version, 2);
        assert!(matches!(
            old.unwrap(tenant, &rewrapped.bytes),
            Err(CryptoError::UnknownKeyVersion { version: 2, .. })
        ));
        // Re-running with the same key is a no-op; a different key under version 2 is refused.
        assert_eq!(rotated.rotated_to(key(2, 2)).unwrap().versions(), [1, 2]);
        assert!(matches!(
            rotated.rotated_to(key(2, 3)),
            Err(CryptoError::VersionConflict { version: 2 })
        ));
        assert!(matches!(
            Keyring::new(key(1, 1)).with_previous(key(1, 9)),
            Err(CryptoError::VersionConflict { version: 1 })
        ));
        let both = Keyring::new(key(2, 2)).with_previous(key(1, 1)).unwrap();
        both.unwrap(tenant, &wrapped_old.bytes).unwrap();
        both.unwrap(tenant, &rewrapped.bytes).unwrap();
    }

    #[test]
    fn secret_strings_round_trip_and_reject_non_utf8() {
        let data_key = DataKey::generate().unwrap();
        let (tenant, secret) = ids();
        let blob = data_key
            .encrypt_secret(tenant, secret, &SecretString::from("pässwörd"))
            .unwrap();
        let back = data_key.decrypt_secret(tenant, secret, &blob).unwrap();
        assert_eq!(back.expose_secret(), "pässwörd");
        let blob = data_key.encrypt(tenant, secret, &[0xff, 0xfe]).unwrap();
        assert!(matches!(
            data_key.decrypt_secret(tenant, secret, &blob),
            Err(CryptoError::Malformed { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn encrypt_then_decrypt_round_trips(plaintext in proptest::collection::vec(any::<u8>(), 0..512)) {
            let data_key = DataKey::generate().unwrap();
            let (tenant, secret) = ids();
            let blob = data_key.encrypt(tenant, secret, &plaintext).unwrap();
            prop_assert_eq!(&*data_key.decrypt(tenant, secret, &blob).unwrap(), &plaintext);
            // A fresh nonce each time: the same plaintext never gives the same blob.
            prop_assert_ne!(blob, data_key.encrypt(tenant, secret, &plaintext).unwrap());
        }

        #[test]
        fn any_bit_flip_in_a_secret_ciphertext_fails(
            plaintext in proptest::collection::vec(any::<u8>(), 0..64),
            position in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let data_key = DataKey::generate().unwrap();
            let (tenant, secret) = ids();
            let mut blob = data_key.encrypt(tenant, secret, &plaintext).unwrap();
            let at = position.index(blob.len());
            blob[at] ^= 1 << bit;
            prop_assert!(data_key.decrypt(tenant, secret, &blob).is_err());
        }

        #[test]
        fn wrap_then_unwrap_round_trips_and_any_bit_flip_fails(
            version in 1u32..1000,
            key_bytes in any::<[u8; KEY_LEN]>(),
            position in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let ring = Keyring::new(MasterKey::from_bytes(version, key_bytes).unwrap());
            let tenant = TenantId::new();
            let secret = SecretId::new();
            let data_key = DataKey::generate().unwrap();
            let wrapped = ring.wrap(tenant, &data_key).unwrap();
            let unwrapped = ring.unwrap(tenant, &wrapped.bytes).unwrap();
            let blob = data_key.encrypt(tenant, secret, b"same key").unwrap();
            prop_assert_eq!(&*unwrapped.decrypt(tenant, secret, &blob).unwrap(), b"same key");
            let mut flipped = wrapped.bytes.clone();
            let at = position.index(flipped.len());
            flipped[at] ^= 1 << bit;
            prop_assert!(ring.unwrap(tenant, &flipped).is_err());
        }
    }
}
