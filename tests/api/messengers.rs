//! Messenger channels through the whole application on a real listener, against the sandbox's
//! fake of each provider: the owner connects a channel over the REST API, the provider's
//! webhook (signed or carrying its secret the provider's way) lands a customer's message in the
//! inbox exactly once however often it is redelivered, forged and misdirected deliveries are
//! refused without a trace, and an operator's reply reaches the provider.

use std::time::{Duration, Instant};

use omnihub_connectors::provider::ProviderChannel;
use omnihub_connectors::telegram::{SECRET_HEADER, TelegramChannel};
use omnihub_core::model::{DeliveryStatus, Direction, Message};
use omnihub_core::{ChannelId, ClientId, ConversationId};
use omnihub_sandbox::mail_servers::MailServers;
use omnihub_sandbox::telegram::{Customer, Delivery, TelegramSandbox};
use omnihub_sandbox::whatsapp::{self, CustomerMessage, WhatsappConfig, WhatsappSandbox};
use omnihub_store::ConversationFilter;
use serde_json::{Value, json};

use crate::hub::Live;
use crate::support::{Options, Who, World};

const BOT_TOKEN: &str = "7001234567:AAH-omnihub_test_bot_token";
const BOT_SECRET: &str = "omnihub-hook_secret-1";
/// `[media] max_upload_bytes` of these tests.
const MAX_UPLOAD: usize = 64 * 1024;
/// A 120×80 PNG.
const PHOTO: &[u8] = omnihub_sandbox::SAMPLE_PHOTO;

struct Messengers {
    w: World,
    live: Live,
    telegram: TelegramSandbox,
    whatsapp: WhatsappSandbox,
    http: reqwest::Client,
}

impl Messengers {
    async fn start(label: &str) -> Messengers {
        Messengers::start_with(label, WhatsappConfig::default()).await
    }

    async fn start_with(label: &str, whatsapp: WhatsappConfig) -> Messengers {
        let telegram = TelegramSandbox::start().await.unwrap();
        let whatsapp = WhatsappSandbox::start(whatsapp).await.unwrap();
        let mut options = Options::default();
        options.providers.telegram_api = telegram.base_url().to_string();
        options.providers.whatsapp_api = whatsapp.base_url();
        // The test's mail servers listen on 127.0.0.1.
        options.providers.allow_private_mail_hosts = true;
        options.max_upload_bytes = MAX_UPLOAD;
        let w = World::with(label, options).await;
        let live = Live::start(w.state.clone()).await;
        Messengers {
            w,
            live,
            telegram,
            whatsapp,
            http: reqwest::Client::new(),
        }
    }

    /// Connects a channel as tenant A's owner, through the REST API.
    async fn connect(&self, provider: &str, settings: Value, credentials: Value) -> ChannelId {
        let r = self
            .w
            .post(
                Who::Session(&self.w.a.owner),
                "/api/v1/channels",
                json!({
                    "kind": "messaging",
                    "provider": provider,
                    "name": format!("{provider} of A"),
                    "settings": settings,
                    "credentials": credentials,
                }),
            )
            .await;
        r.assert_status(201);
        r.json()["id"].as_str().unwrap().parse().unwrap()
    }

    fn hook_url(&self, provider: &str, channel: ChannelId) -> String {
        self.live.url(&format!("/hooks/{provider}/{channel}"))
    }

    fn client(&self) -> ClientId {
        self.w.a.client.id
    }

    /// Every message of tenant A's conversations on `channel`.
    async fn messages(&self, channel: ChannelId) -> Vec<Message> {
        let mut all = Vec::new();
        let filter = ConversationFilter {
            limit: 200,
            ..Default::default()
        };
        for s in self
            .w
            .store
            .list_conversations(self.client(), None, &filter)
            .await
            .unwrap()
        {
            if s.conversation.channel_id == channel {
                all.extend(
                    self.w
                        .store
                        .conversation_messages(self.client(), s.conversation.id, None, 200)
                        .await
                        .unwrap(),
                );
            }
        }
        all
    }

    async fn reply(&self, conversation: ConversationId, text: &str, key: &str) {
        self.w
            .post(
                Who::Session(&self.w.a.owner),
                &format!("/api/v1/conversations/{conversation}/messages"),
                json!({ "text": text, "idempotency_key": key }),
            )
            .await
            .assert_status(201);
    }

    /// Waits (bounded) until the message reaches `status`.
    async fn wait_status(&self, conversation: ConversationId, text: &str, status: DeliveryStatus) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self
                .w
                .store
                .conversation_messages(self.client(), conversation, None, 50)
                .await
                .unwrap();
            let found = messages.iter().find(|m| m.text == text);
            if found.is_some_and(|m| m.status == status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{text}` never reached {status:?}: {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn raw_post(&self, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[actix_web::test]
async fn telegram_webhook_to_inbox_and_reply_to_the_chat() {
    let m = Messengers::start("telegram-e2e").await;
    let bot = m.telegram.add_bot(BOT_TOKEN);
    let credentials = json!({ "bot_token": BOT_TOKEN, "webhook_secret": BOT_SECRET });
    let channel = m.connect("telegram", json!({}), credentials.clone()).await;
    let owner = Who::Session(&m.w.a.owner);
    let health_path = format!("/api/v1/channels/{channel}/health");
    assert_eq!(
        m.w.get(owner, &health_path).await.json()["status"],
        "webhook_not_set"
    );
    // Connecting registers omnihub's public webhook address with the bot, with its secret.
    let r =
        m.w.post(
            owner,
            &format!("/api/v1/channels/{channel}/webhook"),
            json!({}),
        )
        .await;
    r.assert_status(200);
    let public = format!("https://omnihub.test/hooks/telegram/{channel}");
    assert_eq!(r.json()["url"], public.as_str());
    let registered = bot.webhook().unwrap();
    assert_eq!(
        (registered.url.as_str(), registered.secret_token.as_deref()),
        (public.as_str(), Some(BOT_SECRET))
    );
    assert!(
        m.w.audit_actions(owner)
            .await
            .contains(&"channel.webhook".to_string())
    );
    // A revoked token shows as such.
    let wrong = json!({ "bot_token": "7009999999:AAH-revoked", "webhook_secret": BOT_SECRET });
    let other = m.connect("telegram", json!({}), wrong).await;
    let r =
        m.w.get(owner, &format!("/api/v1/channels/{other}/health"))
            .await;
    assert_eq!(r.json()["status"], "invalid_token", "{}", r.text());
    // The test's server listens elsewhere than the public address: point the bot at it.
    let connector =
        TelegramChannel::from_channel(Some(&credentials), &json!({}), &m.telegram.base_url())
            .unwrap();
    connector
        .set_webhook(Some(&m.hook_url("telegram", channel)))
        .await
        .unwrap();

    let ivan = Customer::new(5001, "Иван").last_name("Петров");
    let said = bot
        .customer_says(5001, &ivan, "Здравствуйте!")
        .await
        .unwrap();
    assert!(matches!(said.delivery, Delivery::Webhook { status: 200 }));
    // Telegram redelivers until it hears 200: four more copies change nothing.
    for _ in 0..4 {
        let again = bot.redeliver(said.update_id).await.unwrap();
        assert!(
            matches!(again, Delivery::Webhook { status: 200 }),
            "{again:?}"
        );
    }
    let messages = m.messages(channel).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let inbound = &messages[0];
    assert_eq!(
        (inbound.direction, inbound.text.as_str()),
        (Direction::Inbound, "Здравствуйте!")
    );
    let conversation =
        m.w.store
            .get_conversation(m.client(), inbound.conversation_id)
            .await
            .unwrap();
    assert_eq!(conversation.external_id, "5001");
    let contact =
        m.w.store
            .get_contact(m.client(), conversation.contact_id)
            .await
            .unwrap();
    assert_eq!(contact.name, "Иван Петров");

    // A forged secret, no secret, the right secret on another provider's path, an unknown
    // provider: refused, and nothing is stored.
    let update = bot.update(said.update_id).unwrap().to_string();
    let url = m.hook_url("telegram", channel);
    for headers in [vec![(SECRET_HEADER, "guessed-secret")], vec![]] {
        let (status, body) = m.raw_post(&url, &headers, &update).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("invalid_signature"), "{body}");
    }
    let (status, _) = m
        .raw_post(
            &m.hook_url("whatsapp", channel),
            &[(SECRET_HEADER, BOT_SECRET)],
            &update,
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = m
        .raw_post(
            &m.live.url(&format!("/hooks/icq/{channel}")),
            &[(SECRET_HEADER, BOT_SECRET)],
            &update,
        )
        .await;
    assert_eq!(status, 404);
    // Signed right but not an update Telegram sends.
    let (status, body) = m
        .raw_post(&url, &[(SECRET_HEADER, BOT_SECRET)], "{\"update_id\":\"x\"")
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(m.messages(channel).await.len(), 1);

    // The operator's reply reaches the customer's chat through the Bot API.
    m.reply(conversation.id, "Добрый день! Чем помочь?", "reply-1")
        .await;
    let sent = until("the reply at the bot API", async || {
        let sent = bot.sent_messages();
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].chat_id, sent[0].text.as_deref()),
        (5001, Some("Добрый день! Чем помочь?"))
    );
    m.wait_status(
        conversation.id,
        "Добрый день! Чем помочь?",
        DeliveryStatus::Sent,
    )
    .await;
    assert_eq!(m.w.get(owner, &health_path).await.json()["status"], "ok");
    assert_eq!(m.telegram.violations(), []);
}

/// Credentials tried before saving: the health a channel with them would have, nothing saved;
/// an edit may keep the saved secrets; other tenants' channels, non-provider channels and
/// callers without settings rights are refused.
#[actix_web::test]
async fn credentials_are_tested_before_they_are_saved() {
    let m = Messengers::start("connection-test").await;
    m.telegram.add_bot(BOT_TOKEN);
    let owner = Who::Session(&m.w.a.owner);
    let test =
        async |who: Who<'_>, body: Value| m.w.post(who, "/api/v1/connection-tests", body).await;
    let before = m.w.store.list_channels(m.client()).await.unwrap().len();
    let r = test(
        owner,
        json!({ "provider": "telegram", "settings": {}, "credentials": { "bot_token": BOT_TOKEN } }),
    )
    .await;
    r.assert_status(200);
    assert_eq!(r.json()["status"], "webhook_not_set", "{}", r.text());
    let polled = test(
        owner,
        json!({ "provider": "telegram", "settings": { "updates": "long_poll" },
                "credentials": { "bot_token": BOT_TOKEN } }),
    )
    .await;
    assert_eq!(polled.json()["status"], "ok", "{}", polled.text());
    let revoked = test(
        owner,
        json!({ "provider": "telegram", "settings": {},
                "credentials": { "bot_token": "7009999999:AAH-revoked" } }),
    )
    .await;
    assert_eq!(
        revoked.json()["status"],
        "invalid_token",
        "{}",
        revoked.text()
    );
    let missing = test(owner, json!({ "provider": "max", "settings": {} })).await;
    assert_eq!(
        missing.json()["status"],
        "not_configured",
        "{}",
        missing.text()
    );
    assert_eq!(
        m.w.store.list_channels(m.client()).await.unwrap().len(),
        before,
        "a test saves nothing"
    );

    // Editing a saved channel: its stored secrets are used when none are given.
    let channel = m
        .connect("telegram", json!({}), json!({ "bot_token": BOT_TOKEN }))
        .await;
    let kept = test(
        owner,
        json!({ "provider": "telegram", "settings": { "updates": "long_poll" },
                "channel_id": channel }),
    )
    .await;
    assert_eq!(kept.json()["status"], "ok", "{}", kept.text());
    test(
        owner,
        json!({ "provider": "vk", "settings": {}, "channel_id": channel }),
    )
    .await
    .assert_status(400);
    // Another tenant's channel is not found; their owner cannot borrow these secrets.
    test(
        Who::Session(&m.w.b.owner),
        json!({ "provider": "telegram", "settings": {}, "channel_id": channel }),
    )
    .await
    .assert_status(404);
    // Nothing to test on an API channel; malformed bodies; no settings rights.
    test(owner, json!({ "provider": "api", "settings": {} }))
        .await
        .assert_status(400);
    test(owner, json!({ "provider": "telegram", "settings": [] }))
        .await
        .assert_status(400);
    test(
        owner,
        json!({ "provider": "telegram", "settings": {}, "credentials": "token" }),
    )
    .await
    .assert_status(400);
    test(
        Who::Session(&m.w.a.plain),
        json!({ "provider": "telegram", "settings": {}, "credentials": { "bot_token": BOT_TOKEN } }),
    )
    .await
    .assert_status(403);
    assert_eq!(m.telegram.violations(), []);
}

/// A mailbox on the server's own network is refused by a server that does not allow it.
#[actix_web::test]
async fn a_connection_test_refuses_private_mail_hosts() {
    let w = World::new("connection-test-private").await;
    let r = w
        .post(
            Who::Session(&w.a.owner),
            "/api/v1/connection-tests",
            json!({
                "provider": "email",
                "settings": { "address": "shop@example.com", "imap_host": "127.0.0.1",
                              "smtp_host": "10.1.2.3" },
                "credentials": { "password": "secret" },
            }),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["status"], "not_configured", "{}", r.text());
    // A spelling that only the resolver turns into a loopback address is caught when the
    // connection is made, before anything is sent there.
    let r = w
        .call(
            Who::Session(&w.a.owner),
            actix_web::http::Method::POST,
            "/api/v1/connection-tests",
            Some(json!({
                "provider": "email",
                "settings": { "address": "shop@example.com", "imap_host": "127.1",
                              "smtp_host": "2130706433" },
                "credentials": { "password": "secret" },
            })),
        )
        .await;
    r.assert_status(200);
    let health = r.json();
    assert_eq!(health["status"], "unreachable", "{health}");
    assert!(
        health["detail"]
            .as_str()
            .unwrap()
            .contains("resolves to 127.0.0.1, an address on the server's own network"),
        "{health}"
    );
    assert_eq!(health["message"], "the provider cannot be reached");
    // The same words in Russian for a Russian console; the provider's words stay as they are.
    let req = w
        .request(
            Who::Session(&w.a.owner),
            actix_web::http::Method::POST,
            "/api/v1/connection-tests",
        )
        .insert_header(("accept-language", "ru-RU,ru;q=0.9"))
        .set_json(json!({
            "provider": "email",
            "settings": { "address": "shop@example.com", "imap_host": "127.1",
                          "smtp_host": "2130706433" },
            "credentials": { "password": "secret" },
        }));
    let ru = w.send(req).await.json();
    assert_eq!(ru["message"], "провайдер недоступен");
    assert_eq!(ru["detail"], health["detail"]);
}

#[actix_web::test]
async fn whatsapp_handshake_signed_deliveries_window_and_statuses() {
    let m = Messengers::start("whatsapp-e2e").await;
    let credentials = m.whatsapp.credentials();
    let channel = m.connect("whatsapp", json!({}), credentials).await;
    let url = m.hook_url("whatsapp", channel);

    // The app dashboard's verification: the right verify token gets the challenge back, a
    // wrong one gets nothing.
    m.whatsapp.configure_callback(&url).await.unwrap();
    let (status, answer, challenge) = m.whatsapp.handshake(&url, "not-the-token").await;
    assert_eq!(status, Some(401));
    assert_ne!(answer, challenge);

    let anna = whatsapp::Customer::new("79990001122", "Анна");
    let delivery = m
        .whatsapp
        .customer_sends(&anna, CustomerMessage::Text("Когда откроетесь?".into()))
        .await;
    assert_eq!(delivery.status, Some(200), "{}", delivery.answer);
    for _ in 0..4 {
        let again = m.whatsapp.redeliver(&delivery).await;
        assert_eq!(again.status, Some(200));
    }
    let messages = m.messages(channel).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].text, "Когда откроетесь?");
    let conversation = messages[0].conversation_id;

    // The same bytes with a forged signature, or none: refused, nothing stored.
    let body = String::from_utf8(delivery.body.clone()).unwrap();
    let forged = format!("sha256={}", "0".repeat(64));
    for headers in [vec![("x-hub-signature-256", forged.as_str())], vec![]] {
        let (status, answer) = m.raw_post(&url, &headers, &body).await;
        assert_eq!(status, 401, "{answer}");
    }
    assert_eq!(m.messages(channel).await.len(), 1);

    // Inside the 24-hour window a free-form reply goes out; the fake reports it sent,
    // delivered and read, and the console's message follows.
    m.reply(conversation, "В 9:00, ждём вас", "wa-reply-1")
        .await;
    let sent = until("the reply at the Graph API", async || {
        let sent = m.whatsapp.sent();
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    assert_eq!(sent[0].to, "79990001122");
    assert_eq!(sent[0].body["text"]["body"], "В 9:00, ждём вас");
    m.wait_status(conversation, "В 9:00, ждём вас", DeliveryStatus::Read)
        .await;
    assert_eq!(m.whatsapp.violations(), []);
}

#[actix_web::test]
async fn a_whatsapp_message_to_a_customer_who_stopped_marketing_fails_once_with_metas_words() {
    // Statuses only when the test says so, so the failure meets the message still `sent`.
    let config = WhatsappConfig {
        auto_statuses: false,
        ..WhatsappConfig::default()
    };
    let m = Messengers::start_with("whatsapp-131050", config).await;
    let channel = m
        .connect("whatsapp", json!({}), m.whatsapp.credentials())
        .await;
    m.whatsapp
        .configure_callback(&m.hook_url("whatsapp", channel))
        .await
        .unwrap();
    let anna = whatsapp::Customer::new("79990001133", "Анна");
    m.whatsapp.customer_stops_marketing(&anna);
    let delivery = m
        .whatsapp
        .customer_sends(&anna, CustomerMessage::Text("Что нового?".into()))
        .await;
    assert_eq!(delivery.status, Some(200), "{}", delivery.answer);
    let conversation = m.messages(channel).await[0].conversation_id;

    let offer = "Весенняя распродажа: −20% на всё";
    m.reply(conversation, offer, "wa-offer-1").await;
    m.wait_status(conversation, offer, DeliveryStatus::Sent)
        .await;
    let wamid = m.whatsapp.sent()[0].wamid.clone();
    // Meta accepts a marketing message and reports the opt-out afterwards, in a `failed`
    // status with error 131050 (the fake does so by itself for a marketing template; omnihub's
    // replies are free-form, so the status is reported here for the operator's message).
    let failed = m
        .whatsapp
        .report_failure(&wamid, vec![whatsapp::payloads::marketing_opt_out_error()])
        .await;
    assert_eq!(failed.status, Some(200), "{}", failed.answer);
    let reason = m.failure_of(conversation, offer).await;
    assert_eq!(
        reason,
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing \
         messages on WhatsApp from your business. (code 131050)"
    );
    // Meta's retry of the same status changes nothing.
    assert_eq!(m.whatsapp.redeliver(&failed).await.status, Some(200));
    assert_eq!(m.failure_of(conversation, offer).await, reason);

    // Only marketing is refused: the conversation is not blocked and the next reply goes out,
    // while the failed one was sent exactly once and is never retried.
    assert!(m.conversation_json(conversation).await["blocked_at"].is_null());
    m.reply(conversation, "Ваш заказ собран", "wa-offer-2")
        .await;
    m.wait_status(conversation, "Ваш заказ собран", DeliveryStatus::Sent)
        .await;
    let texts: Vec<Value> = m
        .whatsapp
        .sent()
        .iter()
        .map(|sent| sent.body["text"]["body"].clone())
        .collect();
    assert_eq!(texts, [json!(offer), json!("Ваш заказ собран")]);
    let shown =
        m.w.get(
            Who::Session(&m.w.a.owner),
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
    shown.assert_status(200);
    assert!(shown.text().contains("131050"), "{}", shown.text());
    assert_eq!(m.whatsapp.violations(), []);
}

#[actix_web::test]
async fn a_long_polled_bot_is_read_from_its_kept_cursor() {
    let m = Messengers::start("telegram-poll").await;
    let bot = m.telegram.add_bot(BOT_TOKEN);
    let channel = m
        .connect(
            "telegram",
            json!({ "updates": "long_poll" }),
            json!({ "bot_token": BOT_TOKEN }),
        )
        .await;
    let pollers = omnihub::pollers::start(m.w.state.clone());

    // No webhook is set, so Telegram keeps the updates for getUpdates.
    let ivan = Customer::new(5001, "Иван");
    let first = bot
        .customer_says(5001, &ivan, "Пишу через long poll")
        .await
        .unwrap();
    assert!(
        matches!(first.delivery, Delivery::Queued),
        "{:?}",
        first.delivery
    );
    until("the first polled message", async || {
        (m.messages(channel).await.len() == 1).then_some(())
    })
    .await;
    let second = bot.customer_says(5001, &ivan, "И ещё одно").await.unwrap();
    until("the second polled message", async || {
        (m.messages(channel).await.len() == 2).then_some(())
    })
    .await;
    // The cursor kept in the store is the last update handed over.
    let cursor = until("the kept cursor", async || {
        let kept = m.w.store.poll_cursor(m.client(), channel).await.unwrap();
        kept.filter(|c| *c == second.update_id.to_string())
    })
    .await;
    assert_eq!(cursor, second.update_id.to_string());
    let texts: Vec<String> = m
        .messages(channel)
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert!(
        texts.contains(&"Пишу через long poll".to_string()),
        "{texts:?}"
    );
    assert!(texts.contains(&"И ещё одно".to_string()), "{texts:?}");

    // Replies go out the same way as for a webhook bot.
    let conversation = m.messages(channel).await[0].conversation_id;
    m.reply(conversation, "Получили, спасибо", "poll-reply-1")
        .await;
    until("the reply at the bot API", async || {
        bot.sent_messages()
            .iter()
            .any(|s| s.text.as_deref() == Some("Получили, спасибо"))
            .then_some(())
    })
    .await;
    // Polled under this process's lease, released when it stops.
    let (holder, _) = m.w.store.poll_lease(channel).await.unwrap().unwrap();
    assert_eq!(holder, pollers.node());
    pollers.stop().await;
    assert_eq!(m.w.store.poll_lease(channel).await.unwrap(), None);
    assert_eq!(m.telegram.violations(), []);
}

/// The customer's mail client: one message through Postfix over plain SMTP, as an outside
/// sender's server would hand it over.
async fn smtp_send(addr: std::net::SocketAddr, from: &str, to: &str, message: &str) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    // Reads one reply (its last line has a space after the code) and checks its class.
    async fn reply(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
        class: char,
    ) {
        loop {
            let line = lines.next_line().await.unwrap().unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                assert!(line.starts_with(class), "SMTP answered {line}");
                return;
            }
        }
    }
    reply(&mut lines, '2').await;
    for (command, class) in [
        ("EHLO customer.test".to_string(), '2'),
        (format!("MAIL FROM:<{from}>"), '2'),
        (format!("RCPT TO:<{to}>"), '2'),
        ("DATA".to_string(), '3'),
    ] {
        write
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        reply(&mut lines, class).await;
    }
    write
        .write_all(format!("{message}\r\n.\r\n").as_bytes())
        .await
        .unwrap();
    reply(&mut lines, '2').await;
    write.write_all(b"QUIT\r\n").await.unwrap();
}

#[actix_web::test]
async fn a_mailbox_is_polled_into_the_inbox_and_answered_through_postfix() {
    let servers = MailServers::find().unwrap_or_else(|error| panic!("{error}"));
    let shop = servers.add_mailbox("shop-inbox", "shop.test").unwrap();
    let customer = servers
        .add_mailbox("inbox-customer", "customer.test")
        .unwrap();
    let m = Messengers::start("mailbox-e2e").await;
    let settings = json!({
        "address": shop.address,
        "display_name": "Ромашка",
        "imap_host": "127.0.0.1",
        "imap_port": servers.imap_addr().port(),
        "imap_security": "plain",
        "smtp_host": "127.0.0.1",
        "smtp_port": servers.smtp_addr().port(),
        "smtp_security": "plain",
    });
    let channel = m
        .connect("email", settings, json!({ "password": shop.password }))
        .await;
    let pollers = omnihub::pollers::start(m.w.state.clone());
    // The first poll of a new mailbox marks where it starts reading (mail from before is not
    // the inbox's business).
    until("the mailbox's first cursor", async || {
        m.w.store.poll_cursor(m.client(), channel).await.unwrap()
    })
    .await;

    let mail = format!(
        "From: Иван Петров <{from}>\r\nTo: {to}\r\nSubject: Заказ цветов\r\n\
         Message-ID: <order-1@customer.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Добрый день! Нужен букет к пятнице.",
        from = customer.address,
        to = shop.address
    );
    smtp_send(servers.smtp_addr(), &customer.address, &shop.address, &mail).await;
    let inbound = until("the mail in the inbox", async || {
        m.messages(channel).await.into_iter().next()
    })
    .await;
    assert!(
        inbound.text.contains("Нужен букет к пятнице"),
        "{}",
        inbound.text
    );
    let conversation =
        m.w.store
            .get_conversation(m.client(), inbound.conversation_id)
            .await
            .unwrap();
    assert_eq!(conversation.external_id, "order-1@customer.test");

    // The reply goes out through Postfix in the same thread.
    m.reply(
        conversation.id,
        "Соберём к пятнице, спасибо!",
        "mail-reply-1",
    )
    .await;
    m.wait_status(
        conversation.id,
        "Соберём к пятнице, спасибо!",
        DeliveryStatus::Sent,
    )
    .await;
    pollers.abort();
}

// --- attachments ------------------------------------------------------------------------------

impl Messengers {
    /// A Telegram bot connected as tenant A's channel, delivering to this test's listener.
    async fn telegram_channel(
        &self,
        token: &str,
    ) -> (omnihub_sandbox::telegram::FakeBot, ChannelId) {
        let bot = self.telegram.add_bot(token);
        let credentials = json!({ "bot_token": token, "webhook_secret": BOT_SECRET });
        let channel = self
            .connect("telegram", json!({}), credentials.clone())
            .await;
        TelegramChannel::from_channel(Some(&credentials), &json!({}), &self.telegram.base_url())
            .unwrap()
            .set_webhook(Some(&self.hook_url("telegram", channel)))
            .await
            .unwrap();
        (bot, channel)
    }

    /// `POST …/attachments` as `who`, one part named `part` (normally `file`).
    async fn upload(
        &self,
        who: Who<'_>,
        conversation: ConversationId,
        part: &str,
        file_name: &str,
        mime: &str,
        bytes: &[u8],
    ) -> crate::support::Resp {
        let boundary = "omnihub-test-boundary-7MA4YWxk";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"; \
             filename=\"{file_name}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = self
            .w
            .request(
                who,
                actix_web::http::Method::POST,
                &format!("/api/v1/conversations/{conversation}/attachments"),
            )
            .insert_header((
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            ))
            .set_payload(body);
        self.w.send(req).await
    }

    /// Files in the media directory (temporary ones included).
    fn media_files(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .map(|e| e.unwrap().path())
                    .map(|p| if p.is_dir() { count(&p) } else { 1 })
                    .sum()
            })
        }
        count(&self.w.config.media_dir())
    }
}

#[actix_web::test]
async fn an_inbound_telegram_photo_is_stored_after_the_commit_and_served_to_its_tenant_only() {
    let m = Messengers::start("attachments-in").await;
    let (bot, channel) = m.telegram_channel(BOT_TOKEN).await;
    let olga = Customer::new(5002, "Ольга");
    let said = bot
        .customer_sends_photo(5002, &olga, PHOTO, Some("Вот чек"))
        .await
        .unwrap();
    assert!(matches!(said.delivery, Delivery::Webhook { status: 200 }));
    // Redeliveries add no second file.
    bot.redeliver(said.update_id).await.unwrap();
    let messages = m.messages(channel).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].text, "Вот чек");
    assert_eq!(messages[0].attachments.len(), 1);
    let id = messages[0].attachments[0].id;
    let conversation = messages[0].conversation_id;

    // Downloaded through getFile after the webhook was answered, then pushed as an event.
    let file = until("the photo to be stored", async || {
        let messages = m.messages(channel).await;
        let file = messages[0].attachments[0].clone();
        (file.state == omnihub_core::media::AttachmentState::Ready).then_some(file)
    })
    .await;
    assert_eq!(file.size, Some(PHOTO.len() as i64));
    assert_eq!(file.mime_type, "image/png");
    assert_eq!(file.kind, omnihub_core::media::AttachmentKind::Image);
    let events = m.w.store.events_after(m.client(), 0, 1000).await.unwrap();
    let updated = events
        .iter()
        .find(|e| e.kind == omnihub_core::events::EventKind::MessageUpdated)
        .expect("a message_updated event");
    assert_eq!(updated.conversation_id, Some(conversation));
    assert_eq!(updated.payload["attachments"][0]["state"], "ready");

    // Served as a download, never sniffed, sandboxed.
    let owner = Who::Session(&m.w.a.owner);
    let path = format!("/api/v1/attachments/{id}");
    let r = m.w.get(owner, &path).await;
    r.assert_status(200);
    assert_eq!(&r.body[..], PHOTO);
    assert_eq!(r.header("content-type").as_deref(), Some("image/png"));
    let disposition = r.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"image.png\""),
        "{disposition}"
    );
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("sandbox")
    );
    // A raster image may be shown inline when asked for.
    let r = m.w.get(owner, &format!("{path}?disposition=inline")).await;
    r.assert_status(200);
    assert!(
        r.header("content-disposition")
            .unwrap()
            .starts_with("inline;")
    );

    // Another tenant, an unknown id and a stranger learn nothing.
    m.w.get(Who::Session(&m.w.b.owner), &path)
        .await
        .assert_status(404);
    m.w.get(
        owner,
        &format!("/api/v1/attachments/{}", omnihub_core::AttachmentId::new()),
    )
    .await
    .assert_status(404);
    m.w.get(Who::Anon(crate::support::fresh_ip()), &path)
        .await
        .assert_status(401);
    assert_eq!(m.telegram.violations(), []);
}

#[actix_web::test]
async fn uploads_are_checked_and_a_document_goes_out_through_telegram() {
    let m = Messengers::start("attachments-out").await;
    let (bot, channel) = m.telegram_channel(BOT_TOKEN).await;
    bot.customer_says(5003, &Customer::new(5003, "Пётр"), "Пришлите акт")
        .await
        .unwrap();
    let conversation = m.messages(channel).await[0].conversation_id;
    let owner = Who::Session(&m.w.a.owner);
    let files_before = m.media_files();

    // Refused with a clear error, and nothing kept.
    let r = m
        .upload(
            owner,
            conversation,
            "file",
            "big.pdf",
            "application/pdf",
            &vec![7u8; MAX_UPLOAD + 1],
        )
        .await;
    r.assert_status(413);
    assert_eq!(r.json()["code"], "payload_too_large");
    for (name, mime) in [
        ("page.html", "text/html"),
        ("setup.exe", "application/octet-stream"),
        ("logo.svg", "image/svg+xml"),
    ] {
        let r = m
            .upload(owner, conversation, "file", name, mime, b"<x/>")
            .await;
        r.assert_status(415);
        assert_eq!(r.json()["code"], "unsupported_media_type", "{name}");
    }
    let r = m
        .upload(
            owner,
            conversation,
            "photo",
            "a.pdf",
            "application/pdf",
            b"%PDF",
        )
        .await;
    r.assert_status(400);
    let r = m
        .upload(
            owner,
            conversation,
            "file",
            "empty.pdf",
            "application/pdf",
            b"",
        )
        .await;
    r.assert_status(400);
    let r =
        m.w.post(
            owner,
            &format!("/api/v1/conversations/{conversation}/attachments"),
            json!({}),
        )
        .await;
    r.assert_status(415);
    assert_eq!(m.media_files(), files_before);
    // Another tenant cannot upload into this conversation.
    m.upload(
        Who::Session(&m.w.b.owner),
        conversation,
        "file",
        "a.pdf",
        "application/pdf",
        b"%PDF",
    )
    .await
    .assert_status(404);

    let pdf = b"%PDF-1.4 act of acceptance \xd0\xb0\xd0\xba\xd1\x82".to_vec();
    let r = m
        .upload(
            owner,
            conversation,
            "file",
            "Акт №5.pdf",
            "application/pdf",
            &pdf,
        )
        .await;
    r.assert_status(201);
    let uploaded = r.json();
    assert_eq!(uploaded["file_name"], "Акт №5.pdf");
    assert_eq!(uploaded["kind"], "document");
    assert_eq!(uploaded["size"], pdf.len());
    assert_eq!(uploaded["state"], "ready");
    assert!(uploaded["message_id"].is_null());
    let id = uploaded["id"].as_str().unwrap().to_string();
    assert!(
        m.w.audit_actions(owner)
            .await
            .contains(&"conversation.upload".to_string())
    );
    // Not another tenant's to read.
    m.w.get(
        Who::Session(&m.w.b.owner),
        &format!("/api/v1/attachments/{id}"),
    )
    .await
    .assert_status(404);

    let path = format!("/api/v1/conversations/{conversation}/messages");
    let r =
        m.w.post(
            owner,
            &path,
            json!({"text": "Акт во вложении", "idempotency_key": "act-1", "attachment_ids": [id]}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["attachments"][0]["id"], id.as_str());
    let sent = until("the document at the bot API", async || {
        let sent = bot.sent_messages();
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].method, "sendDocument");
    assert_eq!(sent[0].chat_id, 5003);
    assert_eq!(sent[0].text.as_deref(), Some("Акт во вложении"));
    assert_eq!(sent[0].files.len(), 1);
    assert_eq!(sent[0].files[0].bytes, pdf);
    assert_eq!(sent[0].files[0].file_name.as_deref(), Some("Акт №5.pdf"));
    m.wait_status(conversation, "Акт во вложении", DeliveryStatus::Sent)
        .await;

    // Sent once: another reply cannot take it again; unknown ids are refused.
    let r =
        m.w.post(
            owner,
            &path,
            json!({"text": "Ещё раз", "idempotency_key": "act-2", "attachment_ids": [id]}),
        )
        .await;
    r.assert_status(400);
    let r =
        m.w.post(
            owner,
            &path,
            json!({"text": "Ещё раз", "idempotency_key": "act-3",
            "attachment_ids": [omnihub_core::AttachmentId::new()]}),
        )
        .await;
    r.assert_status(400);
    // An image upload goes out as a photo.
    let r = m
        .upload(owner, conversation, "file", "photo.png", "image/png", PHOTO)
        .await;
    r.assert_status(201);
    let photo = r.json()["id"].as_str().unwrap().to_string();
    m.w.post(
        owner,
        &path,
        json!({"idempotency_key": "photo-1", "attachment_ids": [photo]}),
    )
    .await
    .assert_status(201);
    let sent = until("the photo at the bot API", async || {
        let sent = bot.sent_messages();
        (sent.len() == 2).then_some(sent)
    })
    .await;
    assert_eq!(sent[1].method, "sendPhoto");
    assert_eq!(sent[1].files[0].bytes, PHOTO);
    assert_eq!(m.telegram.violations(), []);
}

#[actix_web::test]
async fn a_mail_attachment_is_stored_and_a_reply_carries_an_uploaded_file_back() {
    use omnihub_connectors::email::MailboxChannel;
    use omnihub_connectors::provider::InboundUpdate;
    let servers = MailServers::find().unwrap_or_else(|error| panic!("{error}"));
    let shop = servers.add_mailbox("files-shop", "shop.test").unwrap();
    let customer = servers
        .add_mailbox("files-customer", "customer.test")
        .unwrap();
    let m = Messengers::start("mailbox-files").await;
    let settings = |address: &str| {
        json!({
            "address": address,
            "imap_host": "127.0.0.1",
            "imap_port": servers.imap_addr().port(),
            "imap_security": "plain",
            "smtp_host": "127.0.0.1",
            "smtp_port": servers.smtp_addr().port(),
            "smtp_security": "plain",
        })
    };
    let channel = m
        .connect(
            "email",
            settings(&shop.address),
            json!({ "password": shop.password }),
        )
        .await;
    let pollers = omnihub::pollers::start(m.w.state.clone());
    until("the mailbox's first cursor", async || {
        m.w.store.poll_cursor(m.client(), channel).await.unwrap()
    })
    .await;
    // The customer's own mail client, to read what comes back.
    let reader = MailboxChannel::from_channel(
        Some(&json!({ "password": customer.password })),
        &settings(&customer.address),
    )
    .unwrap();
    let mut cursor = reader.poll(None).await.unwrap().cursor.unwrap();

    let invoice = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\nan invoice\n".to_vec();
    let mail = format!(
        "From: Иван <{from}>\r\nTo: {to}\r\nSubject: Счёт\r\nMessage-ID: <files-1@customer.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nСчёт во вложении\r\n\
         --b1\r\nContent-Type: application/pdf\r\n\
         Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b1--\r\n",
        from = customer.address,
        to = shop.address,
        body = base64_lines(&invoice),
    );
    smtp_send(servers.smtp_addr(), &customer.address, &shop.address, &mail).await;
    // The MIME part is fetched from the mailbox after the message is committed.
    let file = until("the mail's attachment to be stored", async || {
        let message = m.messages(channel).await.into_iter().next()?;
        let file = message.attachments.first()?.clone();
        (file.state == omnihub_core::media::AttachmentState::Ready).then_some((message, file))
    })
    .await;
    let (inbound, file) = file;
    assert!(
        inbound.text.contains("Счёт во вложении"),
        "{}",
        inbound.text
    );
    assert_eq!(file.file_name, "invoice.pdf");
    assert_eq!(file.mime_type, "application/pdf");
    let owner = Who::Session(&m.w.a.owner);
    let r =
        m.w.get(owner, &format!("/api/v1/attachments/{}", file.id))
            .await;
    r.assert_status(200);
    assert_eq!(&r.body[..], invoice.as_slice());

    // An uploaded file goes back as a MIME attachment in the same thread.
    let act: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let r = m
        .upload(
            owner,
            inbound.conversation_id,
            "file",
            "акт.bin",
            "application/octet-stream",
            &act,
        )
        .await;
    r.assert_status(201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    m.w.post(
        owner,
        &format!("/api/v1/conversations/{}/messages", inbound.conversation_id),
        json!({"text": "Акт во вложении", "idempotency_key": "mail-file-1", "attachment_ids": [id]}),
    )
    .await
    .assert_status(201);
    m.wait_status(
        inbound.conversation_id,
        "Акт во вложении",
        DeliveryStatus::Sent,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let received = loop {
        assert!(
            Instant::now() < deadline,
            "the reply never reached the customer"
        );
        let polled = reader.poll(Some(&cursor)).await.unwrap();
        cursor = polled.cursor.unwrap();
        if let Some(InboundUpdate::Message(message)) = polled.updates.into_iter().next() {
            break message;
        }
    };
    assert!(
        received.text.contains("Акт во вложении"),
        "{}",
        received.text
    );
    // The reply's HTML alternative is offered as `message.html`; the file is the other one.
    let sent_back = received
        .attachments
        .iter()
        .find(|a| a.file_name.as_deref() == Some("акт.bin"))
        .unwrap_or_else(|| panic!("{:?}", received.attachments));
    let media = reader
        .download(sent_back.file_ref.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(media.bytes, act);
    pollers.abort();
}

/// Base64 in lines of 76 characters, as MIME wants it.
fn base64_lines(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    text.as_bytes()
        .chunks(76)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

// --- Viber: files by signed public link ------------------------------------------------------

/// A Viber bot connected to tenant A, with the server's public URL on this test's own listener,
/// so the fake Viber reaches both the webhook and the media links.
struct ViberWorld {
    m: Messengers,
    viber: omnihub_sandbox::viber::ViberSandbox,
    channel: ChannelId,
    customer: omnihub_sandbox::viber::ViberCustomer,
}

impl ViberWorld {
    async fn start(label: &str) -> ViberWorld {
        let viber = omnihub_sandbox::viber::ViberSandbox::start(Default::default())
            .await
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut options = Options::default();
        options.providers.viber_api = viber.base_url();
        options.public_url = Some(format!("http://{}", listener.local_addr().unwrap()));
        options.max_upload_bytes = MAX_UPLOAD;
        let w = World::with(label, options).await;
        let live = Live::start_on(w.state.clone(), listener).await;
        let m = Messengers {
            w,
            live,
            telegram: TelegramSandbox::start().await.unwrap(),
            whatsapp: WhatsappSandbox::start(WhatsappConfig::default())
                .await
                .unwrap(),
            http: reqwest::Client::new(),
        };
        let channel = m
            .connect(
                "viber",
                json!({"sender_name": "Магазин"}),
                viber.credentials(),
            )
            .await;
        m.w.post(
            Who::Session(&m.w.a.owner),
            &format!("/api/v1/channels/{channel}/webhook"),
            json!({}),
        )
        .await
        .assert_status(200);
        ViberWorld {
            m,
            viber,
            channel,
            customer: omnihub_sandbox::viber::ViberCustomer::new("01234567890A=", "Ольга"),
        }
    }

    /// The customer writes; the conversation it lands in.
    async fn customer_writes(&self, text: &str) -> ConversationId {
        let delivery = self
            .viber
            .customer_sends(
                &self.customer,
                omnihub_sandbox::viber::ViberCustomerMessage::Text(text.into()),
            )
            .await;
        assert_eq!(delivery.status, Some(200), "{delivery:?}");
        let messages = self.m.messages(self.channel).await;
        messages
            .iter()
            .find(|message| message.text == text)
            .unwrap_or_else(|| panic!("{text} not in {messages:?}"))
            .conversation_id
    }
}

/// A MAX bot connected over the REST API, its webhook registered at a live listener.
struct MaxWorld {
    m: Messengers,
    max: omnihub_sandbox::max::MaxSandbox,
    channel: ChannelId,
}

/// The MAX user who writes to the bot.
const MAX_CUSTOMER: i64 = 7007;

impl MaxWorld {
    async fn start(label: &str) -> MaxWorld {
        let max = omnihub_sandbox::max::MaxSandbox::start(Default::default())
            .await
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut options = Options::default();
        options.providers.max_api = max.base_url();
        options.public_url = Some(format!("http://{}", listener.local_addr().unwrap()));
        let w = World::with(label, options).await;
        let live = Live::start_on(w.state.clone(), listener).await;
        let m = Messengers {
            w,
            live,
            telegram: TelegramSandbox::start().await.unwrap(),
            whatsapp: WhatsappSandbox::start(WhatsappConfig::default())
                .await
                .unwrap(),
            http: reqwest::Client::new(),
        };
        let credentials =
            json!({"token": max.config().token, "webhook_secret": "omnihub-max_secret"});
        let channel = m.connect("max", json!({}), credentials).await;
        m.w.post(
            Who::Session(&m.w.a.owner),
            &format!("/api/v1/channels/{channel}/webhook"),
            json!({}),
        )
        .await
        .assert_status(200);
        MaxWorld { m, max, channel }
    }

    /// The customer writes; the conversation it lands in.
    async fn customer_writes(&self, text: &str) -> ConversationId {
        let delivery = self.max.customer_writes(MAX_CUSTOMER, text).await;
        assert!(
            delivery.answers.iter().all(|a| a.status == 200) && !delivery.answers.is_empty(),
            "{delivery:?}"
        );
        let messages = self.m.messages(self.channel).await;
        messages
            .iter()
            .find(|message| message.text == text)
            .unwrap_or_else(|| panic!("{text} not in {messages:?}"))
            .conversation_id
    }
}

#[actix_web::test]
async fn only_a_suspended_max_dialog_blocks_the_conversation_other_denials_fail_in_maxs_words() {
    let x = MaxWorld::start("max-denials").await;
    let m = &x.m;
    let conversation = x.customer_writes("Здравствуйте").await;

    // A 403 `chat.denied` for another reason (the schema's example): that reply fails in MAX's
    // words, the conversation stays open and the next reply goes out.
    let forwarding = "Forwarding messages from this chat or channel is prohibited";
    x.max
        .fail_next_saying("POST /messages", 403, "chat.denied", forwarding);
    m.reply(conversation, "Пересылаем вам ответ", "max-1").await;
    assert_eq!(
        m.failure_of(conversation, "Пересылаем вам ответ").await,
        format!("MAX 403 chat.denied: {forwarding}")
    );
    assert!(m.conversation_json(conversation).await["blocked_at"].is_null());
    m.reply(conversation, "Ответ без пересылки", "max-2").await;
    m.wait_status(conversation, "Ответ без пересылки", DeliveryStatus::Sent)
        .await;

    // A suspended dialog (the customer stopped the bot, and omnihub had not heard) blocks it.
    let suspended = format!("Key: error.dialog.suspended, args: [{MAX_CUSTOMER},].");
    x.max
        .fail_next_saying("POST /messages", 403, "chat.denied", &suspended);
    m.reply(conversation, "Вы здесь?", "max-3").await;
    assert_eq!(
        m.failure_of(conversation, "Вы здесь?").await,
        format!("blocked_by_user: MAX 403 chat.denied: {suspended}")
    );
    let shown = m.conversation_json(conversation).await;
    assert_eq!(
        shown["blocked_reason"],
        format!("MAX 403 chat.denied: {suspended}")
    );
    // Replies now fail at once, without asking MAX.
    let calls = x.max.calls("POST /messages");
    m.reply(conversation, "Ещё раз", "max-4").await;
    assert!(
        m.failure_of(conversation, "Ещё раз")
            .await
            .starts_with("blocked_by_user: ")
    );
    assert_eq!(x.max.calls("POST /messages"), calls);

    // Writing again clears the mark.
    x.customer_writes("Я тут").await;
    assert!(m.conversation_json(conversation).await["blocked_at"].is_null());
    m.reply(conversation, "Рады слышать", "max-5").await;
    m.wait_status(conversation, "Рады слышать", DeliveryStatus::Sent)
        .await;
    assert_eq!(x.max.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn a_max_customer_who_stops_the_bot_is_blocked_by_the_bot_stopped_update() {
    let x = MaxWorld::start("max-stopped").await;
    let m = &x.m;
    let conversation = x.customer_writes("Привет").await;
    let stopped = x.max.customer_stops_bot(MAX_CUSTOMER).await;
    assert!(!stopped.answers.is_empty() && stopped.answers.iter().all(|a| a.status == 200));
    let shown = m.conversation_json(conversation).await;
    assert_eq!(shown["blocked_reason"], "bot_stopped");
    m.reply(conversation, "Вы здесь?", "max-stop-1").await;
    assert_eq!(
        m.failure_of(conversation, "Вы здесь?").await,
        "blocked_by_user: bot_stopped"
    );
    assert_eq!(x.max.calls("POST /messages"), 0);
    assert_eq!(x.max.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn a_viber_reply_with_files_goes_out_by_signed_links_the_provider_fetches() {
    let v = ViberWorld::start("viber-media").await;
    let m = &v.m;
    let owner = Who::Session(&m.w.a.owner);
    let conversation = v.customer_writes("Пришлите фото и договор").await;

    let photo = m
        .upload(owner, conversation, "file", "товар.png", "image/png", PHOTO)
        .await;
    photo.assert_status(201);
    let pdf = b"%PDF-1.4 the contract".to_vec();
    let contract = m
        .upload(
            owner,
            conversation,
            "file",
            "Договор №7.pdf",
            "application/pdf",
            &pdf,
        )
        .await;
    contract.assert_status(201);
    let ids = [photo.json()["id"].clone(), contract.json()["id"].clone()];
    m.w.post(
        owner,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({"text": "Вот фото и договор", "idempotency_key": "viber-files", "attachment_ids": ids}),
    )
    .await
    .assert_status(201);
    // The fake Viber reports delivered, then seen.
    m.wait_status(conversation, "Вот фото и договор", DeliveryStatus::Read)
        .await;

    assert_eq!(v.viber.violations(), []);
    let sent = v.viber.sent();
    let kinds: Vec<&str> = sent
        .iter()
        .map(|s| s.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["text", "picture", "file"], "{sent:?}");
    // Viber fetched each file from omnihub's public address, signed and expiring.
    let public = m.w.config.server.public_url.clone();
    let picture = &sent[1];
    let link = picture.body["media"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{public}/media/{}/", m.w.a.client.id)),
        "{link}"
    );
    assert!(link.contains("exp=") && link.contains("sig="), "{link}");
    let fetched = picture.media.as_ref().unwrap();
    assert_eq!(fetched.bytes, PHOTO);
    assert_eq!(fetched.content_type.as_deref(), Some("image/png"));
    assert!(fetched.nosniff);
    let file = &sent[2];
    assert_eq!(file.body["file_name"], "Договор №7.pdf");
    assert_eq!(file.body["size"], pdf.len());
    let fetched = file.media.as_ref().unwrap();
    assert_eq!(fetched.bytes, pdf);
    assert_eq!(fetched.content_type.as_deref(), Some("application/pdf"));
    assert!(
        fetched
            .content_disposition
            .as_deref()
            .unwrap()
            .starts_with("attachment; filename=")
    );

    // A tampered, stretched or foreign link is the same 403, whatever exists behind it.
    let file_link = file.body["media"].as_str().unwrap().to_string();
    let get = |url: String| {
        let http = m.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<Value>().await.unwrap_or_default()["code"].clone(),
            )
        }
    };
    let url = reqwest::Url::parse(&file_link).unwrap();
    let exp: i64 = url
        .query_pairs()
        .find(|(k, _)| k == "exp")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let attachment: omnihub_core::AttachmentId = url
        .path_segments()
        .unwrap()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let tampered = [
        file_link.replace("sig=", "sig=0"),
        file_link.replace(&format!("exp={exp}"), &format!("exp={}", exp + 3600)),
        file_link.replace(&m.w.a.client.id.to_string(), &m.w.b.client.id.to_string()),
        file_link.split('?').next().unwrap().to_string(),
    ];
    for link in tampered {
        assert_eq!(
            get(link.clone()).await,
            (403, json!("invalid_link")),
            "{link}"
        );
    }
    let links = m.w.state.media_links.clone().unwrap();
    let expired = links.url(
        m.w.a.client.id,
        attachment,
        "x.pdf",
        chrono::Utc::now() - chrono::TimeDelta::seconds(1),
    );
    assert_eq!(get(expired).await, (403, json!("invalid_link")));
    // A valid link to a file that does not exist is a plain 404.
    let nothing = links.url(
        m.w.a.client.id,
        omnihub_core::AttachmentId::new(),
        "x.pdf",
        chrono::Utc::now() + chrono::TimeDelta::hours(1),
    );
    assert_eq!(get(nothing).await.0, 404);
    // And the real link still serves, to anyone holding it.
    assert_eq!(get(file_link).await.0, 200);
}

// --- customers who block the bot ------------------------------------------------------------

impl Messengers {
    /// The conversation as the API shows it.
    async fn conversation_json(&self, conversation: ConversationId) -> Value {
        let r = self
            .w
            .get(
                Who::Session(&self.w.a.owner),
                &format!("/api/v1/conversations/{conversation}"),
            )
            .await;
        r.assert_status(200);
        r.json()["conversation"].clone()
    }

    /// Waits (bounded) until the message is failed, and answers its reason.
    async fn failure_of(&self, conversation: ConversationId, text: &str) -> String {
        self.wait_status(conversation, text, DeliveryStatus::Failed)
            .await;
        self.w
            .store
            .conversation_messages(self.client(), conversation, None, 50)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.text == text)
            .and_then(|m| m.failure_reason)
            .unwrap()
    }
}

impl Messengers {
    /// Sets the bot's webhook the way omnihub did before it asked for `my_chat_member`
    /// updates (only messages, edits and button presses), as an older bot still has it.
    async fn register_webhook_for_messages_only(
        &self,
        bot: &omnihub_sandbox::telegram::FakeBot,
        channel: ChannelId,
    ) {
        let url = format!("{}bot{}/setWebhook", self.telegram.base_url(), bot.token());
        let body = json!({
            "url": self.hook_url("telegram", channel),
            "secret_token": BOT_SECRET,
            "allowed_updates": ["message", "edited_message", "callback_query"],
        });
        let (status, answer) = self.raw_post(&url, &[], &body.to_string()).await;
        assert_eq!(status, 200, "{answer}");
    }
}

#[actix_web::test]
async fn a_telegram_customer_who_blocks_the_bot_is_marked_blocked_at_once_until_they_unblock_it() {
    let m = Messengers::start("telegram-kicked").await;
    let (bot, channel) = m.telegram_channel(BOT_TOKEN).await;
    let olga = Customer::new(5011, "Ольга");
    bot.customer_says(5011, &olga, "Привет").await.unwrap();
    let conversation = m.messages(channel).await[0].conversation_id;

    // Telegram tells the bot at once: `my_chat_member` with the bot `kicked`.
    let blocked = bot.customer_blocks_bot(5011, &olga).await.unwrap();
    assert_eq!(blocked.delivery, Delivery::Webhook { status: 200 });
    let shown = m.conversation_json(conversation).await;
    assert!(shown["blocked_at"].is_string(), "{shown}");
    assert_eq!(
        shown["blocked_reason"],
        "Forbidden: bot was blocked by the user"
    );
    let blocked_at = shown["blocked_at"].clone();
    // A redelivery changes nothing.
    assert_eq!(
        bot.redeliver(blocked.update_id).await.unwrap(),
        Delivery::Webhook { status: 200 }
    );
    assert_eq!(
        m.conversation_json(conversation).await["blocked_at"],
        blocked_at
    );
    // Replies fail without asking the Bot API, with the reason visible.
    m.reply(conversation, "Вы здесь?", "k-1").await;
    let reason = m.failure_of(conversation, "Вы здесь?").await;
    assert_eq!(
        reason,
        "blocked_by_user: Forbidden: bot was blocked by the user"
    );
    assert_eq!(bot.blocked_refusals(), 0);
    assert!(bot.sent_messages().is_empty());

    // Unblocking (the bot back to `member`) clears the mark before the customer writes.
    let unblocked = bot.customer_unblocks_bot(5011, &olga).await.unwrap();
    assert_eq!(unblocked.delivery, Delivery::Webhook { status: 200 });
    assert!(m.conversation_json(conversation).await["blocked_at"].is_null());
    m.reply(conversation, "С возвращением", "k-2").await;
    m.wait_status(conversation, "С возвращением", DeliveryStatus::Sent)
        .await;
    assert_eq!(m.failure_of(conversation, "Вы здесь?").await, reason);
    assert_eq!(m.telegram.violations(), []);
}

#[actix_web::test]
async fn a_my_chat_member_update_posted_to_the_webhook_blocks_and_unblocks_the_conversation() {
    let m = Messengers::start("telegram-member-hook").await;
    let (bot, channel) = m.telegram_channel(BOT_TOKEN).await;
    let ivan = Customer::new(5012, "Иван");
    bot.customer_says(5012, &ivan, "Добрый день").await.unwrap();
    let conversation = m.messages(channel).await[0].conversation_id;
    let url = m.hook_url("telegram", channel);
    let change = |update_id: u64, chat_type: &str, old: &str, new: &str| {
        let member = |status: &str| {
            let mut member = json!({"status": status, "user":
                {"id": 7_001_234_567_i64, "is_bot": true, "first_name": "Bot"}});
            if status == "kicked" {
                member["until_date"] = json!(0);
            }
            member
        };
        let update = json!({"update_id": update_id, "my_chat_member": {
            "chat": {"id": 5012, "type": chat_type, "first_name": "Иван"},
            "from": {"id": 5012, "is_bot": false, "first_name": "Иван"},
            "date": 1_767_225_600,
            "old_chat_member": member(old),
            "new_chat_member": member(new)}});
        assert_eq!(
            omnihub_sandbox::telegram::conforms("Update", &update),
            Ok(())
        );
        update.to_string()
    };
    // Without the secret nothing happens.
    let kicked = change(900_001, "private", "member", "kicked");
    let (status, _) = m.raw_post(&url, &[], &kicked).await;
    assert_eq!(status, 401);
    assert!(m.conversation_json(conversation).await["blocked_at"].is_null());

    let (status, _) = m
        .raw_post(&url, &[(SECRET_HEADER, BOT_SECRET)], &kicked)
        .await;
    assert_eq!(status, 200);
    let shown = m.conversation_json(conversation).await;
    assert_eq!(
        shown["blocked_reason"],
        "Forbidden: bot was blocked by the user"
    );
    // Other statuses and other chats' changes are not the customer blocking the bot.
    for other in [
        change(900_002, "private", "kicked", "left"),
        change(900_003, "group", "kicked", "member"),
    ] {
        let (status, _) = m
            .raw_post(&url, &[(SECRET_HEADER, BOT_SECRET)], &other)
            .await;
        assert_eq!(status, 200);
        assert!(m.conversation_json(conversation).await["blocked_at"].is_string());
    }
    let member = change(900_004, "private", "kicked", "member");
    let (status, _) = m
        .raw_post(&url, &[(SECRET_HEADER, BOT_SECRET)], &member)
        .await;
    assert_eq!(status, 200);
    assert!(m.conversation_json(conversation).await["blocked_at"].is_null());
}

#[actix_web::test]
async fn a_telegram_customer_who_blocks_the_bot_fails_replies_fast_until_they_write_again() {
    let m = Messengers::start("blocked-telegram").await;
    let (bot, channel) = m.telegram_channel(BOT_TOKEN).await;
    let olga = Customer::new(5010, "Ольга");
    bot.customer_says(5010, &olga, "Привет").await.unwrap();
    let conversation = m.messages(channel).await[0].conversation_id;
    assert!(m.conversation_json(conversation).await["blocked_at"].is_null());

    // The bot's webhook was registered before omnihub asked for `my_chat_member`, so the block
    // is heard of only when a send is refused.
    m.register_webhook_for_messages_only(&bot, channel).await;
    let blocked = bot.customer_blocks_bot(5010, &olga).await.unwrap();
    assert_eq!(blocked.delivery, Delivery::Filtered);
    m.reply(conversation, "Ответ после блокировки", "b-1").await;
    let reason = m.failure_of(conversation, "Ответ после блокировки").await;
    assert_eq!(
        reason,
        "blocked_by_user: Forbidden: bot was blocked by the user"
    );
    let shown = m.conversation_json(conversation).await;
    assert!(shown["blocked_at"].is_string(), "{shown}");
    assert_eq!(
        shown["blocked_reason"],
        "Forbidden: bot was blocked by the user"
    );
    // Consoles heard of it.
    let events = m.w.store.events_after(m.client(), 0, 1000).await.unwrap();
    assert!(events.iter().any(|e| {
        e.kind == omnihub_core::events::EventKind::ConversationUpdated
            && e.payload["blocked_at"].is_string()
    }));

    // The next reply fails at once: the bot API is not asked again.
    assert_eq!(bot.blocked_refusals(), 1);
    m.reply(conversation, "Ещё одна попытка", "b-2").await;
    let reason = m.failure_of(conversation, "Ещё одна попытка").await;
    assert!(reason.starts_with("blocked_by_user: "), "{reason}");
    assert_eq!(bot.blocked_refusals(), 1);
    assert_eq!(m.telegram.violations(), []);

    // Writing again (which needs unblocking the bot) clears it, and replies go out.
    bot.customer_says(5010, &olga, "Я снова здесь")
        .await
        .unwrap();
    assert!(m.conversation_json(conversation).await["blocked_at"].is_null());
    m.reply(conversation, "С возвращением", "b-3").await;
    m.wait_status(conversation, "С возвращением", DeliveryStatus::Sent)
        .await;
}

#[actix_web::test]
async fn a_viber_unsubscribe_marks_the_conversation_blocked() {
    let v = ViberWorld::start("blocked-viber").await;
    let m = &v.m;
    let conversation = v.customer_writes("Здравствуйте").await;
    let delivery = v.viber.unsubscribes(&v.customer).await;
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    let shown = m.conversation_json(conversation).await;
    assert!(shown["blocked_at"].is_string(), "{shown}");
    assert_eq!(shown["blocked_reason"], "unsubscribed");
    let sent = v.viber.sent().len();
    m.reply(conversation, "Вы здесь?", "v-1").await;
    let reason = m.failure_of(conversation, "Вы здесь?").await;
    assert_eq!(reason, "blocked_by_user: unsubscribed");
    assert_eq!(v.viber.sent().len(), sent);

    // Writing again subscribes the customer and clears the mark.
    v.customer_writes("Вернулась").await;
    assert!(m.conversation_json(conversation).await["blocked_at"].is_null());
    m.reply(conversation, "Рады вас видеть", "v-2").await;
    m.wait_status(conversation, "Рады вас видеть", DeliveryStatus::Read)
        .await;
    assert_eq!(v.viber.violations(), []);
}
