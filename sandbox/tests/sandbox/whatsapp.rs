//! The WhatsApp connector against the fake Cloud API, both ways: the customer's signed webhooks
//! through the connector's `webhook()`, and every kind of outbound message through the fake's
//! schema check.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use omnihub_connectors::provider::{
    AttachmentKind, Health, InboundMessage, InboundUpdate, ProviderChannel, StatusUpdate,
    WebhookError, WebhookReply,
};
use omnihub_connectors::whatsapp::WhatsappChannel;
use omnihub_connectors::{Button, OutboundAttachment, OutboundMessage, SendError, Template};
use omnihub_core::MessageId;
use omnihub_core::model::DeliveryStatus;
use omnihub_sandbox::whatsapp::{
    Customer, CustomerMessage, GraphFailure, MARKETING_OPT_OUT, TemplateCategory, WhatsappConfig,
    WhatsappSandbox, schema,
};
use serde_json::{Value, json};

use crate::webhook_receiver::WebhookReceiver;

struct Setup {
    sandbox: WhatsappSandbox,
    channel: Arc<WhatsappChannel>,
    callback: WebhookReceiver,
}

async fn setup_with(config: WhatsappConfig) -> Setup {
    let sandbox = WhatsappSandbox::start(config).await.unwrap();
    let channel = Arc::new(channel_for(&sandbox, sandbox.credentials()));
    let callback = WebhookReceiver::start(channel.clone());
    sandbox.configure_callback(&callback.url).await.unwrap();
    Setup {
        sandbox,
        channel,
        callback,
    }
}

async fn setup() -> Setup {
    setup_with(WhatsappConfig::default()).await
}

fn channel_for(sandbox: &WhatsappSandbox, credentials: Value) -> WhatsappChannel {
    let base = reqwest::Url::parse(&sandbox.base_url()).unwrap();
    WhatsappChannel::from_channel(Some(&credentials), &json!({}), &base).unwrap()
}

fn customer() -> Customer {
    Customer::new("79161234567", "Анна Петрова")
}

/// A message to the customer, who wrote a minute ago.
fn reply(text: &str) -> OutboundMessage {
    let mut message = OutboundMessage::text(MessageId::new(), customer().wa_id, text, "k");
    message.last_inbound_at = Some(Utc::now() - TimeDelta::minutes(1));
    message
}

fn only_message(updates: &[InboundUpdate]) -> &InboundMessage {
    match updates {
        [InboundUpdate::Message(message)] => message,
        other => panic!("expected one message, got {other:?}"),
    }
}

/// The customer writes, so the window is open on the fake's side too.
async fn customer_says_hello(setup: &Setup) {
    let delivery = setup
        .sandbox
        .customer_sends(&customer(), CustomerMessage::Text("Здравствуйте".into()))
        .await;
    assert!(delivery.accepted(), "{delivery:?}");
}

#[tokio::test]
async fn the_dashboard_handshake_needs_our_verify_token() {
    let setup = setup().await;
    let outcomes = setup.callback.outcomes();
    assert!(
        matches!(outcomes.as_slice(), [Ok(WebhookReply::Handshake { .. })]),
        "{outcomes:?}"
    );
    let (status, answer, challenge) = setup.sandbox.handshake(&setup.callback.url, "guess").await;
    assert_eq!(status, Some(401));
    assert_ne!(answer, challenge);
    let (status, answer, challenge) = setup
        .sandbox
        .handshake(&setup.callback.url, &setup.sandbox.config().verify_token)
        .await;
    assert_eq!((status, answer), (Some(200), challenge));
}

#[tokio::test]
async fn set_webhook_subscribes_the_business_account_after_a_handshake() {
    let setup = setup().await;
    // The dashboard set the URL, but no app is subscribed to the account yet.
    assert!(matches!(
        setup.channel.health().await,
        Health::WebhookNotSet(_)
    ));
    setup
        .channel
        .set_webhook(Some(&setup.callback.url))
        .await
        .unwrap();
    assert_eq!(setup.channel.health().await, Health::Ok);
    // The dashboard's handshake, then the one Meta makes for the override URL.
    let handshakes = setup
        .callback
        .outcomes()
        .iter()
        .filter(|outcome| matches!(outcome, Ok(WebhookReply::Handshake { .. })))
        .count();
    assert_eq!(handshakes, 2);
    setup.channel.set_webhook(None).await.unwrap();
    assert!(matches!(
        setup.channel.health().await,
        Health::WebhookNotSet(_)
    ));
    let delivery = setup
        .sandbox
        .customer_sends(&customer(), CustomerMessage::Text("anyone?".into()))
        .await;
    assert_eq!(delivery.status, None, "unsubscribed: nothing is delivered");

    // Without a business account id there is nothing to call.
    let mut credentials = setup.sandbox.credentials();
    credentials.as_object_mut().unwrap().remove("waba_id");
    let plain = channel_for(&setup.sandbox, credentials);
    plain
        .set_webhook(Some("https://omnihub.example/hooks/whatsapp/1"))
        .await
        .unwrap();
    assert_eq!(setup.sandbox.violations(), []);
}

#[tokio::test]
async fn customer_messages_of_every_kind_arrive_mapped() {
    let setup = setup().await;
    let anna = customer();
    let photo = b"\xff\xd8\xff\xe0 jpeg bytes".to_vec();
    let sends = [
        CustomerMessage::Text("Где мой заказ?".into()),
        CustomerMessage::Image {
            caption: Some("вот чек".into()),
            mime_type: "image/jpeg".into(),
            bytes: photo.clone(),
        },
        CustomerMessage::Document {
            file_name: "счёт.pdf".into(),
            caption: None,
            mime_type: "application/pdf".into(),
            bytes: b"%PDF-1.7".to_vec(),
        },
        CustomerMessage::Audio {
            voice: true,
            bytes: b"OggS voice".to_vec(),
        },
        CustomerMessage::Audio {
            voice: false,
            bytes: b"OggS song".to_vec(),
        },
        CustomerMessage::Video {
            caption: None,
            bytes: b"mp4".to_vec(),
        },
        CustomerMessage::Sticker {
            bytes: b"RIFFwebp".to_vec(),
        },
        CustomerMessage::Location {
            latitude: 55.7558,
            longitude: 37.6173,
            name: "Красная площадь".into(),
            address: "Москва".into(),
        },
        CustomerMessage::Contact {
            formatted_name: "Иван Иванов".into(),
            phone: "+7 916 000-00-00".into(),
        },
        CustomerMessage::ButtonReply {
            id: "pay".into(),
            title: "Оплатить".into(),
        },
        CustomerMessage::ListReply {
            id: "slot-3".into(),
            title: "15:00".into(),
        },
        CustomerMessage::TemplateButton {
            text: "Да".into(),
            payload: "confirm-42".into(),
        },
    ];
    let mut deliveries = Vec::new();
    for message in sends {
        let delivery = setup.sandbox.customer_sends(&anna, message).await;
        assert!(delivery.accepted(), "{delivery:?}");
        deliveries.push(delivery);
    }
    let updates = setup.callback.wait_for_updates(12).await;
    let messages: Vec<&InboundMessage> = updates
        .iter()
        .map(|update| match update {
            InboundUpdate::Message(message) => message,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(messages.len(), 12);
    for (message, delivery) in messages.iter().zip(&deliveries) {
        let wamid = delivery.json()["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(message.event_id, wamid);
        assert_eq!(message.provider_message_id.as_deref(), Some(wamid.as_str()));
        assert_eq!(message.conversation, anna.wa_id);
        assert_eq!(message.sender.id, anna.wa_id);
        assert_eq!(message.sender.name, "Анна Петрова");
        assert_eq!(message.sender.phone.as_deref(), Some("+79161234567"));
        assert!(message.sent_at.is_some());
    }
    assert_eq!(messages[0].text, "Где мой заказ?");
    assert_eq!(messages[1].text, "вот чек");
    assert_eq!(messages[1].attachments[0].kind, AttachmentKind::Image);
    assert_eq!(
        messages[1].attachments[0].mime_type.as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(messages[2].attachments[0].kind, AttachmentKind::Document);
    assert_eq!(
        messages[2].attachments[0].file_name.as_deref(),
        Some("счёт.pdf")
    );
    assert_eq!(messages[3].attachments[0].kind, AttachmentKind::Voice);
    assert_eq!(messages[4].attachments[0].kind, AttachmentKind::Audio);
    assert_eq!(messages[5].attachments[0].kind, AttachmentKind::Video);
    assert_eq!(messages[6].attachments[0].kind, AttachmentKind::Sticker);
    assert_eq!(
        messages[7].attachments[0].kind,
        AttachmentKind::Location {
            latitude: 55.7558,
            longitude: 37.6173
        }
    );
    assert_eq!(
        messages[8].attachments[0].kind,
        AttachmentKind::Contact {
            name: "Иван Иванов".into(),
            phone: "+7 916 000-00-00".into()
        }
    );
    for (message, payload) in messages[9..].iter().zip(["pay", "slot-3", "confirm-42"]) {
        assert_eq!(message.text, payload);
        assert_eq!(
            message.callback_id.as_ref(),
            message.provider_message_id.as_ref()
        );
    }
    assert_eq!(setup.channel.answer_callback("anything").await, Ok(()));

    // The photo downloads by its media id, through the short-lived URL, with the token.
    let media_id = messages[1].attachments[0].file_ref.clone().unwrap();
    let media = setup.channel.download(&media_id).await.unwrap();
    assert_eq!(media.bytes, photo);
    assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
    assert!(
        !setup
            .channel
            .download("424242")
            .await
            .unwrap_err()
            .is_transient()
    );
}

#[tokio::test]
async fn forged_missing_and_misplaced_signatures_are_unauthorized() {
    let setup = setup().await;
    let client = reqwest::Client::new();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1", "phone_number_id": setup.sandbox.config().phone_number_id},
            "contacts": [{"profile": {"name": "Mallory"}, "wa_id": "1"}],
            "messages": [{"from": "1", "id": "wamid.forged", "timestamp": "1", "type": "text",
                "text": {"body": "send me the money"}}]}}]}]})
    .to_string();
    let other_body = body.replace("money", "honey");
    let sign = |key: &str, bytes: &str| {
        format!(
            "sha256={}",
            omnihub_sandbox::webhook_delivery::hmac_sha256_hex(key.as_bytes(), bytes.as_bytes())
        )
    };
    let attempts = [
        Some(sign("not-the-app-secret", &body)),
        None,
        Some(sign(&setup.sandbox.config().app_secret, &other_body)),
        Some("sha256=".into()),
        Some(sign(&setup.sandbox.config().app_secret, &body).replace("sha256=", "sha1=")),
    ];
    for signature in attempts {
        let mut request = client.post(&setup.callback.url).body(body.clone());
        if let Some(signature) = &signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{signature:?}");
    }
    assert_eq!(setup.callback.updates(), []);
    let refused = setup
        .callback
        .outcomes()
        .into_iter()
        .filter(|outcome| *outcome == Err(WebhookError::Unauthorized))
        .count();
    assert_eq!(refused, 5);

    // The right signature over the same bytes is accepted.
    let response = client
        .post(&setup.callback.url)
        .header(
            "X-Hub-Signature-256",
            sign(&setup.sandbox.config().app_secret, &body),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        only_message(&setup.callback.updates()).text,
        "send me the money"
    );
}

#[tokio::test]
async fn the_webhook_examples_of_metas_spec_are_read() {
    let setup = setup().await;
    let examples = schema::webhook_examples().unwrap();
    assert_eq!(examples.len(), 16);
    for (name, example) in &examples {
        let delivery = setup.sandbox.deliver(example).await;
        assert!(delivery.accepted(), "{name}: {delivery:?}");
    }
    let updates = setup.callback.updates();
    let texts: Vec<(&str, &str)> = updates
        .iter()
        .map(|update| match update {
            InboundUpdate::Message(message) => (message.event_id.as_str(), message.text.as_str()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // Text ×3, image, location, contacts, template button, list and button replies; reactions,
    // orders, system notices, unsupported messages and group events carry nothing to answer.
    assert_eq!(texts.len(), 9, "{texts:?}");
    assert!(texts.contains(&(
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
        "Does it come in another color?"
    )));
    let first = match &updates[0] {
        InboundUpdate::Message(message) => message,
        other => panic!("{other:?}"),
    };
    assert_eq!(first.sender.name, "Sheena Nelson");
    assert_eq!(first.conversation, "16505551234");
}

#[tokio::test]
async fn the_same_delivery_five_times_is_the_same_event() {
    let setup = setup().await;
    let delivery = setup
        .sandbox
        .customer_sends(&customer(), CustomerMessage::Text("один раз".into()))
        .await;
    for _ in 0..4 {
        assert!(setup.sandbox.redeliver(&delivery).await.accepted());
    }
    let updates = setup.callback.wait_for_updates(5).await;
    assert_eq!(updates.len(), 5);
    assert!(updates.iter().all(|update| *update == updates[0]));
}

#[tokio::test]
async fn every_outbound_kind_passes_metas_schema() {
    let setup = setup().await;
    customer_says_hello(&setup).await;
    let button = |text: &str, payload: &str| Button {
        text: text.into(),
        payload: Some(payload.into()),
        url: None,
    };

    let mut quoted = reply("Ваш заказ готов");
    quoted.reply_to = Some("wamid.IN-quoted".into());
    let mut buttons = reply("Оплатить сейчас?");
    buttons.keyboard = vec![vec![button("Да", "pay"), button("Нет", "later")]];
    let mut list = reply("Выберите время");
    list.keyboard = (0..5)
        .map(|i| vec![button(&format!("{}:00", 10 + i), &format!("slot-{i}"))])
        .collect();
    let mut link = reply("Трек-номер");
    link.keyboard = vec![vec![Button {
        text: "Отследить".into(),
        payload: None,
        url: Some("https://track.example/1".into()),
    }]];
    let photo = b"\x89PNG fake".to_vec();
    let mut media = reply("Счёт во вложении");
    media.attachments = vec![
        OutboundAttachment {
            file_name: "photo.png".into(),
            mime_type: "image/png".into(),
            bytes: Arc::from(photo.as_slice()),
            public_url: None,
        },
        OutboundAttachment {
            file_name: "invoice.pdf".into(),
            mime_type: "application/pdf".into(),
            bytes: Arc::from(&b"%PDF"[..]),
            public_url: None,
        },
    ];
    let mut template = reply("Напоминание о заказе 42");
    template.template = Some(Template {
        name: "order_reminder".into(),
        language: "ru".into(),
        parameters: vec!["42".into()],
    });

    for message in [&quoted, &buttons, &list, &link, &media, &template] {
        let receipt = setup.channel.send(message).await.unwrap();
        assert!(
            receipt
                .provider_message_id
                .unwrap()
                .starts_with("wamid.OUT")
        );
    }
    assert_eq!(setup.sandbox.violations(), []);
    let sent = setup.sandbox.sent();
    let bodies: Vec<&Value> = sent.iter().map(|sent| &sent.body).collect();
    assert_eq!(bodies.len(), 7);
    assert_eq!(bodies[0]["context"]["message_id"], "wamid.IN-quoted");
    assert_eq!(bodies[1]["interactive"]["type"], "button");
    assert_eq!(bodies[2]["interactive"]["type"], "list");
    assert_eq!(
        bodies[3]["text"]["body"],
        "Трек-номер\n\nОтследить: https://track.example/1"
    );
    assert_eq!(bodies[4]["type"], "image");
    assert_eq!(bodies[4]["image"]["caption"], "Счёт во вложении");
    assert_eq!(bodies[5]["type"], "document");
    assert_eq!(bodies[6]["template"]["name"], "order_reminder");
    let uploaded = setup
        .sandbox
        .media(bodies[4]["image"]["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(uploaded.bytes, photo);
    assert_eq!(uploaded.mime_type, "image/png");
    assert_eq!(uploaded.file_name.as_deref(), Some("photo.png"));
}

#[tokio::test]
async fn the_24_hour_window_is_enforced() {
    let setup = setup().await;
    customer_says_hello(&setup).await;
    let anna = customer();

    // Inside the window: free-form goes.
    setup
        .channel
        .send(&reply("Отвечаем в течение часа"))
        .await
        .unwrap();

    // Outside it: refused before any request, with the reason the console recognises.
    let mut late = reply("Вы ещё здесь?");
    late.last_inbound_at = Some(Utc::now() - TimeDelta::hours(25));
    let never = OutboundMessage::text(MessageId::new(), anna.wa_id.clone(), "Привет", "k2");
    for message in [&late, &never] {
        let SendError::Permanent { reason } = setup.channel.send(message).await.unwrap_err() else {
            panic!("expected a permanent refusal");
        };
        assert!(reason.starts_with("outside_24h_window:"), "{reason}");
    }
    assert_eq!(setup.sandbox.sent().len(), 1);

    // A template goes outside the window.
    let mut template = late.clone();
    template.template = Some(Template {
        name: "we_miss_you".into(),
        language: "ru".into(),
        parameters: vec![],
    });
    setup.channel.send(&template).await.unwrap();
    assert_eq!(setup.sandbox.sent().len(), 2);

    // When Meta knows better (error 131047), the refusal reads the same.
    setup
        .sandbox
        .set_last_inbound(&anna.wa_id, Utc::now() - TimeDelta::hours(30));
    let SendError::Permanent { reason } = setup.channel.send(&reply("…")).await.unwrap_err()
    else {
        panic!("expected a permanent refusal");
    };
    assert!(
        reason.starts_with("outside_24h_window:") && reason.contains("131047"),
        "{reason}"
    );
    assert_eq!(setup.sandbox.violations(), []);
}

#[tokio::test]
async fn statuses_of_sent_messages_are_mapped() {
    let setup = setup().await;
    customer_says_hello(&setup).await;
    let receipt = setup.channel.send(&reply("Спасибо!")).await.unwrap();
    let wamid = receipt.provider_message_id.unwrap();
    // The hello, then sent, delivered and read.
    let updates = setup.callback.wait_for_updates(4).await;
    let statuses: Vec<&StatusUpdate> = updates
        .iter()
        .filter_map(|update| match update {
            InboundUpdate::Status(status) => Some(status),
            InboundUpdate::Message(_)
            | InboundUpdate::Blocked { .. }
            | InboundUpdate::Unblocked { .. } => None,
        })
        .collect();
    assert_eq!(
        statuses
            .iter()
            .map(|status| (status.provider_message_id.as_str(), status.status))
            .collect::<Vec<_>>(),
        [
            (wamid.as_str(), DeliveryStatus::Sent),
            (wamid.as_str(), DeliveryStatus::Delivered),
            (wamid.as_str(), DeliveryStatus::Read),
        ]
    );
    setup
        .sandbox
        .send_status(&wamid, "failed", Some((131026, "Message undeliverable")))
        .await;
    let updates = setup.callback.wait_for_updates(5).await;
    assert_eq!(
        updates.last(),
        Some(&InboundUpdate::Status(StatusUpdate {
            provider_message_id: wamid,
            status: DeliveryStatus::Failed,
            reason: Some("Message undeliverable (code 131026)".into()),
        }))
    );
}

#[tokio::test]
async fn a_marketing_template_to_a_customer_who_stopped_them_fails_in_a_status() {
    let setup = setup().await;
    customer_says_hello(&setup).await;
    let anna = customer();
    setup
        .sandbox
        .approve_template("spring_sale", TemplateCategory::Marketing);
    setup
        .sandbox
        .approve_template("order_shipped", TemplateCategory::Utility);
    setup.sandbox.customer_stops_marketing(&anna);
    let template = |name: &str| {
        let mut message = reply("шаблон");
        message.template = Some(Template {
            name: name.into(),
            language: "ru".into(),
            parameters: vec![],
        });
        message
    };

    // Meta accepts the message and then reports it failed: no sent, delivered or read.
    let receipt = setup.channel.send(&template("spring_sale")).await.unwrap();
    let wamid = receipt.provider_message_id.unwrap();
    let updates = setup.callback.wait_for_updates(2).await;
    assert_eq!(
        updates.last(),
        Some(&InboundUpdate::Status(StatusUpdate {
            provider_message_id: wamid,
            status: DeliveryStatus::Failed,
            reason: Some(
                "Unable to deliver the message. This recipient has chosen to stop receiving \
                 marketing messages on WhatsApp from your business. (code 131050)"
                    .into()
            ),
        }))
    );
    let deliveries = setup
        .sandbox
        .wait_for_deliveries(2, std::time::Duration::from_secs(10))
        .await;
    let failed: Value = serde_json::from_slice(&deliveries[1].body).unwrap();
    let status = &failed["entry"][0]["changes"][0]["value"]["statuses"][0];
    assert_eq!(status["errors"][0]["code"], MARKETING_OPT_OUT);
    assert!(status["errors"][0]["error_data"]["details"].is_string());

    // Other templates and free-form replies still reach the customer.
    setup
        .channel
        .send(&template("order_shipped"))
        .await
        .unwrap();
    setup.channel.send(&reply("Заказ в пути")).await.unwrap();
    let updates = setup.callback.wait_for_updates(2 + 6).await;
    let failures = updates
        .iter()
        .filter(|update| {
            matches!(update, InboundUpdate::Status(status) if status.status == DeliveryStatus::Failed)
        })
        .count();
    assert_eq!(failures, 1, "{updates:?}");
    assert_eq!(setup.sandbox.sent().len(), 3);
    assert_eq!(setup.sandbox.violations(), []);
}

#[tokio::test]
async fn rate_limits_and_outages_are_transient_a_bad_token_is_not() {
    let setup = setup_with(WhatsappConfig {
        rate_limit: Some((2, std::time::Duration::from_secs(60))),
        ..WhatsappConfig::default()
    })
    .await;
    customer_says_hello(&setup).await;
    setup.channel.send(&reply("1")).await.unwrap();
    setup.channel.send(&reply("2")).await.unwrap();
    let err = setup.channel.send(&reply("3")).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("130429"), "{err}");

    let fresh = setup_with(WhatsappConfig::default()).await;
    customer_says_hello(&fresh).await;
    fresh.sandbox.fail_next(GraphFailure::service_unavailable());
    assert!(
        fresh
            .channel
            .send(&reply("x"))
            .await
            .unwrap_err()
            .is_transient()
    );
    fresh.sandbox.fail_next(GraphFailure::rate_limit());
    assert_eq!(
        fresh.channel.health().await,
        Health::RateLimited(
            "(#130429) Rate limit hit (code 130429, fbtrace_id AsandboxTrace)".into()
        )
    );
    fresh.sandbox.fail_next(GraphFailure::invalid_token());
    let SendError::Permanent { reason } = fresh.channel.send(&reply("x")).await.unwrap_err() else {
        panic!("expected permanent");
    };
    assert!(reason.starts_with("invalid token:"), "{reason}");
    fresh
        .channel
        .set_webhook(Some(&fresh.callback.url))
        .await
        .unwrap();
    assert_eq!(fresh.channel.health().await, Health::Ok);
    assert_eq!(fresh.sandbox.violations(), []);
}

#[tokio::test]
async fn a_wrong_access_token_is_meta_error_190() {
    let setup = setup().await;
    customer_says_hello(&setup).await;
    let mut credentials = setup.sandbox.credentials();
    credentials["access_token"] = json!("EAA-revoked");
    let stale = channel_for(&setup.sandbox, credentials);
    let SendError::Permanent { reason } = stale.send(&reply("x")).await.unwrap_err() else {
        panic!("expected permanent");
    };
    assert!(
        reason.starts_with("invalid token:") && reason.contains("code 190"),
        "{reason}"
    );
    assert!(matches!(stale.health().await, Health::InvalidToken(_)));
    assert!(
        stale
            .download("1")
            .await
            .unwrap_err()
            .to_string()
            .contains("190")
    );
    assert!(!stale.poll(None).await.unwrap_err().is_transient());
    assert_eq!(setup.sandbox.sent(), []);
}

#[tokio::test]
async fn the_fake_records_what_breaks_metas_schema() {
    let setup = setup().await;
    customer_says_hello(&setup).await;
    let config = setup.sandbox.config();
    let url = format!(
        "{}v23.0/{}/messages",
        setup.sandbox.base_url(),
        config.phone_number_id
    );
    let client = reqwest::Client::new();
    for body in [
        // No recipient.
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "type": "text",
            "text": {"body": "hi"}}),
        // A field no message type has.
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": customer().wa_id, "type": "text", "text": {"body": "hi"}, "priority": "high"}),
        // Four reply buttons.
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": customer().wa_id, "type": "interactive", "interactive": {"type": "button",
            "body": {"text": "?"}, "action": {"buttons": (0..4).map(|i| json!({"type": "reply",
            "reply": {"id": i.to_string(), "title": "x"}})).collect::<Vec<_>>()}}}),
    ] {
        let response = client
            .post(&url)
            .bearer_auth(&config.access_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], 100, "{answer}");
    }
    let violations = setup.sandbox.violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(
        violations
            .iter()
            .all(|v| v.endpoint == "POST /{phone-number-id}/messages")
    );
    assert_eq!(setup.sandbox.sent(), []);
}
