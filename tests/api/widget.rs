//! The website widget's public API and visitor WebSocket through the whole application: only
//! the widget's origins are answered (CORS included), one visitor never reaches another's
//! conversation, bad input changes nothing, a repeated client message id creates nothing, the
//! limits hold, and a socket resumes after a reconnect without losing a message.

use std::time::Duration;

use actix_web::http::Method;
use actix_web::http::header;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::hub::Live;
use crate::support::*;

pub(crate) const SITE: &str = "https://shop.example";
const WAIT: Duration = Duration::from_secs(10);

pub(crate) struct Site {
    pub(crate) key: String,
    pub(crate) channel: String,
}

pub(crate) async fn widget(h: &Harness, t: &Tenant, settings: Value) -> Site {
    let r = h
        .post(
            t.owner.who(),
            "/api/v1/widgets",
            json!({"name": "Shop", "settings": settings}),
        )
        .await;
    r.assert_status(201);
    let v = r.json();
    assert!(v["snippet"].as_str().unwrap().contains("data-omnihub"));
    Site {
        key: v["public_key"].as_str().unwrap().to_string(),
        channel: v["id"].as_str().unwrap().to_string(),
    }
}

pub(crate) fn public(site: &Site, path: &str) -> String {
    format!("/api/v1/public/widgets/{}/{path}", site.key)
}

/// A request from a page of `origin` (none when `None`), with a visitor token when given.
pub(crate) async fn from_page(
    h: &Harness,
    method: Method,
    uri: &str,
    origin: Option<&str>,
    token: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let mut req = h.request(Who::Anon(fresh_ip()), method, uri);
    if let Some(o) = origin {
        req = req.insert_header((header::ORIGIN, o));
    }
    if let Some(t) = token {
        req = req.insert_header((header::AUTHORIZATION, format!("Bearer {t}")));
    }
    if let Some(b) = body {
        req = req.set_json(b);
    }
    h.send(req).await
}

pub(crate) async fn visitor(h: &Harness, site: &Site, body: Value) -> String {
    let r = from_page(
        h,
        Method::POST,
        &public(site, "visitors"),
        Some(SITE),
        None,
        Some(body),
    )
    .await;
    r.assert_status(201);
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert!(
        token.starts_with("omv_") && token.len() >= 4 + 22,
        "{token}"
    );
    token
}

pub(crate) async fn say(h: &Harness, site: &Site, token: &str, id: &str, text: &str) -> Resp {
    from_page(
        h,
        Method::POST,
        &public(site, "messages"),
        Some(SITE),
        Some(token),
        Some(json!({"client_message_id": id, "text": text})),
    )
    .await
}

async fn history(h: &Harness, site: &Site, token: &str) -> Vec<Value> {
    let r = from_page(
        h,
        Method::GET,
        &public(site, "messages"),
        Some(SITE),
        Some(token),
        None,
    )
    .await;
    r.assert_status(200);
    r.json()["items"].as_array().unwrap().clone()
}

fn texts(items: &[Value]) -> Vec<&str> {
    items.iter().map(|m| m["text"].as_str().unwrap()).collect()
}

#[actix_web::test]
async fn only_the_widgets_origins_are_answered() {
    let h = Harness::start("widget-origins", &Options::default()).await;
    let t = h.seed_tenant("wo").await;
    let site = widget(&h, &t, json!({"origins": [SITE, "http://localhost:5173"]})).await;
    let config = public(&site, "config");

    let ok = from_page(&h, Method::GET, &config, Some(SITE), None, None).await;
    ok.assert_status(200);
    assert_eq!(
        ok.header("access-control-allow-origin").as_deref(),
        Some(SITE)
    );
    assert_eq!(ok.json()["online"], false);
    assert_eq!(ok.json()["appearance"]["position"], "bottom_right");
    assert!(
        ok.json().get("origins").is_none(),
        "the allow-list is not published"
    );

    for refused in [
        Some("https://evil.example"),
        Some("https://shop.example.evil"),
        Some("null"),
        None,
    ] {
        let r = from_page(&h, Method::GET, &config, refused, None, None).await;
        r.assert_error(403, "origin_not_allowed");
        assert_eq!(r.header("access-control-allow-origin"), None, "{refused:?}");
    }
    // Preflight: answered with CORS for the widget's origins only.
    let pre = from_page(
        &h,
        Method::OPTIONS,
        &public(&site, "messages"),
        Some("http://localhost:5173"),
        None,
        None,
    )
    .await;
    pre.assert_status(204);
    assert_eq!(
        pre.header("access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
    assert!(
        pre.header("access-control-allow-headers")
            .unwrap()
            .contains("Authorization")
    );
    assert_eq!(pre.header("access-control-allow-credentials"), None);
    let pre = from_page(
        &h,
        Method::OPTIONS,
        &public(&site, "messages"),
        Some("https://evil.example"),
        None,
        None,
    )
    .await;
    pre.assert_error(403, "origin_not_allowed");
    assert_eq!(pre.header("access-control-allow-origin"), None);
    // Every route, the visitor's included, checks the origin before anything else.
    let token = visitor(&h, &site, json!({})).await;
    let r = from_page(
        &h,
        Method::GET,
        &public(&site, "messages"),
        Some("https://evil.example"),
        Some(&token),
        None,
    )
    .await;
    r.assert_error(403, "origin_not_allowed");
    let r = from_page(
        &h,
        Method::POST,
        &public(&site, "messages"),
        Some("https://evil.example"),
        Some(&token),
        Some(json!({"client_message_id": "x", "text": "hi"})),
    )
    .await;
    r.assert_error(403, "origin_not_allowed");
    assert!(
        history(&h, &site, &token).await.is_empty(),
        "nothing was written"
    );
    // An unknown key is not found.
    let r = from_page(
        &h,
        Method::GET,
        "/api/v1/public/widgets/pk_nope/config",
        Some(SITE),
        None,
        None,
    )
    .await;
    r.assert_error(404, "not_found");
    // The owner narrows the list: the old origin is refused at once.
    let r = h
        .patch(
            t.owner.who(),
            &format!("/api/v1/widgets/{}", site.channel),
            json!({"settings": {"origins": ["http://localhost:5173"]}}),
        )
        .await;
    r.assert_status(200);
    from_page(&h, Method::GET, &config, Some(SITE), None, None)
        .await
        .assert_error(403, "origin_not_allowed");
    // The script itself is for every site.
    let js = h.get(Who::Anon(fresh_ip()), "/widget.js").await;
    js.assert_status(200);
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        js.header("cross-origin-resource-policy").as_deref(),
        Some("cross-origin")
    );
}

#[actix_web::test]
async fn a_visitor_never_reaches_another_visitors_conversation() {
    let h = Harness::start("widget-isolation", &Options::default()).await;
    let t = h.seed_tenant("wi").await;
    let site = widget(&h, &t, json!({"origins": [SITE]})).await;
    let other_site = widget(&h, &t, json!({"origins": [SITE]})).await;
    let a = visitor(&h, &site, json!({})).await;
    let b = visitor(&h, &site, json!({})).await;
    say(&h, &site, &a, "a-1", "A's secret")
        .await
        .assert_status(201);
    say(&h, &site, &b, "b-1", "B here").await.assert_status(201);
    assert_eq!(texts(&history(&h, &site, &a).await), ["A's secret"]);
    assert_eq!(texts(&history(&h, &site, &b).await), ["B here"]);
    // Each visitor is their own conversation in the inbox.
    let list = h.get(t.owner.who(), "/api/v1/conversations").await.json();
    let convs: Vec<&Value> = list["items"].as_array().unwrap().iter().collect();
    assert_eq!(convs.len(), 2);
    let conv_a = convs
        .iter()
        .find(|c| c["last_message_text"] == "A's secret")
        .unwrap()["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // B's token on A's conversation's message ids: the API takes no conversation or message id
    // from a visitor at all; a cursor naming A's message is refused and reveals nothing.
    let a_msg = history(&h, &site, &a).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = from_page(
        &h,
        Method::GET,
        &format!("{}?after={a_msg}", public(&site, "messages")),
        Some(SITE),
        Some(&b),
        None,
    )
    .await;
    r.assert_error(400, "invalid_parameter");
    assert!(!r.text().contains("A's secret"));
    // B's token on another widget, a made-up token, no token: unknown visitor.
    for token in [Some(b.as_str()), Some("omv_madeup"), None] {
        let r = from_page(
            &h,
            Method::GET,
            &public(&other_site, "messages"),
            Some(SITE),
            token,
            None,
        )
        .await;
        r.assert_error(401, "visitor_unknown");
    }
    let r = say(&h, &other_site, &a, "a-2", "into another widget").await;
    r.assert_error(401, "visitor_unknown");
    // The operator's reply reaches A only; the note stays inside.
    h.post(
        t.owner.who(),
        &format!("/api/v1/conversations/{conv_a}/messages"),
        json!({"text": "Hello A", "idempotency_key": "r-1"}),
    )
    .await
    .assert_status(201);
    h.post(
        t.owner.who(),
        &format!("/api/v1/conversations/{conv_a}/notes"),
        json!({"text": "internal: VIP", "idempotency_key": "n-1"}),
    )
    .await
    .assert_status(201);
    let seen_by_a = history(&h, &site, &a).await;
    assert_eq!(texts(&seen_by_a), ["A's secret", "Hello A"]);
    assert_eq!(seen_by_a[1]["from"], "operator");
    assert_eq!(seen_by_a[1]["operator"]["name"], "Wi Owner");
    assert_eq!(texts(&history(&h, &site, &b).await), ["B here"]);
}

#[actix_web::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let h = Harness::start("widget-bad-input", &Options::default()).await;
    let t = h.seed_tenant("wb").await;
    // Owner side: settings are checked; widgets are made only through /widgets.
    for bad in [
        json!({"origins": ["http://shop.example"]}),
        json!({"origins": ["https://shop.example/path"]}),
        json!({"origins": [SITE], "appearance": {"accent_color": "red"}}),
        json!({"origins": [SITE], "messengers": {"telegram": "https://evil.example/x"}}),
        json!({"origins": [SITE], "unknown": true}),
    ] {
        let r = h
            .post(
                t.owner.who(),
                "/api/v1/widgets",
                json!({"name": "x", "settings": bad}),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let r = h
        .post(
            t.owner.who(),
            "/api/v1/channels",
            json!({"kind": "messaging", "provider": "widget", "name": "w"}),
        )
        .await;
    r.assert_error(400, "validation_failed");
    let site = widget(
        &h,
        &t,
        json!({"origins": [SITE], "prechat": {"enabled": true, "fields": [
            {"field": "name", "required": true}, {"field": "email", "required": false}]}}),
    )
    .await;
    let r = h
        .patch(
            t.owner.who(),
            &format!("/api/v1/channels/{}", site.channel),
            json!({"settings": {"origins": ["*"]}}),
        )
        .await;
    r.assert_error(400, "validation_failed");
    // Visitors: the pre-chat form is enforced.
    for (body, status) in [
        (json!({}), 400),
        (json!({"name": "  "}), 400),
        (json!({"name": "Анна", "email": "not-an-email"}), 400),
        (json!({"name": "Анна", "phone": "+7 900 000-00-00"}), 400),
        (json!({"name": "Анна", "extra": 1}), 400),
    ] {
        let r = from_page(
            &h,
            Method::POST,
            &public(&site, "visitors"),
            Some(SITE),
            None,
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
    }
    let token = visitor(
        &h,
        &site,
        json!({"name": "Анна", "email": "anna@example.test"}),
    )
    .await;
    // Messages: empty, oversized, control characters, missing or oversized ids, unknown fields.
    for body in [
        json!({"client_message_id": "m", "text": "   "}),
        json!({"client_message_id": "m", "text": "x".repeat(10_001)}),
        json!({"client_message_id": "m", "text": "a\u{0007}b"}),
        json!({"client_message_id": "", "text": "hi"}),
        json!({"client_message_id": "m".repeat(101), "text": "hi"}),
        json!({"text": "hi"}),
        json!({"client_message_id": "m", "text": "hi", "conversation_id": "x"}),
    ] {
        let r = from_page(
            &h,
            Method::POST,
            &public(&site, "messages"),
            Some(SITE),
            Some(&token),
            Some(body.clone()),
        )
        .await;
        assert!(
            r.status == 400 || r.status == 413,
            "{body}: {} {}",
            r.status,
            r.text()
        );
    }
    assert!(history(&h, &site, &token).await.is_empty());
    // The offline form wants a way to answer.
    let r = from_page(
        &h,
        Method::POST,
        &public(&site, "offline"),
        Some(SITE),
        Some(&token),
        Some(json!({"client_message_id": "o-1", "text": "call me"})),
    )
    .await;
    r.assert_error(400, "validation_failed");
    let r = from_page(
        &h,
        Method::POST,
        &public(&site, "offline"),
        Some(SITE),
        Some(&token),
        Some(json!({"client_message_id": "o-1", "text": "call me", "phone": "+7 900 000-00-00"})),
    )
    .await;
    r.assert_status(201);
    assert!(
        r.json()["message"]["text"]
            .as_str()
            .unwrap()
            .contains("+7 900 000-00-00")
    );
    // The pre-chat answers became the contact's fields.
    let conv =
        h.get(t.owner.who(), "/api/v1/conversations").await.json()["items"][0]["conversation"]
            .clone();
    let contact = h
        .get(
            t.owner.who(),
            &format!("/api/v1/contacts/{}", conv["contact_id"].as_str().unwrap()),
        )
        .await
        .json();
    assert_eq!(contact["name"], "Анна", "{contact}");
    assert_eq!(contact["fields"]["email"], "anna@example.test", "{contact}");
}

#[actix_web::test]
async fn a_repeated_client_message_id_creates_nothing() {
    let h = Harness::start("widget-dedupe", &Options::default()).await;
    let t = h.seed_tenant("wd").await;
    let site = widget(&h, &t, json!({"origins": [SITE]})).await;
    let token = visitor(&h, &site, json!({})).await;
    let first = say(&h, &site, &token, "c-1", "once").await;
    first.assert_status(201);
    assert_eq!(first.json()["duplicate"], false);
    assert_eq!(first.json()["message"]["client_message_id"], "c-1");
    let again = say(&h, &site, &token, "c-1", "once").await;
    again.assert_status(200);
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["message"]["id"], first.json()["message"]["id"]);
    assert_eq!(texts(&history(&h, &site, &token).await), ["once"]);
    // Another visitor may use the same id: ids are the visitor's own.
    let other = visitor(&h, &site, json!({})).await;
    say(&h, &site, &other, "c-1", "mine")
        .await
        .assert_status(201);
}

#[actix_web::test]
async fn visitors_and_addresses_are_rate_limited() {
    let options = Options {
        widget_messages_per_minute: 3,
        widget_requests_per_minute: 1000,
        ..Options::default()
    };
    let h = Harness::start("widget-limits", &options).await;
    let t = h.seed_tenant("wl").await;
    let site = widget(&h, &t, json!({"origins": [SITE]})).await;
    let token = visitor(&h, &site, json!({})).await;
    for i in 0..3 {
        say(&h, &site, &token, &format!("m-{i}"), "hi")
            .await
            .assert_status(201);
    }
    let r = say(&h, &site, &token, "m-3", "hi").await;
    r.assert_error(429, "rate_limited");
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(SITE),
        "the page can read why"
    );
    assert_eq!(history(&h, &site, &token).await.len(), 3);
    // Another visitor has their own allowance.
    let other = visitor(&h, &site, json!({})).await;
    say(&h, &site, &other, "m-0", "hi").await.assert_status(201);

    let options = Options {
        widget_requests_per_minute: 5,
        ..Options::default()
    };
    let h = Harness::start("widget-ip-limit", &options).await;
    let t = h.seed_tenant("wp").await;
    let site = widget(&h, &t, json!({"origins": [SITE]})).await;
    let ip = fresh_ip();
    let get = || {
        let req = h
            .request(Who::Anon(ip), Method::GET, &public(&site, "config"))
            .insert_header((header::ORIGIN, SITE));
        h.send(req)
    };
    for _ in 0..5 {
        get().await.assert_status(200);
    }
    get().await.assert_error(429, "rate_limited");
    // Another address is not held up.
    from_page(
        &h,
        Method::GET,
        &public(&site, "config"),
        Some(SITE),
        None,
        None,
    )
    .await
    .assert_status(200);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_socket(live: &Live, site: &Site, origin: &str) -> Result<Socket, u16> {
    let url = format!("ws://{}{}", live.addr(), public(site, "ws"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(origin).unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((s, _)) => Ok(s),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

async fn frame(ws: &mut Socket) -> Value {
    loop {
        let f = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("nothing arrived")
            .expect("the socket ended")
            .expect("socket error");
        match f {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

async fn frame_of(ws: &mut Socket, kind: &str) -> Value {
    for _ in 0..50 {
        let f = frame(ws).await;
        if f["type"] == kind {
            return f;
        }
    }
    panic!("no {kind} frame");
}

async fn send(ws: &mut Socket, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

#[actix_web::test]
async fn the_visitor_socket_pushes_replies_and_resumes_after_a_reconnect() {
    let h = Harness::start("widget-socket", &Options::default()).await;
    let t = h.seed_tenant("ws").await;
    let site = widget(&h, &t, json!({"origins": [SITE]})).await;
    let live = Live::start(h.state.clone()).await;
    assert_eq!(
        open_socket(&live, &site, "https://evil.example")
            .await
            .err(),
        Some(403)
    );
    let a = visitor(&h, &site, json!({})).await;
    let b = visitor(&h, &site, json!({})).await;

    // A bad token closes the socket with 4401.
    let mut ws = open_socket(&live, &site, SITE).await.unwrap();
    send(
        &mut ws,
        json!({"v": 1, "type": "hello", "token": "omv_forged"}),
    )
    .await;
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(c)))) => return u16::from(c.code),
                Some(Ok(_)) => continue,
                _ => return 0,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(closed, 4401);

    // A's socket opens before A's conversation exists, and sends the first message itself.
    let mut ws = open_socket(&live, &site, SITE).await.unwrap();
    send(&mut ws, json!({"v": 1, "type": "hello", "token": a})).await;
    let welcome = frame_of(&mut ws, "welcome").await;
    assert!(welcome["last_seq"].is_i64());
    send(&mut ws, json!({"v": 1, "type": "message", "ref": "m1", "client_message_id": "w-1", "text": "over the socket"})).await;
    let ack = frame_of(&mut ws, "ack").await;
    assert_eq!(ack["ok"], true, "{ack}");
    let mine = frame_of(&mut ws, "message").await;
    assert_eq!(mine["message"]["from"], "visitor");
    assert_eq!(mine["message"]["client_message_id"], "w-1");
    let mut cursor = mine["seq"].as_i64().unwrap();

    // B's messages never show on A's socket.
    say(&h, &site, &b, "b-1", "B's secret")
        .await
        .assert_status(201);
    let conv = h.get(t.owner.who(), "/api/v1/conversations").await.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["last_message_text"] == "over the socket")
        .unwrap()["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.post(
        t.owner.who(),
        &format!("/api/v1/conversations/{conv}/notes"),
        json!({"text": "note", "idempotency_key": "n"}),
    )
    .await
    .assert_status(201);
    h.post(
        t.owner.who(),
        &format!("/api/v1/conversations/{conv}/messages"),
        json!({"text": "reply 1", "idempotency_key": "r1"}),
    )
    .await
    .assert_status(201);
    let reply = frame_of(&mut ws, "message").await;
    assert_eq!(
        reply["message"]["text"], "reply 1",
        "neither B's message nor the note came first"
    );
    assert_eq!(reply["message"]["from"], "operator");
    assert_eq!(reply["message"]["operator"]["name"], "Ws Owner");
    cursor = cursor.max(reply["seq"].as_i64().unwrap());
    // Reaching the socket is delivery; `read` moves it on.
    loop {
        let f = frame_of(&mut ws, "status").await;
        cursor = cursor.max(f["seq"].as_i64().unwrap());
        if f["status"] == "delivered" {
            break;
        }
    }
    send(&mut ws, json!({"v": 1, "type": "read"})).await;
    loop {
        let f = frame_of(&mut ws, "status").await;
        cursor = cursor.max(f["seq"].as_i64().unwrap());
        if f["status"] == "read" {
            break;
        }
    }
    drop(ws);

    // While A is away the operator answers twice; A's next socket resumes after its cursor.
    for (i, text) in ["reply 2", "reply 3"].iter().enumerate() {
        h.post(
            t.owner.who(),
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"text": text, "idempotency_key": format!("later-{i}")}),
        )
        .await
        .assert_status(201);
    }
    let mut ws = open_socket(&live, &site, SITE).await.unwrap();
    send(
        &mut ws,
        json!({"v": 1, "type": "hello", "token": a, "resume_after": cursor}),
    )
    .await;
    frame_of(&mut ws, "welcome").await;
    let first = frame_of(&mut ws, "message").await;
    let second = frame_of(&mut ws, "message").await;
    assert_eq!(first["message"]["text"], "reply 2");
    assert_eq!(second["message"]["text"], "reply 3");
    assert!(first["seq"].as_i64().unwrap() > cursor);
}

/// A multipart body with one part `file`.
fn multipart(name: &str, mime: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("w5-{}", seq());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A visitor's file, sent from a page of `SITE`.
pub(crate) async fn send_file(
    h: &Harness,
    site: &Site,
    token: &str,
    client_message_id: &str,
    (name, mime, bytes): (&str, &str, &[u8]),
) -> Resp {
    let (content_type, body) = multipart(name, mime, bytes);
    let req = h
        .request(
            Who::Anon(fresh_ip()),
            Method::POST,
            &public(
                site,
                &format!("attachments?client_message_id={client_message_id}"),
            ),
        )
        .insert_header((header::ORIGIN, SITE))
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .insert_header((header::CONTENT_TYPE, content_type))
        .set_payload(body);
    h.send(req).await
}

async fn fetch_file(h: &Harness, site: &Site, token: Option<&str>, id: &str, query: &str) -> Resp {
    from_page(
        h,
        Method::GET,
        &public(site, &format!("attachments/{id}{query}")),
        Some(SITE),
        token,
        None,
    )
    .await
}

fn media_files(h: &Harness) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { count(&p) } else { 1 })
                .sum()
        })
    }
    count(&h.config.media_dir())
}

/// The first bytes of a PNG, and then some.
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend(std::iter::repeat_n(7u8, 300));
    bytes
}

#[actix_web::test]
async fn visitors_send_files_within_the_widgets_rules_and_fetch_only_their_own() {
    let h = Harness::start("widget-files", &Options::default()).await;
    let t = h.seed_tenant("wf").await;
    let site = widget(
        &h,
        &t,
        json!({"origins": [SITE], "attachments": {"max_bytes": 2048,
            "types": ["image/png", "application/pdf", "text/plain"]}}),
    )
    .await;
    let config = from_page(
        &h,
        Method::GET,
        &public(&site, "config"),
        Some(SITE),
        None,
        None,
    )
    .await
    .json();
    assert_eq!(config["attachments"]["enabled"], true);
    assert_eq!(config["attachments"]["max_bytes"], 2048);
    let a = visitor(&h, &site, json!({})).await;
    let b = visitor(&h, &site, json!({})).await;
    let before = media_files(&h);

    // The content decides the type: a PNG declared as anything is a PNG.
    let photo = png();
    let r = send_file(
        &h,
        &site,
        &a,
        "f-1",
        ("photo.bin", "application/octet-stream", &photo),
    )
    .await;
    r.assert_status(201);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(SITE)
    );
    let sent = r.json()["message"].clone();
    assert_eq!(sent["from"], "visitor");
    assert_eq!(sent["client_message_id"], "f-1");
    let file = &sent["attachments"][0];
    assert_eq!(file["mime_type"], "image/png");
    assert_eq!(file["kind"], "image");
    assert_eq!(file["state"], "ready");
    assert_eq!(file["size"], photo.len());
    let photo_id = file["id"].as_str().unwrap().to_string();
    assert_eq!(media_files(&h), before + 1);
    // A retry of the same message keeps nothing new.
    let again = send_file(&h, &site, &a, "f-1", ("photo.bin", "image/png", &photo)).await;
    again.assert_status(200);
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(
        again.json()["message"]["attachments"][0]["id"],
        photo_id.as_str()
    );
    assert_eq!(media_files(&h), before + 1);

    // Refused, and nothing kept: a page declared as an image, a type the widget does not take,
    // a program named as a document, an empty file, a file over the widget's limit, a request
    // that is not multipart.
    let page = b"<!DOCTYPE html><script>alert(1)</script>";
    send_file(&h, &site, &a, "f-2", ("cat.png", "image/png", page))
        .await
        .assert_error(415, "unsupported_media_type");
    let zip = b"PK\x03\x04 an archive";
    send_file(&h, &site, &a, "f-3", ("a.pdf", "application/pdf", zip))
        .await
        .assert_error(415, "unsupported_media_type");
    send_file(
        &h,
        &site,
        &a,
        "f-4",
        ("run.exe", "text/plain", b"plain words"),
    )
    .await
    .assert_error(415, "unsupported_media_type");
    send_file(&h, &site, &a, "f-5", ("empty.txt", "text/plain", b""))
        .await
        .assert_error(400, "validation_failed");
    let big = "words ".repeat(500);
    send_file(
        &h,
        &site,
        &a,
        "f-6",
        ("big.txt", "text/plain", big.as_bytes()),
    )
    .await
    .assert_error(413, "payload_too_large");
    let r = from_page(
        &h,
        Method::POST,
        &public(&site, "attachments?client_message_id=f-7"),
        Some(SITE),
        Some(&a),
        Some(json!({"file": "x"})),
    )
    .await;
    r.assert_error(415, "unsupported_media_type");
    assert_eq!(media_files(&h), before + 1);
    assert_eq!(history(&h, &site, &a).await.len(), 1);

    // The operator sees the visitor's file and answers with one of their own.
    let list = h.get(t.owner.who(), "/api/v1/conversations").await.json();
    let conv = list["items"][0]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let seen = h
        .get(t.owner.who(), &format!("/api/v1/attachments/{photo_id}"))
        .await;
    seen.assert_status(200);
    assert_eq!(seen.body.as_ref(), photo.as_slice());
    let pdf = b"%PDF-1.4 the price list".to_vec();
    let (content_type, body) = multipart("prices.pdf", "application/pdf", &pdf);
    let req = h
        .request(
            t.owner.who(),
            Method::POST,
            &format!("/api/v1/conversations/{conv}/attachments"),
        )
        .insert_header((header::CONTENT_TYPE, content_type))
        .set_payload(body);
    let uploaded = h.send(req).await;
    uploaded.assert_status(201);
    let pdf_id = uploaded.json()["id"].as_str().unwrap().to_string();
    // Not sent yet: the visitor cannot fetch it.
    fetch_file(&h, &site, Some(&a), &pdf_id, "")
        .await
        .assert_error(404, "not_found");
    h.post(
        t.owner.who(),
        &format!("/api/v1/conversations/{conv}/messages"),
        json!({"text": "Our prices", "idempotency_key": "r-1", "attachment_ids": [pdf_id]}),
    )
    .await
    .assert_status(201);
    let items = history(&h, &site, &a).await;
    assert_eq!(items[1]["from"], "operator");
    assert_eq!(items[1]["attachments"][0]["id"], pdf_id.as_str());
    assert_eq!(items[1]["attachments"][0]["file_name"], "prices.pdf");

    // The visitor fetches both: a download, an image inline on request.
    let got = fetch_file(&h, &site, Some(&a), &pdf_id, "").await;
    got.assert_status(200);
    assert_eq!(got.body.as_ref(), pdf.as_slice());
    assert!(
        got.header("content-disposition")
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(
        got.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        got.header("access-control-allow-origin").as_deref(),
        Some(SITE)
    );
    let inline = fetch_file(&h, &site, Some(&a), &photo_id, "?disposition=inline").await;
    inline.assert_status(200);
    assert_eq!(inline.header("content-type").as_deref(), Some("image/png"));
    assert!(
        inline
            .header("content-disposition")
            .unwrap()
            .starts_with("inline;")
    );

    // Visitor B, a made-up token, no token, another site: never A's files.
    for id in [&photo_id, &pdf_id] {
        let r = fetch_file(&h, &site, Some(&b), id, "").await;
        r.assert_error(404, "not_found");
        assert!(r.body.len() < 1024 && !r.text().contains("PDF"));
        fetch_file(&h, &site, Some("omv_madeup"), id, "")
            .await
            .assert_error(401, "visitor_unknown");
        fetch_file(&h, &site, None, id, "")
            .await
            .assert_error(401, "visitor_unknown");
        from_page(
            &h,
            Method::GET,
            &public(&site, &format!("attachments/{id}")),
            Some("https://evil.example"),
            Some(&a),
            None,
        )
        .await
        .assert_error(403, "origin_not_allowed");
    }
    // B's own file is B's alone.
    let r = send_file(
        &h,
        &site,
        &b,
        "b-1",
        ("note.txt", "text/plain", b"B's words"),
    )
    .await;
    r.assert_status(201);
    assert_eq!(
        r.json()["message"]["attachments"][0]["mime_type"],
        "text/plain"
    );
    let b_file = r.json()["message"]["attachments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    fetch_file(&h, &site, Some(&a), &b_file, "")
        .await
        .assert_error(404, "not_found");
    fetch_file(&h, &site, Some(&b), &b_file, "")
        .await
        .assert_status(200);

    // An owner who turns files off: refused before anything is read.
    h.patch(
        t.owner.who(),
        &format!("/api/v1/widgets/{}", site.channel),
        json!({"settings": {"origins": [SITE], "attachments": {"enabled": false}}}),
    )
    .await
    .assert_status(200);
    send_file(&h, &site, &a, "f-8", ("photo.png", "image/png", &photo))
        .await
        .assert_error(415, "unsupported_media_type");
}
