//! The Telegram connector against the fake Bot API: both directions for every message kind,
//! keyboards and button presses, the webhook secret, redeliveries, long polling with a cursor,
//! downloads, flood limits and refusals, health; and the fake's own contract checks. Every test
//! ends with no contract violation recorded.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use omnihub_connectors::provider::{
    AttachmentKind, Health, InboundMessage, InboundUpdate, ProviderChannel, WebhookError,
    WebhookReply, WebhookRequest,
};
use omnihub_connectors::telegram::{SECRET_HEADER, TelegramChannel};
use omnihub_connectors::{Button, OutboundAttachment, OutboundChannel, OutboundMessage, SendError};
use omnihub_core::MessageId;
use omnihub_sandbox::telegram::{
    ApiError, Customer, CustomerContent, Delivery, FakeBot, TelegramSandbox, conforms,
};
use serde_json::{Value, json};

use crate::support::messages;

const TOKEN: &str = "7001234567:AAH-sandbox_token_for_tests";
const SECRET: &str = "hook-Secret_42";

/// The signature and header of a 1280×960 PNG: all the sandbox reads of an image.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x05\x00\0\0\x03\xc0\x08\x02\0\0\0\x7b\x40\xe8\xdd";

fn ivan() -> Customer {
    Customer::new(5001, "Иван")
        .last_name("Петров")
        .username("ivan_p")
        .language("ru")
}

fn maria() -> Customer {
    Customer::new(5002, "Maria")
}

struct Setup {
    sandbox: TelegramSandbox,
    bot: FakeBot,
    channel: Arc<TelegramChannel>,
}

impl Setup {
    async fn new() -> Setup {
        let sandbox = TelegramSandbox::start().await.unwrap();
        let bot = sandbox.add_bot(TOKEN);
        let channel = Arc::new(channel(&sandbox, TOKEN, Some(SECRET), "webhook"));
        Setup {
            sandbox,
            bot,
            channel,
        }
    }

    fn assert_no_violations(&self) {
        assert_eq!(self.sandbox.violations(), []);
    }
}

fn channel(
    sandbox: &TelegramSandbox,
    token: &str,
    secret: Option<&str>,
    updates: &str,
) -> TelegramChannel {
    let mut credentials = json!({"bot_token": token});
    if let Some(secret) = secret {
        credentials["webhook_secret"] = json!(secret);
    }
    TelegramChannel::from_channel(
        Some(&credentials),
        &json!({"updates": updates}),
        &sandbox.base_url(),
    )
    .unwrap()
    .with_poll_timeout(Duration::from_secs(1))
}

fn text(conversation: i64, text: &str) -> OutboundMessage {
    OutboundMessage::text(
        MessageId::new(),
        conversation.to_string(),
        text,
        MessageId::new().to_string(),
    )
}

/// What a webhook route does with the connector: hand over the raw request, answer by the
/// outcome. Records every outcome.
struct Receiver {
    url: String,
    outcomes: Arc<Mutex<Vec<Result<WebhookReply, WebhookError>>>>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start(channel: Arc<TelegramChannel>) -> Receiver {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&outcomes);
        let server = HttpServer::new(move || {
            let channel = Arc::clone(&channel);
            let recorded = Arc::clone(&recorded);
            App::new().route(
                "/hooks/telegram",
                web::route().to(move |request: HttpRequest, body: web::Bytes| {
                    let channel = Arc::clone(&channel);
                    let recorded = Arc::clone(&recorded);
                    async move {
                        let headers = request.headers().iter().map(|(name, value)| {
                            (name.to_string(), value.to_str().unwrap_or("").to_string())
                        });
                        let outcome = channel.webhook(&WebhookRequest::new(
                            request.method().as_str(),
                            request.query_string(),
                            headers,
                            &body,
                        ));
                        let response = match &outcome {
                            Ok(_) => HttpResponse::Ok().finish(),
                            Err(WebhookError::Unauthorized) => {
                                HttpResponse::Unauthorized().finish()
                            }
                            Err(WebhookError::Malformed(_)) => HttpResponse::BadRequest().finish(),
                            Err(WebhookError::MethodNotAllowed) => {
                                HttpResponse::MethodNotAllowed().finish()
                            }
                        };
                        recorded.lock().unwrap().push(outcome);
                        response
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let url = format!("http://{}/hooks/telegram", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url,
            outcomes,
            server: handle,
        }
    }

    fn outcomes(&self) -> Vec<Result<WebhookReply, WebhookError>> {
        self.outcomes.lock().unwrap().clone()
    }

    /// The messages of every accepted request, in order.
    fn messages(&self) -> Vec<InboundMessage> {
        let updates = self
            .outcomes()
            .into_iter()
            .filter_map(|outcome| match outcome {
                Ok(WebhookReply::Updates { updates, .. }) => Some(updates),
                _ => None,
            })
            .flatten()
            .collect();
        messages(updates)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

#[tokio::test]
async fn a_customer_message_reaches_the_webhook_and_the_reply_reaches_the_customer() {
    let setup = Setup::new().await;
    let receiver = Receiver::start(Arc::clone(&setup.channel)).await;
    setup
        .channel
        .set_webhook(Some(&receiver.url))
        .await
        .unwrap();
    let webhook = setup.bot.webhook().unwrap();
    assert_eq!(webhook.url, receiver.url);
    assert_eq!(webhook.secret_token.as_deref(), Some(SECRET));
    assert_eq!(
        webhook.allowed_updates.unwrap(),
        [
            "message",
            "edited_message",
            "callback_query",
            "my_chat_member"
        ]
    );

    let action = setup
        .bot
        .customer_says(5001, &ivan(), "Здравствуйте! Где мой заказ?")
        .await
        .unwrap();
    assert_eq!(action.delivery, Delivery::Webhook { status: 200 });
    let inbound = receiver.messages();
    assert_eq!(inbound.len(), 1);
    let message = &inbound[0];
    assert_eq!(message.text, "Здравствуйте! Где мой заказ?");
    assert_eq!(message.conversation, "5001");
    assert_eq!(message.sender.id, "5001");
    assert_eq!(message.sender.name, "Иван Петров");
    assert_eq!(message.sender.username.as_deref(), Some("ivan_p"));
    let message_id = action.message_id.unwrap().to_string();
    assert_eq!(
        message.provider_message_id,
        Some(format!("5001:{message_id}"))
    );
    assert_eq!(message.event_id, format!("msg:5001:{message_id}"));
    assert!(message.sent_at.is_some());

    let mut reply = text(5001, "Заказ №42 уже в пути.");
    reply.reply_to = message.provider_message_id.clone();
    let receipt = setup.channel.send(&reply).await.unwrap();
    let sent = setup.bot.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "sendMessage");
    assert_eq!(sent[0].chat_id, 5001);
    assert_eq!(sent[0].text.as_deref(), Some("Заказ №42 уже в пути."));
    assert_eq!(sent[0].reply_to, Some(action.message_id.unwrap()));
    assert_eq!(
        receipt.provider_message_id,
        Some(format!("5001:{}", sent[0].message_id))
    );
    assert_eq!(setup.channel.health().await, Health::Ok);
    setup.assert_no_violations();
}

#[tokio::test]
async fn every_inbound_message_kind_is_mapped() {
    let setup = Setup::new().await;
    let poller = channel(&setup.sandbox, TOKEN, Some(SECRET), "long_poll");
    let customer = ivan();
    let contents = [
        CustomerContent::Text("текст".into()),
        CustomerContent::Photo {
            bytes: PNG.to_vec(),
            caption: Some("фото".into()),
        },
        CustomerContent::Document {
            file_name: "счёт.pdf".into(),
            mime_type: "application/pdf".into(),
            bytes: b"%PDF-1.7".to_vec(),
            caption: Some("документ".into()),
        },
        CustomerContent::Voice {
            bytes: b"OggS voice".to_vec(),
            duration: 3,
        },
        CustomerContent::Audio {
            file_name: "song.mp3".into(),
            mime_type: "audio/mpeg".into(),
            bytes: b"ID3 audio".to_vec(),
            duration: 180,
        },
        CustomerContent::Video {
            bytes: b"video".to_vec(),
            width: 640,
            height: 360,
            duration: 12,
            caption: Some("видео".into()),
        },
        CustomerContent::Sticker {
            bytes: b"RIFF webp".to_vec(),
            emoji: "👍".into(),
        },
        CustomerContent::Location {
            latitude: 55.7558,
            longitude: 37.6173,
        },
        CustomerContent::Contact {
            phone_number: "+79990001122".into(),
            first_name: "Иван".into(),
            last_name: Some("Петров".into()),
            user_id: Some(5001),
        },
    ];
    for content in contents {
        let action = setup
            .bot
            .customer_sends(5001, &customer, content)
            .await
            .unwrap();
        assert_eq!(action.delivery, Delivery::Queued);
    }

    let polled = poller.poll(None).await.unwrap();
    let inbound = messages(polled.updates);
    assert_eq!(inbound.len(), 9);
    assert_eq!(inbound[0].text, "текст");
    assert!(inbound[0].attachments.is_empty());

    let kinds: Vec<_> = inbound[1..]
        .iter()
        .map(|message| {
            assert_eq!(message.attachments.len(), 1, "{message:?}");
            message.attachments[0].kind.clone()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            AttachmentKind::Image,
            AttachmentKind::Document,
            AttachmentKind::Voice,
            AttachmentKind::Audio,
            AttachmentKind::Video,
            AttachmentKind::Sticker,
            AttachmentKind::Location {
                latitude: 55.7558,
                longitude: 37.6173
            },
            AttachmentKind::Contact {
                name: "Иван Петров".into(),
                phone: "+79990001122".into()
            },
        ]
    );
    // Captions become the text.
    assert_eq!(inbound[1].text, "фото");
    assert_eq!(inbound[2].text, "документ");
    assert_eq!(inbound[5].text, "видео");
    // The largest photo size is the one taken.
    let photo = &setup.bot.update(polled_update_id(&setup.bot, 1)).unwrap()["message"]["photo"];
    assert_eq!(
        inbound[1].attachments[0].file_ref.as_deref(),
        photo[1]["file_id"].as_str()
    );
    let document = &inbound[2].attachments[0];
    assert_eq!(document.file_name.as_deref(), Some("счёт.pdf"));
    assert_eq!(document.mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(document.size, Some(8));
    assert_eq!(
        inbound[3].attachments[0].mime_type.as_deref(),
        Some("audio/ogg")
    );
    assert_eq!(
        inbound[5].attachments[0].mime_type.as_deref(),
        Some("video/mp4")
    );
    assert_eq!(
        inbound[6].attachments[0].mime_type.as_deref(),
        Some("image/webp")
    );
    assert!(inbound[7].attachments[0].file_ref.is_none());
    // A customer sharing their own contact tells us their phone.
    assert_eq!(inbound[8].sender.phone.as_deref(), Some("+79990001122"));
    setup.assert_no_violations();
}

/// The update id of the `n`th update the bot made (0-based).
fn polled_update_id(bot: &FakeBot, n: usize) -> i64 {
    (483_000_001..483_000_100)
        .filter(|id| bot.update(*id).is_some())
        .nth(n)
        .unwrap()
}

#[tokio::test]
async fn outbound_photos_documents_keyboards_and_long_texts() {
    let setup = Setup::new().await;
    for customer in [ivan(), maria()] {
        setup
            .bot
            .customer_says(customer.id, &customer, "/start")
            .await
            .unwrap();
    }

    // A photo with its caption and a keyboard, and a document after it.
    let mut message = text(5001, "Ваш чек и договор");
    message.attachments = vec![
        OutboundAttachment {
            file_name: "receipt.png".into(),
            mime_type: "image/png".into(),
            bytes: Arc::from(PNG),
            public_url: None,
        },
        OutboundAttachment {
            file_name: "договор.pdf".into(),
            mime_type: "application/pdf".into(),
            bytes: Arc::from(&b"%PDF-1.7 contract"[..]),
            public_url: None,
        },
    ];
    message.keyboard = vec![
        vec![
            Button {
                text: "Оплатить".into(),
                payload: Some("pay:42".into()),
                url: None,
            },
            Button {
                text: "Сайт".into(),
                payload: None,
                url: Some("https://shop.example/orders/42".into()),
            },
        ],
        vec![Button {
            text: "Отмена".into(),
            payload: Some("cancel:42".into()),
            url: None,
        }],
    ];
    let receipt = setup.channel.send(&message).await.unwrap();
    let sent = setup.bot.sent_messages();
    let photo = &sent[0];
    assert_eq!(photo.method, "sendPhoto");
    assert_eq!(
        receipt.provider_message_id,
        Some(format!("{}:{}", photo.chat_id, photo.message_id))
    );
    assert_eq!(photo.text.as_deref(), Some("Ваш чек и договор"));
    assert_eq!(photo.files.len(), 1);
    assert_eq!(photo.files[0].field, "photo");
    assert_eq!(photo.files[0].bytes, PNG);
    assert_eq!(photo.files[0].file_name.as_deref(), Some("receipt.png"));
    assert_eq!(photo.keyboard.len(), 2);
    assert_eq!(
        photo.keyboard[0][0].callback_data.as_deref(),
        Some("pay:42")
    );
    assert_eq!(
        photo.keyboard[0][1].url.as_deref(),
        Some("https://shop.example/orders/42")
    );
    assert_eq!(photo.keyboard[1][0].text, "Отмена");
    let document = &sent[1];
    assert_eq!(document.method, "sendDocument");
    assert_eq!(document.text, None);
    assert!(document.keyboard.is_empty());
    assert_eq!(document.files[0].file_name.as_deref(), Some("договор.pdf"));
    assert_eq!(
        document.files[0].mime_type.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(document.files[0].bytes, b"%PDF-1.7 contract");

    // A text over 4096 characters goes as several messages, the keyboard under the last.
    let long = format!("{}\n{}", "а".repeat(4000), "б".repeat(3000));
    let mut message = text(5002, &long);
    message.keyboard = vec![vec![Button {
        text: "Понятно".into(),
        payload: None,
        url: None,
    }]];
    setup.channel.send(&message).await.unwrap();
    let sent: Vec<_> = setup
        .bot
        .sent_messages()
        .into_iter()
        .filter(|sent| sent.chat_id == 5002)
        .collect();
    assert_eq!(sent.len(), 2);
    let joined: String = sent.iter().map(|s| s.text.clone().unwrap()).collect();
    assert_eq!(joined, long);
    assert!(sent[0].keyboard.is_empty());
    assert_eq!(
        sent[1].keyboard[0][0].callback_data.as_deref(),
        Some("Понятно")
    );
    setup.assert_no_violations();
}

#[tokio::test]
async fn a_button_press_comes_back_as_a_callback_and_is_answered() {
    let setup = Setup::new().await;
    let receiver = Receiver::start(Arc::clone(&setup.channel)).await;
    setup
        .channel
        .set_webhook(Some(&receiver.url))
        .await
        .unwrap();
    setup
        .bot
        .customer_says(5001, &ivan(), "Отмените заказ")
        .await
        .unwrap();
    let mut question = text(5001, "Отменить заказ №42?");
    question.keyboard = vec![vec![
        Button {
            text: "Да".into(),
            payload: Some("order:42:cancel".into()),
            url: None,
        },
        Button {
            text: "Нет".into(),
            payload: Some("order:42:keep".into()),
            url: None,
        },
    ]];
    setup.channel.send(&question).await.unwrap();

    let press = setup
        .bot
        .customer_presses(5001, &ivan(), "order:42:cancel")
        .await
        .unwrap();
    assert_eq!(press.delivery, Delivery::Webhook { status: 200 });
    let inbound = receiver.messages();
    let callback = inbound.last().unwrap();
    let callback_id = press.callback_query_id.unwrap();
    assert_eq!(callback.callback_id.as_deref(), Some(callback_id.as_str()));
    assert_eq!(callback.text, "order:42:cancel");
    assert_eq!(callback.conversation, "5001");
    assert_eq!(callback.sender.name, "Иван Петров");
    assert_eq!(callback.event_id, format!("callback:{callback_id}"));

    setup.channel.answer_callback(&callback_id).await.unwrap();
    assert_eq!(
        setup.bot.answered_callbacks(),
        std::slice::from_ref(&callback_id)
    );
    // Telegram refuses a second answer to the same query.
    assert!(matches!(
        setup.channel.answer_callback(&callback_id).await,
        Err(SendError::Permanent { .. })
    ));
    setup.assert_no_violations();
}

#[tokio::test]
async fn an_edit_arrives_with_its_own_event_id() {
    let setup = Setup::new().await;
    let receiver = Receiver::start(Arc::clone(&setup.channel)).await;
    setup
        .channel
        .set_webhook(Some(&receiver.url))
        .await
        .unwrap();
    let said = setup
        .bot
        .customer_says(5001, &ivan(), "адрес: Ленина 1")
        .await
        .unwrap();
    let message_id = said.message_id.unwrap();
    setup
        .bot
        .customer_edits(5001, &ivan(), message_id, "адрес: Ленина 10")
        .await
        .unwrap();
    setup
        .bot
        .customer_edits(5001, &ivan(), message_id, "адрес: Ленина 11")
        .await
        .unwrap();

    let inbound = receiver.messages();
    assert_eq!(inbound.len(), 3);
    assert_eq!(inbound[1].text, "адрес: Ленина 10");
    assert_eq!(inbound[1].edit_of, Some(format!("5001:{message_id}")));
    assert_eq!(inbound[2].text, "адрес: Ленина 11");
    let mut event_ids: Vec<_> = inbound.iter().map(|m| m.event_id.clone()).collect();
    event_ids.dedup();
    assert_eq!(event_ids.len(), 3, "{event_ids:?}");
    assert!(event_ids[1].starts_with(&format!("edit:5001:{message_id}:")));
    setup.assert_no_violations();
}

#[tokio::test]
async fn the_webhook_refuses_a_forged_or_missing_secret() {
    let setup = Setup::new().await;
    let receiver = Receiver::start(Arc::clone(&setup.channel)).await;

    // Someone registers our URL with a secret of their own: every update is refused.
    let forger = setup.sandbox.add_bot("999:forger");
    let forging = channel(
        &setup.sandbox,
        "999:forger",
        Some("guessed-secret"),
        "webhook",
    );
    forging.set_webhook(Some(&receiver.url)).await.unwrap();
    let action = forger
        .customer_says(5001, &ivan(), "поддельное")
        .await
        .unwrap();
    assert_eq!(action.delivery, Delivery::Webhook { status: 401 });

    // A bot whose channel has no secret configured: nothing is accepted either.
    let no_secret = channel(&setup.sandbox, TOKEN, None, "webhook");
    assert!(matches!(
        no_secret.set_webhook(Some(&receiver.url)).await,
        Err(SendError::Permanent { .. })
    ));
    // Registered without a secret (by hand, as an old deployment might have).
    let plain = reqwest::Client::new()
        .post(format!("{}bot{TOKEN}/setWebhook", setup.sandbox.base_url()))
        .json(&json!({"url": receiver.url}))
        .send()
        .await
        .unwrap();
    assert!(plain.status().is_success());
    let action = setup
        .bot
        .customer_says(5001, &ivan(), "без секрета")
        .await
        .unwrap();
    assert_eq!(action.delivery, Delivery::Webhook { status: 401 });
    assert_eq!(
        setup.bot.last_webhook_error().as_deref(),
        Some("Wrong response from the webhook: 401 Unauthorized")
    );

    assert_eq!(
        receiver.outcomes(),
        [
            Err(WebhookError::Unauthorized),
            Err(WebhookError::Unauthorized)
        ]
    );
    // The channel reports the failing webhook.
    assert!(
        matches!(setup.channel.health().await, Health::Failing(reason) if reason.contains("401")),
    );
    setup.assert_no_violations();
}

#[tokio::test]
async fn the_same_update_delivered_five_times_has_one_event_id() {
    let setup = Setup::new().await;
    let receiver = Receiver::start(Arc::clone(&setup.channel)).await;
    setup
        .channel
        .set_webhook(Some(&receiver.url))
        .await
        .unwrap();
    let photo = setup
        .bot
        .customer_sends_photo(5001, &ivan(), PNG, Some("брак"))
        .await
        .unwrap();
    for _ in 0..4 {
        let delivery = setup.bot.redeliver(photo.update_id).await.unwrap();
        assert_eq!(delivery, Delivery::Webhook { status: 200 });
    }
    let inbound = receiver.messages();
    assert_eq!(inbound.len(), 5);
    assert!(
        inbound.iter().all(|message| message == &inbound[0]),
        "{inbound:?}"
    );
    setup.assert_no_violations();
}

#[tokio::test]
async fn sample_payloads_in_the_shape_of_the_contract() {
    let setup = Setup::new().await;
    let from = json!({"id": 5001, "is_bot": false, "first_name": "Иван", "last_name": "Петров",
                      "username": "ivan_p", "language_code": "ru"});
    let chat = json!({"id": 5001, "type": "private", "first_name": "Иван", "last_name": "Петров",
                      "username": "ivan_p"});
    let bot_user = json!({"id": 7001234567i64, "is_bot": true, "first_name": "Shop",
                          "username": "shop_bot"});
    let samples = [
        json!({"update_id": 10000, "message": {
            "message_id": 1365, "from": from, "chat": chat, "date": 1_764_000_000,
            "text": "/start", "entities": [{"offset": 0, "length": 6, "type": "bot_command"}]}}),
        json!({"update_id": 10001, "message": {
            "message_id": 1366, "from": from, "chat": chat, "date": 1_764_000_010,
            "photo": [
                {"file_id": "AgACAgIAAxkBAAI-s", "file_unique_id": "AQADs", "file_size": 1432, "width": 90, "height": 67},
                {"file_id": "AgACAgIAAxkBAAI-m", "file_unique_id": "AQADm", "file_size": 20122, "width": 320, "height": 240},
                {"file_id": "AgACAgIAAxkBAAI-x", "file_unique_id": "AQADx", "file_size": 88231, "width": 1280, "height": 960}
            ],
            "caption": "вот брак", "media_group_id": "13657"}}),
        json!({"update_id": 10002, "edited_message": {
            "message_id": 1365, "from": from, "chat": chat, "date": 1_764_000_000,
            "edit_date": 1_764_000_100, "text": "/start promo"}}),
        json!({"update_id": 10003, "callback_query": {
            "id": "4382bfdwdsb323b2d9", "from": from, "chat_instance": "-8817281027712",
            "data": "order:42:cancel",
            "message": {"message_id": 1367, "from": bot_user, "chat": chat, "date": 1_764_000_020,
                        "text": "Отменить заказ?",
                        "reply_markup": {"inline_keyboard": [[{"text": "Да", "callback_data": "order:42:cancel"}]]}}}}),
        json!({"update_id": 10004, "message": {
            "message_id": 1368, "from": from, "chat": chat, "date": 1_764_000_030,
            "voice": {"file_id": "AwACAgIAAxkBAAI", "file_unique_id": "AgADv", "duration": 4,
                      "mime_type": "audio/ogg", "file_size": 10240}}}),
        json!({"update_id": 10005, "my_chat_member": {
            "chat": chat, "from": from, "date": 1_764_000_040,
            "old_chat_member": {"status": "member", "user": bot_user},
            "new_chat_member": {"status": "kicked", "user": bot_user, "until_date": 0}}}),
    ];
    let mut mapped = Vec::new();
    for sample in &samples {
        conforms("Update", sample).unwrap_or_else(|problem| panic!("{problem}: {sample}"));
        let body = serde_json::to_vec(sample).unwrap();
        let request = WebhookRequest::new(
            "POST",
            "",
            [(SECRET_HEADER.to_string(), SECRET.to_string())],
            &body,
        );
        match setup.channel.webhook(&request).unwrap() {
            WebhookReply::Updates { updates, ack_body } => {
                assert_eq!(ack_body, "");
                mapped.push(updates);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let one = |index: usize| match &mapped[index][..] {
        [InboundUpdate::Message(message)] => message.clone(),
        other => panic!("sample {index}: {other:?}"),
    };
    assert_eq!(one(0).text, "/start");
    assert_eq!(one(0).event_id, "msg:5001:1365");
    assert_eq!(
        one(1).attachments[0].file_ref.as_deref(),
        Some("AgACAgIAAxkBAAI-x")
    );
    assert_eq!(one(1).text, "вот брак");
    assert_eq!(one(2).edit_of.as_deref(), Some("5001:1365"));
    assert_eq!(one(2).event_id, "edit:5001:1365:1764000100:10002");
    assert_eq!(one(3).callback_id.as_deref(), Some("4382bfdwdsb323b2d9"));
    assert_eq!(one(4).attachments[0].kind, AttachmentKind::Voice);
    // The bot being blocked in a private chat marks the customer's conversation blocked.
    assert!(
        matches!(
            mapped[5].as_slice(),
            [InboundUpdate::Blocked { conversation, .. }] if conversation == "5001"
        ),
        "{:?}",
        mapped[5]
    );

    // A correctly signed body that is not an update is refused as malformed.
    let request = WebhookRequest::new(
        "POST",
        "",
        [(SECRET_HEADER.to_string(), SECRET.to_string())],
        br#"{"message": {"text": "no update id"}}"#,
    );
    assert!(matches!(
        setup.channel.webhook(&request),
        Err(WebhookError::Malformed(_))
    ));
}

#[tokio::test]
async fn long_polling_with_a_cursor_misses_and_repeats_nothing() {
    let sandbox = TelegramSandbox::start().await.unwrap();
    let bot = sandbox.add_bot(TOKEN);
    let poller = channel(&sandbox, TOKEN, Some(SECRET), "long_poll");
    for n in 1..=3 {
        bot.customer_says(5001, &ivan(), &format!("сообщение {n}"))
            .await
            .unwrap();
    }
    let first = poller.poll(None).await.unwrap();
    let texts = |polled: &omnihub_connectors::provider::Polled| {
        messages(polled.updates.clone())
            .into_iter()
            .map(|m| m.text)
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&first), ["сообщение 1", "сообщение 2", "сообщение 3"]);

    for n in 4..=5 {
        bot.customer_says(5002, &maria(), &format!("сообщение {n}"))
            .await
            .unwrap();
    }
    let second = poller.poll(first.cursor.as_deref()).await.unwrap();
    assert_eq!(texts(&second), ["сообщение 4", "сообщение 5"]);
    // Asking from the second cursor confirmed the first batch to Telegram.
    assert_eq!(bot.pending_updates(), 2);

    // Nothing new: the poll waits out its timeout and keeps the cursor.
    let started = Instant::now();
    let empty = poller.poll(second.cursor.as_deref()).await.unwrap();
    assert!(empty.updates.is_empty());
    assert_eq!(empty.cursor, second.cursor);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(bot.pending_updates(), 0);

    // A waiting poll answers as soon as the customer writes.
    let waiting = {
        let poller = channel(&sandbox, TOKEN, Some(SECRET), "long_poll")
            .with_poll_timeout(Duration::from_secs(20));
        let cursor = empty.cursor.clone();
        tokio::spawn(async move { poller.poll(cursor.as_deref()).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    bot.customer_says(5001, &ivan(), "сообщение 6")
        .await
        .unwrap();
    let woken = waiting.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(texts(&woken), ["сообщение 6"]);
    assert_eq!(poller.health().await, Health::Ok);

    // A second instance polling the same bot ends the first one's wait with a conflict.
    let calls = bot.get_updates_calls();
    let first_instance = {
        let poller = channel(&sandbox, TOKEN, Some(SECRET), "long_poll")
            .with_poll_timeout(Duration::from_secs(20));
        let cursor = woken.cursor.clone();
        tokio::spawn(async move { poller.poll(cursor.as_deref()).await })
    };
    let asked = Instant::now();
    while bot.get_updates_calls() == calls {
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the first poll never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second_instance = poller.poll(woken.cursor.as_deref()).await.unwrap();
    assert!(second_instance.updates.is_empty());
    let terminated = first_instance.await.unwrap().unwrap_err();
    assert!(
        matches!(&terminated, SendError::Permanent { reason }
            if reason.starts_with("Conflict: terminated by other getUpdates request")),
        "{terminated:?}"
    );

    // getUpdates while a webhook is set is a conflict, as in the real API.
    poller
        .set_webhook(Some("http://127.0.0.1:9/hook"))
        .await
        .unwrap();
    let conflict = poller.poll(woken.cursor.as_deref()).await.unwrap_err();
    assert!(
        matches!(&conflict, SendError::Permanent { reason } if reason.starts_with("Conflict")),
        "{conflict:?}"
    );
    assert!(matches!(poller.health().await, Health::Failing(_)));
    poller.set_webhook(None).await.unwrap();
    assert!(bot.webhook().is_none());
    assert_eq!(sandbox.violations(), []);
}

#[tokio::test]
async fn files_are_downloaded_by_their_reference() {
    let setup = Setup::new().await;
    let poller = channel(&setup.sandbox, TOKEN, Some(SECRET), "long_poll");
    let contract = b"%PDF-1.7 signed contract".to_vec();
    setup
        .bot
        .customer_sends(
            5001,
            &ivan(),
            CustomerContent::Document {
                file_name: "contract.pdf".into(),
                mime_type: "application/pdf".into(),
                bytes: contract.clone(),
                caption: None,
            },
        )
        .await
        .unwrap();
    setup
        .bot
        .customer_sends_photo(5001, &ivan(), PNG, None)
        .await
        .unwrap();
    let inbound = messages(poller.poll(None).await.unwrap().updates);

    let document = setup
        .channel
        .download(inbound[0].attachments[0].file_ref.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(document.bytes, contract);
    assert_eq!(document.mime_type.as_deref(), Some("application/pdf"));
    assert!(document.file_name.unwrap().ends_with(".pdf"));
    let photo = setup
        .channel
        .download(inbound[1].attachments[0].file_ref.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(photo.bytes, PNG);
    assert_eq!(photo.mime_type.as_deref(), Some("image/png"));

    let unknown = setup.channel.download("no-such-file").await.unwrap_err();
    assert_eq!(
        unknown,
        SendError::Permanent {
            reason: "Bad Request: invalid file_id".into()
        }
    );
    setup.assert_no_violations();
}

#[tokio::test]
async fn flood_limits_answer_429_which_is_transient_with_retry_after() {
    let setup = Setup::new().await;
    setup
        .bot
        .customer_says(5001, &ivan(), "привет")
        .await
        .unwrap();
    // One chat takes a burst of three, then one message a second.
    for n in 1..=3 {
        setup
            .channel
            .send(&text(5001, &format!("ответ {n}")))
            .await
            .unwrap();
    }
    let error = setup
        .channel
        .send(&text(5001, "ответ 4"))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        SendError::Transient {
            retry_after: Some(Duration::from_secs(1)),
            reason: "Too Many Requests: retry after 1".into()
        }
    );
    assert_eq!(setup.sandbox.too_many_requests_sent(), 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    setup.channel.send(&text(5001, "ответ 4")).await.unwrap();

    // Telegram's own wait is passed on as it is.
    setup
        .bot
        .fail_next("sendMessage", 1, ApiError::too_many_requests(17));
    let error = setup
        .channel
        .send(&text(5001, "ответ 5"))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        SendError::Transient {
            retry_after: Some(Duration::from_secs(17)),
            reason: "Too Many Requests: retry after 17".into()
        }
    );
    assert_eq!(setup.sandbox.too_many_requests_sent(), 2);
    assert_eq!(setup.bot.sent_messages().len(), 4);
    setup.assert_no_violations();
}

#[tokio::test]
async fn a_later_part_waits_out_a_short_flood_limit_in_place() {
    let setup = Setup::new().await;
    setup
        .bot
        .customer_says(5001, &ivan(), "пришлите документы")
        .await
        .unwrap();
    let mut message = text(5001, "");
    message.attachments = (1..=4)
        .map(|n| OutboundAttachment {
            file_name: format!("doc{n}.txt"),
            mime_type: "text/plain".into(),
            bytes: Arc::from(format!("document {n}").into_bytes()),
            public_url: None,
        })
        .collect();
    // Four files into one chat exceed its burst of three: the fourth waits a second.
    setup.channel.send(&message).await.unwrap();
    let sent = setup.bot.sent_messages();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[3].files[0].bytes, b"document 4");
    assert_eq!(setup.sandbox.too_many_requests_sent(), 1);

    // A later part refused for good is reported as a partial delivery, not retried.
    tokio::time::sleep(Duration::from_secs(3)).await;
    message.attachments = vec![
        OutboundAttachment {
            file_name: "photo.png".into(),
            mime_type: "image/png".into(),
            bytes: Arc::from(PNG),
            public_url: None,
        },
        OutboundAttachment {
            file_name: "act.pdf".into(),
            mime_type: "application/pdf".into(),
            bytes: Arc::from(&b"%PDF"[..]),
            public_url: None,
        },
    ];
    // The document's first try meets an outage (retried in place), its second a block.
    setup.bot.fail_next("sendDocument", 1, ApiError::internal());
    setup
        .bot
        .fail_next("sendDocument", 1, ApiError::blocked_by_user());
    let error = setup.channel.send(&message).await.unwrap_err();
    assert_eq!(
        error,
        SendError::Blocked {
            reason: "only 1 of 2 parts of the message were delivered: \
                     Forbidden: bot was blocked by the user"
                .into()
        }
    );
    assert_eq!(setup.bot.sent_messages().len(), 5);
    setup.assert_no_violations();
}

#[tokio::test]
async fn blocking_and_unblocking_the_bot_arrive_as_my_chat_member_updates() {
    let sandbox = TelegramSandbox::start().await.unwrap();
    let bot = sandbox.add_bot(TOKEN);
    let poller = channel(&sandbox, TOKEN, Some(SECRET), "long_poll");
    bot.customer_says(5001, &ivan(), "привет").await.unwrap();
    let blocked = bot.customer_blocks_bot(5001, &ivan()).await.unwrap();
    assert_eq!(blocked.delivery, Delivery::Queued);
    let update = bot.update(blocked.update_id).unwrap();
    assert_eq!(
        update["my_chat_member"]["new_chat_member"]["status"],
        "kicked"
    );
    assert_eq!(
        update["my_chat_member"]["old_chat_member"]["status"],
        "member"
    );
    assert_eq!(update["my_chat_member"]["from"]["id"], 5001);
    assert_eq!(
        bot.customer_blocks_bot(5001, &ivan()).await.unwrap_err(),
        omnihub_sandbox::telegram::SandboxError::NoChange(5001)
    );
    // Writing again needs unblocking the bot, which Telegram reports before the message.
    bot.customer_says(5001, &ivan(), "я вернулся")
        .await
        .unwrap();
    let polled = poller.poll(None).await.unwrap();
    let kinds: Vec<_> = polled
        .updates
        .iter()
        .map(|update| match update {
            InboundUpdate::Message(message) => format!("message {}", message.text),
            InboundUpdate::Blocked {
                conversation,
                reason,
            } => format!("blocked {conversation}: {reason}"),
            InboundUpdate::Unblocked { conversation } => format!("unblocked {conversation}"),
            InboundUpdate::Status(status) => format!("status {status:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "message привет",
            "blocked 5001: Forbidden: bot was blocked by the user",
            "unblocked 5001",
            "message я вернулся",
        ]
    );
    poller.send(&text(5001, "с возвращением")).await.unwrap();
    assert_eq!(sandbox.violations(), []);
}

#[tokio::test]
async fn refusals_are_permanent_in_telegrams_words() {
    let setup = Setup::new().await;
    setup
        .bot
        .customer_says(5001, &ivan(), "привет")
        .await
        .unwrap();
    setup.bot.customer_blocks_bot(5001, &ivan()).await.unwrap();
    let blocked = setup
        .channel
        .send(&text(5001, "вы тут?"))
        .await
        .unwrap_err();
    assert_eq!(
        blocked,
        SendError::Blocked {
            reason: "Forbidden: bot was blocked by the user".into()
        }
    );
    // A chat whose customer never wrote to the bot.
    let unknown = setup
        .channel
        .send(&text(6006, "здравствуйте"))
        .await
        .unwrap_err();
    assert_eq!(
        unknown,
        SendError::Permanent {
            reason: "Bad Request: chat not found".into()
        }
    );
    // An outage is worth retrying.
    setup.bot.fail_next("sendMessage", 1, ApiError::internal());
    setup.bot.customer_says(5002, &maria(), "hi").await.unwrap();
    assert!(
        setup
            .channel
            .send(&text(5002, "hello"))
            .await
            .unwrap_err()
            .is_transient()
    );
    assert!(setup.bot.sent_messages().is_empty());
    setup.assert_no_violations();
}

#[tokio::test]
async fn health_reports_a_refused_token_and_a_missing_webhook() {
    let setup = Setup::new().await;
    let revoked = channel(&setup.sandbox, "42:revoked-token", Some(SECRET), "webhook");
    assert!(matches!(revoked.health().await, Health::InvalidToken(_)));
    assert_eq!(
        revoked.send(&text(5001, "x")).await.unwrap_err(),
        SendError::Permanent {
            reason: "invalid token: Unauthorized".into()
        }
    );
    assert!(matches!(
        setup.channel.health().await,
        Health::WebhookNotSet(_)
    ));
    let poller = channel(&setup.sandbox, TOKEN, Some(SECRET), "long_poll");
    assert_eq!(poller.health().await, Health::Ok);
    setup.sandbox.remove_bot(TOKEN);
    assert!(matches!(poller.health().await, Health::InvalidToken(_)));
    setup.assert_no_violations();
}

#[tokio::test]
async fn the_sandbox_records_requests_that_break_the_contract() {
    let sandbox = TelegramSandbox::start().await.unwrap();
    let bot = sandbox.add_bot(TOKEN);
    bot.customer_says(5001, &ivan(), "привет").await.unwrap();
    let client = reqwest::Client::new();
    let call = |method: &str, body: Value| {
        client
            .post(format!("{}bot{TOKEN}/{method}", sandbox.base_url()))
            .json(&body)
            .send()
    };
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };

    let (status, body) = answer(call("sendMessage", json!({"chat_id": 5001})).await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(body["ok"], json!(false));
    assert_eq!(body["error_code"], json!(400));
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request: ")
    );

    let unknown_field = json!({"chat_id": 5001, "text": "x", "colour": "red"});
    assert_eq!(
        answer(call("sendMessage", unknown_field).await.unwrap())
            .await
            .0,
        400
    );
    let long_data = json!({"chat_id": 5001, "text": "x", "reply_markup": {"inline_keyboard":
        [[{"text": "b", "callback_data": "d".repeat(65)}]]}});
    assert_eq!(
        answer(call("sendMessage", long_data).await.unwrap())
            .await
            .0,
        400
    );
    let (status, _) = answer(call("sendSticker", json!({})).await.unwrap()).await;
    assert_eq!(status, 404);
    // A well-formed request passes and is answered as the real API does.
    let (status, body) = answer(
        call("sendMessage", json!({"chat_id": 5001, "text": "ok"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["chat"]["id"], json!(5001));
    conforms("Message", &body["result"]).unwrap();

    let violations = sandbox.violations();
    assert_eq!(violations.len(), 4, "{violations:?}");
    assert!(violations[0].problem.contains("\"text\" is required"));
    assert!(violations[1].problem.contains("colour"));
    assert!(violations[2].problem.contains("BUTTON_DATA_INVALID"));
    assert_eq!(violations[3].method, "sendSticker");

    // An unknown token is refused before anything else is looked at.
    let response = client
        .post(format!("{}bot1:nobody/sendMessage", sandbox.base_url()))
        .json(&json!({"chat_id": 5001, "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    assert_eq!(sandbox.violations().len(), 4);
}
