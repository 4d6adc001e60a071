//! A connected mailbox as a messaging channel: customers write to its address, the mailbox is
//! read over IMAP and answered over SMTP submission.
//!
//! **Conversations.** A conversation id is the `Message-ID` (without angle brackets) of the
//! thread's root: the first entry of a message's `References`, else its `In-Reply-To`, else its
//! own id (see [`inbound`](super::inbound)). A reply to conversation `C` answers `reply_to` when
//! given and found in the folder, else the newest message of thread `C` in the folder
//! (`UID SEARCH` on `Message-ID`, `References` and `In-Reply-To`); its recipient, subject and
//! threading headers come from that message (see [`compose`](super::compose)). So replies go
//! only to threads a customer started in this mailbox; sending to an address out of the blue
//! is not offered (an outbound message carries no recipient or subject).
//!
//! **Polling.** The cursor is `imap:<uidvalidity>:<last seen uid>`. The first poll (no cursor)
//! starts at the folder's current end: it returns at once, empty, with a cursor, and mail that
//! was already in the mailbox is not ingested. Each later poll fetches up to [`BATCH`] messages
//! and [`BATCH_BYTES`] above the cursor by UID (`BODY.PEEK[]`: flags are left alone; a message
//! over [`MAX_MESSAGE_BYTES`] arrives as its header and a note); when there are none it waits
//! in IDLE up to the idle timeout (25 s by default) so new mail arrives at once, and returns
//! empty if nothing came. When the folder's UIDVALIDITY changed (the folder was recreated or
//! rebuilt, so old UIDs mean nothing), polling restarts [`RESYNC_WINDOW`] UIDs below the new
//! UIDNEXT: recent mail is fetched again and deduped by its `Message-ID` (the event id), and a
//! large folder is not re-ingested. Mail from the channel's own address is skipped (copies of
//! our replies). The IDLE session is kept between polls and replaced when it breaks.
//!
//! **Sent copies.** With `sent_folder` set, every reply is also saved there (marked read), so
//! the mailbox's other clients show omnihub's answers; failing to save it only logs a warning.
//!
//! **No webhook, no callbacks.** Mail has no webhook: [`ProviderChannel::webhook`] answers
//! `MethodNotAllowed`, [`ProviderChannel::set_webhook`] and
//! [`ProviderChannel::answer_callback`] do nothing and succeed.
//!
//! **Health** logs in over IMAP, opens the folder, and connects and logs in over SMTP; a
//! refused login is `InvalidToken` with the server's words.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

use super::compose::{self, Parent};
use super::cursor::{Cursor, FileRef};
use super::html::sanitize_html;
use super::imap::{self, Connected, ImapError};
use super::inbound::{self, HTML_BODY_NAME};
use super::settings::{MailboxSettings, Security};
use super::smtp::{EmailError, SmtpMailer, SmtpSecurity, SmtpSettings};
use crate::provider::{
    ConfigError, Health, InboundUpdate, Media, Polled, ProviderChannel, WebhookError, WebhookReply,
    WebhookRequest,
};
use crate::{OutboundChannel, OutboundMessage, SendError, SendReceipt};

/// At most this many messages per poll; the next poll continues at once.
pub const BATCH: usize = 20;
/// After a UIDVALIDITY change, polling restarts this many UIDs below the new UIDNEXT.
pub const RESYNC_WINDOW: u32 = 20;
/// How long a poll waits in IDLE for new mail.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(25);
/// One poll reads at most this many bytes of mail (but always at least one message), so a run
/// of large mails cannot fill memory.
pub const BATCH_BYTES: u64 = 32 << 20;
/// A message larger than this is not read: only its header is, and its text says so.
pub const MAX_MESSAGE_BYTES: u64 = 40 << 20;
/// How often a server without IDLE is asked again, within one poll.
const NO_IDLE_INTERVAL: Duration = Duration::from_secs(10);

/// The poll cursor that makes a mailbox channel read the folder with this UIDVALIDITY from
/// its first message, where a new channel starts at the folder's end: for a mailbox known to
/// be new and to hold only mail meant for the inbox, such as the demo's, whose first mail
/// may arrive before the first poll.
pub fn cursor_from_first_message(uid_validity: u32) -> String {
    Cursor {
        uid_validity,
        last_uid: 0,
    }
    .to_string()
}

/// One connected mailbox. See the module documentation for the protocol choices.
pub struct MailboxChannel {
    settings: MailboxSettings,
    from: Mailbox,
    tls: Arc<tokio_rustls::rustls::ClientConfig>,
    /// CA certificates trusted besides the public roots (PEM), for SMTP's TLS too.
    extra_roots_pem: Option<Vec<u8>>,
    idle_timeout: Duration,
    /// Built on first use: lettre's pool needs a running Tokio runtime.
    mailer: OnceCell<SmtpMailer>,
    /// The session polls IDLE on, kept between polls.
    poll_session: Mutex<Option<Connected>>,
    /// Resolve the servers' names and refuse addresses on the server's own network.
    refuse_private: bool,
}

impl fmt::Debug for MailboxChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxChannel")
            .field("settings", &self.settings)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl MailboxChannel {
    /// Builds the channel from its stored credentials and settings (keys documented in
    /// [`settings`](super::settings)). Nothing is contacted until the first call.
    pub fn from_channel(
        credentials: Option<&Value>,
        settings: &Value,
    ) -> Result<MailboxChannel, ConfigError> {
        MailboxChannel::new(MailboxSettings::from_channel(credentials, settings)?)
    }

    pub fn new(settings: MailboxSettings) -> Result<MailboxChannel, ConfigError> {
        let email = settings.address.parse().map_err(|_| {
            ConfigError(format!(
                "settings.address {:?} is invalid",
                settings.address
            ))
        })?;
        let from = Mailbox::new(settings.display_name.clone(), email);
        let tls = imap::tls_config(None).map_err(|error| ConfigError(format!("TLS: {error}")))?;
        Ok(MailboxChannel {
            settings,
            from,
            tls,
            extra_roots_pem: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            mailer: OnceCell::new(),
            poll_session: Mutex::new(None),
            refuse_private: false,
        })
    }

    /// Resolves the IMAP and SMTP hosts at each connection and refuses them when any of their
    /// addresses is on the server's own network (loopback, private, link-local, …), connecting
    /// to the vetted address itself; every tenant's mailbox is built so (see
    /// [`crate::net_guard`]).
    pub fn refusing_private_addresses(mut self) -> MailboxChannel {
        self.refuse_private = true;
        self
    }

    /// How long a poll waits for new mail before returning empty (25 s by default).
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> MailboxChannel {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Also trusts the CA certificates in `pem` (one or more PEM blocks) for IMAP and SMTP,
    /// besides the public roots: for a mail server with a private CA, and for the tests' own
    /// servers. This is the server operator's choice, deliberately not a channel setting.
    pub fn with_extra_root_certificates(
        mut self,
        pem: &[u8],
    ) -> Result<MailboxChannel, ConfigError> {
        self.tls = imap::tls_config(Some(pem)).map_err(ConfigError)?;
        self.extra_roots_pem = Some(pem.to_vec());
        self.mailer = OnceCell::new();
        Ok(self)
    }

    /// The settings the channel was built from.
    pub fn settings(&self) -> &MailboxSettings {
        &self.settings
    }

    async fn connect(&self) -> Result<Connected, ImapError> {
        imap::connect(
            &self.settings.imap,
            &self.tls,
            &self.settings.username,
            &self.settings.password,
            self.refuse_private,
        )
        .await
    }

    /// Connects and opens the folder read-only; returns its UIDVALIDITY and UIDNEXT.
    async fn open_folder(&self, connected: &mut Connected) -> Result<(u32, u32), ImapError> {
        let folder = &self.settings.folder;
        let mailbox = imap::command("EXAMINE", connected.session.examine(folder))
            .await
            .map_err(|error| match error {
                ImapError::Refused(text) => ImapError::Refused(format!("folder {folder}: {text}")),
                other => other,
            })?;
        let uid_validity = mailbox
            .uid_validity
            .ok_or_else(|| ImapError::Connection("the server reported no UIDVALIDITY".into()))?;
        let uid_next = mailbox
            .uid_next
            .ok_or_else(|| ImapError::Connection("the server reported no UIDNEXT".into()))?;
        Ok((uid_validity, uid_next))
    }

    async fn mailer(&self) -> Result<&SmtpMailer, SendError> {
        self.mailer
            .get_or_try_init(|| async {
                let smtp = &self.settings.smtp;
                let settings = SmtpSettings {
                    host: smtp.host.clone(),
                    port: smtp.port,
                    security: match smtp.security {
                        Security::Tls => SmtpSecurity::Tls,
                        Security::StartTls => SmtpSecurity::StartTls,
                        Security::Plain => SmtpSecurity::None,
                    },
                    username: Some(self.settings.username.clone()),
                    password: Some(self.settings.password.clone()),
                    from: self.from.to_string(),
                };
                // Resolved once for the pool's lifetime: its reconnections reuse the vetted
                // address.
                let address = if self.refuse_private {
                    let addresses = crate::net_guard::resolve_public(&smtp.host, smtp.port)
                        .await
                        .map_err(|refusal| {
                            let reason = format!("SMTP server {refusal}");
                            if refusal.private {
                                SendError::Permanent { reason }
                            } else {
                                SendError::Transient {
                                    retry_after: None,
                                    reason,
                                }
                            }
                        })?;
                    addresses.first().map(std::net::SocketAddr::ip)
                } else {
                    None
                };
                SmtpMailer::trusting(&settings, self.extra_roots_pem.as_deref(), address)
                    .map_err(|error| smtp_error(&error))
            })
            .await
    }

    async fn poll_once(
        &self,
        mut connected: Connected,
        cursor: Option<Cursor>,
    ) -> Result<(Connected, Polled), ImapError> {
        let (uid_validity, uid_next) = self.open_folder(&mut connected).await?;
        let last_uid = match cursor {
            None => {
                let start = Cursor {
                    uid_validity,
                    last_uid: uid_next.saturating_sub(1),
                };
                let polled = Polled {
                    updates: Vec::new(),
                    cursor: Some(start.to_string()),
                };
                return Ok((connected, polled));
            }
            Some(cursor) if cursor.uid_validity == uid_validity => cursor.last_uid,
            Some(cursor) => {
                tracing::warn!(
                    folder = %self.settings.folder,
                    old = cursor.uid_validity,
                    new = uid_validity,
                    "IMAP UIDVALIDITY changed; re-reading the most recent mail"
                );
                uid_next.saturating_sub(1).saturating_sub(RESYNC_WINDOW)
            }
        };

        imap::forget_announcements(&connected.session);
        let mut uids = imap::uids_after(&mut connected.session, last_uid).await?;
        if uids.is_empty() {
            if connected.can_idle {
                connected.session = imap::idle(connected.session, self.idle_timeout).await?;
            } else {
                tokio::time::sleep(self.idle_timeout.min(NO_IDLE_INTERVAL)).await;
            }
            uids = imap::uids_after(&mut connected.session, last_uid).await?;
        }
        uids.truncate(BATCH);
        let plan = plan_batch(&imap::fetch_sizes(&mut connected.session, &uids).await?);

        let mut fetched = imap::fetch_raw(&mut connected.session, &plan.whole).await?;
        for (uid, size) in &plan.headers_only {
            if let Some(header) = imap::fetch_header(&mut connected.session, *uid).await? {
                fetched.push((*uid, header));
            }
            tracing::warn!(
                uid,
                size,
                "e-mail too large to read; only its header is taken"
            );
        }
        fetched.sort_unstable_by_key(|(uid, _)| *uid);

        let mut updates = Vec::with_capacity(fetched.len());
        for (uid, raw) in fetched {
            let Some(message) = inbound::parse(&raw) else {
                tracing::warn!(uid, "skipping a message that does not parse as e-mail");
                continue;
            };
            let mut inbound = inbound::to_inbound(&message, uid_validity, uid);
            if inbound.sender.email.as_deref() == Some(self.settings.address.as_str()) {
                continue;
            }
            if let Some((_, size)) = plan.headers_only.iter().find(|(big, _)| *big == uid) {
                inbound.text = format!(
                    "[This e-mail is {} MB, more than the {} MB omnihub reads: open it in the \
                     mailbox.]",
                    size.div_ceil(1 << 20),
                    MAX_MESSAGE_BYTES >> 20
                );
            }
            updates.push(InboundUpdate::Message(inbound));
        }
        // Past every UID handled, fetched or not (one expunged meanwhile is gone for good).
        let cursor = Cursor {
            uid_validity,
            last_uid: plan.last.unwrap_or(last_uid),
        };
        let polled = Polled {
            updates,
            cursor: Some(cursor.to_string()),
        };
        Ok((connected, polled))
    }

    /// The message a reply in `conversation` answers.
    async fn find_parent(
        &self,
        conversation: &str,
        reply_to: Option<&str>,
    ) -> Result<Parent, SendError> {
        let mut connected = self.connect().await?;
        self.open_folder(&mut connected).await?;
        let session = &mut connected.session;
        let mut uid = None;
        if let Some(reply_to) = reply_to {
            uid = self
                .search_newest(session, &by_message_id(reply_to)?)
                .await?;
        }
        if uid.is_none() {
            uid = self
                .search_newest(session, &in_thread(conversation)?)
                .await?;
        }
        let header = match uid {
            Some(uid) => imap::fetch_header(session, uid).await?,
            None => None,
        };
        logout(connected).await;
        let not_found = || SendError::Permanent {
            reason: format!(
                "conversation {conversation:?} has no message in folder {} to answer",
                self.settings.folder
            ),
        };
        let header = header.ok_or_else(not_found)?;
        let message = inbound::parse(&header).ok_or_else(not_found)?;
        Parent::from_header(&message, &self.settings.address).ok_or_else(|| SendError::Permanent {
            reason: format!(
                "the message answered in conversation {conversation:?} has no Message-ID or \
                     sender to reply to"
            ),
        })
    }

    async fn save_copy(&self, folder: &str, raw: &[u8]) -> Result<(), ImapError> {
        let mut connected = self.connect().await?;
        let saved = imap::append_seen(&mut connected.session, folder, raw).await;
        logout(connected).await;
        saved
    }

    async fn search_newest(
        &self,
        session: &mut imap::Session,
        query: &str,
    ) -> Result<Option<u32>, ImapError> {
        let found = imap::command("UID SEARCH", session.uid_search(query)).await?;
        Ok(found.into_iter().max())
    }

    async fn fetch_media(&self, file_ref: FileRef) -> Result<Media, SendError> {
        let gone = || SendError::Permanent {
            reason: format!(
                "message {} is no longer in folder {}",
                file_ref.uid(),
                self.settings.folder
            ),
        };
        let mut connected = self.connect().await?;
        let (uid_validity, _) = self.open_folder(&mut connected).await?;
        if uid_validity != file_ref.uid_validity() {
            logout(connected).await;
            return Err(gone());
        }
        let fetched = imap::fetch_raw(&mut connected.session, &[file_ref.uid()]).await?;
        logout(connected).await;
        let (_, raw) = fetched.into_iter().next().ok_or_else(gone)?;
        let message = inbound::parse(&raw).ok_or_else(gone)?;
        match file_ref {
            FileRef::Html { .. } => {
                let html = inbound::html_body(&message).ok_or_else(gone)?;
                Ok(Media {
                    bytes: sanitize_html(html).into_bytes(),
                    mime_type: Some("text/html; charset=utf-8".into()),
                    file_name: Some(HTML_BODY_NAME.into()),
                })
            }
            FileRef::Part { part, .. } => {
                let is_attachment = message.attachments.contains(&part);
                let part = message
                    .parts
                    .get(part as usize)
                    .filter(|_| is_attachment)
                    .ok_or_else(gone)?;
                use mail_parser::MimeHeaders;
                Ok(Media {
                    bytes: part.contents().to_vec(),
                    mime_type: part.content_type().map(|ct| match ct.subtype() {
                        Some(subtype) => format!("{}/{}", ct.ctype(), subtype),
                        None => ct.ctype().to_owned(),
                    }),
                    file_name: part.attachment_name().map(str::to_owned),
                })
            }
        }
    }
}

#[async_trait]
impl OutboundChannel for MailboxChannel {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let parent = self
            .find_parent(&message.conversation, message.reply_to.as_deref())
            .await?;
        let message_id = compose::message_id_for(&message.idempotency_key, &self.settings.address);
        let mail = compose::reply(&self.from, &parent, message, &message_id)?;
        let copy = self.settings.sent_folder.as_ref().map(|_| mail.formatted());
        self.mailer()
            .await?
            .send_message(mail)
            .await
            .map_err(|error| smtp_error(&error))?;
        if let (Some(folder), Some(copy)) = (&self.settings.sent_folder, copy) {
            // The mail is out: a missing copy is worth a warning, not a failed (and retried)
            // send.
            if let Err(error) = self.save_copy(folder, &copy).await {
                tracing::warn!(%folder, %error, "could not save a copy of a sent e-mail");
            }
        }
        Ok(SendReceipt {
            provider_message_id: Some(message_id),
        })
    }
}

#[async_trait]
impl ProviderChannel for MailboxChannel {
    fn webhook(&self, _request: &WebhookRequest<'_>) -> Result<WebhookReply, WebhookError> {
        Err(WebhookError::MethodNotAllowed)
    }

    async fn poll(&self, cursor: Option<&str>) -> Result<Polled, SendError> {
        let cursor = cursor
            .map(|text| {
                Cursor::parse(text).ok_or_else(|| SendError::Permanent {
                    reason: format!("{text:?} is not a cursor of a mailbox channel"),
                })
            })
            .transpose()?;
        let mut slot = self.poll_session.lock().await;
        let kept = slot.take();
        let reused = kept.is_some();
        let connected = match kept {
            Some(connected) => connected,
            None => self.connect().await?,
        };
        let outcome = match self.poll_once(connected, cursor).await {
            // A kept session may have been closed by the server while unused: one fresh try.
            Err(ImapError::Connection(reason)) if reused => {
                tracing::debug!(%reason, "IMAP session broke; reconnecting");
                self.poll_once(self.connect().await?, cursor).await
            }
            other => other,
        };
        let (connected, polled) = outcome?;
        *slot = Some(connected);
        Ok(polled)
    }

    async fn download(&self, file_ref: &str) -> Result<Media, SendError> {
        let parsed = FileRef::parse(file_ref).ok_or_else(|| SendError::Permanent {
            reason: format!("{file_ref:?} is not a file of a mailbox channel"),
        })?;
        self.fetch_media(parsed).await
    }

    /// Mail has no webhook to register: nothing to do.
    async fn set_webhook(&self, _url: Option<&str>) -> Result<(), SendError> {
        Ok(())
    }

    /// Mail has no buttons to acknowledge: nothing to do.
    async fn answer_callback(&self, _callback_id: &str) -> Result<(), SendError> {
        Ok(())
    }

    async fn health(&self) -> Health {
        let imap = async {
            let mut connected = self.connect().await?;
            let opened = self.open_folder(&mut connected).await;
            logout(connected).await;
            opened.map(|_| ())
        };
        match imap.await {
            Ok(()) => {}
            Err(ImapError::LoginRefused(text)) => {
                return Health::InvalidToken(format!("IMAP: {text}"));
            }
            Err(error @ ImapError::Connection(_)) => return Health::Unreachable(error.to_string()),
            Err(error) => return Health::Failing(error.to_string()),
        }
        let mailer = match self.mailer().await {
            Ok(mailer) => mailer,
            Err(error) => return Health::of_error(&error),
        };
        match mailer.check_connection().await {
            Ok(()) => Health::Ok,
            Err(
                error @ EmailError::Rejected {
                    code: 530 | 534 | 535,
                    ..
                },
            ) => Health::InvalidToken(format!("SMTP: {}", error_chain(&error))),
            Err(error @ EmailError::Connection(_)) => {
                Health::Unreachable(format!("SMTP: {}", error_chain(&error)))
            }
            Err(error) => Health::Failing(format!("SMTP: {}", error_chain(&error))),
        }
    }
}

/// Which of the next messages (UID and size, in UID order) one poll reads.
#[derive(Debug, Default, PartialEq, Eq)]
struct BatchPlan {
    /// Read whole.
    whole: Vec<u32>,
    /// Too large: header only, with the size.
    headers_only: Vec<(u32, u64)>,
    /// The last UID handled: the cursor moves here.
    last: Option<u32>,
}

/// Takes messages in UID order while they fit [`BATCH_BYTES`]; a message over
/// [`MAX_MESSAGE_BYTES`] costs only its header.
fn plan_batch(sizes: &[(u32, u64)]) -> BatchPlan {
    let mut plan = BatchPlan::default();
    let mut total = 0u64;
    for &(uid, size) in sizes {
        if size > MAX_MESSAGE_BYTES {
            plan.headers_only.push((uid, size));
        } else if plan.whole.is_empty() || total + size <= BATCH_BYTES {
            plan.whole.push(uid);
            total += size;
        } else {
            break;
        }
        plan.last = Some(uid);
    }
    plan
}

/// Ends a short-lived session politely; a failure changes nothing.
async fn logout(mut connected: Connected) {
    let _ = imap::command("LOGOUT", connected.session.logout()).await;
}

fn smtp_error(error: &EmailError) -> SendError {
    let reason = format!("SMTP: {}", error_chain(error));
    match error {
        EmailError::Connection(_) => SendError::Transient {
            retry_after: None,
            reason,
        },
        EmailError::Rejected {
            permanent: false, ..
        } => SendError::Transient {
            retry_after: None,
            reason,
        },
        EmailError::Rejected { .. }
        | EmailError::InvalidAddress { .. }
        | EmailError::Message(_) => SendError::Permanent { reason },
    }
}

/// An error and its sources, so the server's own words reach the operator.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A message id safe inside a quoted IMAP search string.
fn quoted_id(id: &str) -> Result<String, SendError> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    if id.is_empty()
        || id.contains(|c: char| c == '"' || c == '\\' || c.is_whitespace() || c.is_control())
    {
        return Err(SendError::Permanent {
            reason: format!("{id:?} is not a message id"),
        });
    }
    Ok(format!("\"<{id}>\""))
}

fn by_message_id(id: &str) -> Result<String, SendError> {
    Ok(format!("HEADER Message-ID {}", quoted_id(id)?))
}

/// Every message of the thread rooted at `root`.
fn in_thread(root: &str) -> Result<String, SendError> {
    let id = quoted_id(root)?;
    Ok(format!(
        "OR OR HEADER Message-ID {id} HEADER References {id} HEADER In-Reply-To {id}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_stops_at_its_byte_budget() {
        let mb = 1u64 << 20;
        let plan = plan_batch(&[(1, 10 * mb), (2, 20 * mb), (3, 5 * mb), (4, mb)]);
        assert_eq!(plan.whole, [1, 2]);
        assert_eq!(plan.last, Some(2));

        // One message always goes, even when it alone is over the budget.
        let plan = plan_batch(&[(7, 39 * mb), (8, mb)]);
        assert_eq!(plan.whole, [7]);
        assert_eq!(plan.last, Some(7));

        // A huge one costs only its header, and the batch goes on.
        let plan = plan_batch(&[(1, mb), (2, 100 * mb), (3, mb)]);
        assert_eq!(plan.whole, [1, 3]);
        assert_eq!(plan.headers_only, [(2, 100 * mb)]);
        assert_eq!(plan.last, Some(3));

        assert_eq!(plan_batch(&[]), BatchPlan::default());
    }
}
