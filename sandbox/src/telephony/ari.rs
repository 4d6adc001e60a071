//! A fake Asterisk REST Interface: `POST /ari/channels` (originate) and the application event
//! WebSocket `GET /ari/events?app=NAME`, both behind HTTP Basic (`ari.conf` user and
//! password). The originate's query parameters are checked against `channels.json` (known names,
//! the required `endpoint`, data types, `extension` or `app`), a taken `channelId` answers 409
//! as Asterisk does. The call then plays as events to every socket of the application:
//! `ChannelStateChange` (the first leg up), `Dial` of the visitor (`dialstatus` empty, then the
//! scripted one) and `ChannelDestroyed` of our channel, stamped with ARI's `Date` format.
//! `GET /ari/channels/{channelId}` answers a channel that is up (one a test put there with
//! [`AriSandbox::hold_channel`], as if a call were going on) and 404 for any other, as a PBX
//! answers for a channel that is gone.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::{Script, Scripted, ari_originate_parameters};
use crate::support::Violations;

pub struct AriConfig {
    pub username: String,
    pub password: String,
}

impl Default for AriConfig {
    fn default() -> Self {
        AriConfig {
            username: "omnihub".into(),
            password: "ari-secret-7".into(),
        }
    }
}

struct State {
    config: AriConfig,
    script: Script,
    violations: Violations,
    channels: Mutex<HashSet<String>>,
    /// Channels up now.
    live: Mutex<HashSet<String>>,
    originated: Mutex<Vec<Vec<(String, String)>>>,
    sockets: Mutex<Vec<(String, UnboundedSender<String>)>>,
    played: Mutex<Vec<Value>>,
}

pub struct AriSandbox {
    addr: SocketAddr,
    handle: ServerHandle,
    state: Arc<State>,
}

impl AriSandbox {
    pub async fn start(config: AriConfig) -> std::io::Result<AriSandbox> {
        let state = Arc::new(State {
            config,
            script: Script::new(),
            violations: Violations::default(),
            channels: Mutex::new(HashSet::new()),
            live: Mutex::new(HashSet::new()),
            originated: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            played: Mutex::new(Vec::new()),
        });
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/ari/channels", web::post().to(originate))
                .route("/ari/channels/{channel_id}", web::get().to(get_channel))
                .route("/ari/events", web::get().to(events))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        // A plain tokio task: the demo starts the fake outside an actix system.
        tokio::spawn(server);
        Ok(AriSandbox {
            addr,
            handle,
            state,
        })
    }

    /// `http://127.0.0.1:PORT`, the `ari_url` of a channel.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, next: Scripted) {
        self.state.script.set(next);
    }

    /// The accepted originates' query parameters, in order.
    pub fn originated(&self) -> Vec<Vec<(String, String)>> {
        self.state
            .originated
            .lock()
            .map(|o| o.clone())
            .unwrap_or_default()
    }

    /// Every event played, in order.
    pub fn played(&self) -> Vec<Value> {
        self.state
            .played
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// A channel that is up on the PBX, as during a call nobody follows any more.
    pub fn hold_channel(&self, id: &str) {
        if let Ok(mut live) = self.state.live.lock() {
            live.insert(id.to_string());
        }
    }

    /// Requests that broke ARI's Swagger.
    pub fn violations(&self) -> Vec<String> {
        self.state.violations.all()
    }
}

impl Drop for AriSandbox {
    fn drop(&mut self) {
        // Stopping is asynchronous; the server's task ends on its own once stopped.
        drop(self.handle.stop(false));
    }
}

fn authorized(state: &State, req: &HttpRequest) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            state.config.username, state.config.password
        ))
    );
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((
            "WWW-Authenticate",
            "Basic realm=\"Asterisk REST Interface\"",
        ))
        .json(json!({"error": "Authentication required"}))
}

async fn events(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<Arc<State>>,
) -> actix_web::Result<HttpResponse> {
    if !authorized(&state, &req) {
        return Ok(unauthorized());
    }
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let Some(app) = query
        .iter()
        .find(|(k, _)| k == "app")
        .map(|(_, v)| v.clone())
    else {
        return Ok(HttpResponse::BadRequest().json(json!({"error": "app parameter is required"})));
    };
    let (response, mut session, mut stream) = actix_ws::handle(&req, body)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    if let Ok(mut sockets) = state.sockets.lock() {
        sockets.push((app, tx));
    }
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(text) => if session.text(text).await.is_err() { break },
                    None => break,
                },
                frame = stream.next() => match frame {
                    Some(Ok(actix_ws::Message::Ping(p))) => { let _ = session.pong(&p).await; }
                    Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

/// `GET /channels/{channelId}` (`channels.json`: 200 with the `Channel`, 404 when it does not
/// exist).
async fn get_channel(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<Arc<State>>,
) -> HttpResponse {
    if !authorized(&state, &req) {
        return unauthorized();
    }
    if !req.query_string().is_empty() {
        state.violations.record(format!(
            "GET /ari/channels/{{channelId}}: unexpected query `{}`",
            req.query_string()
        ));
    }
    let id = path.into_inner();
    let up = state
        .live
        .lock()
        .map(|live| live.contains(&id))
        .unwrap_or(false);
    if !up {
        return HttpResponse::NotFound().json(json!({"message": "Channel not found"}));
    }
    HttpResponse::Ok().json(json!({
        "id": id, "protocol_id": "", "name": "PJSIP/100-00000001", "state": "Up",
        "caller": {"name": "", "number": ""}, "connected": {"name": "", "number": ""},
        "accountcode": "", "language": "en", "creationtime": stamp(Utc::now()),
        "dialplan": {"context": "from-internal", "exten": "", "priority": 1, "app_name": "Dial", "app_data": ""},
    }))
}

async fn originate(req: HttpRequest, state: web::Data<Arc<State>>) -> HttpResponse {
    if !authorized(&state, &req) {
        return unauthorized();
    }
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let spec = ari_originate_parameters();
    let mut problems = Vec::new();
    for (name, value) in &params {
        match spec.iter().find(|(n, _, _)| n == name) {
            None => problems.push(format!("unknown parameter `{name}`")),
            Some((_, _, kind))
                if (kind == "long" || kind == "int") && value.parse::<i64>().is_err() =>
            {
                problems.push(format!("`{name}` is not an {kind}: `{value}`"))
            }
            Some(_) => {}
        }
    }
    for (name, required, _) in &spec {
        if *required && !params.iter().any(|(n, _)| n == name) {
            problems.push(format!("missing required `{name}`"));
        }
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("extension").is_none() && get("app").is_none() {
        problems.push("neither `extension` nor `app`".into());
    }
    if !problems.is_empty() {
        for p in &problems {
            state.violations.record(format!("POST /ari/channels: {p}"));
        }
        return HttpResponse::BadRequest()
            .json(json!({"message": "Invalid parameters for originating a channel."}));
    }
    let id = get("channelId").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let fresh = state
        .channels
        .lock()
        .map(|mut c| c.insert(id.clone()))
        .unwrap_or(false);
    if !fresh {
        return HttpResponse::Conflict()
            .json(json!({"message": "Channel with given unique ID already exists."}));
    }
    if let Ok(mut o) = state.originated.lock() {
        o.push(params.clone());
    }
    let endpoint = get("endpoint").unwrap_or_default();
    let visitor = get("extension").unwrap_or_default();
    let start = Utc::now();
    let channel = |id: &str, name: &str, state_name: &str| {
        json!({
            "id": id, "protocol_id": "", "name": name, "state": state_name,
            "caller": {"name": "", "number": ""}, "connected": {"name": "", "number": ""},
            "accountcode": "", "language": "en", "creationtime": stamp(start),
            "dialplan": {"context": get("context").unwrap_or_default(), "exten": visitor, "priority": 1, "app_name": "", "app_data": ""},
        })
    };
    let ours = channel(&id, &format!("{endpoint}-00000001"), "Down");
    // The visitor leg gets its own channel; the fake names it after ours.
    let peer_id = format!("{id}-peer");
    let peer = channel(&peer_id, &format!("PJSIP/trunk-{visitor}"), "Ring");
    let script = state.script.get();
    let mut events = Vec::new();
    let mut at = start + Duration::seconds(2);
    let mut up = ours.clone();
    up["state"] = json!("Up");
    events.push(json!({"type": "ChannelStateChange", "channel": up, "timestamp": stamp(at)}));
    at += Duration::seconds(1);
    events.push(json!({"type": "Dial", "caller": up, "peer": peer, "dialstring": format!("trunk/{visitor}"), "dialstatus": "", "timestamp": stamp(at)}));
    at += Duration::seconds(4);
    let (dialstatus, cause, cause_txt) = match script {
        Scripted::Answered { .. } => ("ANSWER", 16, "Normal Clearing"),
        Scripted::NoAnswer => ("NOANSWER", 16, "Normal Clearing"),
        Scripted::Busy => ("BUSY", 16, "Normal Clearing"),
        Scripted::Failed => ("CONGESTION", 34, "Circuit/channel congestion"),
    };
    events.push(json!({"type": "Dial", "caller": up, "peer": peer, "dialstring": format!("trunk/{visitor}"), "dialstatus": dialstatus, "timestamp": stamp(at)}));
    if let Scripted::Answered { duration_secs } = script {
        at += Duration::seconds(i64::from(duration_secs));
    }
    events.push(json!({"type": "ChannelDestroyed", "cause": cause, "cause_txt": cause_txt, "channel": up, "timestamp": stamp(at)}));
    let sockets: Vec<(String, UnboundedSender<String>)> =
        state.sockets.lock().map(|s| s.clone()).unwrap_or_default();
    for mut event in events {
        // Every socket of every application gets the event (`subscribeAll`).
        for (app, tx) in &sockets {
            event["application"] = json!(app);
            event["asterisk_id"] = json!("08:00:27:00:00:01");
            let _ = tx.send(event.to_string());
        }
        if let Ok(mut p) = state.played.lock() {
            p.push(event);
        }
    }
    HttpResponse::Ok().json(ours)
}

/// ARI's `Date`: `2026-11-27T18:00:00.000+0000`.
fn stamp(at: chrono::DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}
