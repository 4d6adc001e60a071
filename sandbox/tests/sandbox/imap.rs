//! The IMAP sandbox driven by the real async-imap client and by omnihub's mailbox channel, and
//! by hand over a raw socket for what a well-behaved client never sends.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use chrono::DateTime;
use futures_util::TryStreamExt;
use mail_parser::MessageParser;
use omnihub_connectors::OutboundChannel;
use omnihub_connectors::OutboundMessage;
use omnihub_connectors::email::MailboxChannel;
use omnihub_connectors::provider::{InboundUpdate, ProviderChannel};
use omnihub_core::MessageId;
use omnihub_sandbox::imap::letter::Letter;
use omnihub_sandbox::imap::{ImapSandbox, MailStore};
use omnihub_sandbox::smtp::SmtpSandbox;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const SHOP: &str = "shop@romashka.test";
const PASSWORD: &str = "пароль магазина";
/// A bound on waits that only fail when something is broken.
const PATIENCE: Duration = Duration::from_secs(20);

/// A message whose bytes an IMAP parser could stumble on: 8-bit text, parentheses, a fake
/// literal announcement and a line that is only a dot.
const TRICKY: &[u8] = "From: \"Мария\" <maria@example.ru>\r\nTo: <shop@romashka.test>\r\n\
Subject: (test) {5}\r\nMessage-ID: <tricky@example.ru>\r\n\r\nПривет! ) {3}\r\n.\r\n\
* 1 EXISTS\r\n"
    .as_bytes();

async fn sandbox() -> ImapSandbox {
    let store = MailStore::new();
    store.add_account(SHOP, PASSWORD);
    ImapSandbox::start(store).await.unwrap()
}

async fn client(sandbox: &ImapSandbox) -> async_imap::Client<TcpStream> {
    let tcp = TcpStream::connect(sandbox.addr()).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    client
}

async fn login(sandbox: &ImapSandbox) -> async_imap::Session<TcpStream> {
    client(sandbox)
        .await
        .login(SHOP, PASSWORD)
        .await
        .map_err(|(error, _)| error)
        .unwrap()
}

/// A hand-typed session.
struct Raw {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Raw {
    async fn connect(sandbox: &ImapSandbox) -> Raw {
        let (read, writer) = TcpStream::connect(sandbox.addr())
            .await
            .unwrap()
            .into_split();
        let mut raw = Raw {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = raw.line().await;
        assert!(
            greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IDLE]"),
            "{greeting}"
        );
        raw
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(PATIENCE, self.reader.read_line(&mut line))
            .await
            .expect("the server answers")
            .unwrap();
        assert!(line.ends_with("\r\n"), "{line:?}");
        line.trim_end_matches("\r\n").to_owned()
    }

    /// Sends a command line and returns every line up to its tagged completion.
    async fn command(&mut self, line: &str) -> Vec<String> {
        self.send(format!("{line}\r\n").as_bytes()).await;
        let tag = line.split(' ').next().unwrap().to_owned();
        let mut lines = Vec::new();
        loop {
            let answer = self.line().await;
            let done = answer.starts_with(&format!("{tag} "));
            lines.push(answer);
            if done {
                return lines;
            }
        }
    }

    async fn last(&mut self, line: &str) -> String {
        self.command(line).await.pop().unwrap()
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_the_right_one_logs_in() {
    let sandbox = sandbox().await;
    let refused = client(&sandbox).await.login(SHOP, "wrong").await;
    match refused {
        Err((async_imap::error::Error::No(text), _)) => {
            assert!(
                text.to_ascii_uppercase().contains("AUTHENTICATIONFAILED"),
                "{text}"
            )
        }
        other => panic!("not refused: {:?}", other.map(|_| ())),
    }
    let refused = client(&sandbox)
        .await
        .login("nobody@x.test", PASSWORD)
        .await;
    assert!(matches!(refused, Err((async_imap::error::Error::No(_), _))));

    let mut session = login(&sandbox).await;
    let capabilities = session.capabilities().await.unwrap();
    assert!(capabilities.has_str("IMAP4rev1") && capabilities.has_str("IDLE"));
    let inbox = session.examine("INBOX").await.unwrap();
    assert_eq!(inbox.exists, 0);
    assert_eq!(
        inbox.uid_validity,
        Some(sandbox.store().uid_validity_of(SHOP, "INBOX").unwrap())
    );
    assert_eq!(inbox.uid_next, Some(1));
    assert!(matches!(
        session.examine("Nowhere").await,
        Err(async_imap::error::Error::No(_))
    ));
    session.logout().await.unwrap();
}

#[tokio::test]
async fn garbage_and_commands_out_of_place_get_bad_with_their_tag() {
    let sandbox = sandbox().await;
    let mut raw = Raw::connect(&sandbox).await;
    assert!(raw.last("A1 FROBNICATE").await.starts_with("A1 BAD"));
    assert!(raw.last("A2 SELECT INBOX").await.starts_with("A2 BAD"));
    assert!(raw.last("A3 LOGIN only-a-user").await.starts_with("A3 BAD"));
    assert!(
        raw.last("A4 LOGIN \"unterminated")
            .await
            .starts_with("A4 BAD")
    );
    assert!(raw.last("A5 NOOP extra").await.starts_with("A5 BAD"));
    raw.send(b"(((\r\n").await;
    assert!(raw.line().await.starts_with("* BAD"));
    raw.send(b"A6 NOOP\n").await;
    assert!(
        raw.line().await.starts_with("A6 BAD"),
        "a bare LF ends no line"
    );
    assert!(raw.last("A7 STARTTLS").await.starts_with("A7 BAD"));

    // A literal is invited with `+`, then the command goes on.
    raw.send(format!("A8 LOGIN {SHOP} {{{}}}\r\n", PASSWORD.len()).as_bytes())
        .await;
    assert!(raw.line().await.starts_with("+ "));
    raw.send(format!("{PASSWORD}\r\n").as_bytes()).await;
    assert!(raw.line().await.starts_with("A8 OK"));
    assert!(raw.last("A9 LOGIN a b").await.starts_with("A9 BAD"));
    assert!(
        raw.last("B1 FETCH 1 (UID)").await.starts_with("B1 BAD"),
        "nothing selected"
    );

    sandbox.store().deliver(SHOP, TRICKY).unwrap();
    let examined = raw.command("B2 EXAMINE inbox").await;
    assert!(examined.contains(&"* 1 EXISTS".to_owned()), "{examined:?}");
    assert!(examined.last().unwrap().starts_with("B2 OK [READ-ONLY]"));
    assert!(
        raw.last("B3 FETCH 2 (UID)").await.starts_with("B3 BAD"),
        "no message 2"
    );
    assert!(
        raw.last("B4 UID FETCH 9 (UID)").await.starts_with("B4 OK"),
        "UIDs may miss"
    );
    assert!(
        raw.last("B5 FETCH 1 (ENVELOPE)")
            .await
            .starts_with("B5 BAD")
    );
    assert!(
        raw.last("B6 FETCH 1 (BODY[1.MIME])")
            .await
            .starts_with("B6 BAD")
    );
    assert!(raw.last("B7 SEARCH FROB").await.starts_with("B7 BAD"));
    assert!(
        raw.last("B8 SEARCH CHARSET KOI8-R ALL")
            .await
            .starts_with("B8 NO [BADCHARSET")
    );
    assert!(
        raw.last("B9 STORE 1 +FLAGS (\\Seen)")
            .await
            .starts_with("B9 NO [READ-ONLY]")
    );

    // FETCH answers the body as a literal of its exact length.
    raw.send(b"C1 UID FETCH 1:* (BODY.PEEK[])\r\n").await;
    let head = raw.line().await;
    assert_eq!(
        head,
        format!("* 1 FETCH (UID 1 BODY[] {{{}}}", TRICKY.len())
    );
    let mut body = vec![0; TRICKY.len()];
    raw.reader.read_exact(&mut body).await.unwrap();
    assert_eq!(body, TRICKY);
    assert_eq!(raw.line().await, ")");
    assert!(raw.line().await.starts_with("C1 OK"));

    let bye = raw.command("C2 LOGOUT").await;
    assert!(bye[0].starts_with("* BYE") && bye[1].starts_with("C2 OK"));
}

#[tokio::test]
async fn fetch_returns_the_exact_bytes_without_marking_them_read() {
    let sandbox = sandbox().await;
    sandbox
        .store()
        .deliver(SHOP, b"Subject: first\r\n\r\nx\r\n".to_vec())
        .unwrap();
    sandbox.store().deliver(SHOP, TRICKY).unwrap();
    let mut session = login(&sandbox).await;
    session.select("INBOX").await.unwrap();

    let fetches: Vec<_> = session
        .uid_fetch("2", "(UID RFC822.SIZE BODY.PEEK[])")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(fetches.len(), 1);
    assert_eq!(fetches[0].uid, Some(2));
    assert_eq!(fetches[0].size, Some(TRICKY.len() as u32));
    assert_eq!(fetches[0].body(), Some(TRICKY));

    let headers: Vec<_> = session
        .uid_fetch("2", "(UID BODY.PEEK[HEADER])")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let header = headers[0].header().unwrap();
    assert!(TRICKY.starts_with(header) && header.ends_with(b"\r\n\r\n"));

    let unseen = session.uid_search("UNSEEN").await.unwrap();
    assert_eq!(unseen.len(), 2, "BODY.PEEK leaves \\Seen alone");
    // `UID n:*` above every UID still matches the last one (RFC 3501 §6.4.8).
    let above: Vec<u32> = session
        .uid_search("UID 9:*")
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(above, [2]);
    let found = session
        .uid_search("HEADER Message-ID \"<tricky@example.ru>\"")
        .await
        .unwrap();
    assert_eq!(found.into_iter().collect::<Vec<_>>(), [2]);

    // A plain BODY[] marks the message read, and says so.
    let fetches: Vec<_> = session
        .fetch("1", "BODY[TEXT]")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(fetches[0].text(), Some(&b"x\r\n"[..]));
    assert!(
        fetches[0]
            .flags()
            .any(|flag| flag == async_imap::types::Flag::Seen)
    );
    let unseen: Vec<u32> = session
        .uid_search("UNSEEN")
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(unseen, [2]);
    session.logout().await.unwrap();
}

#[tokio::test]
async fn idle_wakes_when_mail_arrives() {
    let sandbox = sandbox().await;
    let mut session = login(&sandbox).await;
    let inbox = session.examine("INBOX").await.unwrap();
    assert_eq!(inbox.exists, 0);

    let mut idle = session.idle();
    idle.init().await.unwrap();
    // The server has answered `+ idling`: the client is waiting.
    let uid = sandbox.store().deliver(SHOP, TRICKY).unwrap();
    assert_eq!(uid, 1);
    let (wait, _stop) = idle.wait_with_timeout(PATIENCE);
    match wait.await.unwrap() {
        IdleResponse::NewData(data) => {
            let text = format!("{:?}", data.parsed());
            assert!(text.contains("Exists(1)"), "{text}");
        }
        other => panic!("IDLE did not wake: {other:?}"),
    }
    let mut session = idle.done().await.unwrap();
    let found = session.uid_search("ALL").await.unwrap();
    assert_eq!(found.into_iter().collect::<Vec<_>>(), [1]);
    session.logout().await.unwrap();
}

#[tokio::test]
async fn append_create_list_and_status() {
    let sandbox = sandbox().await;
    let mut session = login(&sandbox).await;
    assert!(matches!(
        session.append("Sent", Some("(\\Seen)"), None, TRICKY).await,
        Err(async_imap::error::Error::No(_))
    ));
    session.create("Sent").await.unwrap();
    session
        .append(
            "Sent",
            Some("(\\Seen)"),
            Some("\"28-Nov-2026 10:00:00 +0300\""),
            TRICKY,
        )
        .await
        .unwrap();
    let names: Vec<String> = session
        .list(Some(""), Some("*"))
        .await
        .unwrap()
        .map_ok(|name| name.name().to_owned())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names, ["INBOX", "Sent"]);
    let status = session
        .status("Sent", "(MESSAGES UNSEEN UIDNEXT)")
        .await
        .unwrap();
    assert_eq!(
        (status.exists, status.unseen, status.uid_next),
        (1, Some(0), Some(2))
    );
    let stored = sandbox.store().messages(SHOP, "Sent").unwrap();
    assert_eq!(&stored[0].raw[..], TRICKY);
    assert_eq!(
        stored[0].internal_date,
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00+03:00").unwrap()
    );
    // The sandbox keeps every message: \Deleted cannot be set.
    session.select("Sent").await.unwrap();
    // (Checked by the tagged answer: async-imap's `store` stream does not report a NO.)
    let refused = session
        .run_command_and_check_ok("STORE 1 +FLAGS (\\Deleted)")
        .await;
    assert!(matches!(refused, Err(async_imap::error::Error::No(_))));
    let flags = &sandbox.store().messages(SHOP, "Sent").unwrap()[0].flags;
    assert!(!flags.contains("\\Deleted"));
    session.logout().await.unwrap();
}

/// The demo's e-mail path in small: a customer's letter and a follow-up in its thread are
/// read by the mailbox channel, and its reply goes out through the SMTP sandbox, threaded.
#[tokio::test]
async fn the_mailbox_channel_reads_a_thread_and_answers_it() {
    let sandbox = sandbox().await;
    let smtp = SmtpSandbox::start().await.unwrap();
    let settings = json!({
        "address": SHOP,
        "imap_host": "127.0.0.1",
        "imap_port": sandbox.addr().port(),
        "imap_security": "plain",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.addr().port(),
        "smtp_security": "plain",
    });
    let channel =
        MailboxChannel::from_channel(Some(&json!({ "password": PASSWORD })), &settings).unwrap();
    let cursor = channel.poll(None).await.unwrap().cursor.unwrap();

    let date = DateTime::parse_from_rfc3339("2026-11-28T10:00:00+03:00").unwrap();
    let first = Letter {
        from_name: "Мария Петрова".into(),
        from: "maria@example.ru".into(),
        to: SHOP.into(),
        subject: "Доставка в Казань".into(),
        text: "Доставляете в Казань?".into(),
        message_id: "q1@example.ru".into(),
        in_reply_to: None,
        references: Vec::new(),
        date,
    };
    let follow_up = Letter {
        subject: "Re: Доставка в Казань".into(),
        text: "Дополню: курьером.".into(),
        message_id: "q2@example.ru".into(),
        in_reply_to: Some("q1@example.ru".into()),
        references: vec!["q1@example.ru".into()],
        ..first.clone()
    };
    sandbox.store().deliver(SHOP, first.to_bytes()).unwrap();
    sandbox.store().deliver(SHOP, follow_up.to_bytes()).unwrap();

    let mut messages = Vec::new();
    let mut cursor = cursor;
    while messages.len() < 2 {
        let polled = channel.poll(Some(&cursor)).await.unwrap();
        cursor = polled.cursor.unwrap();
        messages.extend(polled.updates.into_iter().map(|update| match update {
            InboundUpdate::Message(message) => message,
            other => panic!("not a message: {other:?}"),
        }));
    }
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].text, "Доставляете в Казань?");
    assert_eq!(messages[0].sender.name, "Мария Петрова");
    assert_eq!(messages[1].text, "Дополню: курьером.");
    assert_eq!(messages[0].conversation, "q1@example.ru");
    assert_eq!(messages[1].conversation, "q1@example.ru", "one thread");

    let mut answer = OutboundMessage::text(
        MessageId::new(),
        "q1@example.ru",
        "Да, за 3 дня.",
        "reply-1",
    );
    answer.reply_to = Some("q2@example.ru".into());
    channel.send(&answer).await.unwrap();
    let sent = smtp.wait_for(1, PATIENCE).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, ["maria@example.ru"]);
    let parsed = MessageParser::default()
        .parse(sent[0].data.as_bytes())
        .unwrap();
    assert_eq!(parsed.subject(), Some("Re: Доставка в Казань"));
    assert_eq!(parsed.in_reply_to().as_text(), Some("q2@example.ru"));
    assert_eq!(
        parsed.references().as_text_list().unwrap(),
        ["q1@example.ru", "q2@example.ru"]
    );
    assert_eq!(parsed.body_text(0).unwrap().trim_end(), "Да, за 3 дня.");
}
