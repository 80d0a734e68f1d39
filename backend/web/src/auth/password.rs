//! argon2id password hashing, always off the async runtime.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::AppError;

/// Shortest password we accept.
pub const MIN_PASSWORD_LENGTH: usize = 12;

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes a password to a PHC string.
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|e| AppError::Internal(format!("hashing task: {e}")))?
    .map_err(|e| AppError::Internal(format!("argon2: {e}")))
}

/// A hash of a random password, checked when the account does not exist so that unknown and
/// known emails take the same time.
static DECOY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn decoy_hash() -> String {
    DECOY_HASH
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            hasher()
                .hash_password(crate::auth::secret::random_token().as_bytes(), &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

/// Checks a password against a stored hash (or against a decoy when there is none), in
/// constant time with respect to the password.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool, AppError> {
    let exists = stored.is_some();
    let matched = tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(decoy_hash);
        PasswordHash::new(&stored)
            .map(|parsed| {
                hasher()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .map_err(|e| AppError::Internal(format!("verify task: {e}")))?;
    Ok(exists && matched)
}

/// Checks a new password against our rules.
pub fn validate_new_password(password: &str, confirmation: &str) -> Result<(), AppError> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(AppError::invalid(
            "password",
            format!("Use at least {MIN_PASSWORD_LENGTH} characters."),
        ));
    }
    if password != confirmation {
        return Err(AppError::invalid("confirm", "The two passwords differ."));
    }
    Ok(())
}
