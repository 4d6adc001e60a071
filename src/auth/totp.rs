//! Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30 s, one step of clock skew), the
//! setting every authenticator app understands.

use std::collections::HashMap;
use std::sync::Mutex;

use omnihub_core::UserId;
use totp_rs::{Builder, Totp};

const ISSUER: &str = "omnihub";

fn build(secret: &[u8], account: &str) -> Option<Totp> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(ISSUER))
        .build()
        .ok()
}

/// A fresh 160-bit secret.
pub fn new_secret() -> Vec<u8> {
    totp_rs::Secret::generate().as_bytes().to_vec()
}

/// The base32 secret and the `otpauth://` URL to show as a QR code.
pub fn enrolment(secret: &[u8], account: &str) -> Option<(String, String)> {
    let totp = build(secret, account)?;
    let url = totp.to_url().ok()?;
    Some((totp.secret().to_base32(), url))
}

/// Remembers the last accepted time step per user so a code cannot be used twice.
#[derive(Default)]
pub struct ReplayGuard {
    last_step: Mutex<HashMap<UserId, u64>>,
}

impl ReplayGuard {
    /// True when `code` is valid now and was not accepted before for this user.
    pub fn verify(&self, user: UserId, secret: &[u8], code: &str) -> bool {
        let Some(step) = build(secret, "").and_then(|t| t.check_current(code.trim())) else {
            return false;
        };
        let Ok(mut last) = self.last_step.lock() else {
            return false;
        };
        match last.get(&user) {
            Some(prev) if *prev >= step => false,
            _ => {
                last.insert(user, step);
                true
            }
        }
    }
}

/// The current code for a secret; tests and the demo use it to act as an authenticator app.
pub fn current_code(secret: &[u8]) -> Option<String> {
    build(secret, "").map(|t| t.generate_current().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_accepted_once() {
        let secret = new_secret();
        let guard = ReplayGuard::default();
        let user = UserId::new();
        let code = current_code(&secret).unwrap();
        assert!(guard.verify(user, &secret, &code));
        assert!(
            !guard.verify(user, &secret, &code),
            "replayed code must fail"
        );
        assert!(!guard.verify(UserId::new(), &new_secret(), &code) || code.len() != 6);
        let (b32, url) = enrolment(&secret, "anna@example.ru").unwrap();
        assert!(url.starts_with("otpauth://totp/"));
        assert!(url.contains(&b32));
    }
}
