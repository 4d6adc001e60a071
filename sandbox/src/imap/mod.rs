//! A fake IMAP server: IMAP4rev1 (RFC 3501) with IDLE (RFC 2177), in plain text on
//! 127.0.0.1, keeping mail in memory ([`MailStore`]). It is what the mailbox channel's
//! connector talks to in `omnihub demo`, where the real Dovecot of the tests
//! ([`crate::mail_servers`]) cannot be assumed.
//!
//! It is strict where a real server is: every command is answered with its tag, `BAD` for
//! what is malformed, unknown or not allowed in the session's state, `NO` for a refused login
//! or a missing mailbox; message bodies go out as `{n}` literals of their exact bytes; a
//! folder's UIDVALIDITY never changes during its life and its UIDs only grow; a client in
//! IDLE is told `* n EXISTS` the moment mail arrives. Offered: CAPABILITY, NOOP, LOGOUT,
//! LOGIN, SELECT, EXAMINE, CREATE, LIST, STATUS, APPEND, IDLE, CHECK, CLOSE, EXPUNGE,
//! SEARCH, FETCH, STORE, COPY and their UID forms. Not offered, and refused as such:
//! STARTTLS (loopback only), AUTHENTICATE, DELETE, RENAME, (UN)SUBSCRIBE, LSUB, LITERAL+,
//! the ENVELOPE and BODYSTRUCTURE items and MIME part sections. Messages are never removed
//! (see [`store`]).
//!
//! Mail gets in through [`MailStore::deliver`], as a mail server's local delivery puts it in
//! a mailbox; [`letter`] writes the RFC 5322 messages the demo's customers send. Mail
//! omnihub sends goes out over SMTP, which the capturing [`crate::smtp`] sandbox receives.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

mod fetch;
pub mod letter;
mod message;
mod search;
mod session;
pub mod store;
mod syntax;

pub use store::{MailStore, StoreError, StoredMessage};

/// What the server says it can do, in the greeting, after LOGIN and to CAPABILITY.
pub(crate) const CAPABILITIES: &str = "IMAP4rev1 IDLE";
pub(crate) const GREETING: &str = "omnihub sandbox IMAP ready";

/// A running IMAP sandbox on an ephemeral loopback port. Dropping it stops the server and
/// closes every session; the store lives on with whoever else holds it.
pub struct ImapSandbox {
    addr: SocketAddr,
    store: MailStore,
    server: JoinHandle<()>,
}

impl ImapSandbox {
    /// Starts serving `store`'s accounts.
    pub async fn start(store: MailStore) -> std::io::Result<ImapSandbox> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(accept_loop(listener, store.clone()));
        Ok(ImapSandbox {
            addr,
            store,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> &MailStore {
        &self.store
    }
}

impl Drop for ImapSandbox {
    fn drop(&mut self) {
        // The accept loop owns the session tasks, so aborting it ends them too.
        self.server.abort();
    }
}

async fn accept_loop(listener: TcpListener, store: MailStore) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(session::serve(stream, store.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "imap sandbox: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next() => {}
        }
    }
}
