//! IMAP sessions of a mailbox channel: connecting (implicit TLS, STARTTLS, or plain text on
//! loopback), logging in, and the few commands the channel needs, each bounded in time so a
//! silent server cannot hold a poll or a send forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::settings::{Endpoint, Security};
use crate::SendError;

/// Connecting, the greeting, STARTTLS and LOGIN together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Any one command and its answer (a FETCH of a batch of large messages included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The byte stream under an IMAP session.
#[derive(Debug)]
pub(crate) enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

pub(crate) type Session = async_imap::Session<ImapStream>;

/// Why an IMAP exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImapError {
    /// The server refused the login; the server's words.
    #[error("IMAP login refused: {0}")]
    LoginRefused(String),
    /// The server refused a command (a missing folder, say); the server's words.
    #[error("IMAP server refused: {0}")]
    Refused(String),
    /// Network, TLS, timeout or protocol trouble.
    #[error("IMAP connection failed: {0}")]
    Connection(String),
}

impl From<async_imap::error::Error> for ImapError {
    fn from(error: async_imap::error::Error) -> Self {
        match error {
            async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
                ImapError::Refused(server_words(&text))
            }
            other => ImapError::Connection(other.to_string()),
        }
    }
}

/// The server's text of a NO or BAD answer, which async-imap hands over as
/// `code: Some(..), info: Some("[CODE] text")`.
fn server_words(text: &str) -> String {
    let info = text
        .split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"));
    match info {
        Some(info) => info.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => text.to_owned(),
    }
}

impl From<ImapError> for SendError {
    fn from(error: ImapError) -> Self {
        match error {
            // Nothing changes until the owner fixes the password or the folder.
            ImapError::LoginRefused(_) | ImapError::Refused(_) => SendError::Permanent {
                reason: error.to_string(),
            },
            ImapError::Connection(_) => SendError::Transient {
                retry_after: None,
                reason: error.to_string(),
            },
        }
    }
}

/// A logged-in session and what the server can do.
pub(crate) struct Connected {
    pub session: Session,
    pub can_idle: bool,
}

/// Connects and logs in. With `refuse_private`, the host is resolved first and refused when any
/// of its addresses is on the server's own network, and the connection goes to the vetted
/// addresses (see [`crate::net_guard`]).
pub(crate) async fn connect(
    endpoint: &Endpoint,
    tls: &Arc<tokio_rustls::rustls::ClientConfig>,
    username: &str,
    password: &str,
    refuse_private: bool,
) -> Result<Connected, ImapError> {
    let login = async {
        let connected = if refuse_private {
            let addresses = crate::net_guard::resolve_public(&endpoint.host, endpoint.port)
                .await
                .map_err(|refusal| ImapError::Connection(refusal.reason))?;
            TcpStream::connect(&addresses[..]).await
        } else {
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await
        };
        let tcp = connected.map_err(|error| {
            ImapError::Connection(format!("{}:{}: {error}", endpoint.host, endpoint.port))
        })?;
        let client = match endpoint.security {
            Security::Plain => {
                let mut client = async_imap::Client::new(ImapStream::Plain(tcp));
                read_greeting(&mut client).await?;
                client
            }
            Security::Tls => {
                let stream = wrap_tls(tcp, &endpoint.host, tls).await?;
                let mut client = async_imap::Client::new(stream);
                read_greeting(&mut client).await?;
                client
            }
            Security::StartTls => {
                let mut client = async_imap::Client::new(ImapStream::Plain(tcp));
                read_greeting(&mut client).await?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|error| ImapError::Connection(format!("STARTTLS refused: {error}")))?;
                let ImapStream::Plain(tcp) = client.into_inner() else {
                    return Err(ImapError::Connection("STARTTLS on a TLS stream".into()));
                };
                // No greeting after STARTTLS: the session continues.
                async_imap::Client::new(wrap_tls(tcp, &endpoint.host, tls).await?)
            }
        };
        let mut session = client
            .login(username, password)
            .await
            .map_err(|(error, _client)| match error {
                async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
                    ImapError::LoginRefused(server_words(&text))
                }
                other => ImapError::Connection(other.to_string()),
            })?;
        let can_idle = session.capabilities().await?.has_str("IDLE");
        Ok(Connected { session, can_idle })
    };
    bounded(CONNECT_TIMEOUT, "connecting", login).await
}

/// Runs one IMAP exchange within [`COMMAND_TIMEOUT`].
pub(crate) async fn command<T>(
    what: &str,
    exchange: impl Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, ImapError> {
    bounded(COMMAND_TIMEOUT, what, async { Ok(exchange.await?) }).await
}

async fn bounded<T>(
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(ImapError::Connection(format!(
            "{what} timed out after {}s",
            limit.as_secs()
        )))
    })
}

/// UIDs above `after` in the selected folder, in ascending order. `UID SEARCH UID n:*` also
/// matches the highest UID when it is below `n`, hence the filter.
pub(crate) async fn uids_after(session: &mut Session, after: u32) -> Result<Vec<u32>, ImapError> {
    let query = format!("UID {}:*", after.saturating_add(1));
    let found = command("UID SEARCH", session.uid_search(query)).await?;
    let mut uids: Vec<u32> = found.into_iter().filter(|uid| *uid > after).collect();
    uids.sort_unstable();
    Ok(uids)
}

/// The full raw messages of these UIDs, without setting `\Seen`.
pub(crate) async fn fetch_raw(
    session: &mut Session,
    uids: &[u32],
) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let fetches = command("UID FETCH", async {
        session
            .uid_fetch(uid_set(uids), "(UID BODY.PEEK[])")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    let mut messages: Vec<(u32, Vec<u8>)> = fetches
        .iter()
        .filter_map(|fetch| Some((fetch.uid?, fetch.body()?.to_vec())))
        .collect();
    messages.sort_unstable_by_key(|(uid, _)| *uid);
    Ok(messages)
}

/// The sizes (RFC822.SIZE) of these UIDs, in the order asked.
pub(crate) async fn fetch_sizes(
    session: &mut Session,
    uids: &[u32],
) -> Result<Vec<(u32, u64)>, ImapError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let fetches = command("UID FETCH", async {
        session
            .uid_fetch(uid_set(uids), "(UID RFC822.SIZE)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    Ok(uids
        .iter()
        .map(|uid| {
            let size = fetches
                .iter()
                .find(|fetch| fetch.uid == Some(*uid))
                .and_then(|fetch| fetch.size)
                .unwrap_or(0);
            (*uid, u64::from(size))
        })
        .collect())
}

fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Saves a message into a folder, marked as read (a copy of mail we sent).
pub(crate) async fn append_seen(
    session: &mut Session,
    folder: &str,
    raw: &[u8],
) -> Result<(), ImapError> {
    command(
        "APPEND",
        session.append(folder, Some("(\\Seen)"), None, raw),
    )
    .await
}

/// Only the header of one message by UID, without setting `\Seen`.
pub(crate) async fn fetch_header(
    session: &mut Session,
    uid: u32,
) -> Result<Option<Vec<u8>>, ImapError> {
    let fetches = command("UID FETCH", async {
        session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[HEADER])")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    Ok(fetches
        .iter()
        .find(|fetch| fetch.uid == Some(uid))
        .and_then(|fetch| fetch.header())
        .map(<[u8]>::to_vec))
}

/// Forgets what the server announced so far; [`idle`] then reacts only to what comes after.
/// Call it right before the search that [`idle`] follows.
pub(crate) fn forget_announcements(session: &Session) {
    while session.unsolicited_responses.try_recv().is_ok() {}
}

/// Waits in IDLE until the server reports a change or `limit` passes, then leaves IDLE and
/// hands the session back. The caller searches again either way.
///
/// A server announces new mail once per session: mail that arrived during the caller's search
/// is announced in that search's answer, and mail that arrived between the search and IDLE is
/// announced right as IDLE begins. async-imap files both with the unsolicited responses, where
/// the wait would never see them, so they are looked for there before waiting.
pub(crate) async fn idle(session: Session, limit: Duration) -> Result<Session, ImapError> {
    let unsolicited = session.unsolicited_responses.clone();
    let announced = move || {
        std::iter::from_fn(|| unsolicited.try_recv().ok())
            .filter(|response| matches!(response, UnsolicitedResponse::Exists(_)))
            .count()
            > 0
    };
    if announced() {
        return Ok(session);
    }
    let mut handle = session.idle();
    command("IDLE", handle.init()).await?;
    if !announced() {
        // The stop source ends the wait when dropped, so it lives exactly as long as the wait.
        let (wait, _stop) = handle.wait_with_timeout(limit);
        let outcome = bounded(limit + COMMAND_TIMEOUT, "IDLE", async { Ok(wait.await?) }).await?;
        if let IdleResponse::NewData(data) = &outcome {
            tracing::debug!(response = ?data.parsed(), "IMAP IDLE woke");
        }
    }
    command("DONE", handle.done()).await
}

async fn read_greeting(client: &mut async_imap::Client<ImapStream>) -> Result<(), ImapError> {
    match client.read_response().await {
        Ok(Some(_greeting)) => Ok(()),
        Ok(None) => Err(ImapError::Connection(
            "the server closed the connection before greeting".into(),
        )),
        Err(error) => Err(ImapError::Connection(format!(
            "reading the greeting: {error}"
        ))),
    }
}

async fn wrap_tls(
    tcp: TcpStream,
    host: &str,
    tls: &Arc<tokio_rustls::rustls::ClientConfig>,
) -> Result<ImapStream, ImapError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|error| ImapError::Connection(format!("{host}: {error}")))?;
    let stream = TlsConnector::from(Arc::clone(tls))
        .connect(name, tcp)
        .await
        .map_err(|error| ImapError::Connection(format!("TLS with {host}: {error}")))?;
    Ok(ImapStream::Tls(Box::new(stream)))
}

/// A TLS client configuration trusting the web PKI roots and the CA certificates in
/// `extra_roots_pem`, with the `ring` provider chosen here so it does not depend on a
/// process-wide default.
pub(crate) fn tls_config(
    extra_roots_pem: Option<&[u8]>,
) -> Result<Arc<tokio_rustls::rustls::ClientConfig>, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_roots_pem {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("extra root certificates: {error}"))?;
        if certificates.is_empty() {
            return Err("extra root certificates: no certificate in the PEM text".into());
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|error| format!("extra root certificate: {error}"))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| error.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            ImapStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            ImapStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            ImapStream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            ImapStream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::server_words;

    #[test]
    fn keeps_only_the_servers_words() {
        assert_eq!(
            server_words(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(
            server_words(r#"code: None, info: Some("say \"hi\"")"#),
            "say \"hi\""
        );
        assert_eq!(server_words("something else"), "something else");
    }
}
