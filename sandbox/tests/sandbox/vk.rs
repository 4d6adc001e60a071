//! The VK connector against the VK sandbox: sends, uploads, errors and limits, the Callback API
//! (confirmation, secret, redelivery), Bots Long Poll with its `failed` codes, callback answers;
//! and every request the connector made checked against VK's schema.

use std::sync::Arc;
use std::time::Duration;

use omnihub_connectors::provider::{
    AttachmentKind, Health, ProviderChannel, WebhookError, WebhookReply, WebhookRequest,
};
use omnihub_connectors::vk::{VkChannel, random_id};
use omnihub_connectors::{OutboundAttachment, OutboundChannel, OutboundMessage, SendError};
use omnihub_core::MessageId;
use omnihub_sandbox::vk::{CustomerAttachment, VkConfig, VkSandbox};
use reqwest::Url;
use serde_json::{Value, json};

use crate::support::{button, messages};
use crate::webhook_receiver::WebhookReceiver;

const SECRET: &str = "callback-secret-42";
const CUSTOMER: i64 = 1111;

fn credentials(sandbox: &VkSandbox) -> Value {
    json!({
        "access_token": sandbox.config().access_token,
        "group_id": sandbox.config().group_id,
        "confirmation_code": sandbox.config().confirmation_code,
        "secret": SECRET,
    })
}

fn channel_with(sandbox: &VkSandbox, credentials: Value, settings: Value) -> VkChannel {
    let base = Url::parse(&sandbox.base_url()).unwrap();
    VkChannel::from_channel(Some(&credentials), &settings, &base).unwrap()
}

fn channel(sandbox: &VkSandbox) -> VkChannel {
    channel_with(sandbox, credentials(sandbox), json!({}))
}

fn long_poll_channel(sandbox: &VkSandbox) -> VkChannel {
    channel_with(
        sandbox,
        credentials(sandbox),
        json!({"long_poll": true, "long_poll_wait": 1}),
    )
}

fn assert_no_violations(sandbox: &VkSandbox) {
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_text_with_keyboard_and_reply_is_sent_as_vk_expects() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let mut message = OutboundMessage::text(MessageId::new(), "1111", "Здравствуйте!", "key-1");
    message.keyboard = vec![
        vec![
            button("Да", Some("yes"), None),
            button("Нет", Some("no"), None),
        ],
        vec![
            button("Сайт", None, Some("https://example.com")),
            button("Привет", None, None),
        ],
    ];
    message.reply_to = Some("77".into());

    let receipt = channel.send(&message).await.unwrap();

    let sent = sandbox.sent();
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(
        receipt.provider_message_id,
        Some(sent.message_id.to_string())
    );
    assert_eq!(
        (sent.peer_id, sent.text.as_str()),
        (CUSTOMER, "Здравствуйте!")
    );
    assert_eq!(sent.random_id, i64::from(random_id("key-1")));
    assert_eq!(sent.reply_to, Some(77));
    let keyboard = sent.keyboard.as_ref().unwrap();
    assert_eq!(keyboard["inline"], true);
    let actions: Vec<&str> = keyboard["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|b| b["action"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["callback", "callback", "open_link", "text"]);
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn a_retried_send_keeps_its_random_id_and_arrives_once() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let message = OutboundMessage::text(MessageId::new(), "1111", "once", "idem-7");
    sandbox.fail_next("messages.send", 10);

    let first = channel.send(&message).await.unwrap_err();
    let second = channel.send(&message).await.unwrap();
    let third = channel.send(&message).await.unwrap();

    assert!(first.is_transient(), "{first:?}");
    assert_eq!(second, third);
    assert_eq!(sandbox.sent().len(), 1);
    assert_eq!(sandbox.calls("messages.send"), 3);
    let other = OutboundMessage::text(MessageId::new(), "1111", "once", "idem-8");
    channel.send(&other).await.unwrap();
    let sent = sandbox.sent();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0].random_id, sent[1].random_id);
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn photos_and_documents_are_uploaded_then_attached() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let mut message = OutboundMessage::text(MessageId::new(), "1111", "", "files-1");
    let png = b"\x89PNG\r\n\x1a\nnot really".to_vec();
    let pdf = b"%PDF-1.4 invoice".to_vec();
    message.attachments = vec![
        OutboundAttachment {
            file_name: "photo.png".into(),
            mime_type: "image/png".into(),
            bytes: png.clone().into(),
            public_url: None,
        },
        OutboundAttachment {
            file_name: "счёт.pdf".into(),
            mime_type: "application/pdf".into(),
            bytes: pdf.clone().into(),
            public_url: None,
        },
    ];

    channel.send(&message).await.unwrap();

    let sent = sandbox.sent();
    let attachments = &sent[0].attachments;
    assert_eq!(attachments.len(), 2);
    assert!(
        attachments[0].starts_with("photo-123456_"),
        "{attachments:?}"
    );
    assert!(attachments[1].starts_with("doc-123456_"), "{attachments:?}");
    assert_eq!(sandbox.media(&attachments[0]), Some(png));
    assert_eq!(sandbox.media(&attachments[1]), Some(pdf));
    assert_eq!(sandbox.calls("photos.saveMessagesPhoto"), 1);
    assert_eq!(sandbox.calls("docs.save"), 1);
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn vk_errors_are_classified_with_vks_words() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let message = OutboundMessage::text(MessageId::new(), "1111", "hi", "err-1");
    let send = || channel.send(&message);

    sandbox.fail_next("messages.send", 901);
    assert_eq!(
        send().await.unwrap_err(),
        SendError::Blocked {
            reason: "VK error 901: Can't send messages for users without permission".into()
        }
    );
    sandbox.fail_next("messages.send", 902);
    sandbox.fail_next("messages.send", 7);
    for _ in 0..2 {
        assert!(!send().await.unwrap_err().is_transient());
    }
    sandbox.fail_next("messages.send", 9);
    let SendError::Transient { retry_after, .. } = send().await.unwrap_err() else {
        panic!("flood control is transient");
    };
    assert!(retry_after.unwrap() >= Duration::from_secs(1));
    assert!(sandbox.sent().is_empty());

    let mut wrong = credentials(&sandbox);
    wrong["access_token"] = json!("vk1.a.revoked");
    let wrong = channel_with(&sandbox, wrong, json!({}));
    let err = wrong.send(&message).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent { reason } if reason.contains("token is refused")),
        "{err:?}"
    );
    assert!(matches!(wrong.health().await, Health::InvalidToken(_)));
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn the_rate_limit_answers_error_6_which_is_transient_for_a_second() {
    let config = VkConfig {
        requests_per_second: 3,
        ..VkConfig::default()
    };
    let sandbox = VkSandbox::start(config).await.unwrap();
    let channel = Arc::new(channel(&sandbox));
    // All at once, so that the burst lands within one second however slow the machine is.
    let sends: Vec<_> = (0..6)
        .map(|n| {
            let channel = Arc::clone(&channel);
            let message = OutboundMessage::text(MessageId::new(), "1111", "burst", format!("b{n}"));
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
                reason: "VK error 6: Too many requests per second".into()
            }
        );
    }
    assert_eq!(sandbox.rate_limited(), limited.len() as u64);
    assert_eq!(sandbox.sent().len(), 6 - limited.len());
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn the_callback_server_is_confirmed_then_gets_every_kind_of_event() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = Arc::new(channel(&sandbox));
    let receiver = WebhookReceiver::start(channel.clone());
    assert!(matches!(channel.health().await, Health::WebhookNotSet(_)));

    channel.set_webhook(Some(&receiver.url)).await.unwrap();

    let servers = sandbox.callback_servers();
    assert_eq!(servers.len(), 1);
    assert_eq!(
        (servers[0].status.as_str(), servers[0].secret_key.as_str()),
        ("ok", SECRET)
    );
    for event in ["message_new", "message_edit", "message_event"] {
        assert!(servers[0].events.iter().any(|e| e == event), "{event}");
    }
    assert_eq!(channel.health().await, Health::Ok);
    // Registering again reuses the server.
    channel.set_webhook(Some(&receiver.url)).await.unwrap();
    assert_eq!(sandbox.callback_servers().len(), 1);

    let photo = b"customer photo".to_vec();
    let delivery = sandbox
        .customer_sends(
            CUSTOMER,
            "Вот фото",
            vec![
                CustomerAttachment::Photo(photo.clone()),
                CustomerAttachment::Document {
                    title: "list.txt".into(),
                    bytes: b"1,2,3".to_vec(),
                },
                CustomerAttachment::Voice(b"ogg".to_vec()),
                CustomerAttachment::Geo {
                    latitude: 59.93,
                    longitude: 30.33,
                },
            ],
        )
        .await;
    assert_eq!(delivery.answers[0].status, 200);
    assert_eq!(delivery.answers[0].body, "ok");
    let got = receiver.wait_for_messages(1).await;
    let first = &got[0];
    assert_eq!(first.event_id, delivery.event_id);
    assert_eq!(
        (first.conversation.as_str(), first.text.as_str()),
        ("1111", "Вот фото")
    );
    let kinds: Vec<AttachmentKind> = first.attachments.iter().map(|a| a.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            AttachmentKind::Image,
            AttachmentKind::Document,
            AttachmentKind::Voice,
            AttachmentKind::Location {
                latitude: 59.93,
                longitude: 30.33
            }
        ]
    );
    let media = channel
        .download(first.attachments[0].file_ref.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(media.bytes, photo);
    assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));

    // A callback button: the press arrives with a callback id, and answering it reaches VK.
    let mut offer = OutboundMessage::text(MessageId::new(), "1111", "Подтвердить?", "offer");
    offer.keyboard = vec![vec![button("Да", Some("confirm:42"), None)]];
    channel.send(&offer).await.unwrap();
    let press = sandbox
        .customer_presses(CUSTOMER, "confirm:42")
        .await
        .unwrap();
    let got = receiver.wait_for_messages(2).await;
    let pressed = &got[1];
    assert_eq!(pressed.event_id, press.event_id);
    assert_eq!(pressed.text, "confirm:42");
    let callback_id = pressed.callback_id.clone().unwrap();
    channel.answer_callback(&callback_id).await.unwrap();
    let answers = sandbox.event_answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(
        (answers[0].user_id, answers[0].peer_id),
        (CUSTOMER, CUSTOMER)
    );
    assert_eq!(press.event["object"]["event_id"], answers[0].event_id);

    // A text button's payload, and an edit.
    sandbox
        .customer_taps_text_button(CUSTOMER, "Меню", "\"menu\"")
        .await;
    let message_id = first.provider_message_id.clone().unwrap();
    let edit = sandbox
        .customer_edits(message_id.parse().unwrap(), "Вот фото (исправлено)")
        .await
        .unwrap();
    let got = receiver.wait_for_messages(4).await;
    assert_eq!(got[2].text, "menu");
    assert_eq!(got[3].edit_of.as_deref(), Some(message_id.as_str()));
    assert_eq!(got[3].event_id, edit.event_id);
    assert_eq!(got[3].text, "Вот фото (исправлено)");
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn a_server_of_another_community_fails_the_confirmation_and_gets_nothing() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let ours = Arc::new(channel(&sandbox));
    let mut other = credentials(&sandbox);
    other["group_id"] = json!(999);
    let stranger = Arc::new(channel_with(&sandbox, other, json!({})));
    let receiver = WebhookReceiver::start(stranger);

    ours.set_webhook(Some(&receiver.url)).await.unwrap();

    assert_eq!(sandbox.callback_servers()[0].status, "failed");
    let delivery = sandbox.customer_writes(CUSTOMER, "anyone?").await;
    assert!(delivery.answers.is_empty());
    assert!(receiver.messages().is_empty());
    assert!(matches!(ours.health().await, Health::WebhookNotSet(_)));
}

#[tokio::test]
async fn confirmation_needs_our_group_and_events_need_our_secret() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = channel(&sandbox);
    let post = |body: Value| {
        let body = body.to_string();
        channel.webhook(&WebhookRequest::new("POST", "", [], body.as_bytes()))
    };
    assert_eq!(
        post(json!({"type": "confirmation", "group_id": 123456})).unwrap(),
        WebhookReply::Handshake {
            body: "a1b2c3d4".into()
        }
    );
    assert_eq!(
        post(json!({"type": "confirmation", "group_id": 654321})).unwrap_err(),
        WebhookError::Unauthorized
    );
    let event = |secret: Value| {
        json!({"type": "message_new", "group_id": 123456, "event_id": "x1", "v": "5.199",
            "secret": secret, "object": {"message": {"id": 1, "peer_id": 5, "from_id": 5,
            "text": "forged?"}}})
    };
    for secret in [
        Value::Null,
        json!(""),
        json!("callback-secret-4"),
        json!(42),
    ] {
        assert_eq!(post(event(secret)).unwrap_err(), WebhookError::Unauthorized);
    }
    assert!(post(event(json!(SECRET))).is_ok());

    // Over HTTP too: what the receiver answers VK.
    let receiver = WebhookReceiver::start(Arc::new(channel_with(
        &sandbox,
        credentials(&sandbox),
        json!({}),
    )));
    let http = reqwest::Client::new();
    let answer = http
        .post(&receiver.url)
        .json(&event(json!("wrong")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert!(receiver.messages().is_empty());
}

#[tokio::test]
async fn the_hand_written_callback_samples_parse() {
    let samples: Value =
        serde_json::from_str(include_str!("../../specs/vk/samples/callback_api.json")).unwrap();
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let mut credentials = credentials(&sandbox);
    credentials["secret"] = json!("MY_SECRET");
    let channel = channel_with(&sandbox, credentials, json!({}));
    let post = |sample: &Value| {
        let body = sample.to_string();
        channel.webhook(&WebhookRequest::new("POST", "", [], body.as_bytes()))
    };

    assert_eq!(
        post(&samples["confirmation"]).unwrap(),
        WebhookReply::Handshake {
            body: "a1b2c3d4".into()
        }
    );
    let WebhookReply::Updates { updates, ack_body } = post(&samples["message_new"]).unwrap() else {
        panic!("expected updates");
    };
    assert_eq!(ack_body, "ok");
    let got = messages(updates);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].event_id.as_str(),
            got[0].text.as_str(),
            got[0].conversation.as_str()
        ),
        ("e1f2a3", "Hi", "1111")
    );
    // The sample's message has id 0: it is known by its number in the conversation.
    assert_eq!(got[0].provider_message_id.as_deref(), Some("c42"));
    assert_eq!(got[0].sent_at.unwrap().timestamp(), 1767225600);
    let WebhookReply::Updates { updates, .. } = post(&samples["wall_reply_new"]).unwrap() else {
        panic!("expected updates");
    };
    assert!(updates.is_empty());
}

#[tokio::test]
async fn the_same_event_delivered_five_times_keeps_its_event_id() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = Arc::new(channel(&sandbox));
    let receiver = WebhookReceiver::start(channel.clone());
    channel.set_webhook(Some(&receiver.url)).await.unwrap();

    let delivery = sandbox.customer_writes(CUSTOMER, "repeat me").await;
    for _ in 0..4 {
        let again = sandbox.redeliver(&delivery.event_id).await.unwrap();
        assert_eq!(again.answers[0].body, "ok");
    }

    let got = receiver.wait_for_messages(5).await;
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|m| m.event_id == delivery.event_id));
    assert!(got.iter().all(|m| m == &got[0]));
}

#[tokio::test]
async fn long_poll_follows_its_cursor_without_missing_or_repeating() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = long_poll_channel(&sandbox);
    channel.set_webhook(None).await.unwrap();
    assert!(sandbox.long_poll_enabled());
    assert_eq!(channel.health().await, Health::Ok);

    let first = channel.poll(None).await.unwrap();
    assert!(first.updates.is_empty());
    let mut cursor = first.cursor.unwrap();
    let mut expected = Vec::new();
    for text in ["one", "two", "three"] {
        expected.push(sandbox.customer_writes(CUSTOMER, text).await.event_id);
    }
    let mut seen = Vec::new();
    let polled = channel.poll(Some(&cursor)).await.unwrap();
    seen.extend(messages(polled.updates));
    cursor = polled.cursor.unwrap();
    let idle = channel.poll(Some(&cursor)).await.unwrap();
    assert!(idle.updates.is_empty());
    cursor = idle.cursor.unwrap();
    for text in ["four", "five"] {
        expected.push(sandbox.customer_writes(CUSTOMER, text).await.event_id);
    }
    // A restarted poller: a new channel value, only the stored cursor.
    let restarted = long_poll_channel(&sandbox);
    let polled = restarted.poll(Some(&cursor)).await.unwrap();
    seen.extend(messages(polled.updates));

    let texts: Vec<&str> = seen.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three", "four", "five"]);
    let ids: Vec<String> = seen.iter().map(|m| m.event_id.clone()).collect();
    assert_eq!(ids, expected);
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn long_poll_recovers_from_each_failed_code() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = long_poll_channel(&sandbox);
    channel.set_webhook(None).await.unwrap();
    let mut cursor = channel.poll(None).await.unwrap().cursor.unwrap();

    // failed 2: the key expired; a new key is fetched and nothing is lost.
    sandbox.customer_writes(CUSTOMER, "after expiry").await;
    sandbox.expire_long_poll_key();
    let polled = channel.poll(Some(&cursor)).await.unwrap();
    assert_eq!(messages(polled.updates)[0].text, "after expiry");
    cursor = polled.cursor.unwrap();
    assert_eq!(sandbox.calls("groups.getLongPollServer"), 2);

    // failed 1: history lost; continue from VK's ts.
    sandbox.customer_writes(CUSTOMER, "lost").await;
    sandbox.lose_long_poll_history();
    let polled = channel.poll(Some(&cursor)).await.unwrap();
    assert!(polled.updates.is_empty());
    assert_ne!(polled.cursor.as_deref(), Some(cursor.as_str()));
    cursor = polled.cursor.unwrap();
    sandbox.customer_writes(CUSTOMER, "after loss").await;
    let polled = channel.poll(Some(&cursor)).await.unwrap();
    assert_eq!(messages(polled.updates)[0].text, "after loss");
    cursor = polled.cursor.unwrap();

    // failed 3: key and history lost; a new key and ts.
    sandbox.lose_long_poll_key();
    let polled = channel.poll(Some(&cursor)).await.unwrap();
    assert!(polled.updates.is_empty());
    cursor = polled.cursor.unwrap();
    sandbox.customer_writes(CUSTOMER, "after reset").await;
    let polled = channel.poll(Some(&cursor)).await.unwrap();
    assert_eq!(messages(polled.updates)[0].text, "after reset");
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn long_poll_is_refused_while_disabled() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = long_poll_channel(&sandbox);
    let err = channel.poll(None).await.unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn requests_that_break_the_schema_are_recorded_and_refused_as_vk_would() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let answer: Value = http
        .post(format!("{}method/messages.send", sandbox.base_url()))
        .form(&[
            ("access_token", sandbox.config().access_token.as_str()),
            ("v", "5.131"),
            ("peer_id", "not-a-number"),
            ("colour", "red"),
            (
                "keyboard",
                r#"{"buttons":[[{"action":{"type":"callback"}}]]}"#,
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["error"]["error_code"], 100);
    let violations = sandbox.violations();
    for needle in [
        "v=5.131",
        "unknown parameter colour",
        "not-a-number",
        "keyboard",
    ] {
        assert!(
            violations.iter().any(|v| v.contains(needle)),
            "{needle}: {violations:?}"
        );
    }

    let unknown: Value = http
        .post(format!("{}method/messages.delete", sandbox.base_url()))
        .form(&[("access_token", "wrong"), ("v", "5.199")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unknown["error"]["error_code"], 5);
    assert!(
        unknown["error"]["request_params"]
            .to_string()
            .contains("messages.delete")
    );
}

#[tokio::test]
async fn a_customer_who_denies_messages_is_reported_and_refused_until_they_write() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let channel = Arc::new(channel(&sandbox));
    let receiver = WebhookReceiver::start(channel.clone());
    channel.set_webhook(Some(&receiver.url)).await.unwrap();
    assert!(
        sandbox.callback_servers()[0]
            .events
            .iter()
            .any(|e| e == "message_deny")
    );
    sandbox.customer_writes(CUSTOMER, "Привет").await;

    sandbox.customer_denies_messages(CUSTOMER).await;
    let updates = receiver.wait_for_updates(2).await;
    assert_eq!(
        updates.last(),
        Some(&omnihub_connectors::provider::InboundUpdate::Blocked {
            conversation: CUSTOMER.to_string(),
            reason: "message_deny".into()
        })
    );
    let message = OutboundMessage::text(MessageId::new(), CUSTOMER.to_string(), "Вы здесь?", "d-1");
    let err = channel.send(&message).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Blocked {
            reason: "VK error 901: Can't send messages for users without permission".into()
        }
    );

    sandbox.customer_writes(CUSTOMER, "Снова я").await;
    channel.send(&message).await.unwrap();
    assert_no_violations(&sandbox);
}
