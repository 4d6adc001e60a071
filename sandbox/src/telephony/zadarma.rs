//! A fake Zadarma API: `GET /v1/request/callback/` (the spec's path, with or without the
//! trailing slash Zadarma's libraries use). The `Authorization: key:signature` header is
//! recomputed from the received parameters sorted by name,
//! `base64(hex(HMAC-SHA1(secret, path + query + md5hex(query))))`; parameters are checked
//! against the callback operation of Zadarma's OpenAPI (known names, required `from` and `to`,
//! their patterns). An accepted callback answers `{status, from, to, time}` and, when a
//! notification URL is set (Zadarma's "notifications" panel), posts `NOTIFY_OUT_START` then
//! `NOTIFY_OUT_END` for the visitor's leg as forms with a `Signature` header. Each call is
//! also kept for `GET /v1/statistics/` (same signature; `start` and `end` required in the
//! spec's format, other parameters checked against its list), which answers the visitor legs
//! that started within the period with their `disposition` and `billseconds`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha1::Sha1;

use super::{Script, Scripted, hex, specs};
use crate::support::Violations;
use crate::webhook_delivery::{Caller, Delivery};

pub struct ZadarmaConfig {
    pub user_key: String,
    pub secret: String,
}

impl Default for ZadarmaConfig {
    fn default() -> Self {
        ZadarmaConfig {
            user_key: "b3f0c2d1e4a5968778695a4b3c2d1e0f".into(),
            secret: "5a4b3c2d1e0fb3f0c2d1".into(),
        }
    }
}

struct State {
    config: ZadarmaConfig,
    script: Script,
    violations: Violations,
    notify_url: Mutex<Option<String>>,
    callbacks: Mutex<Vec<Vec<(String, String)>>>,
    /// The call records `GET /v1/statistics/` answers from.
    stats: Mutex<Vec<Value>>,
    deliveries: Mutex<Vec<Delivery>>,
    caller: Caller,
}

pub struct ZadarmaSandbox {
    addr: SocketAddr,
    handle: ServerHandle,
    state: Arc<State>,
}

/// `base64(hex(HMAC-SHA1(secret, text)))`.
pub fn zadarma_sign(secret: &str, text: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hex(&mac.finalize().into_bytes()))
}

impl ZadarmaSandbox {
    pub async fn start(config: ZadarmaConfig) -> std::io::Result<ZadarmaSandbox> {
        let state = Arc::new(State {
            config,
            script: Script::new(),
            violations: Violations::default(),
            notify_url: Mutex::new(None),
            callbacks: Mutex::new(Vec::new()),
            stats: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            caller: Caller::new(),
        });
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/request/callback/", web::get().to(callback))
                .route("/v1/request/callback", web::get().to(callback))
                .route("/v1/statistics/", web::get().to(statistics))
                .route("/v1/statistics", web::get().to(statistics))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Ok(ZadarmaSandbox {
            addr,
            handle,
            state,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where call notifications go (the panel's setting).
    pub fn set_notify_url(&self, url: &str) {
        if let Ok(mut u) = self.state.notify_url.lock() {
            *u = Some(url.to_string());
        }
    }

    pub fn script(&self, next: Scripted) {
        self.state.script.set(next);
    }

    pub fn callbacks(&self) -> Vec<Vec<(String, String)>> {
        self.state
            .callbacks
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state
            .deliveries
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.violations.all()
    }

    /// Posts a recorded notification again, byte for byte (Zadarma's retry).
    pub async fn redeliver(&self, delivery: &Delivery) -> Delivery {
        self.state.caller.redeliver(delivery).await
    }

    /// Posts a notification form to the notification URL, signed with `secret` (the fake's own
    /// for a real one, another for a forgery).
    pub async fn notify(&self, fields: &[(&str, String)], secret: &str) -> Delivery {
        notify(&self.state, fields, secret).await
    }

    /// The URL check Zadarma makes when the notification URL is saved.
    pub async fn echo_check(&self, url: &str, value: &str) -> (Option<u16>, String) {
        self.state.caller.get(url, &[("zd_echo", value)]).await
    }
}

impl Drop for ZadarmaSandbox {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

async fn notify(state: &State, fields: &[(&str, String)], secret: &str) -> Delivery {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let signed = format!(
        "{}{}{}",
        get("internal"),
        get("destination"),
        get("call_start")
    );
    let body = serde_urlencoded::to_string(fields)
        .unwrap_or_default()
        .into_bytes();
    let url = state
        .notify_url
        .lock()
        .ok()
        .and_then(|u| u.clone())
        .unwrap_or_default();
    let delivery = state
        .caller
        .post(
            &url,
            body,
            vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("Signature".into(), zadarma_sign(secret, &signed)),
            ],
        )
        .await;
    if let Ok(mut d) = state.deliveries.lock() {
        d.push(delivery.clone());
    }
    delivery
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .json(json!({"status": "error", "message": message}))
}

/// Whether the `Authorization` header signs these parameters: the signature covers them
/// sorted, under the path the client called.
fn signed(req: &HttpRequest, state: &State, params: &[(String, String)]) -> bool {
    let mut sorted = params.to_vec();
    sorted.sort();
    let query = serde_urlencoded::to_string(&sorted).unwrap_or_default();
    let md5 = hex(&Md5::digest(query.as_bytes()));
    let expected = format!(
        "{}:{}",
        state.config.user_key,
        zadarma_sign(&state.config.secret, &format!("{}{query}{md5}", req.path()))
    );
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    given == expected
}

/// The statistics' date format, `YYYY-MM-DD HH:MM:SS`.
const STAT_TIME: &str = "%Y-%m-%d %H:%M:%S";

async fn statistics(req: HttpRequest, state: web::Data<Arc<State>>) -> HttpResponse {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    if !signed(&req, &state, &params) {
        return error(401, "Not authorized");
    }
    let spec: Value = serde_json::from_str(specs::ZADARMA).unwrap_or_default();
    let schema = &spec["statistics"]["get"]["parameters"][0]["schema"];
    let mut problems = Vec::new();
    for (name, _) in &params {
        if schema["properties"].get(name).is_none() {
            problems.push(format!("unknown parameter `{name}`"));
        }
    }
    let time = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| chrono::NaiveDateTime::parse_from_str(v, STAT_TIME).ok())
    };
    for name in schema["required"].as_array().into_iter().flatten() {
        if let Some(name) = name.as_str()
            && time(name).is_none()
        {
            problems.push(format!("`{name}` missing or not YYYY-MM-DD HH:MM:SS"));
        }
    }
    let (Some(start), Some(end)) = (time("start"), time("end")) else {
        problems.push("no period".into());
        for p in &problems {
            state.violations.record(format!("GET /v1/statistics: {p}"));
        }
        return error(400, &problems.join("; "));
    };
    if !problems.is_empty() {
        for p in &problems {
            state.violations.record(format!("GET /v1/statistics: {p}"));
        }
        return error(400, &problems.join("; "));
    }
    let stats: Vec<Value> = state
        .stats
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r["callstart"]
                .as_str()
                .and_then(|c| chrono::NaiveDateTime::parse_from_str(c, STAT_TIME).ok())
                .is_some_and(|c| start <= c && c <= end)
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "status": "success",
        "start": start.format(STAT_TIME).to_string(),
        "end": end.format(STAT_TIME).to_string(),
        "stats": stats,
    }))
}

async fn callback(req: HttpRequest, state: web::Data<Arc<State>>) -> HttpResponse {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    if !signed(&req, &state, &params) {
        return error(401, "Not authorized");
    }
    let spec: Value = serde_json::from_str(specs::ZADARMA).unwrap_or_default();
    let schema = &spec["item"]["get"]["parameters"][0]["schema"];
    let mut problems = Vec::new();
    for (name, value) in &params {
        match schema["properties"].get(name) {
            None => problems.push(format!("unknown parameter `{name}`")),
            Some(p) => {
                if let Some(pattern) = p["pattern"].as_str()
                    && !matches_pattern(pattern, value)
                {
                    problems.push(format!("`{name}` = `{value}` does not match {pattern}"));
                }
            }
        }
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        if let Some(name) = name.as_str()
            && !params.iter().any(|(n, _)| n == name)
        {
            problems.push(format!("missing required `{name}`"));
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            state
                .violations
                .record(format!("GET /v1/request/callback: {p}"));
        }
        return error(400, &problems.join("; "));
    }
    if let Ok(mut c) = state.callbacks.lock() {
        c.push(params.clone());
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (from, to) = (get("from"), get("to"));
    let now = chrono::Utc::now();
    let script = state.script.get();
    let (disposition, billseconds) = match script {
        Scripted::Answered { duration_secs } => ("answered", duration_secs),
        Scripted::NoAnswer => ("no answer", 0),
        Scripted::Busy => ("busy", 0),
        Scripted::Failed => ("call failed", 0),
    };
    if let Ok(mut stats) = state.stats.lock() {
        let id = 155_000_000 + stats.len();
        stats.push(json!({
            "id": id.to_string(), "sip": "00001", "callstart": now.format(STAT_TIME).to_string(),
            "from": from, "to": to, "description": "", "disposition": disposition,
            "billseconds": billseconds, "cost": 0.0, "billcost": 0.0, "currency": "USD",
        }));
    }
    let shared = state.get_ref().clone();
    let (from_leg, to_leg) = (from.clone(), to.clone());
    actix_web::rt::spawn(async move {
        let call_start = now.format("%Y-%m-%d %H:%M:%S").to_string();
        let pbx_call_id = format!("out_{}", hex(&uuid::Uuid::new_v4().into_bytes()[..10]));
        let internal = if from_leg.len() <= 5 {
            from_leg.clone()
        } else {
            String::new()
        };
        let base = vec![
            ("call_start", call_start),
            ("pbx_call_id", pbx_call_id),
            ("destination", to_leg),
            ("internal", internal),
        ];
        let mut start = vec![("event", "NOTIFY_OUT_START".to_string())];
        start.extend(base.iter().cloned());
        let secret = shared.config.secret.clone();
        if shared
            .notify_url
            .lock()
            .ok()
            .and_then(|u| u.clone())
            .is_none()
        {
            return;
        }
        notify(&shared, &start, &secret).await;
        let (disposition, duration, code) = match script {
            Scripted::Answered { duration_secs } => ("answered", duration_secs, "16"),
            Scripted::NoAnswer => ("no answer", 0, "19"),
            Scripted::Busy => ("busy", 0, "17"),
            Scripted::Failed => ("failed", 0, "34"),
        };
        let mut end = vec![("event", "NOTIFY_OUT_END".to_string())];
        end.extend(base);
        end.extend([
            ("duration", duration.to_string()),
            ("disposition", disposition.to_string()),
            ("status_code", code.to_string()),
            ("is_recorded", "0".to_string()),
            ("call_id_with_rec", String::new()),
        ]);
        notify(&shared, &end, &secret).await;
    });
    HttpResponse::Ok()
        .json(json!({"status": "success", "from": from, "to": to, "time": now.timestamp()}))
}

/// The spec's patterns are simple alternations of digit runs: `^(\+?[0-9]{7,15}|[0-9]{3,5})$`
/// and the like. This reads exactly that form (the sandbox has no regex engine).
fn matches_pattern(pattern: &str, value: &str) -> bool {
    let inner = pattern.trim_start_matches("^(").trim_end_matches(")$");
    inner.split('|').any(|alt| {
        let (plus_allowed, rest) = match alt.strip_prefix("\\+?") {
            Some(rest) => (true, rest),
            None => (false, alt),
        };
        let Some(counts) = rest
            .strip_prefix("[0-9]{")
            .and_then(|r| r.strip_suffix('}'))
        else {
            return false;
        };
        let (min, max) = match counts.split_once(',') {
            Some((a, b)) => (a.parse().unwrap_or(0), b.parse().unwrap_or(0)),
            None => {
                let n = counts.parse().unwrap_or(0);
                (n, n)
            }
        };
        let digits = if plus_allowed {
            value.strip_prefix('+').unwrap_or(value)
        } else {
            value
        };
        digits.chars().all(|c| c.is_ascii_digit()) && (min..=max).contains(&digits.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_patterns_are_read() {
        let from = "^(\\+?[0-9]{7,15}|[0-9]{3,5})$";
        assert!(matches_pattern(from, "100"));
        assert!(matches_pattern(from, "+74951234567"));
        assert!(!matches_pattern(from, "10"));
        assert!(!matches_pattern(from, "12a45"));
        let sip = "^([0-9]{5}|[0-9]{3})$";
        assert!(matches_pattern(sip, "00001"));
        assert!(!matches_pattern(sip, "0001"));
    }
}
