//! The real Dovecot (IMAP) and Postfix (SMTP) that `scripts/mail-servers.sh start` runs on
//! loopback, as tests find and use them: where they listen, and fresh mailboxes for each test
//! so tests running side by side never see each other's mail.
//!
//! Unlike the other sandbox modules this is not a fake: the e-mail connector is tested against
//! the servers its customers use. When the servers are not running, [`MailServers::find`]
//! fails with a message that names the script, so the tests fail loudly instead of passing
//! without having run.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where `scripts/mail-servers.sh` writes the servers' settings unless `OMNIHUB_MAIL_DIR` moved
/// it; `OMNIHUB_MAIL_SERVERS` names another file.
pub const DEFAULT_SETTINGS_FILE: &str = "/tmp/omnihub-mail/servers.env";

/// The running mail servers.
#[derive(Clone, Debug)]
pub struct MailServers {
    imap: SocketAddr,
    imaps: SocketAddr,
    smtp: SocketAddr,
    smtps: SocketAddr,
    ca_file: PathBuf,
    users_dir: PathBuf,
}

/// A mailbox on the servers: log in with `address` and `password` over IMAP and SMTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestMailbox {
    pub address: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the real mail servers are not available ({reason}): run `scripts/mail-servers.sh start` \
     as root (it needs the Debian packages dovecot-imapd, dovecot-lmtpd and postfix)"
)]
pub struct NotRunning {
    reason: String,
}

impl MailServers {
    /// Reads the settings file the start script wrote and checks that both servers answer.
    pub fn find() -> Result<MailServers, NotRunning> {
        let path = std::env::var("OMNIHUB_MAIL_SERVERS")
            .unwrap_or_else(|_| DEFAULT_SETTINGS_FILE.to_owned());
        let text = std::fs::read_to_string(&path).map_err(|error| NotRunning {
            reason: format!("cannot read {path}: {error}"),
        })?;
        let value = |key: &str| {
            text.lines()
                .filter_map(|line| line.split_once('='))
                .find(|(name, _)| name.trim() == key)
                .map(|(_, value)| value.trim().trim_matches('"').to_owned())
                .ok_or_else(|| NotRunning {
                    reason: format!("{path} has no {key}"),
                })
        };
        let port = |key: &str| {
            value(key)?.parse::<u16>().map_err(|error| NotRunning {
                reason: format!("{path}: {key}: {error}"),
            })
        };
        let servers = MailServers {
            imap: SocketAddr::from(([127, 0, 0, 1], port("OMNIHUB_MAIL_IMAP_PORT")?)),
            imaps: SocketAddr::from(([127, 0, 0, 1], port("OMNIHUB_MAIL_IMAPS_PORT")?)),
            smtp: SocketAddr::from(([127, 0, 0, 1], port("OMNIHUB_MAIL_SMTP_PORT")?)),
            smtps: SocketAddr::from(([127, 0, 0, 1], port("OMNIHUB_MAIL_SMTPS_PORT")?)),
            ca_file: PathBuf::from(value("OMNIHUB_MAIL_CA_FILE")?),
            users_dir: PathBuf::from(value("OMNIHUB_MAIL_USERS_DIR")?),
        };
        for (name, addr) in [
            ("IMAP", servers.imap),
            ("IMAPS", servers.imaps),
            ("SMTP", servers.smtp),
            ("SMTPS", servers.smtps),
        ] {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|error| {
                NotRunning {
                    reason: format!("{name} on {addr}: {error}"),
                }
            })?;
        }
        Ok(servers)
    }

    /// IMAP, STARTTLS offered.
    pub fn imap_addr(&self) -> SocketAddr {
        self.imap
    }

    /// IMAP over implicit TLS.
    pub fn imaps_addr(&self) -> SocketAddr {
        self.imaps
    }

    /// SMTP with AUTH, STARTTLS offered.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp
    }

    /// SMTP over implicit TLS.
    pub fn smtps_addr(&self) -> SocketAddr {
        self.smtps
    }

    /// The PEM certificate of the CA that signed the servers' certificate, which is valid for
    /// `localhost` and `127.0.0.1`.
    pub fn ca_pem(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(&self.ca_file)
    }

    /// Creates a mailbox no other test uses, `<prefix>-<unique>@<domain>`; `domain` must be one
    /// the servers deliver (`shop.test` or `customer.test`). Dovecot sees it at once.
    pub fn add_mailbox(&self, prefix: &str, domain: &str) -> std::io::Result<TestMailbox> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let unique = format!(
            "{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mailbox = TestMailbox {
            address: format!("{prefix}-{unique}@{domain}"),
            password: format!("pw-{unique}"),
        };
        // A passwd-file of its own, written aside and renamed into place, so Dovecot reads it
        // whole or not at all.
        // `nodelay`: a refused login answers at once instead of after Dovecot's delay.
        let line = format!(
            "{}:{{PLAIN}}{}::::::nodelay=yes\n",
            mailbox.address, mailbox.password
        );
        let path = self.users_dir.join(&mailbox.address);
        let partial = self.users_dir.join(format!(".{}.partial", mailbox.address));
        std::fs::write(&partial, line)?;
        std::fs::rename(&partial, &path)?;
        Ok(mailbox)
    }
}
