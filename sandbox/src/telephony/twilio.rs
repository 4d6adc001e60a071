//! A fake Twilio Voice API: `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`, HTTP Basic
//! `AccountSid:AuthToken`, a form body checked against `CreateCallRequest` of Twilio's OpenAPI
//! (each field converted to the schema's type, then validated; unknown fields recorded; one of
//! `Url`, `Twiml` or `ApplicationSid`), answered 201 with the call resource. The call then plays
//! as status callbacks signed with `X-Twilio-Signature` (base64 HMAC-SHA1 of the URL and the
//! sorted parameters, keyed with the auth token): the first leg to `StatusCallback`, the
//! visitor's leg (with `ParentCallSid`) to the `statusCallback` of the `<Number>` in our TwiML.
//! Callbacks are signed for the URL as given and may be delivered through another address
//! ([`TwilioSandbox::deliver_via`]), as behind a reverse proxy. The call resources, the first
//! leg's and the visitor's (`parent_call_sid`), are read back with
//! `GET …/Calls/{Sid}.json` and `GET …/Calls.json` (filters checked against the list
//! operation's parameters; `ParentCallSid`, `To`, `Status` applied).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha1::Sha1;

use super::{Script, Scripted, hex, specs};
use crate::support::{Violations, compile, errors};
use crate::webhook_delivery::{Caller, Delivery};

/// A form's fields in order.
type Form = Vec<(String, String)>;

pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: String,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: "twilio-auth-token-0123456789abcd".into(),
        }
    }
}

struct State {
    config: TwilioConfig,
    script: Script,
    violations: Violations,
    via: Mutex<Option<String>>,
    calls: Mutex<Vec<Value>>,
    /// Call resources as they stand once played, both legs.
    resources: Mutex<Vec<Value>>,
    deliveries: Mutex<Vec<Delivery>>,
    caller: Caller,
}

pub struct TwilioSandbox {
    addr: SocketAddr,
    handle: ServerHandle,
    state: Arc<State>,
}

/// `X-Twilio-Signature` of a POST of `params` to `url`.
pub fn twilio_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut text = url.to_string();
    for (k, v) in sorted {
        text.push_str(k);
        text.push_str(v);
    }
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(token.as_bytes()) else {
        return String::new();
    };
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl TwilioSandbox {
    pub async fn start(config: TwilioConfig) -> std::io::Result<TwilioSandbox> {
        let state = Arc::new(State {
            config,
            script: Script::new(),
            violations: Violations::default(),
            via: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
            resources: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            caller: Caller::new(),
        });
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/2010-04-01/Accounts/{sid}/Calls.json",
                    web::post().to(create_call),
                )
                .route(
                    "/2010-04-01/Accounts/{sid}/Calls.json",
                    web::get().to(list_calls),
                )
                .route(
                    "/2010-04-01/Accounts/{sid}/Calls/{call_sid}.json",
                    web::get().to(fetch_call),
                )
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")?;
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Ok(TwilioSandbox {
            addr,
            handle,
            state,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Deliver callbacks to this origin (`http://127.0.0.1:PORT`) instead of the callback URL's
    /// own, still signing the URL as given.
    pub fn deliver_via(&self, origin: &str) {
        if let Ok(mut v) = self.state.via.lock() {
            *v = Some(origin.trim_end_matches('/').to_string());
        }
    }

    pub fn script(&self, next: Scripted) {
        self.state.script.set(next);
    }

    /// Accepted calls: the request's fields as validated (JSON after type conversion).
    pub fn calls(&self) -> Vec<Value> {
        self.state
            .calls
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

    pub async fn redeliver(&self, delivery: &Delivery) -> Delivery {
        self.state.caller.redeliver(delivery).await
    }

    /// Posts a status callback to `url` signed with `token` (the account's for a real one,
    /// another for a forgery).
    pub async fn callback(
        &self,
        url: &str,
        params: Vec<(String, String)>,
        token: &str,
    ) -> Delivery {
        callback(&self.state, url, params, token).await
    }
}

impl Drop for TwilioSandbox {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

async fn callback(
    state: &State,
    url: &str,
    params: Vec<(String, String)>,
    token: &str,
) -> Delivery {
    let signature = twilio_signature(token, url, &params);
    let target = match (
        state.via.lock().ok().and_then(|v| v.clone()),
        reqwest::Url::parse(url),
    ) {
        (Some(via), Ok(parsed)) => {
            let mut path = parsed.path().to_string();
            if let Some(q) = parsed.query() {
                path.push('?');
                path.push_str(q);
            }
            format!("{via}{path}")
        }
        _ => url.to_string(),
    };
    let body = serde_urlencoded::to_string(&params)
        .unwrap_or_default()
        .into_bytes();
    let mut delivery = state
        .caller
        .post(
            &target,
            body,
            vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("X-Twilio-Signature".into(), signature),
                (
                    "I-Twilio-Idempotency-Token".into(),
                    uuid::Uuid::new_v4().to_string(),
                ),
            ],
        )
        .await;
    delivery.url = target;
    if let Ok(mut d) = state.deliveries.lock() {
        d.push(delivery.clone());
    }
    delivery
}

fn twilio_error(status: u16, code: u32, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default()).json(
        json!({
            "code": code, "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status,
        }),
    )
}

/// The form as JSON of the schema's types (arrays for repeated fields, integers, booleans).
fn typed(form: &[(String, String)], schema: &Value) -> Value {
    let mut out = Map::new();
    for (k, v) in form {
        let kind = schema["properties"][k]["type"].as_str().unwrap_or("string");
        let value = match kind {
            "integer" => v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n)),
            "boolean" => match v.as_str() {
                "true" => json!(true),
                "false" => json!(false),
                _ => json!(v),
            },
            _ => json!(v),
        };
        if kind == "array" {
            let entry = out.entry(k.clone()).or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(json!(v));
            }
        } else {
            out.insert(k.clone(), value);
        }
    }
    Value::Object(out)
}

/// The `statusCallback` and the number of the `<Number>` in our TwiML, if any.
fn dialled(twiml: &str) -> Option<(String, String)> {
    let start = twiml.find("<Number")?;
    let rest = &twiml[start..];
    let close = rest.find('>')?;
    let tag = &rest[..close];
    let callback = tag
        .split("statusCallback=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .replace("&amp;", "&");
    let number = rest[close + 1..].split("</Number>").next()?.to_string();
    Some((callback, number))
}

fn authorized(state: &State, req: &HttpRequest, account: &str) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            state.config.account_sid, state.config.auth_token
        ))
    );
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    auth == Some(expected.as_str()) && account == state.config.account_sid
}

/// `GET Calls.json`: the account's calls, filtered; unknown filters are violations.
async fn list_calls(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<Arc<State>>,
) -> HttpResponse {
    if !authorized(&state, &req, &path) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let spec: Value = serde_json::from_str(specs::TWILIO).unwrap_or_default();
    let known: Vec<String> = spec["list"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    for (k, _) in &query {
        if !known.contains(k) {
            state
                .violations
                .record(format!("GET Calls.json: unknown parameter `{k}`"));
        }
    }
    let field = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let calls: Vec<Value> = state
        .resources
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| field("ParentCallSid").is_none_or(|p| c["parent_call_sid"] == p))
        .filter(|c| field("To").is_none_or(|t| c["to"] == t))
        .filter(|c| field("Status").is_none_or(|s| c["status"] == s))
        .collect();
    let uri = format!(
        "/2010-04-01/Accounts/{}/Calls.json",
        state.config.account_sid
    );
    HttpResponse::Ok().json(json!({
        "calls": calls, "end": calls.len().saturating_sub(1), "first_page_uri": uri,
        "next_page_uri": null, "page": 0, "page_size": 50, "previous_page_uri": null,
        "start": 0, "uri": uri,
    }))
}

/// `GET Calls/{Sid}.json`: one call resource, or Twilio's 404 (error 20404).
async fn fetch_call(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<Arc<State>>,
) -> HttpResponse {
    let (account, sid) = path.into_inner();
    if !authorized(&state, &req, &account) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let found = state
        .resources
        .lock()
        .ok()
        .and_then(|r| r.iter().find(|c| c["sid"] == sid.as_str()).cloned());
    match found {
        Some(call) => HttpResponse::Ok().json(call),
        None => twilio_error(
            404,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/Calls/{sid}.json was not found"
            ),
        ),
    }
}

async fn create_call(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<Arc<State>>,
) -> HttpResponse {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            state.config.account_sid, state.config.auth_token
        ))
    );
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if auth != Some(expected.as_str()) || path.as_str() != state.config.account_sid {
        return twilio_error(401, 20003, "Authenticate");
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        state
            .violations
            .record(format!("Calls.json: content type `{content_type}`"));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let spec: Value = serde_json::from_str(specs::TWILIO).unwrap_or_default();
    let schema =
        &spec["operation"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let instance = typed(&form, schema);
    let mut problems: Vec<String> = match compile(schema) {
        Ok(validator) => errors(&validator, &instance),
        Err(e) => vec![e],
    };
    for (k, _) in &form {
        if schema["properties"].get(k).is_none() {
            problems.push(format!("unknown parameter `{k}`"));
        }
    }
    let has = |k: &str| instance.get(k).is_some();
    if !has("Url") && !has("Twiml") && !has("ApplicationSid") {
        problems.push("none of Url, Twiml, ApplicationSid".into());
    }
    if !problems.is_empty() {
        for p in &problems {
            state.violations.record(format!("POST Calls.json: {p}"));
        }
        return twilio_error(400, 21205, &problems.join("; "));
    }
    if let Ok(mut c) = state.calls.lock() {
        c.push(instance.clone());
    }
    let sid = format!("CA{}", hex(&uuid::Uuid::new_v4().into_bytes()));
    let to = instance["To"].as_str().unwrap_or_default().to_string();
    let from = instance["From"].as_str().unwrap_or_default().to_string();
    let now = chrono::Utc::now().to_rfc2822();
    let resource = json!({
        "sid": sid, "account_sid": state.config.account_sid, "to": to, "to_formatted": to,
        "from": from, "from_formatted": from, "status": "queued", "direction": "outbound-api",
        "api_version": "2010-04-01", "date_created": now, "date_updated": now,
        "parent_call_sid": null, "phone_number_sid": null, "price": null, "price_unit": "USD",
        "start_time": null, "end_time": null, "duration": null, "answered_by": null,
        "forwarded_from": null, "group_sid": null, "caller_name": null, "queue_time": "0",
        "trunk_sid": null, "annotation": null,
        "uri": format!("/2010-04-01/Accounts/{}/Calls/{sid}.json", state.config.account_sid),
        "subresource_uris": {}
    });
    let parent_resource = resource.clone();
    let parent_callback = instance["StatusCallback"].as_str().map(str::to_string);
    let child = instance["Twiml"].as_str().and_then(dialled);
    let script = state.script.get();
    let shared = state.get_ref().clone();
    let account = state.config.account_sid.clone();
    let token = state.config.auth_token.clone();
    actix_web::rt::spawn(async move {
        let mut sequence = 0;
        let mut params = |call_sid: &str,
                          parent: Option<&str>,
                          status: &str,
                          to: &str,
                          duration: Option<u32>| {
            let mut p: Vec<(String, String)> = vec![
                ("AccountSid".into(), account.clone()),
                ("ApiVersion".into(), "2010-04-01".into()),
                ("CallSid".into(), call_sid.into()),
                ("CallStatus".into(), status.into()),
                ("Called".into(), to.into()),
                ("Caller".into(), from.clone()),
                (
                    "Direction".into(),
                    if parent.is_some() {
                        "outbound-dial"
                    } else {
                        "outbound-api"
                    }
                    .into(),
                ),
                ("From".into(), from.clone()),
                ("To".into(), to.into()),
                ("Timestamp".into(), chrono::Utc::now().to_rfc2822()),
                ("CallbackSource".into(), "call-progress-events".into()),
                ("SequenceNumber".into(), sequence.to_string()),
            ];
            sequence += 1;
            if let Some(parent) = parent {
                p.push(("ParentCallSid".into(), parent.into()));
            }
            if let Some(d) = duration {
                p.push(("CallDuration".into(), d.to_string()));
                p.push(("Duration".into(), d.div_ceil(60).to_string()));
            }
            p
        };
        let mut plan: Vec<(Option<String>, Form)> = Vec::new();
        let child_sid = format!("CA{}", hex(&uuid::Uuid::new_v4().into_bytes()));
        plan.push((
            parent_callback.clone(),
            params(&sid, None, "initiated", &to, None),
        ));
        plan.push((
            parent_callback.clone(),
            params(&sid, None, "ringing", &to, None),
        ));
        plan.push((
            parent_callback.clone(),
            params(&sid, None, "in-progress", &to, None),
        ));
        let visitor = child.as_ref().map(|(_, n)| n.clone()).unwrap_or_default();
        let child_url = child
            .as_ref()
            .map(|(u, _)| u.clone())
            .filter(|u| !u.is_empty());
        let (child_status, talked) = match script {
            Scripted::Answered { duration_secs } => ("completed", Some(duration_secs)),
            Scripted::NoAnswer => ("no-answer", None),
            Scripted::Busy => ("busy", None),
            Scripted::Failed => ("failed", None),
        };
        // The resources as they stand once the call is over.
        let mut parent = parent_resource.clone();
        parent["status"] = json!("completed");
        parent["duration"] = json!((talked.unwrap_or(0) + 5).to_string());
        let mut leg = parent_resource.clone();
        leg["sid"] = json!(child_sid);
        leg["parent_call_sid"] = json!(sid);
        leg["to"] = json!(visitor);
        leg["to_formatted"] = json!(visitor);
        leg["direction"] = json!("outbound-dial");
        leg["status"] = json!(child_status);
        leg["duration"] = json!(talked.unwrap_or(0).to_string());
        leg["uri"] = json!(format!(
            "/2010-04-01/Accounts/{account}/Calls/{child_sid}.json"
        ));
        if let Ok(mut r) = shared.resources.lock() {
            r.push(parent);
            r.push(leg);
        }
        plan.push((
            child_url.clone(),
            params(&child_sid, Some(&sid), "initiated", &visitor, None),
        ));
        plan.push((
            child_url.clone(),
            params(&child_sid, Some(&sid), "ringing", &visitor, None),
        ));
        if talked.is_some() {
            plan.push((
                child_url.clone(),
                params(&child_sid, Some(&sid), "in-progress", &visitor, None),
            ));
        }
        plan.push((
            child_url,
            params(&child_sid, Some(&sid), child_status, &visitor, talked),
        ));
        plan.push((
            parent_callback,
            params(&sid, None, "completed", &to, Some(talked.unwrap_or(0) + 5)),
        ));
        for (url, params) in plan {
            if let Some(url) = url {
                callback(&shared, &url, params, &token).await;
            }
        }
    });
    HttpResponse::Created().json(resource)
}
