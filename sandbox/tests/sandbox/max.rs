//! The MAX connector against the MAX sandbox: sends, uploads, errors and limits, webhook
//! subscription with its secret header, redelivery, long poll by marker, callback answers; and
//! every request the connector made checked against MAX's OpenAPI document.

use std::sync::Arc;
use std::time::Duration;

use omnihub_connectors::max::{MaxChannel, SECRET_HEADER};
use omnihub_connectors::provider::{
    AttachmentKind, Health, InboundMessage, ProviderChannel, WebhookError, WebhookRequest,
};
use omnihub_connectors::{OutboundAttachment, OutboundChannel, OutboundMessage, SendError};
use omnihub_core::MessageId;
use omnihub_sandbox::max::{CustomerAttachment, MaxConfig, MaxSandbox, dialog_chat_id};
use reqwest::Url;
use serde_json::{Value, json};

use crate::support::{button, messages};
use crate::webhook_receiver::WebhookReceiver;

const SECRET: &str = "hook_Secret-2026";
const CUSTOMER: i64 = 7007;

fn credentials(sandbox: &MaxSandbox) -> Value {
    json!({"token": sandbox.config().token, "webhook_secret": SECRET})
}

fn channel_with(sandbox: &MaxSandbox, credentials: Value, settings: Value) -> MaxChannel {
    let base = Url::parse(&sandbox.base_url()).unwrap();
    MaxChannel::from_channel(Some(&credentials), &settings, &base).unwrap()
}

fn channel(sandbox: &MaxSandbox) -> MaxChannel {
    channel_with(sandbox, credentials(sandbox), json!({}))
}

fn long_poll_channel(sandbox: &MaxSandbox) -> MaxChannel {
    channel_with(
        sandbox,
        credentials(sandbox),
        json!({"long_poll": true, "long_poll_timeout": 1}),
    )
}

fn dialog() -> String {
    format!("chat:{}", dialog_chat_id(CUSTOMER))
}

fn assert_no_violations(sandbox: &MaxSandbox) {
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_text_with_keyboard_and_reply_goes_to_the_chat() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let mut message = OutboundMessage::text(MessageId::new(), dialog(), "Добрый день!", "k1");
    message.keyboard = vec![vec![
        button("Да", Some("yes"), None),
        button("Сайт", None, Some("https://example.com")),
        button("Позвать оператора", None, None),
    ]];
    message.reply_to = Some("mid.abc".into());

    let receipt = channel.send(&message).await.unwrap();

    let sent = sandbox.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        receipt.provider_message_id.as_deref(),
        Some(sent[0].mid.as_str())
    );
    assert_eq!(
        (sent[0].chat_id, sent[0].user_id),
        (Some(dialog_chat_id(CUSTOMER)), None)
    );
    let body = &sent[0].body;
    assert_eq!(body["text"], "Добрый день!");
    assert_eq!(body["link"], json!({"type": "reply", "mid": "mid.abc"}));
    let buttons = &body["attachments"][0]["payload"]["buttons"][0];
    assert_eq!(
        buttons,
        &json!([{"type": "callback", "text": "Да", "payload": "yes"},
            {"type": "link", "text": "Сайт", "url": "https://example.com"},
            {"type": "message", "text": "Позвать оператора"}])
    );

    let to_user = OutboundMessage::text(MessageId::new(), format!("user:{CUSTOMER}"), "hi", "k2");
    channel.send(&to_user).await.unwrap();
    assert_eq!(sandbox.sent()[1].user_id, Some(CUSTOMER));
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn images_files_and_audio_are_uploaded_then_attached() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let mut message = OutboundMessage::text(MessageId::new(), dialog(), "Документы", "up-1");
    let files = [
        ("photo.jpg", "image/jpeg", b"jpeg bytes".to_vec()),
        ("договор.pdf", "application/pdf", b"%PDF".to_vec()),
        ("note.ogg", "audio/ogg", b"OggS".to_vec()),
    ];
    message.attachments = files
        .iter()
        .map(|(name, mime, bytes)| OutboundAttachment {
            file_name: (*name).into(),
            mime_type: (*mime).into(),
            bytes: bytes.clone().into(),
            public_url: None,
        })
        .collect();

    channel.send(&message).await.unwrap();

    let body = &sandbox.sent()[0].body;
    let attachments = body["attachments"].as_array().unwrap();
    let types: Vec<&str> = attachments
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["image", "file", "audio"]);
    let image_token = attachments[0]["payload"]["photos"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["token"]
        .as_str()
        .unwrap();
    assert_eq!(sandbox.uploaded(image_token), Some(files[0].2.clone()));
    for (attachment, file) in attachments[1..].iter().zip(&files[1..]) {
        let token = attachment["payload"]["token"].as_str().unwrap();
        assert_eq!(sandbox.uploaded(token), Some(file.2.clone()));
    }
    assert_eq!(sandbox.calls("POST /uploads"), 3);
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn texts_over_4000_characters_are_refused_before_anything_is_sent() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let long = OutboundMessage::text(MessageId::new(), dialog(), "ж".repeat(4001), "long");
    let err = channel.send(&long).await.unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    assert_eq!(sandbox.calls("POST /messages"), 0);
    let bad = OutboundMessage::text(MessageId::new(), "12345", "where to?", "bad");
    assert!(!channel.send(&bad).await.unwrap_err().is_transient());
    let fits = OutboundMessage::text(MessageId::new(), dialog(), "ж".repeat(4000), "fits");
    channel.send(&fits).await.unwrap();
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn statuses_are_classified_and_the_token_checked() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let message = OutboundMessage::text(MessageId::new(), dialog(), "hi", "e1");

    sandbox.fail_next("POST /messages", 503, "internal");
    assert!(channel.send(&message).await.unwrap_err().is_transient());
    let forwarding = "Forwarding messages from this chat or channel is prohibited";
    sandbox.fail_next_saying("POST /messages", 403, "chat.denied", forwarding);
    assert_eq!(
        channel.send(&message).await.unwrap_err(),
        SendError::Permanent {
            reason: format!("MAX 403 chat.denied: {forwarding}")
        }
    );
    sandbox.fail_next("POST /messages", 403, "access.denied");
    assert_eq!(
        channel.send(&message).await.unwrap_err(),
        SendError::Permanent {
            reason: "MAX 403 access.denied: injected failure".into()
        }
    );
    sandbox.fail_next("POST /messages", 400, "attachment.not.ready");
    assert!(channel.send(&message).await.unwrap_err().is_transient());
    assert!(sandbox.sent().is_empty());

    let wrong = channel_with(&sandbox, json!({"token": "revoked-token"}), json!({}));
    assert_eq!(
        wrong.send(&message).await.unwrap_err(),
        SendError::Permanent {
            reason: "invalid token: the bot token is refused: Invalid access_token".into()
        }
    );
    assert!(matches!(wrong.health().await, Health::InvalidToken(_)));
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn the_rate_limit_answers_429_which_is_transient_for_a_second() {
    let config = MaxConfig {
        requests_per_second: 3,
        ..MaxConfig::default()
    };
    let sandbox = MaxSandbox::start(config).await.unwrap();
    let channel = Arc::new(channel(&sandbox));
    // All at once, so that the burst lands within one second however slow the machine is.
    let sends: Vec<_> = (0..6)
        .map(|n| {
            let channel = Arc::clone(&channel);
            let message =
                OutboundMessage::text(MessageId::new(), dialog(), "burst", format!("b{n}"));
            tokio::spawn(async move { channel.send(&message).await })
        })
        .collect();
    let mut limited = Vec::new();
    for send in sends {
        if let Err(err) = send.await.unwrap() {
            limited.push(err);
        }
    }
    assert!(!limited.is_empty());
    for err in &limited {
        assert_eq!(
            err,
            &SendError::Transient {
                retry_after: Some(Duration::from_secs(1)),
                reason: "MAX 429 too.many.requests: Too many requests".into()
            }
        );
    }
    assert_eq!(sandbox.rate_limited(), limited.len() as u64);
    assert_eq!(sandbox.sent().len(), 6 - limited.len());
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn the_webhook_gets_every_kind_of_update_with_the_secret_header() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let channel = Arc::new(channel(&sandbox));
    let receiver = WebhookReceiver::start(channel.clone());
    assert!(matches!(channel.health().await, Health::WebhookNotSet(_)));

    channel.set_webhook(Some(&receiver.url)).await.unwrap();

    let subscriptions = sandbox.subscriptions();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0].secret.as_deref(), Some(SECRET));
    assert_eq!(channel.health().await, Health::Ok);

    let image = b"customer image".to_vec();
    let delivery = sandbox
        .customer_sends(
            CUSTOMER,
            "Смотрите",
            vec![
                CustomerAttachment::Image(image.clone()),
                CustomerAttachment::File {
                    name: "scan.pdf".into(),
                    bytes: b"%PDF".to_vec(),
                },
                CustomerAttachment::Location {
                    latitude: 55.75,
                    longitude: 37.62,
                },
                CustomerAttachment::Contact {
                    name: "Пётр".into(),
                    phone: "+79001234567".into(),
                },
            ],
        )
        .await;
    assert_eq!(delivery.answers[0].status, 200);
    let got = receiver.wait_for_messages(1).await;
    let first = &got[0];
    let mid = delivery.update["message"]["body"]["mid"].as_str().unwrap();
    assert_eq!(first.event_id, format!("message:{mid}"));
    assert_eq!(first.conversation, dialog());
    assert_eq!(first.sender.name, "Анна Смирнова");
    assert_eq!(first.attachments[1].file_name.as_deref(), Some("scan.pdf"));
    assert_eq!(
        first.attachments[3].kind,
        AttachmentKind::Contact {
            name: "Пётр".into(),
            phone: "+79001234567".into()
        }
    );
    let media = channel
        .download(first.attachments[0].file_ref.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(media.bytes, image);

    // Replying into the conversation the update named reaches the customer's dialog.
    let mut offer = OutboundMessage::text(MessageId::new(), &first.conversation, "Оформить?", "o");
    offer.keyboard = vec![vec![button("Да", Some("order:1"), None)]];
    offer.reply_to = first.provider_message_id.clone();
    channel.send(&offer).await.unwrap();
    let press = sandbox.customer_presses(CUSTOMER, "order:1").await.unwrap();
    let got = receiver.wait_for_messages(2).await;
    let pressed = &got[1];
    let callback_id = press.update["callback"]["callback_id"].as_str().unwrap();
    assert_eq!(pressed.callback_id.as_deref(), Some(callback_id));
    assert_eq!(
        (pressed.text.as_str(), pressed.conversation.as_str()),
        ("order:1", dialog().as_str())
    );
    channel.answer_callback(callback_id).await.unwrap();
    assert_eq!(sandbox.callback_answers()[0].callback_id, callback_id);

    sandbox
        .customer_edits(mid, "Смотрите (исправлено)")
        .await
        .unwrap();
    sandbox.customer_starts(CUSTOMER, Some("promo-42")).await;
    let got = receiver.wait_for_messages(4).await;
    assert_eq!(got[2].edit_of.as_deref(), Some(mid));
    assert!(got[2].event_id.starts_with(&format!("edit:{mid}:")));
    assert_eq!(got[3].text, "/start promo-42");
    assert_eq!(got[3].conversation, dialog());
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn a_wrong_or_missing_secret_header_is_unauthorized() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let body = json!({"update_type": "message_created", "timestamp": 1, "message": {
        "recipient": {"chat_id": 1, "chat_type": "dialog"}, "timestamp": 1,
        "body": {"mid": "mid.1", "seq": 1, "text": "forged?"}}})
    .to_string();
    for header in [
        None,
        Some(""),
        Some("hook_Secret-2025"),
        Some("hook_Secret-20266"),
    ] {
        let headers = header.map(|h| (SECRET_HEADER.to_string(), h.to_string()));
        let request = WebhookRequest::new("POST", "", headers, body.as_bytes());
        assert_eq!(
            channel.webhook(&request).unwrap_err(),
            WebhookError::Unauthorized
        );
    }
    // A webhook registered with another secret: MAX's deliveries are refused, nothing lands.
    let stranger = Arc::new(channel_with(
        &sandbox,
        json!({"token": sandbox.config().token, "webhook_secret": "another_secret"}),
        json!({}),
    ));
    let receiver = WebhookReceiver::start(stranger);
    channel.set_webhook(Some(&receiver.url)).await.unwrap();
    let delivery = sandbox.customer_writes(CUSTOMER, "hello").await;
    assert_eq!(delivery.answers[0].status, 401);
    assert!(receiver.messages().is_empty());
}

#[tokio::test]
async fn the_same_update_delivered_five_times_keeps_its_event_id() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let channel = Arc::new(channel(&sandbox));
    let receiver = WebhookReceiver::start(channel.clone());
    channel.set_webhook(Some(&receiver.url)).await.unwrap();
    let mut offer = OutboundMessage::text(MessageId::new(), dialog(), "?", "o");
    offer.keyboard = vec![vec![button("OK", Some("ok"), None)]];
    channel.send(&offer).await.unwrap();

    let written = sandbox.customer_writes(CUSTOMER, "repeat").await;
    let pressed = sandbox.customer_presses(CUSTOMER, "ok").await.unwrap();
    let started = sandbox.customer_starts(CUSTOMER, None).await;
    for delivery in [&written, &pressed, &started] {
        for _ in 0..4 {
            sandbox.redeliver(delivery.index).await.unwrap();
        }
    }

    let got = receiver.wait_for_messages(15).await;
    assert_eq!(got.len(), 15);
    let mut by_id: std::collections::HashMap<&str, Vec<&InboundMessage>> = Default::default();
    for message in &got {
        by_id
            .entry(message.event_id.as_str())
            .or_default()
            .push(message);
    }
    assert_eq!(by_id.len(), 3, "{got:?}");
    for copies in by_id.values() {
        assert_eq!(copies.len(), 5);
        assert!(copies.iter().all(|m| *m == copies[0]));
    }
}

#[tokio::test]
async fn long_poll_follows_the_marker_without_missing_or_repeating() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let channel = long_poll_channel(&sandbox);
    let receiver = WebhookReceiver::start(Arc::new(long_poll_channel(&sandbox)));
    channel.set_webhook(Some(&receiver.url)).await.unwrap();
    // MAX refuses long polling while a webhook is set.
    assert!(!channel.poll(None).await.unwrap_err().is_transient());
    channel.set_webhook(None).await.unwrap();
    assert!(sandbox.subscriptions().is_empty());
    assert_eq!(channel.health().await, Health::Ok);

    let mut expected = Vec::new();
    for text in ["one", "two"] {
        let delivery = sandbox.customer_writes(CUSTOMER, text).await;
        assert!(delivery.answers.is_empty());
        expected.push(delivery);
    }
    let mut seen = Vec::new();
    let polled = channel.poll(None).await.unwrap();
    seen.extend(messages(polled.updates));
    let mut cursor = polled.cursor.unwrap();
    let idle = channel.poll(Some(&cursor)).await.unwrap();
    assert!(idle.updates.is_empty());
    cursor = idle.cursor.unwrap();
    expected.push(sandbox.customer_writes(CUSTOMER, "three").await);
    // A restarted poller with only the stored marker.
    let restarted = long_poll_channel(&sandbox);
    let polled = restarted.poll(Some(&cursor)).await.unwrap();
    seen.extend(messages(polled.updates));
    cursor = polled.cursor.unwrap();
    assert!(
        restarted
            .poll(Some(&cursor))
            .await
            .unwrap()
            .updates
            .is_empty()
    );

    let texts: Vec<&str> = seen.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    for (message, delivery) in seen.iter().zip(&expected) {
        let mid = delivery.update["message"]["body"]["mid"].as_str().unwrap();
        assert_eq!(message.event_id, format!("message:{mid}"));
    }
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn requests_that_break_the_schema_are_recorded() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let answer = http
        .post(format!(
            "{}messages?chat_id=1&silent=yes",
            sandbox.base_url()
        ))
        .header("Authorization", &sandbox.config().token)
        .json(&json!({"text": 5, "attachments": [{"type": "image"}], "format": "bbcode"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let violations = sandbox.violations();
    for needle in [
        "unknown query parameter silent",
        "/text",
        "PhotoAttachmentRequest",
        "/format",
    ] {
        assert!(
            violations.iter().any(|v| v.contains(needle)),
            "{needle}: {violations:?}"
        );
    }
    let unauthorized = http
        .get(format!("{}me", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let error: Value = unauthorized.json().await.unwrap();
    assert_eq!(error["code"], "verify.token");
}

#[tokio::test]
async fn a_customer_who_stops_the_bot_is_reported_and_refused_until_they_write() {
    let sandbox = MaxSandbox::start(MaxConfig::default()).await.unwrap();
    let channel = Arc::new(channel(&sandbox));
    let receiver = WebhookReceiver::start(channel.clone());
    channel.set_webhook(Some(&receiver.url)).await.unwrap();
    sandbox.customer_writes(CUSTOMER, "Привет").await;

    sandbox.customer_stops_bot(CUSTOMER).await;
    let updates = receiver.wait_for_updates(2).await;
    assert_eq!(
        updates.last(),
        Some(&omnihub_connectors::provider::InboundUpdate::Blocked {
            conversation: dialog(),
            reason: "bot_stopped".into()
        })
    );
    let to_dialog = OutboundMessage::text(MessageId::new(), dialog(), "Вы здесь?", "stop-1");
    let err = channel.send(&to_dialog).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Blocked { reason }
            if reason == &format!("MAX 403 chat.denied: Key: error.dialog.suspended, args: [{CUSTOMER},].")),
        "{err:?}"
    );

    sandbox.customer_writes(CUSTOMER, "Я вернулся").await;
    channel.send(&to_dialog).await.unwrap();
    assert_no_violations(&sandbox);
}
