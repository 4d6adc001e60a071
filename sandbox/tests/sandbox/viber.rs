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
    json!({"sender_name": "Магазин"})
}

/// Stands in for omnihub's public media links: serves each file at `/media/{name}` with its
/// type, the way Viber's fetcher will find it.
struct MediaHost {
    base: String,
    handle: actix_web::dev::ServerHandle,
}

impl MediaHost {
    fn start(files: Vec<(&'static str, &'static str, Vec<u8>)>) -> MediaHost {
        use actix_web::{App, HttpResponse, HttpServer, web};
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let base = format!("http://{}/media/", listener.local_addr().unwrap());
        let files = web::Data::new(files);
        let server = HttpServer::new(move || {
            App::new().app_data(files.clone()).route(
                "/media/{name}",
                web::get().to(
                    |files: web::Data<Vec<(&'static str, &'static str, Vec<u8>)>>,
                     name: web::Path<String>| async move {
                        match files.iter().find(|(n, _, _)| *n == name.as_str()) {
                            Some((_, mime, bytes)) => HttpResponse::Ok()
                                .content_type(*mime)
                                .insert_header(("X-Content-Type-Options", "nosniff"))
                                .body(bytes.clone()),
                            None => HttpResponse::Forbidden().finish(),
                        }
                    },
                ),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        MediaHost { base, handle }
    }

    fn attachment(&self, name: &str, mime: &str, bytes: &[u8]) -> OutboundAttachment {
        OutboundAttachment {
            file_name: name.into(),
            mime_type: mime.into(),
            bytes: Arc::from(bytes),
            public_url: Some(format!("{}{name}", self.base)),
        }
    }
}

impl Drop for MediaHost {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
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
    // An unsubscribe is acknowledged and blocks the customer's conversation.
    assert!(setup.sandbox.unsubscribes(&customer()).await.accepted());
    let mut updates = setup.callback.updates();
    assert_eq!(
        updates.pop(),
        Some(InboundUpdate::Blocked {
            conversation: customer().id,
            reason: "unsubscribed".into()
        })
    );
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
    let host = MediaHost::start(vec![
        ("item.jpg", "image/jpeg", b"jpeg".to_vec()),
        ("unboxing.mp4", "video/mp4", b"mp4 bytes".to_vec()),
        ("contract.pdf", "application/pdf", b"%PDF-1.7".to_vec()),
    ]);
    let mut picture = to_customer("Фото товара");
    picture.attachments = vec![host.attachment("item.jpg", "image/jpeg", b"jpeg")];
    let mut video = to_customer("");
    video.attachments = vec![host.attachment("unboxing.mp4", "video/mp4", b"mp4 bytes")];
    let mut file = to_customer("");
    file.attachments = vec![host.attachment("contract.pdf", "application/pdf", b"%PDF-1.7")];
    file.attachments[0].file_name = "договор.pdf".into();
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
    assert_eq!(sent[1].body["media"], format!("{}item.jpg", host.base));
    // The fake fetched every file from its link, as Viber does.
    let fetched: Vec<&[u8]> = sent[1..]
        .iter()
        .map(|s| s.media.as_ref().unwrap().bytes.as_slice())
        .collect();
    assert_eq!(fetched, [&b"jpeg"[..], b"mp4 bytes", b"%PDF-1.7"]);
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
            InboundUpdate::Message(_)
            | InboundUpdate::Blocked { .. }
            | InboundUpdate::Unblocked { .. } => None,
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
async fn media_needs_a_link_that_serves_the_file() {
    let setup = setup().await;
    setup
        .sandbox
        .customer_sends(&customer(), ViberCustomerMessage::Text("Привет".into()))
        .await;
    let mut picture = to_customer("");
    picture.attachments = vec![OutboundAttachment {
        file_name: "a.png".into(),
        mime_type: "image/png".into(),
        bytes: Arc::from(&b"png"[..]),
        public_url: None,
    }];
    let SendError::Permanent { reason } = setup.channel.send(&picture).await.unwrap_err() else {
        panic!("expected permanent");
    };
    assert!(reason.starts_with("media needs a public URL"), "{reason}");
    assert_eq!(setup.sandbox.sent(), []);

    // A link that does not serve the file (refused, or another size) is Viber's badData.
    let host = MediaHost::start(vec![("short.pdf", "application/pdf", b"%PDF".to_vec())]);
    for attachment in [
        host.attachment("gone.png", "image/png", b"png"),
        host.attachment("short.pdf", "application/pdf", b"%PDF-1.7 longer"),
    ] {
        let mut message = to_customer("");
        message.attachments = vec![attachment];
        let err = setup.channel.send(&message).await.unwrap_err();
        assert!(!err.is_transient(), "{err:?}");
    }
    let violations = setup.sandbox.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].detail.contains("HTTP 403"), "{violations:?}");
    assert!(violations[1].detail.contains("served 4"), "{violations:?}");
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
    // Unsubscribed (6): the customer blocked the bot.
    fresh.sandbox.unsubscribes(&olga).await;
    let err = fresh.channel.send(&to_customer("x")).await.unwrap_err();
    assert!(
        matches!(err, SendError::Blocked { .. }) && err.to_string().contains("status 6"),
        "{err}"
    );

    // A wrong token (2): permanent, and health says so.
    let mut credentials = fresh.sandbox.credentials();
    credentials["auth_token"] = json!("revoked");
    let stale = channel_for(&fresh.sandbox, credentials, settings());
    let SendError::Permanent { reason } = stale.send(&to_customer("x")).await.unwrap_err() else {
        panic!("expected permanent");
    };
    assert!(reason.starts_with("invalid token:"), "{reason}");
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
