//! Password hashing: argon2id with the crate's recommended parameters, always on the blocking pool.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use clavis_core::{ClavisError, Result};
use secrecy::{ExposeSecret, SecretString};

pub const MIN_PASSWORD_CHARS: usize = 10;

pub fn check_strength(password: &SecretString) -> Result<()> {
    let chars = password.expose_secret().chars().count();
    if !(MIN_PASSWORD_CHARS..=1024).contains(&chars) {
        return Err(ClavisError::invalid("password", format!("must be {MIN_PASSWORD_CHARS} to 1024 characters")));
    }
    Ok(())
}

/// Hash with argon2id (PHC string) off the async workers.
pub async fn hash(password: SecretString) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| ClavisError::internal("argon2 hash", e))
    })
    .await
    .map_err(|e| ClavisError::internal("argon2 task", e))?
}

/// Verify against a stored PHC string off the async workers.
pub async fn verify(password: SecretString, stored: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(|e| ClavisError::internal("stored password hash", e))?;
        Ok(Argon2::default().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|e| ClavisError::internal("argon2 task", e))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let stored = hash(SecretString::from("correct horse battery")).await.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify(SecretString::from("correct horse battery"), stored.clone()).await.unwrap());
        assert!(!verify(SecretString::from("wrong horse battery"), stored).await.unwrap());
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_strength(&SecretString::from("short")).is_err());
        assert!(check_strength(&SecretString::from("long enough pass")).is_ok());
    }
}
