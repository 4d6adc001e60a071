//! E-mail, in two roles:
//!
//! - the service's own mail (password resets, invitations): [`SmtpMailer`] in [`smtp`];
//! - a client's mailboxes as a messaging channel: [`MailboxChannel`], reading a folder over IMAP
//!   (with IDLE) and replying through SMTP submission, threaded like a mail client.
//!
//! Incoming HTML is never shown raw: [`sanitize_html`] makes it safe to display and
//! [`html_to_text`] flattens it to text.

mod compose;
mod cursor;
mod html;
mod imap;
mod inbound;
mod mailbox;
pub mod settings;
pub mod smtp;

pub use html::{html_to_text, sanitize_html, sanitize_html_with_remote_images};
pub use inbound::HTML_BODY_NAME;
pub use mailbox::{
    BATCH, BATCH_BYTES, DEFAULT_IDLE_TIMEOUT, MAX_MESSAGE_BYTES, MailboxChannel, RESYNC_WINDOW,
    cursor_from_first_message,
};
pub use settings::{Endpoint, MailboxSettings, Security};
pub use smtp::{EmailError, SmtpMailer, SmtpSecurity, SmtpSettings};
