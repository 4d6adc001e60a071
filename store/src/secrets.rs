//! Encryption at rest for secrets the store must be able to read back (provider credentials,
//! TOTP secrets): XChaCha20-Poly1305 under one 32-byte key from the configuration.
//!
//! Sealed format: one version byte, a 24-byte random nonce, then the ciphertext with its tag.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};

use crate::{Result, StoreError};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The key that seals and opens stored secrets. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    /// A box from a standard-base64 32-byte key (surrounding whitespace is ignored).
    pub fn from_base64(key: &str) -> Result<Self> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|e| StoreError::Crypto(format!("key is not base64: {e}")))?;
        Self::from_bytes(&bytes)
    }

    /// A box from raw key bytes, which must be exactly 32.
    pub fn from_bytes(key: &[u8]) -> Result<Self> {
        let cipher = XChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| StoreError::Crypto(format!("key must be 32 bytes, got {}", key.len())))?;
        Ok(Self { cipher })
    }

    /// A fresh random key and its base64 form, to be put in the configuration.
    pub fn generate() -> (Self, String) {
        let key: [u8; 32] = rand::random();
        let cipher = XChaCha20Poly1305::new(&key.into());
        (Self { cipher }, STANDARD.encode(key))
    }

    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .map_err(|_| StoreError::Crypto("sealing failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Fails on anything not sealed by this key: another key, a truncated or altered value.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(StoreError::Crypto("sealed value is too short".into()));
        }
        if sealed[0] != VERSION {
            return Err(StoreError::Crypto(format!(
                "unknown sealed version {}",
                sealed[0]
            )));
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| {
                StoreError::Crypto("cannot open sealed value (wrong key or tampered)".into())
            })
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (sb, key) = SecretBox::generate();
        let sealed = sb.seal(b"bot token 123").unwrap();
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 13 + TAG_LEN);
        assert_eq!(sb.open(&sealed).unwrap(), b"bot token 123");
        let again = SecretBox::from_base64(&format!(" {key}\n")).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"bot token 123");
    }

    #[test]
    fn nonces_differ() {
        let (sb, _) = SecretBox::generate();
        assert_ne!(sb.seal(b"x").unwrap(), sb.seal(b"x").unwrap());
    }

    #[test]
    fn tampering_fails() {
        let (sb, _) = SecretBox::generate();
        let sealed = sb.seal(b"secret").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(sb.open(&bad).is_err(), "flipping byte {i} went unnoticed");
        }
        assert!(sb.open(&sealed[..sealed.len() - 1]).is_err());
        assert!(sb.open(&[]).is_err());
    }

    #[test]
    fn wrong_key_fails() {
        let (a, _) = SecretBox::generate();
        let (b, _) = SecretBox::generate();
        let sealed = a.seal(b"secret").unwrap();
        assert!(matches!(b.open(&sealed), Err(StoreError::Crypto(_))));
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(SecretBox::from_base64("not base64!").is_err());
        assert!(SecretBox::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(SecretBox::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let (sb, key) = SecretBox::generate();
        let shown = format!("{sb:?}");
        assert_eq!(shown, "SecretBox(***)");
        assert!(!shown.contains(&key));
    }
}
