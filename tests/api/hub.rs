//! The realtime hub over real sockets: the application served by a real `HttpServer` on
//! 127.0.0.1, operator consoles on real WebSockets (tokio-tungstenite), the API channel's
//! webhook posted to with reqwest, and a local HTTP receiver standing in for the system behind
//! the API channel (it gets omnihub's outbound replies).
//!
//! - the whole lifecycle: inbound webhook → push → reply over the socket → outbound POST →
//!   status callback → `message_status` push;
//! - the same inbound event posted 5 times at once → one message, one push;
//! - another client's ids on every WebSocket message type → `not_found`, nothing changed;
//! - a silent socket is closed (4001) after the heartbeat timeout, a live one is not, one
//!   without `hello` is closed too, and signing out closes the session's socket (4403);
//! - resuming from the last `seq` after a reconnect misses nothing and repeats nothing;
//! - the `Origin` check of cookie-authenticated handshakes;
//! - bad webhook credentials → 401 `invalid_signature`, nothing stored;
//! - protocol errors (malformed, unknown, oversized frames) and the REST inbox.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::{SinkExt, StreamExt};
use omnihub::AppState;
use omnihub_core::model::{ChannelKind, Provider};
use omnihub_core::{ChannelRights, ConversationId};
use omnihub_store::{ChannelPatch, ConversationFilter, NewChannel};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::*;

/// Longest any single expected thing may take.
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// The application on a real listener.
pub(crate) struct Live {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl Live {
    pub(crate) async fn start(state: AppState) -> Live {
        Live::start_on(state, std::net::TcpListener::bind("127.0.0.1:0").unwrap()).await
    }

    /// Serves on a listener bound beforehand (so the configuration can name its address).
    pub(crate) async fn start_on(state: AppState, listener: std::net::TcpListener) -> Live {
        let server = HttpServer::new(move || omnihub::create_app(state.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Live { addr, handle }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/api/v1/ws", self.addr)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// What the receiver got: each POST's `Idempotency-Key` header and JSON body.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// The system behind an API channel: records omnihub's outbound POSTs and answers each with a
/// provider message id `prov-N`.
struct Receiver {
    addr: SocketAddr,
    got: Received,
    handle: actix_web::dev::ServerHandle,
}

async fn receive(
    req: HttpRequest,
    body: web::Json<Value>,
    got: web::Data<Received>,
) -> HttpResponse {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut got = got.lock().unwrap();
    got.push((key, body.into_inner()));
    HttpResponse::Ok().json(json!({ "id": format!("prov-{}", got.len()) }))
}

impl Receiver {
    async fn start() -> Receiver {
        let got: Received = Arc::default();
        let data = got.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(data.clone()))
                .route("/in", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver { addr, got, handle }
    }

    fn url(&self) -> String {
        format!("http://{}/in", self.addr)
    }

    /// Waits until `n` POSTs arrived and returns them all.
    async fn wait_for(&self, n: usize) -> Vec<(Option<String>, Value)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver got {} of {n} POSTs",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// The world with the tenants' API channels wired for real traffic: an inbound token, and
/// outbound replies going to `receiver`.
struct Hub {
    w: World,
    live: Live,
    receiver: Receiver,
    http: reqwest::Client,
}

fn inbound_token(tag: &str) -> String {
    format!("inbound-{tag}-0123456789abcdef")
}

impl Hub {
    async fn start(label: &str) -> Hub {
        Hub::with(label, Options::default()).await
    }

    async fn with(label: &str, options: Options) -> Hub {
        let w = World::with(label, options).await;
        let receiver = Receiver::start().await;
        for t in [&w.a, &w.b] {
            w.store
                .update_channel(
                    t.client.id,
                    t.channel.id,
                    &ChannelPatch {
                        settings: Some(json!({ "outbound_url": receiver.url() })),
                        credentials: Some(json!({
                            "api_key": credential_secret(&t.tag),
                            "inbound_token": inbound_token(&t.tag),
                        })),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        }
        let live = Live::start(w.state.clone()).await;
        Hub {
            w,
            live,
            receiver,
            http: reqwest::Client::new(),
        }
    }

    /// Posts to a channel's webhook with a bearer token.
    async fn hook(
        &self,
        channel: impl ToString,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(
                self.live
                    .url(&format!("/hooks/api/{}", channel.to_string())),
            )
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A customer message on `t`'s API channel, committed; returns the hook's answer.
    async fn inbound(&self, t: &Tenant, event: &str, conversation: &str, text: &str) -> Value {
        let (status, body) = self
            .hook(
                t.channel.id,
                Some(&inbound_token(&t.tag)),
                &inbound_body(event, conversation, text),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn conversation_of(&self, t: &Tenant, message: &Value) -> ConversationId {
        let found = self
            .w
            .store
            .list_conversations(
                t.client.id,
                Some(t.owner.user.id),
                &ConversationFilter {
                    limit: 200,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for s in found {
            let messages = self
                .w
                .store
                .conversation_messages(t.client.id, s.conversation.id, None, 200)
                .await
                .unwrap();
            if messages
                .iter()
                .any(|m| json!(m.id) == message["message_id"])
            {
                return s.conversation.id;
            }
        }
        panic!("no conversation holds {message}");
    }

    /// Owner of `t` on a socket, with the session cookie and the public origin.
    async fn owner_socket(&self, t: &Tenant) -> Ws {
        Ws::connect(
            &self.live,
            &self.w,
            Auth::Cookie(&t.owner, Some("https://omnihub.test")),
        )
        .await
        .unwrap()
    }
}

fn inbound_body(event: &str, conversation: &str, text: &str) -> Value {
    json!({
        "event_id": event,
        "conversation": conversation,
        "user": { "id": format!("user-{conversation}"), "name": "Customer Carol" },
        "text": text,
    })
}

// ---------------------------------------------------------------------------------------------
// A console
// ---------------------------------------------------------------------------------------------

enum Auth<'a> {
    /// The actor's session cookie, with this `Origin` (if any).
    Cookie(&'a Actor, Option<&'a str>),
    /// A bearer token, with this `Origin` (if any).
    Token(&'a str, Option<&'a str>),
}

struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while waiting for something else.
    stash: VecDeque<Value>,
    next_ref: u64,
}

impl Ws {
    /// Opens the socket; `Err` carries the HTTP status of a refused handshake.
    async fn connect(live: &Live, w: &World, auth: Auth<'_>) -> Result<Ws, u16> {
        let mut req = live.ws_url().into_client_request().unwrap();
        let headers = req.headers_mut();
        let origin = match auth {
            Auth::Cookie(actor, origin) => {
                let cookie = format!("{}={}", w.cookie_name(), actor.session().cookie);
                headers.insert("cookie", HeaderValue::from_str(&cookie).unwrap());
                origin
            }
            Auth::Token(token, origin) => {
                let value = format!("Bearer {token}");
                headers.insert("authorization", HeaderValue::from_str(&value).unwrap());
                origin
            }
        };
        if let Some(o) = origin {
            headers.insert("origin", HeaderValue::from_str(o).unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((stream, _)) => Ok(Ws {
                stream,
                stash: VecDeque::new(),
                next_ref: 0,
            }),
            Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("websocket connect: {e}"),
        }
    }

    async fn send(&mut self, v: Value) {
        self.stream
            .send(Message::text(v.to_string()))
            .await
            .unwrap();
    }

    async fn send_raw(&mut self, text: String) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    /// The next JSON frame from the socket (not the stash); panics on a close or a timeout.
    async fn read(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("nothing arrived on the socket")
                .expect("the socket ended")
                .expect("socket error");
            match frame {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next frame, stashed ones first.
    async fn next(&mut self) -> Value {
        match self.stash.pop_front() {
            Some(v) => v,
            None => self.read().await,
        }
    }

    /// Sends a message with a fresh `ref` and returns its answer (`ack` or `pong`), stashing
    /// whatever else arrives meanwhile.
    async fn request(&mut self, mut v: Value) -> Value {
        self.next_ref += 1;
        let r = format!("r{}", self.next_ref);
        v["ref"] = json!(r);
        self.send(v).await;
        loop {
            let f = self.read().await;
            if (f["type"] == "ack" || f["type"] == "pong") && f["ref"] == json!(r) {
                return f;
            }
            self.stash.push_back(f);
        }
    }

    /// `hello`, answered by `welcome`.
    async fn hello(&mut self, extra: Value) -> Value {
        let mut v = json!({ "v": 1, "type": "hello" });
        if let Value::Object(m) = extra {
            for (k, x) in m {
                v[k] = x;
            }
        }
        self.send(v).await;
        let welcome = self.read().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["v"], 1);
        welcome
    }

    /// The next `event` frame that matches, skipping (and returning) the others.
    async fn event_where(&mut self, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            assert!(skipped.len() < 1000, "no such event among {skipped:?}");
            let f = self.next().await;
            if f["type"] == "event" && pred(&f) {
                return (f, skipped);
            }
            skipped.push(f);
        }
    }

    /// The close frame's code, reading past anything still queued before it.
    async fn close_code(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(WAIT, self.stream.next()).await {
                Ok(Some(Ok(Message::Close(Some(frame))))) => return u16::from(frame.code),
                Ok(Some(Ok(Message::Close(None)))) => return 1005,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => panic!("socket error before the close frame: {e}"),
                Ok(None) => panic!("the socket ended without a close frame"),
                Err(_) => panic!("no close frame arrived"),
            }
        }
    }
}

fn ack_code(ack: &Value) -> &str {
    ack["error"]["code"].as_str().unwrap_or("")
}

fn is_message_created_of(f: &Value, message_id: &Value) -> bool {
    f["kind"] == "message_created" && f["payload"]["id"] == *message_id
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[actix_web::test]
async fn lifecycle_inbound_push_reply_outbound_status() {
    let hub = Hub::start("hub-lifecycle").await;
    let a = &hub.w.a;
    let mut ws = hub.owner_socket(a).await;
    let welcome = ws.hello(json!({})).await;
    assert!(welcome["last_seq"].is_i64(), "{welcome}");
    assert!(welcome["session_id"].is_string());

    // A customer writes through the API channel: committed, then pushed.
    let answer = hub
        .inbound(a, "evt-1", "chat-1", "Where is my order?")
        .await;
    assert_eq!(answer["duplicate"], false);
    let message_id = answer["message_id"].clone();
    let (event, _) = ws
        .event_where(|f| is_message_created_of(f, &message_id))
        .await;
    assert_eq!(event["payload"]["text"], "Where is my order?");
    assert_eq!(event["payload"]["direction"], "inbound");
    let conversation = event["conversation_id"].clone();
    assert!(event["seq"].as_i64().unwrap() > welcome["last_seq"].as_i64().unwrap());

    // The operator replies over the socket; the ack names the committed message.
    let ack = ws
        .request(json!({
            "v": 1, "type": "reply", "conversation_id": conversation,
            "text": "It left today.", "idempotency_key": "reply-1",
        }))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let reply_id = ack["message_id"].clone();
    assert!(reply_id.is_string());
    let (event, _) = ws
        .event_where(|f| is_message_created_of(f, &reply_id))
        .await;
    assert_eq!(event["payload"]["direction"], "outbound");

    // The system behind the channel receives the reply, with its idempotency key.
    let got = hub.receiver.wait_for(1).await;
    let (key, body) = &got[0];
    assert_eq!(body["text"], "It left today.");
    assert_eq!(body["conversation"], "chat-1");
    assert_eq!(key.as_deref(), body["idempotency_key"].as_str());

    // A retry of the same reply is the same message, sent once.
    let again = ws
        .request(json!({
            "v": 1, "type": "reply", "conversation_id": conversation,
            "text": "It left today.", "idempotency_key": "reply-1",
        }))
        .await;
    assert_eq!(again["message_id"], reply_id);

    // It reports delivery by its own id; the console sees the status.
    let (status, body) = hub
        .hook(
            a.channel.id,
            Some(&inbound_token(&a.tag)),
            &json!({ "type": "status", "message_id": "prov-1", "status": "delivered" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message_id"], reply_id);
    let (event, _) = ws
        .event_where(|f| {
            f["kind"] == "message_status"
                && f["payload"]["id"] == reply_id
                && f["payload"]["status"] == "delivered"
        })
        .await;
    assert_eq!(event["conversation_id"], conversation);
    assert_eq!(hub.receiver.wait_for(1).await.len(), 1, "sent once");

    // Everything is in the store.
    let conversation: ConversationId = serde_json::from_value(conversation).unwrap();
    let messages = hub
        .w
        .store
        .conversation_messages(a.client.id, conversation, None, 50)
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        serde_json::to_value(messages[1].status).unwrap(),
        json!("delivered")
    );
}

#[actix_web::test]
async fn five_concurrent_copies_of_an_event_make_one_message_and_one_push() {
    let hub = Hub::start("hub-dedupe").await;
    let a = &hub.w.a;
    let mut ws = hub.owner_socket(a).await;
    ws.hello(json!({})).await;

    let body = inbound_body("evt-dup", "chat-dup", "Only once, please");
    let token = inbound_token(&a.tag);
    let posts = (0..5).map(|_| hub.hook(a.channel.id, Some(&token), &body));
    let answers = futures_util::future::join_all(posts).await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|(status, b)| {
            assert_eq!(*status, 200, "{b}");
            b["message_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one message: {answers:?}");
    let new = answers
        .iter()
        .filter(|(_, b)| b["duplicate"] == false)
        .count();
    assert_eq!(
        new, 1,
        "one answer says new, the rest duplicate: {answers:?}"
    );
    let message_id = json!(ids.iter().next().unwrap());

    // A later event is a barrier: events arrive in seq order, so any second push of the
    // first message would have come before it.
    let barrier = hub.inbound(a, "evt-barrier", "chat-dup", "barrier").await;
    let (_, before) = ws
        .event_where(|f| is_message_created_of(f, &barrier["message_id"]))
        .await;
    let pushes = before
        .iter()
        .filter(|f| is_message_created_of(f, &message_id))
        .count();
    assert_eq!(pushes, 1, "exactly one push: {before:?}");

    let conversation = hub.conversation_of(a, &barrier).await;
    let messages = hub
        .w
        .store
        .conversation_messages(a.client.id, conversation, None, 50)
        .await
        .unwrap();
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["Only once, please", "barrier"]);
}

#[actix_web::test]
async fn another_clients_ids_are_not_found_on_every_message_type() {
    let hub = Hub::start("hub-tenancy").await;
    let (a, b) = (&hub.w.a, &hub.w.b);
    let theirs = hub.inbound(b, "b-evt-1", "b-chat", "bravo's secret").await;
    let their_conversation = hub.conversation_of(b, &theirs).await;
    let their_message = theirs["message_id"].clone();
    let ours = hub.inbound(a, "a-evt-1", "a-chat", "alpha's own").await;
    let our_conversation = hub.conversation_of(a, &ours).await;
    let before = hub
        .w
        .store
        .conversation_messages(b.client.id, their_conversation, None, 50)
        .await
        .unwrap();

    let mut ws = hub.owner_socket(a).await;
    // Even the first message: a view of another client's group.
    ws.send(
        json!({ "v": 1, "type": "hello", "ref": "h", "views": [format!("group:{}", b.group.id)] }),
    )
    .await;
    let refused = ws.read().await;
    assert_eq!(refused["type"], "ack");
    assert_eq!(ack_code(&refused), "not_found", "{refused}");
    ws.hello(json!({})).await;

    let c = their_conversation;
    let requests = [
        json!({"v":1,"type":"subscribe","views":[format!("group:{}", b.group.id)]}),
        json!({"v":1,"type":"reply","conversation_id":c,"text":"hi","idempotency_key":"x1"}),
        json!({"v":1,"type":"note","conversation_id":c,"text":"hi","idempotency_key":"x2"}),
        json!({"v":1,"type":"typing","conversation_id":c}),
        json!({"v":1,"type":"read","conversation_id":c,"message_id":their_message}),
        // Their message id in our own conversation.
        json!({"v":1,"type":"read","conversation_id":our_conversation,"message_id":their_message}),
    ];
    for request in requests {
        let ack = ws.request(request.clone()).await;
        assert_eq!(ack["ok"], false, "{request}: {ack}");
        assert_eq!(ack_code(&ack), "not_found", "{request}: {ack}");
        let text = ack.to_string();
        assert!(!text.contains("bravo"), "no data in the answer: {text}");
    }
    // Our own ids work on the same socket.
    for request in [
        json!({"v":1,"type":"subscribe","views":["mine","unassigned",format!("group:{}", a.group.id)]}),
        json!({"v":1,"type":"typing","conversation_id":our_conversation}),
        json!({"v":1,"type":"read","conversation_id":our_conversation,"message_id":ours["message_id"]}),
        json!({"v":1,"type":"presence","presence":"away"}),
    ] {
        let ack = ws.request(request.clone()).await;
        assert_eq!(ack["ok"], true, "{request}: {ack}");
    }
    let after = hub
        .w
        .store
        .conversation_messages(b.client.id, their_conversation, None, 50)
        .await
        .unwrap();
    assert_eq!(before, after, "nothing changed in the other client");

    // Bravo's new messages never reach alpha's socket: a later alpha event is the barrier.
    hub.inbound(b, "b-evt-2", "b-chat", "bravo again").await;
    let barrier = hub.inbound(a, "a-evt-2", "a-chat", "alpha again").await;
    let (_, skipped) = ws
        .event_where(|f| is_message_created_of(f, &barrier["message_id"]))
        .await;
    let leaked: Vec<&Value> = skipped
        .iter()
        .filter(|f| f.to_string().contains("bravo"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");

    // An employee of alpha who may not see the conversation gets the same `not_found`; one
    // who only reads it may not write in it.
    let plain = &a.plain;
    let mut ws = Ws::connect(
        &hub.live,
        &hub.w,
        Auth::Cookie(plain, Some("https://omnihub.test")),
    )
    .await
    .unwrap();
    ws.hello(json!({})).await;
    let ack = ws
        .request(json!({"v":1,"type":"typing","conversation_id":our_conversation}))
        .await;
    assert_eq!(ack_code(&ack), "not_found", "{ack}");
    hub.w
        .store
        .set_channel_grants(
            a.client.id,
            plain.user.id,
            &[omnihub_core::model::ChannelGrant {
                channel_id: a.channel.id,
                rights: ChannelRights::READ,
            }],
        )
        .await
        .unwrap();
    hub.w.state.auth_cache.invalidate_user(plain.user.id);
    let mut ws = Ws::connect(
        &hub.live,
        &hub.w,
        Auth::Cookie(plain, Some("https://omnihub.test")),
    )
    .await
    .unwrap();
    ws.hello(json!({})).await;
    let ack = ws
        .request(json!({"v":1,"type":"read","conversation_id":our_conversation,"message_id":ours["message_id"]}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let ack = ws
        .request(json!({"v":1,"type":"reply","conversation_id":our_conversation,"text":"hi","idempotency_key":"k"}))
        .await;
    assert_eq!(ack_code(&ack), "forbidden", "{ack}");
}

/// A WebSocket client by hand, for a console that reads nothing at all (a library client
/// answers pings whenever it reads, and may fail writing those answers to a closed socket).
struct RawWs {
    tcp: TcpStream,
}

impl RawWs {
    async fn connect(live: &Live, token: &str) -> RawWs {
        RawWs::connect_with(live, &format!("Authorization: Bearer {token}")).await
    }

    /// With one more header line (the credentials).
    async fn connect_with(live: &Live, credentials: &str) -> RawWs {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = TcpStream::connect(live.addr).await.unwrap();
        let request = format!(
            "GET /api/v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Origin: https://omnihub.test\r\n{credentials}\r\n\r\n",
            live.addr
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tokio::time::timeout(WAIT, tcp.read_exact(&mut byte))
                .await
                .expect("no answer to the upgrade")
                .unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        RawWs { tcp }
    }

    /// Sends one short masked text frame, as clients must.
    async fn send_text(&mut self, text: &str) {
        assert!(self.try_send_text(text).await, "write to the socket failed");
    }

    /// False when the server already closed the connection.
    async fn try_send_text(&mut self, text: &str) -> bool {
        use tokio::io::AsyncWriteExt;
        let payload = text.as_bytes();
        assert!(payload.len() < 126);
        let mask = [0x11u8, 0x22, 0x33, 0x44];
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend(mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        matches!(
            tokio::time::timeout(WAIT, self.tcp.write_all(&frame)).await,
            Ok(Ok(()))
        )
    }

    /// Everything the server sent until it ended the connection, as (opcode, payload) frames.
    async fn frames_until_closed(mut self) -> Vec<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        let mut bytes = Vec::new();
        tokio::time::timeout(WAIT, self.tcp.read_to_end(&mut bytes))
            .await
            .expect("the server did not end the connection")
            .unwrap();
        let mut frames = Vec::new();
        let mut at = 0;
        while at + 2 <= bytes.len() {
            let opcode = bytes[at] & 0x0f;
            let (len, header) = match bytes[at + 1] & 0x7f {
                126 => (
                    u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize,
                    4,
                ),
                127 => panic!("no frame here is that large"),
                n => (n as usize, 2),
            };
            frames.push((opcode, bytes[at + header..at + header + len].to_vec()));
            at += header + len;
        }
        frames
    }
}

fn close_code_of(frames: &[(u8, Vec<u8>)]) -> u16 {
    let (opcode, payload) = frames.last().expect("no frames");
    assert_eq!(*opcode, 0x8, "the last frame is a close frame: {frames:?}");
    u16::from_be_bytes([payload[0], payload[1]])
}

#[actix_web::test]
async fn a_silent_socket_is_closed_after_the_heartbeat_timeout() {
    let options = Options {
        heartbeat_interval_ms: 100,
        heartbeat_timeout_ms: 400,
        ..Options::default()
    };
    let hub = Hub::with("hub-heartbeat", options).await;
    let a = &hub.w.a;
    let mut silent = RawWs::connect(&hub.live, &a.token).await;
    silent.send_text(r#"{"v":1,"type":"hello"}"#).await;
    // The owner: the token's holder has no channel, so would see no conversation.
    let mut live = hub.owner_socket(a).await;
    live.hello(json!({})).await;
    let mute = RawWs::connect(&hub.live, &a.token).await;

    // The live console keeps talking; the silent one reads nothing and answers no ping.
    let until = tokio::time::Instant::now() + Duration::from_millis(1_200);
    while tokio::time::Instant::now() < until {
        let pong = live.request(json!({"v":1,"type":"ping"})).await;
        assert_eq!(pong["type"], "pong");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let frames = silent.frames_until_closed().await;
    let welcome: Value = serde_json::from_slice(&frames[0].1).unwrap();
    assert_eq!(welcome["type"], "welcome");
    assert!(
        frames.iter().any(|(op, _)| *op == 0x9),
        "the server pinged: {frames:?}"
    );
    assert_eq!(close_code_of(&frames), 4001);

    // Its hub session is gone too; events still reach the live console.
    let m = hub.inbound(a, "hb-1", "hb-chat", "after the timeout").await;
    live.event_where(|f| is_message_created_of(f, &m["message_id"]))
        .await;

    // A socket that never said hello was closed as well.
    let code = close_code_of(&mute.frames_until_closed().await);
    assert!(code == 4001 || code == 4002, "{code}");

    // Signing out revokes the session's socket at the next heartbeat.
    let session = hub.w.new_session(&a.owner).await;
    let cookie = format!("Cookie: {}={}", hub.w.cookie_name(), session.cookie);
    let mut revoked = RawWs::connect_with(&hub.live, &cookie).await;
    revoked.send_text(r#"{"v":1,"type":"hello"}"#).await;
    let out = hub
        .w
        .post(
            Who::Cookie(&session, a.owner.ip),
            "/api/v1/auth/logout",
            json!({}),
        )
        .await;
    out.assert_status(204);
    // Not silent meanwhile, so only the revocation can close it.
    for _ in 0..20 {
        if !revoked.try_send_text(r#"{"v":1,"type":"ping"}"#).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(close_code_of(&revoked.frames_until_closed().await), 4403);
}

#[actix_web::test]
async fn resuming_after_a_reconnect_misses_nothing_and_repeats_nothing() {
    let hub = Hub::start("hub-resume").await;
    let a = &hub.w.a;
    let mut ws = hub.owner_socket(a).await;
    ws.hello(json!({})).await;
    let mut seen: Vec<i64> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for i in 1..=2 {
        let m = hub
            .inbound(a, &format!("r-{i}"), "resume-chat", &format!("text {i}"))
            .await;
        let (e, _) = ws
            .event_where(|f| is_message_created_of(f, &m["message_id"]))
            .await;
        seen.push(e["seq"].as_i64().unwrap());
        texts.push(e["payload"]["text"].as_str().unwrap().to_string());
    }
    // Whatever else arrived (conversation updates) counts as seen too.
    while let Ok(f) = tokio::time::timeout(Duration::from_millis(300), ws.read()).await {
        if let Some(s) = f["seq"].as_i64() {
            seen.push(s);
        }
    }
    let cursor = *seen.iter().max().unwrap();
    drop(ws);

    // While nobody listens.
    for i in 3..=4 {
        hub.inbound(a, &format!("r-{i}"), "resume-chat", &format!("text {i}"))
            .await;
    }

    let mut ws = hub.owner_socket(a).await;
    let welcome = ws.hello(json!({ "resume_after": cursor })).await;
    let head = welcome["last_seq"].as_i64().unwrap();
    assert!(head > cursor);
    let live = hub.inbound(a, "r-5", "resume-chat", "text 5").await;
    let (last, replayed) = ws
        .event_where(|f| is_message_created_of(f, &live["message_id"]))
        .await;
    let mut after: Vec<i64> = replayed
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["seq"].as_i64().unwrap())
        .collect();
    after.push(last["seq"].as_i64().unwrap());
    assert!(
        after.iter().all(|s| *s > cursor),
        "nothing repeated: {after:?}"
    );
    assert!(after.windows(2).all(|p| p[0] < p[1]), "in order: {after:?}");
    let replayed_texts: Vec<&str> = replayed
        .iter()
        .filter(|f| f["kind"] == "message_created")
        .filter_map(|f| f["payload"]["text"].as_str())
        .collect();
    assert_eq!(replayed_texts, ["text 3", "text 4"], "nothing missed");

    // Every event the store holds after the cursor (all this client's) was delivered.
    let stored = hub
        .w
        .store
        .events_after(a.client.id, cursor, 1000)
        .await
        .unwrap();
    let stored: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(stored, after);
    drop(ws);

    // Once the log is pruned past a cursor, resuming from it could miss events: the console
    // is told to start afresh, and nothing is replayed.
    let future = chrono::Utc::now() + chrono::Duration::seconds(1);
    while hub.w.store.prune_events(future, 1000).await.unwrap() > 0 {}
    let mut ws = hub.owner_socket(a).await;
    let welcome = ws.hello(json!({ "resume_after": cursor })).await;
    assert_eq!(welcome["stale_cursor"], true, "{welcome}");
    let head = welcome["last_seq"].as_i64().unwrap();
    assert!(head >= *after.last().unwrap(), "{welcome}");
    let next = hub.inbound(a, "r-6", "resume-chat", "text 6").await;
    let (_, before_it) = ws
        .event_where(|f| is_message_created_of(f, &next["message_id"]))
        .await;
    assert!(
        before_it
            .iter()
            .all(|f| f["seq"].as_i64().is_none_or(|s| s > head)),
        "nothing replayed: {before_it:?}"
    );
}

#[actix_web::test]
async fn cookie_handshakes_must_come_from_our_origin() {
    let hub = Hub::start("hub-origin").await;
    let a = &hub.w.a;
    let own = format!("http://{}", hub.live.addr);
    for (origin, expected) in [
        (Some("https://omnihub.test"), None),
        (Some(own.as_str()), None),
        (Some("https://evil.example"), Some(403)),
        (Some("https://omnihub.test.evil.example"), Some(403)),
        (Some("null"), Some(403)),
        (None, Some(403)),
    ] {
        let got = Ws::connect(&hub.live, &hub.w, Auth::Cookie(&a.owner, origin))
            .await
            .err();
        assert_eq!(got, expected, "origin {origin:?}");
    }
    // Tokens are not sent by browsers on their own: no origin check.
    assert!(
        Ws::connect(
            &hub.live,
            &hub.w,
            Auth::Token(&a.token, Some("https://evil.example"))
        )
        .await
        .is_ok()
    );
    // Platform staff have no inbox; nobody without credentials gets in.
    let staff = Ws::connect(
        &hub.live,
        &hub.w,
        Auth::Cookie(&hub.w.platform_owner, Some("https://omnihub.test")),
    )
    .await
    .err();
    assert_eq!(staff, Some(403));
    let anon = Ws::connect(&hub.live, &hub.w, Auth::Token("omh_nope", None))
        .await
        .err();
    assert_eq!(anon, Some(401));
    // A plain GET is not an upgrade.
    let r = hub
        .http
        .get(hub.live.url("/api/v1/ws"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_parameter");
}

#[actix_web::test]
async fn bad_webhook_credentials_are_401_and_store_nothing() {
    let hub = Hub::start("hub-signature").await;
    let (a, b) = (&hub.w.a, &hub.w.b);
    // A channel of another provider holding an inbound token is still not an API channel.
    let telegram = hub
        .w
        .store
        .create_channel(&NewChannel {
            client_id: a.client.id,
            kind: ChannelKind::Messaging,
            provider: Provider::Telegram,
            name: "alpha telegram".into(),
            settings: json!({}),
            credentials: Some(json!({ "inbound_token": inbound_token("tg") })),
        })
        .await
        .unwrap();
    let head = hub.w.store.last_event_seq().await.unwrap();
    let body = inbound_body("sig-1", "sig-chat", "forged");
    let missing = uuid::Uuid::now_v7().to_string();
    let cases: Vec<(String, Option<String>)> = vec![
        (a.channel.id.to_string(), None),
        (a.channel.id.to_string(), Some("wrong".into())),
        (a.channel.id.to_string(), Some(inbound_token(&b.tag))),
        (a.channel.id.to_string(), Some(inbound_token(&a.tag) + "x")),
        (a.channel.id.to_string(), Some(a.token.clone())),
        (missing, Some(inbound_token(&a.tag))),
        ("not-a-uuid".into(), Some(inbound_token(&a.tag))),
        (telegram.id.to_string(), Some(inbound_token("tg"))),
    ];
    let mut messages = HashSet::new();
    for (channel, token) in &cases {
        let (status, answer) = hub.hook(channel, token.as_deref(), &body).await;
        assert_eq!(status, 401, "{channel} {token:?}: {answer}");
        assert_eq!(answer["code"], "invalid_signature", "{answer}");
        messages.insert(answer["message"].as_str().unwrap().to_string());
    }
    assert_eq!(
        messages.len(),
        1,
        "every refusal reads the same: {messages:?}"
    );
    // A status with a bad token changes nothing either.
    let (status, _) = hub
        .hook(
            a.channel.id,
            Some("wrong"),
            &json!({"type":"status","message_id":"prov-1","status":"read"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        hub.w.store.last_event_seq().await.unwrap(),
        head,
        "no event"
    );
    for t in [a, b] {
        let convs = hub
            .w
            .store
            .list_conversations(
                t.client.id,
                Some(t.owner.user.id),
                &ConversationFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(convs.is_empty(), "nothing stored for {}", t.tag);
    }

    // GET is not served; bad bodies with a good token are 400 and store nothing.
    let r = hub
        .http
        .get(hub.live.url(&format!("/hooks/api/{}", a.channel.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "method_not_allowed");
    let token = inbound_token(&a.tag);
    for bad in [
        json!({"event_id":"x","conversation":"c","user":{"id":"u","name":"n"},"text":"t","extra":1}),
        json!({"event_id":"","conversation":"c","user":{"id":"u","name":"n"},"text":"t"}),
        json!({"event_id":"x","conversation":"c","user":{"id":"u","name":"n"},"text":""}),
        json!({"event_id":"x".repeat(201),"conversation":"c","user":{"id":"u","name":"n"},"text":"t"}),
        json!({"type":"status","message_id":"m","status":"lost"}),
        json!({"type":"teleport"}),
        json!([1, 2]),
    ] {
        let (status, answer) = hub.hook(a.channel.id, Some(&token), &bad).await;
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    let (status, answer) = hub
        .hook(
            a.channel.id,
            Some(&token),
            &json!({"type":"status","message_id":"never-sent","status":"read"}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        hub.w.store.last_event_seq().await.unwrap(),
        head,
        "no event"
    );
}

#[actix_web::test]
async fn protocol_errors_are_answered_and_oversized_frames_close() {
    let hub = Hub::start("hub-protocol").await;
    let a = &hub.w.a;
    let mut ws = Ws::connect(&hub.live, &hub.w, Auth::Token(&a.token, None))
        .await
        .unwrap();
    // Before hello only ping and hello work.
    let ack = ws
        .request(json!({"v":1,"type":"subscribe","views":["all"]}))
        .await;
    assert_eq!(ack_code(&ack), "hello_required");
    let pong = ws.request(json!({"v":1,"type":"ping"})).await;
    assert_eq!(pong["type"], "pong");
    ws.hello(json!({})).await;
    let ack = ws.request(json!({"v":1,"type":"hello"})).await;
    assert_eq!(ack_code(&ack), "hello_repeated");

    ws.send_raw("{not json".into()).await;
    let ack = ws.read().await;
    assert_eq!(ack["ref"], Value::Null);
    assert_eq!(ack_code(&ack), "invalid_message", "{ack}");
    for (bad, code) in [
        (json!({"v":1,"type":"teleport"}), "invalid_message"),
        (json!({"v":1,"type":"ping","extra":true}), "invalid_message"),
        (json!({"v":1,"type":"typing"}), "invalid_message"),
        (json!({"v":2,"type":"ping"}), "unsupported_version"),
        (
            json!({"v":1,"type":"subscribe","views":["everything"]}),
            "invalid_message",
        ),
        (
            json!({"v":1,"type":"subscribe","views":[]}),
            "validation_failed",
        ),
        (
            json!({"v":1,"type":"reply","conversation_id":ConversationId::new(),"text":"","idempotency_key":"k"}),
            "validation_failed",
        ),
        (
            json!({"v":1,"type":"reply","conversation_id":ConversationId::new(),"text":"hi","idempotency_key":"k"}),
            "not_found",
        ),
    ] {
        let ack = ws.request(bad.clone()).await;
        assert_eq!(ack["type"], "ack", "{bad}");
        assert_eq!(ack_code(&ack), code, "{bad}: {ack}");
    }
    ws.stream
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(ack_code(&ws.read().await), "invalid_message");
    // Still open after all of that.
    assert_eq!(
        ws.request(json!({"v":1,"type":"ping"})).await["type"],
        "pong"
    );

    // Exactly 64 KiB passes (and is refused as JSON); one byte more closes with 1009.
    ws.send_raw(" ".repeat(64 * 1024)).await;
    assert_eq!(ack_code(&ws.read().await), "invalid_message");
    ws.send_raw(" ".repeat(64 * 1024 + 1)).await;
    assert_eq!(ws.close_code().await, 1009);
}

/// The REST inbox: lists by view, visibility of a restricted operator, take and supervisor
/// reassignment, status and snooze rules, tags, notes, read marks, search, quick replies.
#[actix_web::test]
async fn rest_inbox_views_assignment_and_visibility() {
    let hub = Hub::start("hub-rest").await;
    let w = &hub.w;
    let a = &w.a;
    let m = hub
        .inbound(a, "rest-1", "rest-chat", "Need help with invoice")
        .await;
    let conversation = hub.conversation_of(a, &m).await;
    let c = format!("/api/v1/conversations/{conversation}");

    // The owner sees it everywhere it belongs.
    let owner = a.owner.who();
    for (view, present) in [("all", true), ("unassigned", true), ("mine", false)] {
        let r = w
            .get(owner, &format!("/api/v1/conversations?view={view}"))
            .await;
        r.assert_status(200);
        let n = r.json()["items"].as_array().unwrap().len();
        assert_eq!(n == 1, present, "{view}: {}", r.text());
    }
    w.get(owner, &c).await.assert_status(200);
    let r = w.get(owner, &format!("{c}/messages")).await;
    assert_eq!(r.json()["items"][0]["text"], "Need help with invoice");
    w.get(owner, "/api/v1/conversations?view=bogus")
        .await
        .assert_error(400, "invalid_parameter");
    w.get(
        owner,
        &format!("/api/v1/conversations?view=group:{}", w.b.group.id),
    )
    .await
    .assert_error(404, "not_found");

    // An operator without the channel sees nothing; with READ + REPLY, the unassigned pool.
    let plain = &a.plain;
    w.get(plain.who(), &c).await.assert_error(404, "not_found");
    let r = w.get(plain.who(), "/api/v1/conversations").await;
    assert_eq!(r.json()["items"], json!([]));
    w.store
        .set_channel_grants(
            a.client.id,
            plain.user.id,
            &[omnihub_core::model::ChannelGrant {
                channel_id: a.channel.id,
                rights: ChannelRights::READ | ChannelRights::REPLY,
            }],
        )
        .await
        .unwrap();
    w.state.auth_cache.invalidate_user(plain.user.id);
    let r = w.get(plain.who(), "/api/v1/conversations").await;
    assert_eq!(
        r.json()["items"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );

    // Operators take for themselves only; then cannot hand it on. Supervisors reassign.
    let manager = a.manager.user.id;
    w.patch(plain.who(), &c, json!({ "assignee_id": manager }))
        .await
        .assert_error(403, "forbidden");
    let r = w
        .patch(plain.who(), &c, json!({ "assignee_id": plain.user.id }))
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["assignee_id"], json!(plain.user.id));
    w.patch(plain.who(), &c, json!({ "assignee_id": null }))
        .await
        .assert_error(403, "forbidden");
    let r = w.get(plain.who(), "/api/v1/conversations?view=mine").await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    // The manager has no channel: assigning to them would hide the conversation from them.
    w.patch(owner, &c, json!({ "assignee_id": manager }))
        .await
        .assert_error(400, "validation_failed");
    w.patch(owner, &c, json!({ "assignee_id": a.owner.user.id }))
        .await
        .assert_status(200);
    // Now assigned to someone else and in no group of theirs: gone for the operator.
    w.get(plain.who(), &c).await.assert_error(404, "not_found");
    w.patch(owner, &c, json!({ "group_id": a.group.id }))
        .await
        .assert_status(200);
    w.patch(owner, &c, json!({ "group_id": w.b.group.id }))
        .await
        .assert_error(404, "not_found");

    // Status and snooze rules.
    w.patch(owner, &c, json!({ "status": "snoozed" }))
        .await
        .assert_error(400, "validation_failed");
    w.patch(
        owner,
        &c,
        json!({ "status": "snoozed", "snoozed_until": "2001-01-01T00:00:00Z" }),
    )
    .await
    .assert_error(400, "validation_failed");
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let r = w
        .patch(
            owner,
            &c,
            json!({ "status": "snoozed", "snoozed_until": until }),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["status"], "snoozed");
    w.patch(owner, &c, json!({}))
        .await
        .assert_error(400, "validation_failed");
    w.patch(owner, &c, json!({ "status": "open", "owner": 1 }))
        .await
        .assert_error(400, "invalid_json");

    // Tags, notes, replies with the header key, read marks, search.
    let r = w.put(owner, &format!("{c}/tags/vip"), json!(null)).await;
    r.assert_status(200);
    assert_eq!(r.json()["tags"], json!(["vip"]));
    let r = w.get(owner, "/api/v1/conversations?tag=vip").await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    w.delete(owner, &format!("{c}/tags/vip"))
        .await
        .assert_status(204);
    let r = w
        .post(
            owner,
            &format!("{c}/notes"),
            json!({ "text": "call them", "idempotency_key": "n1" }),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["kind"], "note");
    w.post(owner, &format!("{c}/messages"), json!({ "text": "no key" }))
        .await
        .assert_error(400, "validation_failed");
    let req = w
        .request(
            owner,
            actix_web::http::Method::POST,
            &format!("{c}/messages"),
        )
        .insert_header(("Idempotency-Key", "h1"))
        .set_json(json!({ "text": "Here is your invoice" }));
    let first = w.send(req).await;
    first.assert_status(201);
    let req = w
        .request(
            owner,
            actix_web::http::Method::POST,
            &format!("{c}/messages"),
        )
        .insert_header(("Idempotency-Key", "h1"))
        .set_json(json!({ "text": "Here is your invoice" }));
    assert_eq!(
        w.send(req).await.json()["id"],
        first.json()["id"],
        "idempotent"
    );
    w.post(
        owner,
        &format!("{c}/read"),
        json!({ "message_id": m["message_id"] }),
    )
    .await
    .assert_status(204);
    let r = w.get(owner, "/api/v1/search?q=invoice").await;
    r.assert_status(200);
    assert!(
        r.json()["items"].as_array().unwrap().len() >= 2,
        "{}",
        r.text()
    );
    let r = w.get(w.b.owner.who(), "/api/v1/search?q=invoice").await;
    assert_eq!(r.json()["items"], json!([]), "other client");

    // Quick replies fill in their variables for a visible conversation.
    let r = w
        .post(
            owner,
            "/api/v1/quick-replies",
            json!({ "title": "hello", "text": "Hi {{contact.name}}, {{operator.name}} of {{client.name}} (#{{conversation.request_no}})" }),
        )
        .await;
    r.assert_status(201);
    let qr = r.json()["id"].as_str().unwrap().to_string();
    let r = w
        .post(
            owner,
            &format!("/api/v1/quick-replies/{qr}/render"),
            json!({ "conversation_id": conversation }),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.json()["text"],
        "Hi Customer Carol, Alpha Owner of Alpha Trading (#1)"
    );
    w.post(
        owner,
        "/api/v1/quick-replies",
        json!({ "title": "x", "text": "{{nope}}" }),
    )
    .await
    .assert_error(400, "validation_failed");
    w.post(
        w.b.owner.who(),
        &format!("/api/v1/quick-replies/{qr}/render"),
        json!({ "conversation_id": conversation }),
    )
    .await
    .assert_error(404, "not_found");

    // Every change above is in the audit log.
    let actions = w.audit_actions(owner).await;
    for action in [
        "conversation.update",
        "conversation.tag_add",
        "conversation.tag_remove",
        "conversation.note",
        "conversation.reply",
        "conversation.read",
        "quick_reply.create",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[actix_web::test]
async fn a_triggered_notification_reaches_the_named_employees_console_only() {
    let hub = Hub::start("hub-notification").await;
    let a = &hub.w.a;
    hub.w
        .store
        .create_trigger(
            a.client.id,
            &omnihub_store::NewTrigger {
                name: "sale questions".into(),
                profile_id: None,
                condition: omnihub_core::triggers::TriggerCondition::Hashtag {
                    hashtag: "#sale".into(),
                },
                action: omnihub_core::triggers::TriggerAction::Notify {
                    user_id: a.plain.user.id,
                },
                enabled: true,
            },
        )
        .await
        .unwrap();
    let mut employee = Ws::connect(
        &hub.live,
        &hub.w,
        Auth::Cookie(&a.plain, Some("https://omnihub.test")),
    )
    .await
    .unwrap();
    employee.hello(json!({})).await;
    let mut owner = hub.owner_socket(a).await;
    owner.hello(json!({})).await;

    let item = omnihub_core::triggers::SocialItem {
        client_id: a.client.id,
        profile_id: uuid::Uuid::now_v7(),
        network: "vk".into(),
        kind: omnihub_core::triggers::ItemKind::Comment,
        remote_id: "9001".into(),
        parent_remote_id: Some("9000".into()),
        author_id: "31".into(),
        author_name: "Olga".into(),
        text: "Is the #SALE still on?".into(),
        created_at: chrono::Utc::now(),
    };
    hub.w.state.hub.social_item_arrived(&item).await.unwrap();
    let (event, _) = employee.event_where(|f| f["kind"] == "notification").await;
    assert_eq!(event["payload"]["user_id"], json!(a.plain.user.id));
    assert_eq!(event["payload"]["payload"]["item"]["text"], item.text);

    // The owner's console gets what comes next, and never the employee's notification.
    let answer = hub.inbound(a, "evt-after", "chat-after", "Hello").await;
    let message_id = answer["message_id"].clone();
    let (_, skipped) = owner
        .event_where(|f| is_message_created_of(f, &message_id))
        .await;
    assert!(
        skipped.iter().all(|f| f["kind"] != "notification"),
        "{skipped:?}"
    );
}
