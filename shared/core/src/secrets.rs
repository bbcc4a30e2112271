//! Secrets at rest: a connection's password or webhook URL is stored sealed with AES-256-GCM
//! under the deployment's key (`BATON_ENCRYPTION_KEY`, 32 bytes in base64, kept in Secret
//! Manager). Each sealing has a fresh random nonce, and the document it belongs to is bound in
//! as associated data, so a sealed value copied to another document does not open there.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// A value sealed by a `Sealer`: what is stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sealed {
    /// `aes-256-gcm`.
    pub algorithm: String,
    /// Base64.
    pub nonce: String,
    /// Base64: the ciphertext and its tag.
    pub ciphertext: String,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("BATON_ENCRYPTION_KEY is not 32 bytes in base64")]
    BadKey,
    /// The key is not the one it was sealed with, the value was changed, or it belongs to
    /// another document.
    #[error("a sealed value does not open with this key")]
    DoesNotOpen,
}

/// Seals and opens secrets with the deployment's key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// From the key's base64 text.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SecretError::BadKey)?;
        let key = Key::<Aes256Gcm>::try_from(bytes.as_slice()).map_err(|_| SecretError::BadKey)?;
        Ok(Self {
            cipher: Aes256Gcm::new(&key),
        })
    }

    /// The deployment's key from `BATON_ENCRYPTION_KEY`, if it is set.
    pub fn from_env(env: &crate::config::Env) -> Result<Option<Self>, crate::config::ConfigError> {
        env.get("BATON_ENCRYPTION_KEY")
            .map(|key| Self::from_base64(&key))
            .transpose()
            .map_err(|e| crate::config::ConfigError {
                variable: "BATON_ENCRYPTION_KEY".into(),
                message: e.to_string(),
            })
    }

    /// A new random key's base64 text (for `baton` tooling and tests).
    pub fn generate_key() -> String {
        STANDARD.encode(Key::<Aes256Gcm>::generate())
    }

    /// Seals `secret` for the document `bound_to` (its path).
    pub fn seal(&self, secret: &str, bound_to: &str) -> Sealed {
        let nonce = Nonce::generate();
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.as_bytes(),
                    aad: bound_to.as_bytes(),
                },
            )
            .expect("AES-GCM seals any message shorter than 64 GiB");
        Sealed {
            algorithm: "aes-256-gcm".into(),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(ciphertext),
        }
    }

    /// Opens what `seal` sealed for `bound_to`.
    pub fn open(&self, sealed: &Sealed, bound_to: &str) -> Result<String, SecretError> {
        let nonce = STANDARD
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| Nonce::try_from(n.as_slice()).ok())
            .ok_or(SecretError::DoesNotOpen)?;
        let ciphertext = STANDARD
            .decode(&sealed.ciphertext)
            .map_err(|_| SecretError::DoesNotOpen)?;
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &ciphertext,
                    aad: bound_to.as_bytes(),
                },
            )
            .map_err(|_| SecretError::DoesNotOpen)?;
        String::from_utf8(plain).map_err(|_| SecretError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_for_its_document() {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let secret = "https://hooks.slack.com/services/T000/B000/XXXX";
        let sealed = sealer.seal(secret, "connections/alerts");
        assert!(!sealed.ciphertext.contains("hooks"));
        assert_eq!(sealer.open(&sealed, "connections/alerts").unwrap(), secret);
        // Sealed twice, it differs (a fresh nonce), and both open.
        let again = sealer.seal(secret, "connections/alerts");
        assert_ne!(again.nonce, sealed.nonce);
        assert_eq!(sealer.open(&again, "connections/alerts").unwrap(), secret);

        assert_eq!(
            sealer.open(&sealed, "connections/other"),
            Err(SecretError::DoesNotOpen)
        );
        let other = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        assert_eq!(
            other.open(&sealed, "connections/alerts"),
            Err(SecretError::DoesNotOpen)
        );
        let mut tampered = sealed.clone();
        let mut bytes = STANDARD.decode(&tampered.ciphertext).unwrap();
        bytes[0] ^= 1;
        tampered.ciphertext = STANDARD.encode(bytes);
        assert_eq!(
            sealer.open(&tampered, "connections/alerts"),
            Err(SecretError::DoesNotOpen)
        );
        assert!(!format!("{sealed:?}{sealer:?}").contains(&sealed.ciphertext));
    }

    #[test]
    fn a_key_must_be_32_bytes_of_base64() {
        assert_eq!(
            Sealer::from_base64("c2hvcnQ=").err(),
            Some(SecretError::BadKey)
        );
        assert_eq!(
            Sealer::from_base64("not base64!").err(),
            Some(SecretError::BadKey)
        );
    }
}
