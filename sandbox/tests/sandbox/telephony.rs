//! Click-to-call: omnihub's telephony connectors against the sandbox's fake Asterisk (ARI and
//! AMI), Zadarma and Twilio. Our requests must pass each fake's check against the provider's
//! published contract, the providers' own authentication must be what we send, and the call
//! events each fake plays (ARI's WebSocket, AMI's manager connection, Zadarma's and Twilio's
//! signed webhooks) must parse into the outcome that was scripted.

use std::time::Duration;

use omnihub_connectors::provider::WebhookError;
use omnihub_connectors::registry::Endpoints;
use omnihub_connectors::telephony::{
    CallEvent, CallHookReply, CallHookRequest, CallOutcome, CallRef, CallRequest, FirstLeg,
    TelephonyError, telephony_channel,
};
use omnihub_core::model::Provider;
use omnihub_sandbox::telephony::ami::{AmiConfig, AmiSandbox};
use omnihub_sandbox::telephony::ari::{AriConfig, AriSandbox};
use omnihub_sandbox::telephony::twilio::{TwilioConfig, TwilioSandbox};
use omnihub_sandbox::telephony::zadarma::{ZadarmaConfig, ZadarmaSandbox};
use omnihub_sandbox::telephony::{Scripted, ari_event_required};
use omnihub_sandbox::webhook_delivery::Delivery;
use serde_json::{Value, json};

const VISITOR: &str = "+79991234567";

fn endpoints() -> Endpoints {
    Endpoints {
        private_pbx_hosts: true,
        ..Endpoints::default()
    }
}

fn request(call_id: &str, first: FirstLeg, callback: &str) -> CallRequest {
    CallRequest {
        call_id: call_id.into(),
        first,
        visitor: VISITOR.into(),
        ring_timeout_secs: 25,
        status_callback: callback.into(),
    }
}

/// A loopback URL nothing listens on: deliveries to it are refused at once but still recorded
/// with the exact bytes and headers the fake sent.
fn closed_url(path: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}{path}")
}

/// Waits (polling) until `count` deliveries were made; the fakes post from the background.
async fn deliveries(get: impl Fn() -> Vec<Delivery>, count: usize) -> Vec<Delivery> {
    for _ in 0..500 {
        let now = get();
        if now.len() >= count {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {count} deliveries, got {}", get().len());
}

fn hook<'a>(delivery: &'a Delivery, url: &'a str) -> CallHookRequest<'a> {
    CallHookRequest {
        method: "POST",
        url,
        query: "",
        headers: delivery
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        body: &delivery.body,
    }
}

fn events(reply: Result<CallHookReply, WebhookError>) -> Vec<CallEvent> {
    match reply.unwrap() {
        CallHookReply::Events(events) => events,
        other => panic!("not events: {other:?}"),
    }
}

#[actix_web::test]
async fn ari_originates_with_basic_auth_and_its_events_give_the_outcome() {
    let pbx = AriSandbox::start(AriConfig::default()).await.unwrap();
    let settings = json!({"ari_url": pbx.base_url(), "context": "callback"});
    let credentials = json!({"username": "omnihub", "password": "ari-secret-7"});
    let ari = telephony_channel(
        Provider::AsteriskAri,
        Some(&credentials),
        &settings,
        &endpoints(),
    )
    .unwrap();

    let placed = ari
        .originate(&request(
            "call-ari-1",
            FirstLeg::Extension("100".into()),
            "",
        ))
        .await
        .unwrap();
    assert_eq!(placed.provider_call_id.as_deref(), Some("call-ari-1"));
    assert_eq!(
        placed.outcome.unwrap().await,
        CallOutcome::Answered { duration_secs: 42 }
    );
    let originate = &pbx.originated()[0];
    let param = |k: &str| {
        originate
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(param("endpoint"), Some("PJSIP/100"));
    assert_eq!(param("extension"), Some("79991234567"));
    assert_eq!(param("context"), Some("callback"));
    assert_eq!(param("channelId"), Some("call-ari-1"));

    pbx.script(Scripted::Busy);
    let busy = ari
        .originate(&request(
            "call-ari-2",
            FirstLeg::Number("+74950000000".into()),
            "",
        ))
        .await
        .unwrap();
    assert_eq!(busy.outcome.unwrap().await, CallOutcome::Busy);
    assert_eq!(
        pbx.originated()[1]
            .iter()
            .find(|(n, _)| n == "endpoint")
            .map(|(_, v)| v.as_str()),
        Some("Local/74950000000@callback")
    );
    // The same channel id twice is Asterisk's 409.
    assert!(matches!(
        ari.originate(&request(
            "call-ari-2",
            FirstLeg::Extension("100".into()),
            ""
        ))
        .await,
        Err(TelephonyError::Refused(_))
    ));
    assert!(pbx.violations().is_empty(), "{:?}", pbx.violations());

    // Every event played has what ARI's events.json requires of its model.
    for event in pbx.played() {
        let model = event["type"].as_str().unwrap();
        for field in ari_event_required(model) {
            assert!(
                event.get(&field).is_some(),
                "{model} lacks {field}: {event}"
            );
        }
    }

    let wrong = json!({"username": "omnihub", "password": "guess"});
    let intruder =
        telephony_channel(Provider::AsteriskAri, Some(&wrong), &settings, &endpoints()).unwrap();
    assert!(matches!(
        intruder
            .originate(&request(
                "call-ari-3",
                FirstLeg::Extension("100".into()),
                ""
            ))
            .await,
        Err(TelephonyError::Unauthorized(_))
    ));
    assert_eq!(pbx.originated().len(), 2);
}

#[actix_web::test]
async fn ari_on_the_servers_own_network_needs_the_servers_consent() {
    let settings = json!({"ari_url": "http://127.0.0.1:8088"});
    let credentials = json!({"username": "u", "password": "p"});
    assert!(
        telephony_channel(
            Provider::AsteriskAri,
            Some(&credentials),
            &settings,
            &Endpoints::default()
        )
        .is_err()
    );
    assert!(telephony_channel(Provider::AsteriskAri, None, &settings, &endpoints()).is_err());
}

#[actix_web::test]
async fn ami_logs_in_originates_and_reads_the_call_from_its_events() {
    let pbx = AmiSandbox::start(AmiConfig::default()).await.unwrap();
    let settings = json!({"ami_url": pbx.url()});
    let credentials = json!({"username": "omnihub", "secret": "ami-secret-5"});
    let ami = telephony_channel(
        Provider::AsteriskAmi,
        Some(&credentials),
        &settings,
        &endpoints(),
    )
    .unwrap();
    for (script, expected) in [
        (
            Scripted::Answered { duration_secs: 42 },
            CallOutcome::Answered { duration_secs: 42 },
        ),
        (Scripted::NoAnswer, CallOutcome::NoAnswer),
        (Scripted::Busy, CallOutcome::Busy),
    ] {
        pbx.script(script);
        let id = format!("call-ami-{}", expected.as_str());
        let placed = ami
            .originate(&request(&id, FirstLeg::Extension("101".into()), ""))
            .await
            .unwrap();
        assert_eq!(placed.outcome.unwrap().await, expected);
    }
    let actions = pbx.actions();
    let login = &actions[0];
    assert!(login.contains(&("Action".into(), "Login".into())));
    assert!(login.contains(&("Secret".into(), "ami-secret-5".into())));
    let originate = actions
        .iter()
        .find(|a| a.contains(&("Action".into(), "Originate".into())))
        .unwrap();
    assert!(originate.contains(&("Channel".into(), "PJSIP/101".into())));
    assert!(originate.contains(&("Exten".into(), "79991234567".into())));
    assert!(originate.contains(&("Async".into(), "true".into())));
    assert!(pbx.violations().is_empty(), "{:?}", pbx.violations());

    let wrong = json!({"username": "omnihub", "secret": "guess"});
    let intruder =
        telephony_channel(Provider::AsteriskAmi, Some(&wrong), &settings, &endpoints()).unwrap();
    assert!(matches!(
        intruder
            .originate(&request(
                "call-ami-x",
                FirstLeg::Extension("101".into()),
                ""
            ))
            .await,
        Err(TelephonyError::Unauthorized(_))
    ));
    // A dial string that would inject AMI lines never leaves omnihub.
    assert!(matches!(
        ami.originate(&request(
            "call-ami-y",
            FirstLeg::Extension("101\r\nAction: Logoff".into()),
            ""
        ))
        .await,
        Err(TelephonyError::Refused(_))
    ));
}

#[actix_web::test]
async fn zadarma_callback_is_signed_and_its_notifications_verify() {
    let zadarma = ZadarmaSandbox::start(ZadarmaConfig::default())
        .await
        .unwrap();
    let notify = closed_url("/hooks/zadarma/x");
    zadarma.set_notify_url(&notify);
    let endpoints = Endpoints {
        zadarma: zadarma.base_url().parse().unwrap(),
        ..endpoints()
    };
    let config = ZadarmaConfig::default();
    let credentials = json!({"user_key": config.user_key, "secret": config.secret});
    let channel = telephony_channel(
        Provider::Zadarma,
        Some(&credentials),
        &json!({}),
        &endpoints,
    )
    .unwrap();
    zadarma.script(Scripted::Answered { duration_secs: 61 });
    let placed = channel
        .originate(&request("call-z-1", FirstLeg::Extension("100".into()), ""))
        .await
        .unwrap();
    assert!(placed.outcome.is_none() && placed.provider_call_id.is_none());
    assert_eq!(
        zadarma.callbacks()[0],
        vec![
            ("from".to_string(), "100".to_string()),
            ("to".to_string(), "79991234567".to_string())
        ]
    );
    assert!(
        zadarma.violations().is_empty(),
        "{:?}",
        zadarma.violations()
    );

    let sent = deliveries(|| zadarma.deliveries(), 2).await;
    let start = events(channel.call_hook(&hook(&sent[0], &notify)));
    assert_eq!(start[0].outcome, None);
    let end = events(channel.call_hook(&hook(&sent[1], &notify)));
    assert_eq!(end[0].call, CallRef::Destination("79991234567".into()));
    assert_eq!(
        end[0].outcome,
        Some(CallOutcome::Answered { duration_secs: 61 })
    );

    // A notification signed with another secret, or a tampered one, is refused.
    let forged = zadarma
        .notify(
            &[
                ("event", "NOTIFY_OUT_END".into()),
                ("call_start", "2026-11-27 10:00:00".into()),
                ("pbx_call_id", "out_1".into()),
                ("destination", "79991234567".into()),
                ("internal", "100".into()),
                ("duration", "0".into()),
                ("disposition", "busy".into()),
            ],
            "not-the-secret",
        )
        .await;
    assert_eq!(
        channel.call_hook(&hook(&forged, &notify)),
        Err(WebhookError::Unauthorized)
    );
    // Zadarma signs only `internal`, `destination` and `call_start`: changing one of them
    // breaks the signature (the other fields are not covered, by Zadarma's design).
    let mut tampered = sent[1].clone();
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("destination=79991234567", "destination=79990000000")
        .into_bytes();
    assert_eq!(
        channel.call_hook(&hook(&tampered, &notify)),
        Err(WebhookError::Unauthorized)
    );
    // The URL check echoes.
    let echo = CallHookRequest {
        method: "GET",
        url: &notify,
        query: "zd_echo=abc123",
        headers: vec![],
        body: b"",
    };
    assert_eq!(
        channel.call_hook(&echo),
        Ok(CallHookReply::Echo("abc123".into()))
    );

    let wrong = json!({"user_key": config.user_key, "secret": "guess"});
    let intruder =
        telephony_channel(Provider::Zadarma, Some(&wrong), &json!({}), &endpoints).unwrap();
    assert!(matches!(
        intruder
            .originate(&request("call-z-2", FirstLeg::Extension("100".into()), ""))
            .await,
        Err(TelephonyError::Unauthorized(_))
    ));
    assert_eq!(zadarma.callbacks().len(), 1);
}

#[actix_web::test]
async fn twilio_call_validates_against_the_openapi_and_its_callbacks_verify() {
    let twilio = TwilioSandbox::start(TwilioConfig::default()).await.unwrap();
    let endpoints = Endpoints {
        twilio: twilio.base_url().parse().unwrap(),
        ..endpoints()
    };
    let config = TwilioConfig::default();
    let credentials = json!({"account_sid": config.account_sid, "auth_token": config.auth_token});
    let settings = json!({"from_number": "+74950000001"});
    let channel =
        telephony_channel(Provider::Twilio, Some(&credentials), &settings, &endpoints).unwrap();
    let callback = closed_url("/hooks/twilio/x");
    twilio.script(Scripted::Answered { duration_secs: 33 });
    let placed = channel
        .originate(&request(
            "call-t-1",
            FirstLeg::Number("+74950000002".into()),
            &callback,
        ))
        .await
        .unwrap();
    let sid = placed.provider_call_id.unwrap();
    assert!(sid.starts_with("CA") && sid.len() == 34);
    let call: &Value = &twilio.calls()[0];
    assert_eq!(call["To"], "+74950000002");
    assert_eq!(call["From"], "+74950000001");
    assert_eq!(call["Timeout"], 25);
    assert_eq!(
        call["StatusCallbackEvent"],
        json!(["initiated", "ringing", "answered", "completed"])
    );
    assert!(twilio.violations().is_empty(), "{:?}", twilio.violations());

    // First leg initiated, ringing, in-progress; the visitor's leg initiated, ringing,
    // in-progress, completed; the first leg completed.
    let sent = deliveries(|| twilio.deliveries(), 8).await;
    let outcomes: Vec<Option<CallOutcome>> = sent
        .iter()
        .map(|d| {
            events(channel.call_hook(&hook(d, &callback)))[0]
                .outcome
                .clone()
        })
        .collect();
    assert_eq!(
        outcomes.iter().flatten().next(),
        Some(&CallOutcome::Answered { duration_secs: 33 })
    );
    for d in &sent {
        assert_eq!(
            events(channel.call_hook(&hook(d, &callback)))[0].call,
            CallRef::ProviderId(sid.clone())
        );
    }
    // Signed for another URL, or with another token: refused.
    assert_eq!(
        channel.call_hook(&hook(&sent[0], "https://elsewhere.test/hooks/twilio/x")),
        Err(WebhookError::Unauthorized)
    );
    let forged = twilio
        .callback(
            &callback,
            vec![
                ("AccountSid".into(), config.account_sid.clone()),
                ("CallSid".into(), sid.clone()),
                ("CallStatus".into(), "busy".into()),
            ],
            "another-token",
        )
        .await;
    assert_eq!(
        channel.call_hook(&hook(&forged, &callback)),
        Err(WebhookError::Unauthorized)
    );

    let wrong = json!({"account_sid": config.account_sid, "auth_token": "guess"});
    let intruder =
        telephony_channel(Provider::Twilio, Some(&wrong), &settings, &endpoints).unwrap();
    assert!(matches!(
        intruder
            .originate(&request(
                "call-t-2",
                FirstLeg::Number("+74950000002".into()),
                &callback
            ))
            .await,
        Err(TelephonyError::Unauthorized(_))
    ));
    assert_eq!(twilio.calls().len(), 1);
}
