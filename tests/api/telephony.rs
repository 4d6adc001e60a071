//! Click-to-call through the whole application against the sandbox's fake Asterisk (ARI, AMI),
//! Zadarma and Twilio: a channel connected over the REST API, an operator's "call back" and a
//! visitor's request through the call-back service, the attempt and its outcome as notes of the
//! conversation, the outcome arriving by signed webhook (exactly once however often it is
//! redelivered; forged ones refused) or from the PBX's event stream; and every refusal
//! (invalid number, limits, working hours, captcha, another client's conversation) changing
//! nothing.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use omnihub::callback::{CallbackRequest, request_callback};
use omnihub_core::model::{CallOutcomeKind, Message, MessageKind};
use omnihub_core::{ChannelId, ConversationId};
use omnihub_sandbox::telephony::Scripted;
use omnihub_sandbox::telephony::ami::{AmiConfig, AmiSandbox};
use omnihub_sandbox::telephony::ari::{AriConfig, AriSandbox};
use omnihub_sandbox::telephony::twilio::{TwilioConfig, TwilioSandbox};
use omnihub_sandbox::telephony::zadarma::{ZadarmaConfig, ZadarmaSandbox};
use omnihub_store::InboundEvent;
use serde_json::{Value, json};

use crate::hub::Live;
use crate::support::{Options, Who, World};

const VISITOR: &str = "+79991234567";

struct Phones {
    w: World,
    live: Live,
    ari: AriSandbox,
    ami: AmiSandbox,
    zadarma: ZadarmaSandbox,
    twilio: TwilioSandbox,
}

impl Phones {
    async fn start(label: &str, callback: omnihub::config::CallbackConfig) -> Phones {
        let ari = AriSandbox::start(AriConfig::default()).await.unwrap();
        let ami = AmiSandbox::start(AmiConfig::default()).await.unwrap();
        let zadarma = ZadarmaSandbox::start(ZadarmaConfig::default())
            .await
            .unwrap();
        let twilio = TwilioSandbox::start(TwilioConfig::default()).await.unwrap();
        let mut options = Options::default();
        options.providers.zadarma_api = zadarma.base_url();
        options.providers.twilio_api = twilio.base_url();
        // The fake PBXs listen on 127.0.0.1.
        options.providers.allow_private_pbx_hosts = true;
        options.callback = callback;
        let w = World::with(label, options).await;
        let live = Live::start(w.state.clone()).await;
        // Twilio signs the public URL (https://omnihub.test/...) and reaches us here.
        twilio.deliver_via(&live.url(""));
        Phones {
            w,
            live,
            ari,
            ami,
            zadarma,
            twilio,
        }
    }

    async fn connect(&self, provider: &str, settings: Value, credentials: Value) -> ChannelId {
        let r = self
            .w
            .post(
                Who::Session(&self.w.a.owner),
                "/api/v1/channels",
                json!({"kind": "messaging", "provider": provider, "name": provider,
                       "settings": settings, "credentials": credentials}),
            )
            .await;
        r.assert_status(201);
        r.json()["id"].as_str().unwrap().parse().unwrap()
    }

    async fn ari_channel(&self, extra: Value) -> ChannelId {
        let mut settings = json!({"ari_url": self.ari.base_url(), "first": {"extension": "100"}});
        for (k, v) in extra.as_object().unwrap() {
            settings[k] = v.clone();
        }
        self.connect(
            "asterisk_ari",
            settings,
            json!({"username": "omnihub", "password": "ari-secret-7"}),
        )
        .await
    }

    /// A customer's conversation on tenant A's messenger channel.
    async fn conversation(&self, chat: &str) -> ConversationId {
        let a = &self.w.a;
        match self
            .w
            .state
            .hub
            .ingest(InboundEvent {
                client_id: a.client.id,
                channel_id: a.channel.id,
                external_conversation_id: chat.into(),
                external_user_id: format!("user-{chat}"),
                contact_name: "Customer".into(),
                provider_event_id: format!("event-{chat}"),
                text: "please call me".into(),
                attachments: Vec::new(),
            })
            .await
            .unwrap()
        {
            omnihub_store::Ingest::New { conversation, .. } => conversation.id,
            other => panic!("{other:?}"),
        }
    }

    async fn notes(&self, conversation: ConversationId) -> Vec<Message> {
        self.w
            .store
            .conversation_messages(self.w.a.client.id, conversation, None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.kind == MessageKind::Note && m.text.starts_with("📞"))
            .collect()
    }

    /// Waits (bounded) until the conversation holds `count` call notes.
    async fn wait_notes(&self, conversation: ConversationId, count: usize) -> Vec<Message> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let notes = self.notes(conversation).await;
            if notes.len() >= count {
                return notes;
            }
            assert!(Instant::now() < deadline, "only {notes:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn visitor(
        &self,
        channel: ChannelId,
        number: &str,
        ip: &str,
        visitor: &str,
    ) -> CallbackRequest {
        CallbackRequest {
            client_id: self.w.a.client.id,
            channel_id: Some(channel),
            conversation_id: None,
            number: number.into(),
            visitor: Some(visitor.into()),
            ip: Some(ip.parse::<IpAddr>().unwrap()),
            captcha_token: None,
            requested_by: None,
        }
    }

    async fn calls_to(&self, number: &str) -> u64 {
        self.w
            .store
            .count_calls(
                self.w.a.client.id,
                omnihub_store::CallsBy::Number(number),
                chrono::Utc::now() - chrono::Duration::hours(1),
            )
            .await
            .unwrap()
    }
}

/// Waits (bounded) until a fake has made `count` deliveries.
async fn delivered(
    get: impl Fn() -> Vec<omnihub_sandbox::webhook_delivery::Delivery>,
    count: usize,
) -> Vec<omnihub_sandbox::webhook_delivery::Delivery> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = get();
        if now.len() >= count {
            return now;
        }
        assert!(Instant::now() < deadline, "only {} deliveries", now.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn an_operator_calls_back_through_ari_and_the_outcome_lands_in_the_conversation() {
    let p = Phones::start("tel_ari", Default::default()).await;
    p.ari_channel(json!({"language": "en"})).await;
    let talk = p.conversation("ari-chat").await;
    let r =
        p.w.post(
            Who::Session(&p.w.a.owner),
            &format!("/api/v1/conversations/{talk}/callback"),
            json!({"number": "+7 999 123-45-67"}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["number"], VISITOR);
    let notes = p.wait_notes(talk, 2).await;
    assert_eq!(notes[0].text, "📞 Call-back requested to +79991234567");
    assert_eq!(
        notes[1].text,
        "📞 Call to +79991234567: answered, lasted 0:42"
    );
    assert!(notes.iter().all(|n| n.author_id.is_none()));
    let call_id = r.json()["id"].as_str().unwrap().parse().unwrap();
    let call = p.w.store.get_call(p.w.a.client.id, call_id).await.unwrap();
    assert_eq!(call.outcome, Some(CallOutcomeKind::Answered));
    assert_eq!(call.duration_secs, Some(42));
    assert!(p.ari.violations().is_empty(), "{:?}", p.ari.violations());
    assert!(
        p.w.audit_actions(Who::Session(&p.w.a.owner))
            .await
            .contains(&"conversation.callback".to_string())
    );

    // Another client's owner does not see the conversation; nothing is called.
    p.w.post(
        Who::Session(&p.w.b.owner),
        &format!("/api/v1/conversations/{talk}/callback"),
        json!({"number": VISITOR}),
    )
    .await
    .assert_error(404, "not_found");
    assert_eq!(p.ari.originated().len(), 1);
}

#[actix_web::test]
async fn ami_reports_no_answer_and_bad_numbers_are_refused_without_a_trace() {
    let p = Phones::start("tel_ami", Default::default()).await;
    p.connect(
        "asterisk_ami",
        json!({"ami_url": p.ami.url(), "first": {"number": "+74951234567"}, "default_region": "RU"}),
        json!({"username": "omnihub", "secret": "ami-secret-5"}),
    )
    .await;
    let talk = p.conversation("ami-chat").await;
    p.ami.script(Scripted::NoAnswer);
    p.w.post(
        Who::Session(&p.w.a.owner),
        &format!("/api/v1/conversations/{talk}/callback"),
        json!({"number": "8 (999) 123-45-67"}),
    )
    .await
    .assert_status(201);
    let notes = p.wait_notes(talk, 2).await;
    assert_eq!(notes[1].text, "📞 Звонок на +79991234567: нет ответа");

    for bad in ["12345", "+7 123", "not a phone", "+999999999999999999"] {
        p.w.post(
            Who::Session(&p.w.a.owner),
            &format!("/api/v1/conversations/{talk}/callback"),
            json!({"number": bad}),
        )
        .await
        .assert_error(400, "validation_failed");
    }
    // No number and none on the contact.
    p.w.post(
        Who::Session(&p.w.a.owner),
        &format!("/api/v1/conversations/{talk}/callback"),
        json!({}),
    )
    .await
    .assert_error(400, "validation_failed");
    assert_eq!(p.notes(talk).await.len(), 2);
    let originates = p
        .ami
        .actions()
        .iter()
        .filter(|a| a.contains(&("Action".into(), "Originate".into())))
        .count();
    assert_eq!(originates, 1);
}

#[actix_web::test]
async fn a_visitors_call_back_through_zadarma_is_settled_once_by_signed_notifications() {
    let p = Phones::start("tel_zadarma", Default::default()).await;
    let config = ZadarmaConfig::default();
    let channel = p
        .connect(
            "zadarma",
            json!({"first": {"extension": "100"}, "language": "en"}),
            json!({"user_key": config.user_key, "secret": config.secret}),
        )
        .await;
    p.zadarma
        .set_notify_url(&p.live.url(&format!("/hooks/zadarma/{channel}")));
    // The URL check when the notification URL is saved.
    assert_eq!(
        p.zadarma
            .echo_check(&p.live.url(&format!("/hooks/zadarma/{channel}")), "x7")
            .await,
        (Some(200), "x7".into())
    );
    p.zadarma.script(Scripted::Busy);
    let call = request_callback(
        &p.w.state,
        p.visitor(channel, VISITOR, "203.0.113.7", "visitor-1"),
    )
    .await
    .unwrap();
    // The visitor had no conversation: the telephony channel opened one for the number.
    let talk = call.conversation_id;
    let notes = p.wait_notes(talk, 2).await;
    assert_eq!(notes[1].text, "📞 Call to +79991234567: busy");
    // The fake records a delivery once our answer is back, which may be after the note.
    let sent = delivered(|| p.zadarma.deliveries(), 2).await;
    assert!(sent.iter().all(|d| d.status == Some(200)), "{sent:?}");

    // Zadarma's retry of the end: acknowledged, nothing new.
    let again = p.zadarma.redeliver(&sent[1]).await;
    assert_eq!(again.status, Some(200));
    assert_eq!(p.notes(talk).await.len(), 2);
    // A forged end (signed with another secret): refused, nothing changes.
    let forged = p
        .zadarma
        .notify(
            &[
                ("event", "NOTIFY_OUT_END".into()),
                ("call_start", "2026-11-27 10:00:00".into()),
                ("pbx_call_id", "out_forged".into()),
                ("destination", "79991234567".into()),
                ("internal", "100".into()),
                ("duration", "600".into()),
                ("disposition", "answered".into()),
            ],
            "not-the-secret",
        )
        .await;
    assert_eq!(forged.status, Some(401));
    let stored = p.w.store.get_call(p.w.a.client.id, call.id).await.unwrap();
    assert_eq!(stored.outcome, Some(CallOutcomeKind::Busy));
    assert_eq!(p.notes(talk).await.len(), 2);
    assert!(
        p.zadarma.violations().is_empty(),
        "{:?}",
        p.zadarma.violations()
    );
}

#[actix_web::test]
async fn twilio_status_callbacks_settle_the_call_and_forgeries_are_refused() {
    let p = Phones::start("tel_twilio", Default::default()).await;
    let config = TwilioConfig::default();
    let channel = p
        .connect(
            "twilio",
            json!({"first": {"number": "+74951234567"}, "from_number": "+74950000001", "language": "en"}),
            json!({"account_sid": config.account_sid, "auth_token": config.auth_token}),
        )
        .await;
    p.twilio.script(Scripted::Answered { duration_secs: 75 });
    let talk = p.conversation("twilio-chat").await;
    let mut request = p.visitor(channel, VISITOR, "203.0.113.8", "visitor-2");
    request.conversation_id = Some(talk);
    let call = request_callback(&p.w.state, request).await.unwrap();
    assert!(
        call.provider_call_id
            .as_deref()
            .is_some_and(|sid| sid.starts_with("CA"))
    );
    let notes = p.wait_notes(talk, 2).await;
    assert_eq!(
        notes[1].text,
        "📞 Call to +79991234567: answered, lasted 1:15"
    );
    // The first leg's three, the visitor's four, the first leg's end.
    let sent = delivered(|| p.twilio.deliveries(), 8).await;
    assert!(sent.iter().all(|d| d.status == Some(200)), "{sent:?}");
    assert_eq!(
        p.twilio.calls()[0]["StatusCallback"],
        format!(
            "https://omnihub.test/hooks/twilio/{channel}?call={}",
            call.id
        )
    );

    // Every callback delivered again: nothing new.
    for d in &sent {
        assert_eq!(p.twilio.redeliver(d).await.status, Some(200));
    }
    assert_eq!(p.notes(talk).await.len(), 2);
    // Signed with another token: 401, and the outcome stays.
    let url = format!(
        "https://omnihub.test/hooks/twilio/{channel}?call={}",
        call.id
    );
    let forged = p
        .twilio
        .callback(
            &url,
            vec![
                ("AccountSid".into(), config.account_sid.clone()),
                ("CallSid".into(), call.provider_call_id.clone().unwrap()),
                ("CallStatus".into(), "busy".into()),
            ],
            "forged-token",
        )
        .await;
    assert_eq!(forged.status, Some(401));
    assert_eq!(
        p.w.store
            .get_call(p.w.a.client.id, call.id)
            .await
            .unwrap()
            .duration_secs,
        Some(75)
    );
    assert!(
        p.twilio.violations().is_empty(),
        "{:?}",
        p.twilio.violations()
    );
    // A hook of a channel that is not the provider's is refused like a bad signature.
    let other = reqwest::Client::new()
        .post(p.live.url(&format!("/hooks/zadarma/{channel}")))
        .body("event=NOTIFY_OUT_END")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 401);
}

#[actix_web::test]
async fn limits_and_working_hours_refuse_before_anything_is_called() {
    let p = Phones::start("tel_limits", Default::default()).await;
    let channel = p
        .ari_channel(json!({"limits": {"per_number": 2, "per_ip": 3, "per_visitor": 5, "window_minutes": 60}}))
        .await;
    // Per number: the third call to the same number within the hour.
    for ip in ["198.51.100.1", "198.51.100.2"] {
        request_callback(&p.w.state, p.visitor(channel, VISITOR, ip, ip))
            .await
            .unwrap();
    }
    let refused = request_callback(
        &p.w.state,
        p.visitor(channel, VISITOR, "198.51.100.3", "v3"),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(omnihub::http::error::ApiError::RateLimited(3600))
        ),
        "{refused:?}"
    );
    // Per IP: one address asking for many numbers.
    for n in ["+79990000001", "+79990000002", "+79990000003"] {
        request_callback(
            &p.w.state,
            p.visitor(channel, n, "198.51.100.9", &format!("v-{n}")),
        )
        .await
        .unwrap();
    }
    let refused = request_callback(
        &p.w.state,
        p.visitor(channel, "+79990000004", "198.51.100.9", "v-new"),
    )
    .await;
    assert!(matches!(
        refused,
        Err(omnihub::http::error::ApiError::RateLimited(_))
    ));
    assert_eq!(p.calls_to("+79990000004").await, 0);
    assert_eq!(p.ari.originated().len(), 5);

    // Closed every day: nothing is placed.
    let closed = p
        .ari_channel(json!({"hours": {"timezone": "Europe/Moscow", "always_open": false, "days": [[], [], [], [], [], [], []]}}))
        .await;
    let refused = request_callback(
        &p.w.state,
        p.visitor(closed, "+79990000005", "198.51.100.20", "v-closed"),
    )
    .await;
    assert!(matches!(
        refused,
        Err(omnihub::http::error::ApiError::OutOfHours)
    ));
    assert_eq!(p.calls_to("+79990000005").await, 0);
    assert_eq!(p.ari.originated().len(), 5);

    // Bad telephony settings never get saved.
    for settings in [
        json!({"ari_url": p.ari.base_url()}),
        json!({"ari_url": "ftp://pbx", "first": {"extension": "100"}}),
        json!({"ari_url": p.ari.base_url(), "first": {"extension": "100"}, "ring_timeout_secs": 0}),
    ] {
        p.w.post(
            Who::Session(&p.w.a.owner),
            "/api/v1/channels",
            json!({"kind": "messaging", "provider": "asterisk_ari", "name": "bad", "settings": settings,
                   "credentials": {"username": "u", "password": "p"}}),
        )
        .await
        .assert_error(400, "validation_failed");
    }
}

/// A "siteverify" endpoint that accepts the token `solved` and records what it was sent.
/// The forms the captcha endpoint received.
type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

async fn captcha_server(seen: Seen) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/siteverify", listener.local_addr().unwrap());
    let data = web::Data::new(seen);
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(
            "/siteverify",
            web::post().to(
                |form: web::Form<Vec<(String, String)>>, seen: web::Data<Seen>| async move {
                    let form = form.into_inner();
                    let ok = form.iter().any(|(k, v)| k == "response" && v == "solved")
                        && form
                            .iter()
                            .any(|(k, v)| k == "secret" && v == "captcha-secret");
                    seen.lock().unwrap().push(form);
                    HttpResponse::Ok().json(json!({"success": ok}))
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    url
}

#[actix_web::test]
async fn visitors_pass_the_captcha_when_one_is_configured() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let callback = omnihub::config::CallbackConfig {
        captcha_verify_url: captcha_server(seen.clone()).await,
        captcha_secret: omnihub::config::Secret::new("captcha-secret"),
    };
    let p = Phones::start("tel_captcha", callback).await;
    let channel = p.ari_channel(json!({})).await;
    for token in [None, Some("wrong")] {
        let mut request = p.visitor(channel, VISITOR, "192.0.2.10", "v-captcha");
        request.captcha_token = token.map(str::to_string);
        let refused = request_callback(&p.w.state, request).await;
        assert!(
            matches!(refused, Err(omnihub::http::error::ApiError::CaptchaFailed)),
            "{refused:?}"
        );
    }
    assert_eq!(p.calls_to(VISITOR).await, 0);
    let mut request = p.visitor(channel, VISITOR, "192.0.2.10", "v-captcha");
    request.captcha_token = Some("solved".into());
    let call = request_callback(&p.w.state, request).await.unwrap();
    p.wait_notes(call.conversation_id, 2).await;
    let forms = seen.lock().unwrap().clone();
    assert_eq!(forms.len(), 2);
    assert!(forms[1].contains(&("remoteip".into(), "192.0.2.10".into())));
    // Operators never face the captcha.
    let talk = p.conversation("captcha-chat").await;
    p.w.post(
        Who::Session(&p.w.a.owner),
        &format!("/api/v1/conversations/{talk}/callback"),
        json!({"number": "+79990001111"}),
    )
    .await
    .assert_status(201);
}

/// The widget's "call me back": the visitor's own token and the widget's origin only; the
/// attempt and its outcome land in the visitor's conversation, which operators already see.
#[actix_web::test]
async fn a_widget_visitor_asks_for_a_call_back_and_sees_it_in_the_conversation() {
    use actix_web::http::Method;

    use crate::widget::{SITE, from_page, public, say, visitor, widget};

    let p = Phones::start("tel_widget", Default::default()).await;
    let site = widget(&p.w, &p.w.a, json!({"origins": [SITE]})).await;
    let config = from_page(
        &p.w,
        Method::GET,
        &public(&site, "config"),
        Some(SITE),
        None,
        None,
    )
    .await;
    config.assert_status(200);
    assert_eq!(config.json()["callback"], json!(false), "no telephony yet");
    let ask = |token: Option<String>, origin: &'static str, number: &'static str| {
        let uri = public(&site, "callbacks");
        let w = &p.w;
        async move {
            from_page(
                w,
                Method::POST,
                &uri,
                Some(origin),
                token.as_deref(),
                Some(json!({ "number": number })),
            )
            .await
        }
    };
    let token = visitor(&p.w, &site, json!({})).await;
    ask(Some(token.clone()), SITE, VISITOR)
        .await
        .assert_status(409);

    p.ari.script(Scripted::Answered { duration_secs: 42 });
    p.ari_channel(json!({})).await;
    let config = from_page(
        &p.w,
        Method::GET,
        &public(&site, "config"),
        Some(SITE),
        None,
        None,
    )
    .await;
    assert_eq!(config.json()["callback"], json!(true));
    say(&p.w, &site, &token, "m-1", "hello")
        .await
        .assert_status(201);

    // Refused: no visitor, another site, not a number; nothing is called.
    ask(None, SITE, VISITOR).await.assert_status(401);
    ask(Some(token.clone()), "https://evil.example", VISITOR)
        .await
        .assert_status(403);
    ask(Some(token.clone()), SITE, "call me maybe")
        .await
        .assert_status(400);
    assert!(p.ari.originated().is_empty());

    let r = ask(Some(token.clone()), SITE, VISITOR).await;
    r.assert_status(202);
    let call: omnihub_core::CallId = r.json()["id"].as_str().unwrap().parse().unwrap();
    let stored = p.w.store.get_call(p.w.a.client.id, call).await.unwrap();
    assert_eq!(stored.number, VISITOR);
    assert!(stored.visitor.is_some());
    // In the visitor's own widget conversation, where operators already talk to them.
    let notes = p.wait_notes(stored.conversation_id, 2).await;
    assert!(notes[1].text.ends_with("0:42"), "{notes:?}");
    let conversation =
        p.w.store
            .get_conversation(p.w.a.client.id, stored.conversation_id)
            .await
            .unwrap();
    assert_eq!(conversation.channel_id.to_string(), site.channel);
}

#[actix_web::test]
async fn operators_call_the_contacts_number_only_in_conversations_they_see() {
    let p = Phones::start("tel_console", Default::default()).await;
    let a = &p.w.a;
    let owner = Who::Session(&a.owner);
    let talk = p.conversation("console-chat").await;
    let options = format!("/api/v1/conversations/{talk}/callback");

    // Before any telephony is connected the console is told there is none.
    let r = p.w.get(owner, &options).await;
    r.assert_status(200);
    assert_eq!(r.json(), json!({"available": false, "phone": null}));

    p.ari_channel(json!({"language": "en"})).await;
    let detail =
        p.w.get(owner, &format!("/api/v1/conversations/{talk}"))
            .await;
    let contact = detail.json()["contact"]["id"].as_str().unwrap().to_string();
    p.w.patch(
        owner,
        &format!("/api/v1/contacts/{contact}"),
        json!({"fields": {"phone": "+7 999 123-45-67"}}),
    )
    .await
    .assert_status(200);
    let r = p.w.get(owner, &options).await;
    assert_eq!(
        r.json(),
        json!({"available": true, "phone": "+7 999 123-45-67"})
    );

    // An operator of the channel while the conversation is the owner's: it does not exist.
    let plain = &a.plain;
    p.w.store
        .set_channel_grants(
            a.client.id,
            plain.user.id,
            &[omnihub_core::model::ChannelGrant {
                channel_id: a.channel.id,
                rights: omnihub_core::ChannelRights::READ | omnihub_core::ChannelRights::REPLY,
            }],
        )
        .await
        .unwrap();
    p.w.state.auth_cache.invalidate_user(plain.user.id);
    let c = format!("/api/v1/conversations/{talk}");
    p.w.patch(owner, &c, json!({"assignee_id": a.owner.user.id}))
        .await
        .assert_status(200);
    p.w.get(plain.who(), &options)
        .await
        .assert_error(404, "not_found");
    p.w.post(plain.who(), &options, json!({}))
        .await
        .assert_error(404, "not_found");
    assert!(p.ari.originated().is_empty());

    // Once it is in their pool, they call the contact's own number; the attempt and its
    // outcome are notes of the conversation.
    p.w.patch(owner, &c, json!({"assignee_id": null}))
        .await
        .assert_status(200);
    p.w.get(plain.who(), &options).await.assert_status(200);
    let r = p.w.post(plain.who(), &options, json!({})).await;
    r.assert_status(201);
    assert_eq!(r.json()["number"], VISITOR);
    let notes = p.wait_notes(talk, 2).await;
    assert_eq!(notes[0].text, "📞 Call-back requested to +79991234567");
    assert_eq!(p.ari.originated().len(), 1);

    // Another client's owner: not found, nothing called.
    let other = Who::Session(&p.w.b.owner);
    p.w.get(other, &options)
        .await
        .assert_error(404, "not_found");
    p.w.post(other, &options, json!({}))
        .await
        .assert_error(404, "not_found");
    assert_eq!(p.ari.originated().len(), 1);
}

/// A call placed before a restart, still without an outcome: recorded as the old process
/// left it (the attempt's note, the provider's id).
async fn unfinished_call(
    p: &Phones,
    channel: ChannelId,
    conversation: ConversationId,
    provider_call_id: Option<&str>,
) -> omnihub_core::CallId {
    let id = omnihub_core::CallId::new();
    p.w.store
        .create_call(&omnihub_store::NewCall {
            id,
            client_id: p.w.a.client.id,
            channel_id: channel,
            conversation_id: conversation,
            number: VISITOR.into(),
            visitor: None,
            ip: None,
            requested_by: None,
        })
        .await
        .unwrap();
    if let Some(provider_id) = provider_call_id {
        p.w.store
            .set_call_provider_id(p.w.a.client.id, id, provider_id)
            .await
            .unwrap();
    }
    id
}

#[actix_web::test]
async fn calls_cut_off_by_a_restart_get_an_outcome_from_the_provider_or_interrupted() {
    use omnihub::callback::{CallSweep, INTERRUPTED, LOST_AFTER};
    let p = Phones::start("tel_sweep", Default::default()).await;
    let client = p.w.a.client.id;
    let ari = p.ari_channel(json!({"language": "en"})).await;
    let ami = p
        .connect(
            "asterisk_ami",
            json!({"ami_url": p.ami.url(), "first": {"extension": "100"}, "language": "en"}),
            json!({"username": "omnihub", "secret": "ami-secret-5"}),
        )
        .await;
    let config = TwilioConfig::default();
    let twilio = p
        .connect(
            "twilio",
            json!({"first": {"number": "+74951234567"}, "from_number": "+74950000001", "language": "en"}),
            json!({"account_sid": config.account_sid, "auth_token": config.auth_token}),
        )
        .await;

    // A Twilio call whose status callbacks never arrived (omnihub was down): they go nowhere.
    p.twilio.deliver_via("http://127.0.0.1:9");
    p.twilio.script(Scripted::Answered { duration_secs: 63 });
    let twilio_talk = p.conversation("sweep-twilio").await;
    let mut request = p.visitor(twilio, VISITOR, "203.0.113.20", "sweep-visitor");
    request.conversation_id = Some(twilio_talk);
    let placed = request_callback(&p.w.state, request).await.unwrap();
    delivered(|| p.twilio.deliveries(), 8).await;
    assert_eq!(
        p.w.store.get_call(client, placed.id).await.unwrap().outcome,
        None
    );
    // A Zadarma call whose notifications were lost the same way (none is posted).
    let zadarma_config = ZadarmaConfig::default();
    let zadarma = p
        .connect(
            "zadarma",
            json!({"first": {"extension": "100"}, "language": "en"}),
            json!({"user_key": zadarma_config.user_key, "secret": zadarma_config.secret}),
        )
        .await;
    p.zadarma.script(Scripted::Busy);
    let zadarma_talk = p.conversation("sweep-zadarma").await;
    let mut request = p.visitor(zadarma, VISITOR, "203.0.113.21", "sweep-visitor-2");
    request.conversation_id = Some(zadarma_talk);
    let zadarma_call = request_callback(&p.w.state, request).await.unwrap();
    assert_eq!(p.zadarma.callbacks().len(), 1);
    // ARI calls and an AMI call whose event streams died with the old process: one ARI
    // channel gone from the PBX, one still up (a call going on).
    let ari_talk = p.conversation("sweep-ari").await;
    let gone = unfinished_call(&p, ari, ari_talk, Some("lost-channel-1")).await;
    let going = unfinished_call(&p, ari, ari_talk, Some("held-channel-2")).await;
    p.ari.hold_channel("held-channel-2");
    let ami_talk = p.conversation("sweep-ami").await;
    let ami_call = unfinished_call(&p, ami, ami_talk, None).await;

    // Too fresh to judge: a call may still be ringing.
    let restarted = CallSweep::new(chrono::Utc::now());
    assert_eq!(
        restarted
            .run_once(&p.w.state, chrono::Utc::now())
            .await
            .unwrap(),
        0
    );
    // A sweep of a process that started after they were placed, once they are old enough.
    let later = chrono::Utc::now() + LOST_AFTER + chrono::Duration::seconds(1);
    assert_eq!(restarted.run_once(&p.w.state, later).await.unwrap(), 4);

    // Twilio's call resources tell the visitor's leg: answered, with its talk time.
    let call = p.w.store.get_call(client, placed.id).await.unwrap();
    assert_eq!(call.outcome, Some(CallOutcomeKind::Answered));
    assert_eq!(call.duration_secs, Some(63));
    let notes = p.notes(twilio_talk).await;
    assert_eq!(
        notes.last().unwrap().text,
        "📞 Call to +79991234567: answered, lasted 1:03"
    );
    // Zadarma's statistics tell the visitor's leg was busy.
    let call = p.w.store.get_call(client, zadarma_call.id).await.unwrap();
    assert_eq!(call.outcome, Some(CallOutcomeKind::Busy));
    assert_eq!(
        p.notes(zadarma_talk).await.last().unwrap().text,
        "📞 Call to +79991234567: busy"
    );
    // The PBX keeps no record of a channel that is gone, and AMI cannot be asked: interrupted.
    for (id, talk) in [(gone, ari_talk), (ami_call, ami_talk)] {
        let call = p.w.store.get_call(client, id).await.unwrap();
        assert_eq!(call.outcome, Some(CallOutcomeKind::Failed));
        assert_eq!(call.failure_reason.as_deref(), Some(INTERRUPTED));
        assert!(
            p.notes(talk)
                .await
                .iter()
                .any(|n| n.text == "📞 Call to +79991234567: failed (interrupted)")
        );
    }
    // A channel still up is a call still going: left for a later sweep.
    assert_eq!(
        p.w.store.get_call(client, going).await.unwrap().outcome,
        None
    );
    // Sweeping again changes nothing and writes no second note.
    assert_eq!(restarted.run_once(&p.w.state, later).await.unwrap(), 0);
    assert_eq!(
        p.notes(ari_talk)
            .await
            .iter()
            .filter(|n| n.text.contains(INTERRUPTED))
            .count(),
        1
    );
    // A process that placed the AMI-like call itself, and still runs, does not give up on
    // a call the provider cannot tell about until it is older than any call is followed.
    let fresh_ami = unfinished_call(&p, ami, ami_talk, None).await;
    let running = CallSweep::new(chrono::Utc::now() - chrono::Duration::hours(1));
    assert_eq!(running.run_once(&p.w.state, later).await.unwrap(), 0);
    assert_eq!(
        p.w.store.get_call(client, fresh_ami).await.unwrap().outcome,
        None
    );
    let much_later = chrono::Utc::now() + omnihub::callback::GIVE_UP_AFTER + LOST_AFTER;
    // The held ARI channel is still going; only the AMI call is given up.
    assert_eq!(running.run_once(&p.w.state, much_later).await.unwrap(), 1);
    assert_eq!(
        p.w.store
            .get_call(client, fresh_ami)
            .await
            .unwrap()
            .failure_reason
            .as_deref(),
        Some(INTERRUPTED)
    );
    for fake in [
        p.ari.violations(),
        p.twilio.violations(),
        p.zadarma.violations(),
    ] {
        assert!(fake.is_empty(), "{fake:?}");
    }
}
