//! The Viber connector against the fake bot API, both ways: signed callbacks (the `webhook`
//! check on set_webhook, messages of every kind, conversation starts, delivery callbacks)
//! through the connector's `webhook()`, and outbound messages through the fake's checks of
//! Viber's documented rules.

use std::sync::Arc;

use omnihub_connectors::provider::{
    AttachmentKind, Health, InboundMessage, InboundUpdate, ProviderChannel, StatusUpdate,
    WebhookError, WebhookReply,
};
use omnihub_connectors::viber::ViberChannel;
use omnihub_connectors::{Button, OutboundAttachment, OutboundMessage, SendError};
use omnihub_core::MessageId;
use omnihub_core::model::DeliveryStatus;
use omnihub_sandbox::viber::{ViberConfig, ViberCustomer, ViberCustomerMessage, ViberSandbox};
use omnihub_sandbox::webhook_delivery::hmac_sha256_hex;
use serde_json::{Value, json};

use crate::webhook_receiver::WebhookReceiver;

const SAMPLES: &str = include_str!("../../specs/viber/callbacks.json");

struct Setup {
    sandbox: ViberSandbox,
    channel: Arc<ViberChannel>,
    callback: WebhookReceiver,
}

async fn setup_with(config: ViberConfig) -> Setup {
    let sandbox = ViberSandbox::start(config).await.unwrap();
    let channel = Arc::new(channel_for(&sandbox, sandbox.credentials(), settings()));
    let callback = WebhookReceiver::start(channel.clone());
    channel.set_webhook(Some(&callback.url)).await.unwrap();
    Setup {
        sandbox,
        channel,
        callback,
    }
}

async fn setup() -> Setup {
    setup_with(ViberConfig::default()).await
}

fn settings() -> Value {
    json!({"sender_name": "Магазин", "public_media_base": "https://omnihub.example/media/viber/"})
}

fn channel_for(sandbox: &ViberSandbox, credentials: Value, settings: Value) -> ViberChannel {
    let base = reqwest::Url::parse(&sandbox.base_url()).unwrap();
    ViberChannel::from_channel(Some(&credentials), &settings, &base).unwrap()
}

fn customer() -> ViberCustomer {
    ViberCustomer::new("01234567890A=", "Ольга")
}

fn to_customer(text: &str) -> OutboundMessage {
    OutboundMessage::text(MessageId::new(), customer().id, text, "k")
}

fn messages(updates: &[InboundUpdate]) -> Vec<&InboundMessage> {
    updates
        .iter()
        .map(|update| match update {
            InboundUpdate::Message(message) => message,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn set_webhook_is_confirmed_by_a_signed_webhook_event() {
    let setup = setup().await;
    assert_eq!(
        setup.sandbox.webhook().as_deref(),
        Some(setup.callback.url.as_str())
    );
    assert_eq!(
        setup.callback.outcomes(),
        [Ok(WebhookReply::Updates {
            updates: vec![],
            ack_body: ""
        })]
    );
    assert_eq!(setup.channel.health().await, Health::Ok);

    // A bot whose callback refuses the check (another token signs it) is not set.
    let mut credentials = setup.sandbox.credentials();
    credentials["auth_token"] = json!("another-bot-token");
    let other = Arc::new(channel_for(&setup.sandbox, credentials, settings()));
    let refusing = WebhookReceiver::start(other);
    let err = setup
        .channel
        .set_webhook(Some(&refusing.url))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    assert_eq!(refusing.outcomes(), [Err(WebhookError::Unauthorized)]);
    assert_eq!(
        setup.sandbox.webhook().as_deref(),
        Some(setup.callback.url.as_str())
    );

    setup.channel.set_webhook(None).await.unwrap();
    assert_eq!(setup.sandbox.webhook(), None);
    assert!(matches!(
        setup.channel.health().await,
        Health::WebhookNotSet(_)
    ));
    assert!(!setup.channel.poll(None).await.unwrap_err().is_transient());
    assert_eq!(setup.sandbox.violations(), []);
}

#[tokio::test]
async fn customer_messages_of_every_kind_arrive_mapped() {
    let setup = setup().await;
    let olga = customer();
    let photo = b"\xff\xd8 jpeg".to_vec();
    let sends = [
        ViberCustomerMessage::Text("Добрый вечер".into()),
        ViberCustomerMessage::Picture {
            caption: "чек".into(),
            file_name: "check.jpg".into(),
            bytes: photo.clone(),
        },
        ViberCustomerMessage::Video {
            bytes: b"mp4".to_vec(),
        },
        ViberCustomerMessage::File {
            file_name: "заказ.xlsx".into(),
            bytes: b"PK".to_vec(),
        },
        ViberCustomerMessage::Sticker { sticker_id: 46105 },
        ViberCustomerMessage::Contact {
            name: "Пётр".into(),
            phone: "+79160000000".into(),
        },
        ViberCustomerMessage::Location {
            lat: 59.9343,
            lon: 30.3351,
        },
        ViberCustomerMessage::Url("https://shop.example/item/7".into()),
    ];
    let mut tokens = Vec::new();
    for message in sends {
        let delivery = setup.sandbox.customer_sends(&olga, message).await;
        assert!(delivery.accepted(), "{delivery:?}");
        tokens.push(
            delivery.json()["message_token"]
                .as_u64()
                .unwrap()
                .to_string(),
        );
    }
    let updates = setup.callback.wait_for_updates(8).await;
    let messages = messages(&updates);
    assert_eq!(messages.len(), 8);
    for (message, token) in messages.iter().zip(&tokens) {
        assert_eq!(&message.event_id, token);
        assert_eq!(message.conversation, olga.id);
        assert_eq!(message.sender.name, "Ольга");
        assert!(message.sent_at.is_some());
    }
    assert_eq!(messages[0].text, "Добрый вечер");
    assert_eq!(messages[1].text, "чек");
    assert_eq!(messages[1].attachments[0].kind, AttachmentKind::Image);
    assert_eq!(messages[2].attachments[0].kind, AttachmentKind::Video);
    assert_eq!(messages[3].attachments[0].kind, AttachmentKind::Document);
    assert_eq!(
        messages[3].attachments[0].file_name.as_deref(),
        Some("заказ.xlsx")
    );
    assert_eq!(messages[3].attachments[0].size, Some(2));
    assert_eq!(messages[4].attachments[0].kind, AttachmentKind::Sticker);
    assert_eq!(
        messages[5].attachments[0].kind,
        AttachmentKind::Contact {
            name: "Пётр".into(),
            phone: "+79160000000".into()
        }
    );
    assert_eq!(
        messages[6].attachments[0].kind,
        AttachmentKind::Location {
            latitude: 59.9343,
            longitude: 30.3351
        }
    );
    assert_eq!(messages[7].text, "https://shop.example/item/7");

    let media = setup
        .channel
        .download(messages[1].attachments[0].file_ref.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(media.bytes, photo);
    assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
}

#[tokio::test]
async fn conversation_started_is_a_message_only_with_a_context() {
    let setup = setup().await;
    let bare = setup.sandbox.conversation_started(&customer(), None).await;
    assert!(bare.accepted());
    let with_context = setup
        .sandbox
        .conversation_started(&customer(), Some("promo-spring"))
        .await;
    assert!(with_context.accepted());
    // Subscription events are acknowledged and carry nothing.
    assert!(setup.sandbox.unsubscribes(&customer()).await.accepted());
    let updates = setup.callback.updates();
    let messages = messages(&updates);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text, "promo-spring");
    assert_eq!(
        messages[0].event_id,
        with_context.json()["message_token"]
            .as_u64()
            .unwrap()
            .to_string()
    );
}

#[tokio::test]
async fn forged_missing_and_misplaced_signatures_are_unauthorized() {
    let setup = setup().await;
    let token = setup.sandbox.config().auth_token.clone();
    let body = json!({"event": "message", "timestamp": 1767225600000u64, "message_token": 77,
        "sender": {"id": "mallory", "name": "Mallory"},
        "message": {"type": "text", "text": "pay here"}})
    .to_string();
    let client = reqwest::Client::new();
    for signature in [
        Some(hmac_sha256_hex(b"guessed-token", body.as_bytes())),
        None,
        Some(hmac_sha256_hex(
            token.as_bytes(),
            body.replace("here", "there").as_bytes(),
        )),
        Some(String::new()),
    ] {
        let mut request = client.post(&setup.callback.url).body(body.clone());
        if let Some(signature) = &signature {
            request = request.header("X-Viber-Content-Signature", signature);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{signature:?}");
    }
    let response = client
        .post(&setup.callback.url)
        .header(
            "X-Viber-Content-Signature",
            hmac_sha256_hex(token.as_bytes(), body.as_bytes()),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(messages(&setup.callback.updates())[0].text, "pay here");
}

#[tokio::test]
async fn the_hand_written_samples_are_read() {
    let setup = setup().await;
    let samples: Value = serde_json::from_str(SAMPLES).unwrap();
    for name in [
        "event_webhook",
        "event_message",
        "event_conversation_started",
    ] {
        let delivery = setup.sandbox.deliver(&samples[name]).await;
        assert!(delivery.accepted(), "{name}: {delivery:?}");
    }
    let updates = setup.callback.updates();
    let messages = messages(&updates);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].event_id, "4912661846655238145");
    assert_eq!(messages[0].text, "a message to the service");
    assert_eq!(messages[0].sender.name, "John McClane");
    assert_eq!(messages[1].text, "context information");

    // The sample request passes the fake's checks (to its receiver, once they wrote).
    setup
        .sandbox
        .customer_sends(&customer(), ViberCustomerMessage::Text("hi".into()))
        .await;
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(format!("{}pa/send_message", setup.sandbox.base_url()))
        .header("X-Viber-Auth-Token", &setup.sandbox.config().auth_token)
        .json(&samples["send_message_request"])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], 0, "{answer}");
    assert_eq!(setup.sandbox.violations(), []);
}

#[tokio::test]
async fn the_same_delivery_five_times_is_the_same_event() {
    let setup = setup().await;
    let delivery = setup
        .sandbox
        .customer_sends(&customer(), ViberCustomerMessage::Text("ещё раз".into()))
        .await;
    for _ in 0..4 {
        assert!(setup.sandbox.redeliver(&delivery).await.accepted());
    }
    let updates = setup.callback.wait_for_updates(5).await;
    assert_eq!(updates.len(), 5);
    assert!(updates.iter().all(|update| *update == updates[0]));
}

#[tokio::test]
async fn outbound_messages_pass_vibers_rules_and_report_their_delivery() {
    let setup = setup().await;
    setup
        .sandbox
        .customer_sends(
            &customer(),
            ViberCustomerMessage::Text("Здравствуйте".into()),
        )
        .await;
    let mut keyboard = to_customer("Чем помочь?");
    keyboard.keyboard = vec![
        vec![
            Button {
                text: "Доставка".into(),
                payload: Some("delivery".into()),
                url: None,
            },
            Button {
                text: "Оплата".into(),
                payload: Some("payment".into()),
                url: None,
            },
        ],
        vec![Button {
            text: "Сайт".into(),
            payload: None,
            url: Some("https://shop.example".into()),
        }],
    ];
    let mut picture = to_customer("Фото товара");
    picture.attachments = vec![OutboundAttachment {
        file_name: "item.jpg".into(),
        mime_type: "image/jpeg".into(),
        bytes: Arc::from(&b"jpeg"[..]),
    }];
    let mut video = to_customer("");
    video.attachments = vec![OutboundAttachment {
        file_name: "unboxing.mp4".into(),
        mime_type: "video/mp4".into(),
        bytes: Arc::from(&b"mp4 bytes"[..]),
    }];
    let mut file = to_customer("");
    file.attachments = vec![OutboundAttachment {
        file_name: "договор.pdf".into(),
        mime_type: "application/pdf".into(),
        bytes: Arc::from(&b"%PDF-1.7"[..]),
    }];
    let mut receipts = Vec::new();
    for message in [&keyboard, &picture, &video, &file] {
        receipts.push(
            setup
                .channel
                .send(message)
                .await
                .unwrap()
                .provider_message_id
                .unwrap(),
        );
    }
    assert_eq!(setup.sandbox.violations(), []);
    let sent = setup.sandbox.sent();
    assert_eq!(sent.len(), 4);
    assert_eq!(
        sent[0].body["keyboard"]["Buttons"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(sent[0].body["sender"]["name"], "Магазин");
    assert_eq!(sent[1].body["type"], "picture");
    assert_eq!(sent[1].body["text"], "Фото товара");
    assert!(
        sent[1].body["media"]
            .as_str()
            .unwrap()
            .starts_with("https://omnihub.example/media/viber/")
    );
    assert_eq!(sent[2].body["type"], "video");
    assert_eq!(sent[2].body["size"], 9);
    assert_eq!(sent[3].body["type"], "file");
    assert_eq!(sent[3].body["size"], 8);
    assert_eq!(sent[3].body["file_name"], "договор.pdf");
    assert_eq!(
        receipts,
        sent.iter()
            .map(|s| s.message_token.to_string())
            .collect::<Vec<_>>()
    );

    // The hello, then delivered and seen for each of the four.
    let updates = setup.callback.wait_for_updates(9).await;
    let statuses: Vec<(String, DeliveryStatus)> = updates
        .iter()
        .filter_map(|update| match update {
            InboundUpdate::Status(status) => {
                Some((status.provider_message_id.clone(), status.status))
            }
            InboundUpdate::Message(_) => None,
        })
        .collect();
    assert_eq!(statuses.len(), 8, "{statuses:?}");
    for token in &receipts {
        let of_this: Vec<DeliveryStatus> = statuses
            .iter()
            .filter(|(id, _)| id == token)
            .map(|(_, status)| *status)
            .collect();
        assert_eq!(of_this, [DeliveryStatus::Delivered, DeliveryStatus::Read]);
    }

    let token = sent[0].message_token;
    setup
        .sandbox
        .fail_delivery(token, "receiver device is off")
        .await;
    let updates = setup.callback.wait_for_updates(10).await;
    assert_eq!(
        updates.last(),
        Some(&InboundUpdate::Status(StatusUpdate {
            provider_message_id: token.to_string(),
            status: DeliveryStatus::Failed,
            reason: Some("receiver device is off".into()),
        }))
    );
}

#[tokio::test]
async fn media_without_a_public_base_is_refused() {
    let setup = setup().await;
    let bare = channel_for(
        &setup.sandbox,
        setup.sandbox.credentials(),
        json!({"sender_name": "Shop"}),
    );
    let mut picture = to_customer("");
    picture.attachments = vec![OutboundAttachment {
        file_name: "a.png".into(),
        mime_type: "image/png".into(),
        bytes: Arc::from(&b"png"[..]),
    }];
    let SendError::Permanent { reason } = bare.send(&picture).await.unwrap_err() else {
        panic!("expected permanent");
    };
    assert!(reason.starts_with("media needs a public URL"), "{reason}");
    assert_eq!(setup.sandbox.sent(), []);
}

#[tokio::test]
async fn status_codes_decide_between_retry_and_refusal() {
    let setup = setup_with(ViberConfig {
        // Refused sends count too, as at Viber: the first one below uses one of the two.
        rate_limit: Some((2, std::time::Duration::from_secs(60))),
        ..ViberConfig::default()
    })
    .await;
    let olga = customer();
    // Never wrote: not registered with the bot (5).
    let err = setup
        .channel
        .send(&to_customer("Привет"))
        .await
        .unwrap_err();
    assert!(
        !err.is_transient() && err.to_string().contains("status 5"),
        "{err}"
    );
    setup
        .sandbox
        .customer_sends(&olga, ViberCustomerMessage::Text("Привет".into()))
        .await;
    setup.channel.send(&to_customer("1")).await.unwrap();
    // Over the rate limit (12): transient.
    let err = setup.channel.send(&to_customer("2")).await.unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("status 12"),
        "{err}"
    );

    let fresh = setup_with(ViberConfig::default()).await;
    fresh
        .sandbox
        .customer_sends(&olga, ViberCustomerMessage::Text("Привет".into()))
        .await;
    fresh.sandbox.fail_next(12, "tooManyRequests");
    assert!(
        fresh
            .channel
            .send(&to_customer("x"))
            .await
            .unwrap_err()
            .is_transient()
    );
    fresh.sandbox.fail_next(12, "tooManyRequests");
    assert!(matches!(
        fresh.channel.health().await,
        Health::RateLimited(_)
    ));
    // Unsubscribed (6): permanent.
    fresh.sandbox.unsubscribes(&olga).await;
    let err = fresh.channel.send(&to_customer("x")).await.unwrap_err();
    assert!(
        !err.is_transient() && err.to_string().contains("status 6"),
        "{err}"
    );

    // A wrong token (2): permanent, and health says so.
    let mut credentials = fresh.sandbox.credentials();
    credentials["auth_token"] = json!("revoked");
    let stale = channel_for(&fresh.sandbox, credentials, settings());
    let SendError::Permanent { reason } = stale.send(&to_customer("x")).await.unwrap_err() else {
        panic!("expected permanent");
    };
    assert!(reason.starts_with("invalid_token:"), "{reason}");
    assert!(matches!(stale.health().await, Health::InvalidToken(_)));
    assert_eq!(fresh.sandbox.violations(), []);
}

#[tokio::test]
async fn the_fake_records_what_breaks_vibers_rules() {
    let setup = setup().await;
    setup
        .sandbox
        .customer_sends(&customer(), ViberCustomerMessage::Text("hi".into()))
        .await;
    let client = reqwest::Client::new();
    let url = format!("{}pa/send_message", setup.sandbox.base_url());
    for body in [
        json!({"receiver": customer().id, "sender": {"name": "x".repeat(29)}, "type": "text",
            "text": "hi"}),
        json!({"receiver": customer().id, "sender": {"name": "Shop"}, "type": "file",
            "media": "https://x.example/f"}),
        json!({"receiver": customer().id, "sender": {"name": "Shop"}, "type": "text",
            "text": "hi", "keyboard": {"Type": "keyboard", "Buttons": [{"ActionType": "open-url",
            "ActionBody": "javascript:alert(1)", "Columns": 7}]}}),
    ] {
        let answer: Value = client
            .post(&url)
            .header("X-Viber-Auth-Token", &setup.sandbox.config().auth_token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], 3, "{answer}");
    }
    assert_eq!(setup.sandbox.violations().len(), 3);
    assert_eq!(setup.sandbox.sent(), []);
}
