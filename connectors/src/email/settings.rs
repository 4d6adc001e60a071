//! A mailbox channel's configuration, read from the channel's stored settings and credentials.
//!
//! Settings (a JSON object; the client owner fills them in, so every error names the field):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `address` | the mailbox's own address, the `From` of replies | required |
//! | `display_name` | the name shown with `address` in `From` | none |
//! | `imap_host` | IMAP server | required |
//! | `imap_security` | `tls` (implicit TLS), `starttls`, or `plain` | `tls` |
//! | `imap_port` | IMAP port | 993 for `tls`, 143 otherwise |
//! | `smtp_host` | SMTP submission server | required |
//! | `smtp_security` | `tls` (implicit TLS), `starttls`, or `plain` | `tls` |
//! | `smtp_port` | SMTP port | 465 for `tls`, 587 for `starttls`, 25 for `plain` |
//! | `folder` | the IMAP folder read for incoming mail (ASCII name) | `INBOX` |
//! | `sent_folder` | where a copy of each reply is saved (ASCII name) | none: no copy |
//!
//! Credentials: `password` (required) and `username` (defaults to `address`); the same login is
//! used for IMAP and SMTP.
//!
//! `plain` sends the password unencrypted, so it is accepted only for a server on the loopback
//! interface (`localhost`, `127.0.0.0/8`, `::1`): the local test and demo servers. TLS
//! certificates are checked against the public web PKI roots.

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

use crate::provider::ConfigError;

/// How the connection to a mail server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte.
    Tls,
    /// A plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// No encryption at all; loopback servers only.
    Plain,
}

/// One server: where, and how the connection is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

/// Everything a mailbox channel needs to read and send mail.
#[derive(Clone)]
pub struct MailboxSettings {
    pub imap: Endpoint,
    pub smtp: Endpoint,
    pub username: String,
    pub password: String,
    /// The mailbox's own address, lower case.
    pub address: String,
    pub display_name: Option<String>,
    pub folder: String,
    pub sent_folder: Option<String>,
}

// Written by hand so that the password never reaches a log.
impl fmt::Debug for MailboxSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxSettings")
            .field("imap", &self.imap)
            .field("smtp", &self.smtp)
            .field("username", &self.username)
            .field("password", &"***")
            .field("address", &self.address)
            .field("display_name", &self.display_name)
            .field("folder", &self.folder)
            .field("sent_folder", &self.sent_folder)
            .finish()
    }
}

impl MailboxSettings {
    /// Reads and checks the settings and credentials documented at the top of this module.
    pub fn from_channel(
        credentials: Option<&Value>,
        settings: &Value,
    ) -> Result<MailboxSettings, ConfigError> {
        let address = required_str(settings, "address", "settings")?.to_ascii_lowercase();
        if address.parse::<lettre::Address>().is_err() {
            return Err(ConfigError(format!(
                "settings.address is not an e-mail address: {address:?}"
            )));
        }
        let display_name = optional_str(settings, "display_name", "settings")?
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned);
        if display_name.as_deref().is_some_and(has_control_chars) {
            return Err(ConfigError(
                "settings.display_name must not contain control characters".into(),
            ));
        }
        let imap = endpoint(settings, "imap", |security| match security {
            Security::Tls => 993,
            Security::StartTls | Security::Plain => 143,
        })?;
        let smtp = endpoint(settings, "smtp", |security| match security {
            Security::Tls => 465,
            Security::StartTls => 587,
            Security::Plain => 25,
        })?;
        let folder = folder_name(settings, "folder")?.unwrap_or_else(|| "INBOX".to_owned());
        let sent_folder = folder_name(settings, "sent_folder")?;

        let credentials =
            credentials.ok_or_else(|| ConfigError("credentials are missing".into()))?;
        let password = required_str(credentials, "password", "credentials")?.to_owned();
        let username = optional_str(credentials, "username", "credentials")?
            .map(str::to_owned)
            .unwrap_or_else(|| address.clone());
        // IMAP LOGIN sends both as quoted strings, which cannot hold line breaks.
        if has_control_chars(&username) || has_control_chars(&password) {
            return Err(ConfigError(
                "credentials.username and credentials.password must not contain control characters"
                    .into(),
            ));
        }
        Ok(MailboxSettings {
            imap,
            smtp,
            username,
            password,
            address,
            display_name,
            folder,
            sent_folder,
        })
    }
}

fn folder_name(settings: &Value, key: &str) -> Result<Option<String>, ConfigError> {
    let Some(folder) = optional_str(settings, key, "settings")? else {
        return Ok(None);
    };
    // IMAP folder names outside ASCII need modified UTF-7; quotes and control characters
    // could break out of the quoted name.
    if folder.is_empty()
        || !folder.is_ascii()
        || has_control_chars(folder)
        || folder.contains(['"', '\\'])
    {
        return Err(ConfigError(format!(
            "settings.{key} must be a plain ASCII folder name, got {folder:?}"
        )));
    }
    Ok(Some(folder.to_owned()))
}

fn endpoint(
    settings: &Value,
    protocol: &str,
    default_port: impl Fn(Security) -> u16,
) -> Result<Endpoint, ConfigError> {
    let host_key = format!("{protocol}_host");
    let host = required_str(settings, &host_key, "settings")?
        .trim()
        .to_owned();
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(ConfigError(format!(
            "settings.{host_key} is not a host name: {host:?}"
        )));
    }
    let security_key = format!("{protocol}_security");
    let security = match optional_str(settings, &security_key, "settings")? {
        None | Some("tls") => Security::Tls,
        Some("starttls") => Security::StartTls,
        Some("plain") => Security::Plain,
        Some(other) => {
            return Err(ConfigError(format!(
                "settings.{security_key} must be tls, starttls or plain, got {other:?}"
            )));
        }
    };
    if security == Security::Plain && !is_loopback(&host) {
        return Err(ConfigError(format!(
            "settings.{security_key} = plain is only allowed for a server on this machine \
             (localhost), not {host}: use tls or starttls"
        )));
    }
    let port_key = format!("{protocol}_port");
    let port = match settings.get(&port_key) {
        None | Some(Value::Null) => default_port(security),
        Some(value) => value
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .filter(|port| *port != 0)
            .ok_or_else(|| ConfigError(format!("settings.{port_key} must be a port number")))?,
    };
    Ok(Endpoint {
        host,
        port,
        security,
    })
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn has_control_chars(text: &str) -> bool {
    text.chars().any(char::is_control)
}

fn required_str<'a>(object: &'a Value, key: &str, what: &str) -> Result<&'a str, ConfigError> {
    optional_str(object, key, what)?
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ConfigError(format!("{what}.{key} is required")))
}

fn optional_str<'a>(
    object: &'a Value,
    key: &str,
    what: &str,
) -> Result<Option<&'a str>, ConfigError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(ConfigError(format!("{what}.{key} must be a string"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn credentials() -> Value {
        json!({"password": "hunter2"})
    }

    #[test]
    fn defaults_are_tls_on_the_standard_ports() {
        let settings = MailboxSettings::from_channel(
            Some(&credentials()),
            &json!({"address": "Shop@Example.com", "imap_host": "imap.example.com",
                    "smtp_host": "smtp.example.com"}),
        )
        .unwrap();
        assert_eq!(settings.address, "shop@example.com");
        assert_eq!(settings.username, "shop@example.com");
        assert_eq!(settings.folder, "INBOX");
        assert_eq!(
            settings.imap,
            Endpoint {
                host: "imap.example.com".into(),
                port: 993,
                security: Security::Tls
            }
        );
        assert_eq!(settings.smtp.port, 465);
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn starttls_picks_the_submission_port() {
        let settings = MailboxSettings::from_channel(
            Some(&json!({"username": "shop", "password": "p"})),
            &json!({"address": "shop@example.com", "imap_host": "imap.example.com",
                    "imap_security": "starttls", "smtp_host": "smtp.example.com",
                    "smtp_security": "starttls", "folder": "Support"}),
        )
        .unwrap();
        assert_eq!(settings.imap.port, 143);
        assert_eq!(settings.smtp.port, 587);
        assert_eq!(settings.username, "shop");
        assert_eq!(settings.folder, "Support");
    }

    #[test]
    fn plain_text_only_on_loopback() {
        let base = |host: &str| {
            json!({"address": "shop@example.com", "imap_host": host, "imap_security": "plain",
                   "imap_port": 10143, "smtp_host": "127.0.0.1", "smtp_security": "plain"})
        };
        for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            let settings = MailboxSettings::from_channel(Some(&credentials()), &base(host));
            assert!(settings.is_ok(), "{host}: {settings:?}");
        }
        let error = MailboxSettings::from_channel(Some(&credentials()), &base("mail.example.com"))
            .unwrap_err();
        assert!(error.0.contains("imap_security"), "{error}");
    }

    #[test]
    fn errors_name_the_field() {
        let minimal = json!({"address": "a@b.c", "imap_host": "h", "smtp_host": "h"});
        // The minimal settings with one key changed (`null` removes it).
        let changed = |key: &str, value: Value| {
            let mut settings = minimal.clone();
            match value {
                Value::Null => settings.as_object_mut().unwrap().remove(key),
                value => settings.as_object_mut().unwrap().insert(key.into(), value),
            };
            settings
        };
        let password = json!({"password": "p"});
        let cases = [
            (&password, changed("address", Value::Null), "address"),
            (&password, changed("address", json!("nope")), "address"),
            (&json!({}), minimal.clone(), "password"),
            (&json!({"password": "p\r\nx"}), minimal.clone(), "password"),
            (&password, changed("imap_host", Value::Null), "imap_host"),
            (&password, changed("smtp_port", json!(70000)), "smtp_port"),
            (
                &password,
                changed("imap_security", json!("ssl")),
                "imap_security",
            ),
            (&password, changed("folder", json!("a\"b")), "folder"),
            (
                &password,
                changed("sent_folder", json!("Отправленные")),
                "sent_folder",
            ),
        ];
        for (credentials, settings, field) in cases {
            let error = MailboxSettings::from_channel(Some(credentials), &settings).unwrap_err();
            assert!(error.0.contains(field), "{field}: {error}");
            assert!(!error.0.contains("p\r\nx"));
        }
        assert!(MailboxSettings::from_channel(None, &minimal).is_err());
    }
}
