//! Validation of what people type, shared by the API and the CLI.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("`{field}` must be a valid e-mail address")]
    Email { field: &'static str },
    #[error("password must be {min} to {max} characters long")]
    PasswordLength { min: usize, max: usize },
    #[error("`{field}` must be 1 to {max} characters without control characters")]
    Text { field: &'static str, max: usize },
    #[error("locale must be one of: ru, en")]
    Locale,
}

pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 256;
pub const LOCALES: [&str; 2] = ["ru", "en"];

/// Trims and lower-cases an e-mail address and checks its shape (one `@`, a dotted domain).
pub fn email(raw: &str) -> Result<String, Invalid> {
    let e = raw.trim().to_lowercase();
    let bad = Invalid::Email { field: "email" };
    if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad);
    }
    let (local, domain) = e.split_once('@').ok_or(Invalid::Email { field: "email" })?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63);
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(bad);
    }
    Ok(e)
}

pub fn password(raw: &str) -> Result<(), Invalid> {
    let n = raw.chars().count();
    if (PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        Ok(())
    } else {
        Err(Invalid::PasswordLength {
            min: PASSWORD_MIN,
            max: PASSWORD_MAX,
        })
    }
}

/// A display name, client name or group name: trimmed, non-empty, bounded, printable.
pub fn text(field: &'static str, raw: &str, max: usize) -> Result<String, Invalid> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > max || t.chars().any(char::is_control) {
        return Err(Invalid::Text { field, max });
    }
    Ok(t.to_string())
}

pub fn locale(raw: &str) -> Result<String, Invalid> {
    LOCALES
        .iter()
        .find(|l| **l == raw)
        .map(|l| l.to_string())
        .ok_or(Invalid::Locale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("  Anna@Example.RU ").unwrap(), "anna@example.ru");
        for bad in [
            "", "anna", "anna@", "@x.ru", "a@b", "a@@b.ru", "a b@c.ru", "a@b..ru",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_and_texts() {
        assert!(password("short").is_err());
        assert!(password("long enough pass").is_ok());
        assert_eq!(text("name", "  Ромашка ", 10).unwrap(), "Ромашка");
        assert!(text("name", "   ", 10).is_err());
        assert!(text("name", "a\u{0}b", 10).is_err());
        assert!(text("name", "abcdefghijk", 10).is_err());
    }
}
