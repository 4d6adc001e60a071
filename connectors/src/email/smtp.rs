//! Outbound e-mail over SMTP: the service's own mail (password resets, invitations) and the
//! submission half of mailbox channels. Every sender gets its own [`SmtpMailer`], built from its
//! [`SmtpSettings`]; host and port come from the settings, so tests and the demo point it at the
//! sandbox's SMTP server. TLS is rustls; the chosen [`SmtpSecurity`] is never
//! downgraded: a server that does not offer STARTTLS when it is required fails the send.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Long enough for a slow relay, short enough that a dead one does not hold a send for a minute
/// (lettre's default).
const TIMEOUT: Duration = Duration::from_secs(10);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text; only for a server on the same host or network.
    None,
    /// Plain connection upgraded with STARTTLS, which the server must offer (usually port 587).
    StartTls,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

/// Where and as whom a mailbox sends.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The `From` mailbox, either `addr@example.com` or `Name <addr@example.com>`.
    pub from: String,
}

// Written by hand so that the password never reaches a log.
impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// A sender or recipient that is not a valid mailbox.
    #[error("invalid e-mail address {address:?}")]
    InvalidAddress {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    /// The message could not be put together from its parts.
    #[error("could not build the e-mail message")]
    Message(#[from] lettre::error::Error),
    /// The server could not be reached or the session broke down before it gave a verdict:
    /// DNS, TCP, TLS, a timeout, a protocol violation, or a required STARTTLS it does not offer.
    #[error("could not talk to the SMTP server")]
    Connection(#[source] lettre::transport::smtp::Error),
    /// The server answered with a 4xx (`permanent == false`, worth retrying later) or 5xx reply,
    /// including a refused login.
    #[error("the SMTP server rejected the message with {code}")]
    Rejected {
        code: u16,
        permanent: bool,
        #[source]
        source: lettre::transport::smtp::Error,
    },
}

impl From<lettre::transport::smtp::Error> for EmailError {
    fn from(error: lettre::transport::smtp::Error) -> Self {
        match error.status() {
            Some(code) => EmailError::Rejected {
                code: code.into(),
                permanent: error.is_permanent(),
                source: error,
            },
            None => EmailError::Connection(error),
        }
    }
}

/// Sends mail through one SMTP account. Clones share one pool of connections.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Checks the settings and prepares the connection pool; nothing is sent until the first
    /// message.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime: the pool starts its idle-connection reaper on the current one.
    pub fn new(settings: &SmtpSettings) -> Result<Self, EmailError> {
        SmtpMailer::trusting(settings, None, None)
    }

    /// Like [`SmtpMailer::new`], also trusting the CA certificates in `extra_roots_pem` besides
    /// the public roots; with `address`, connecting to that address (one vetted by
    /// [`crate::net_guard`]) instead of resolving the host again, while TLS still checks the
    /// certificate against the host's name.
    pub(crate) fn trusting(
        settings: &SmtpSettings,
        extra_roots_pem: Option<&[u8]>,
        address: Option<std::net::IpAddr>,
    ) -> Result<Self, EmailError> {
        let from = parse_mailbox(&settings.from)?;
        let tls_parameters = || match extra_roots_pem {
            None => TlsParameters::new(settings.host.clone()),
            Some(pem) => TlsParameters::builder(settings.host.clone())
                .add_root_certificate(Certificate::from_pem(pem)?)
                .build_rustls(),
        };
        let server = address.map_or_else(|| settings.host.clone(), |ip| ip.to_string());
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server);
        let builder = match settings.security {
            SmtpSecurity::None => builder.tls(Tls::None),
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls_parameters()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls_parameters()?)),
        };
        let mut builder = builder.port(settings.port).timeout(Some(TIMEOUT));
        // A username without a password (or the reverse) is an incomplete form, not an account
        // that logs in with an empty secret.
        if let (Some(username), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
        })
    }

    /// Sends a plain-text UTF-8 message to one recipient. Subject and body may hold anything a
    /// customer typed: lettre encodes them, so neither can add headers or end the message early.
    pub async fn send_text(&self, to: &str, subject: &str, body: &str) -> Result<(), EmailError> {
        let to = parse_mailbox(to)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())?;
        self.transport.send(message).await?;
        Ok(())
    }
}

impl SmtpMailer {
    /// Sends a message built elsewhere (a mailbox channel's reply, with its own headers); the
    /// envelope comes from its `From` and `To`.
    pub(crate) async fn send_message(&self, message: Message) -> Result<(), EmailError> {
        self.transport.send(message).await?;
        Ok(())
    }

    /// Connects, says EHLO, upgrades to TLS and logs in as a send would, without sending.
    pub(crate) async fn check_connection(&self) -> Result<(), EmailError> {
        self.transport.test_connection().await?;
        Ok(())
    }
}

pub(crate) fn parse_mailbox(address: &str) -> Result<Mailbox, EmailError> {
    address
        .parse()
        .map_err(|source| EmailError::InvalidAddress {
            address: address.to_owned(),
            source,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn settings(port: u16) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::None,
            username: Some("bot".into()),
            password: Some("hunter2".into()),
            from: "Omnihub <noreply@example.com>".into(),
        }
    }

    #[tokio::test]
    async fn rejects_a_bad_from_address() {
        let mut s = settings(25);
        s.from = "not an address".into();
        assert!(matches!(
            SmtpMailer::new(&s),
            Err(EmailError::InvalidAddress { .. })
        ));
    }

    #[tokio::test]
    async fn rejects_a_bad_recipient_before_connecting() {
        // Port 9 would fail to connect, so an address error proves nothing was attempted.
        let mailer = SmtpMailer::new(&settings(9)).unwrap();
        for bad in [
            "nobody",
            "a@example.com, b@example.com",
            "a@example.com\r\nBcc: b@example.com",
        ] {
            let error = mailer.send_text(bad, "s", "b").await.unwrap_err();
            assert!(
                matches!(error, EmailError::InvalidAddress { ref address, .. } if address == bad),
                "{bad:?}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connection_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mailer = SmtpMailer::new(&settings(port)).unwrap();
        let error = mailer
            .send_text("a@example.com", "s", "b")
            .await
            .unwrap_err();
        assert!(matches!(error, EmailError::Connection(_)), "{error:?}");
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", settings(25));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }
}
