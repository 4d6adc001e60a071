//! HMAC-SHA256 webhook signatures as Meta (`X-Hub-Signature-256`) and Viber
//! (`X-Viber-Content-Signature`) compute them: lower-case hex of HMAC-SHA256 over the raw body,
//! and comparisons that take the same time whatever the secret, so an attacker cannot find a
//! valid signature or token byte by byte.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256(`key`, `body`); also how a key for one purpose is derived from the server's
/// secret key (`body` naming the purpose).
pub fn hmac_sha256(key: &[u8], body: &[u8]) -> [u8; 32] {
    let Some(mut mac) = keyed(key) else {
        return [0; 32];
    };
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex of HMAC-SHA256(`key`, `body`).
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    hmac_sha256(key, body)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `signature_hex` (either case) is HMAC-SHA256(`key`, `body`), compared in constant
/// time. Anything that is not 64 hex digits is simply not a valid signature.
pub fn verify_hmac_sha256_hex(key: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Some(signature) = decode_hex(signature_hex.trim()) else {
        return false;
    };
    let Some(mut mac) = keyed(key) else {
        return false;
    };
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature).is_ok()
}

/// HMAC accepts keys of any length, so this is always `Some`; the `Option` only spares an
/// `expect` on an error that cannot happen.
fn keyed(key: &[u8]) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(key).ok()
}

/// Equality of two secrets in time that depends only on their lengths (`subtle`, whose
/// comparison the optimiser cannot turn into an early exit). Every connector compares its
/// webhook secrets with this one function.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_only_the_right_signature() {
        let signature = hmac_sha256_hex(b"secret", b"body");
        assert!(verify_hmac_sha256_hex(b"secret", b"body", &signature));
        assert!(verify_hmac_sha256_hex(
            b"secret",
            b"body",
            &signature.to_uppercase()
        ));
        assert!(!verify_hmac_sha256_hex(b"secret", b"body!", &signature));
        assert!(!verify_hmac_sha256_hex(b"other", b"body", &signature));
        assert!(!verify_hmac_sha256_hex(b"secret", b"body", ""));
        assert!(!verify_hmac_sha256_hex(b"secret", b"body", "zz"));
        assert!(!verify_hmac_sha256_hex(
            b"secret",
            b"body",
            &signature[..62]
        ));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
