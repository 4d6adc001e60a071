//! A fake Meta Graph API (v23.0 paths) for one Facebook Page and its Instagram business
//! account, with Meta's OAuth dialog, and people who comment.
//!
//! Served, each call with a token (`Authorization: Bearer` or `access_token`; a wrong one
//! answers Graph's error 190):
//! - Page (Page token): `GET /{page-id}`, `GET /{page-id}/published_posts` (and `/feed`),
//!   `POST /{page-id}/feed` (`message`, `link`, `attached_media` of unpublished photos,
//!   `place`: a place Page of [`GraphConfig::place_ids`]),
//!   `POST /{page-id}/photos` (by `url`, which the fake fetches as Graph does),
//!   `POST /{page-id}/videos` (by `file_url`, fetched, a video by its first bytes; published,
//!   it is a post of the Page with its `description` as the message),
//!   `GET|POST|DELETE /{page-id}/subscribed_apps`; a post: `GET`, `POST` (edit), `DELETE`,
//!   `GET|POST /{post-id}/comments`, `POST|DELETE /{post-id}/likes`; a comment: `POST`
//!   (`is_hidden`, `message`), `DELETE`, `GET|POST /{comment-id}/comments` (replies),
//!   `POST|DELETE /{comment-id}/likes`;
//! - Instagram (the Page's token): `GET /{ig-user-id}`, `GET|POST /{ig-user-id}/media`
//!   (image containers by `image_url`, fetched; carousel items; `CAROUSEL` containers with
//!   `children`; `REELS` containers by `video_url`, fetched, MP4 or MOV; `caption`,
//!   `user_tags`, `location_id`), `GET /{container-id}?fields=status_code` (a reel's container is
//!   `IN_PROGRESS` when first asked, then `FINISHED`; publishing it before it is finished is
//!   error 9007), `POST /{ig-user-id}/media_publish`, a media: `GET`,
//!   `DELETE`, `GET|POST /{media-id}/comments`; a comment: `POST` (`hide`), `DELETE`,
//!   `POST /{comment-id}/replies`;
//! - `GET /me` (the Page for a Page token), `GET /me/accounts` (a user token: the Page with
//!   its token and Instagram account);
//! - OAuth: `GET /{version}/dialog/oauth` approves at once and redirects back with `code` and
//!   `state`; `GET|POST /{version}/oauth/access_token` exchanges the code (same
//!   `redirect_uri`, the app's id and secret) or, with `grant_type=fb_exchange_token`, a
//!   short-lived user token for a long-lived one.
//!
//! Every call's parameters are checked against Meta's codegen spec ([`spec`]); what breaks it
//! is recorded in [`GraphSandbox::violations`] (and still served). Graph's error shape
//! `{"error":{"message","type","code","error_subcode","fbtrace_id"}}` answers refusals.
//!
//! People comment with [`GraphSandbox::person_comments`] and
//! [`GraphSandbox::person_comments_on_media`]: the comment is stored and Meta's webhook
//! (`object: page` `feed`, or `object: instagram` `comments`) is POSTed to the callback set with
//! [`GraphSandbox::configure_callback`], signed with `X-Hub-Signature-256` from the app secret,
//! when the Page has subscribed the application. [`GraphSandbox::forge`] sends the same body
//! with a signature from the wrong key.

pub mod spec;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::support::Violations;
use crate::webhook_delivery::{Caller, Delivery, hmac_sha256_hex};
use spec::GraphSpec;

/// The fake's application, Page, Instagram account and person.
#[derive(Clone, Debug)]
pub struct GraphConfig {
    pub app_id: String,
    pub app_secret: String,
    /// The person's short-lived user token (what the OAuth code exchanges for).
    pub user_token: String,
    /// What `fb_exchange_token` turns the user token into.
    pub long_lived_user_token: String,
    pub page_id: String,
    pub page_name: String,
    pub page_token: String,
    pub ig_user_id: String,
    pub ig_username: String,
    /// The place Pages Graph knows: a post's `place` and a container's `location_id` must be
    /// one of them.
    pub place_ids: Vec<String>,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            app_id: "1234567890".into(),
            app_secret: "graph-app-secret".into(),
            user_token: "EAAUser-short".into(),
            long_lived_user_token: "EAAUser-long".into(),
            page_id: "101000000000001".into(),
            page_name: "Sandbox Page".into(),
            page_token: "EAAPage-token".into(),
            ig_user_id: "17841400000000001".into(),
            ig_username: "sandbox.shop".into(),
            place_ids: vec!["110843418940484".into()],
        }
    }
}

/// A post on the Page.
#[derive(Clone, Debug, PartialEq)]
pub struct PagePost {
    pub id: String,
    pub message: String,
    pub link: Option<String>,
    /// Ids of the photos attached.
    pub photos: Vec<String>,
    /// The id of the video this post is.
    pub video: Option<String>,
    /// The place Page the post is at.
    pub place: Option<String>,
    pub created_time: i64,
    /// The application that published it (`None`: made on Facebook itself).
    pub application: Option<String>,
    pub deleted: bool,
    pub liked_by_page: bool,
}

/// A photo uploaded to the Page.
#[derive(Clone, Debug, PartialEq)]
pub struct Photo {
    pub id: String,
    pub url: String,
    /// What the fake fetched from `url`.
    pub bytes: Vec<u8>,
    pub published: bool,
}

/// A video uploaded to the Page.
#[derive(Clone, Debug, PartialEq)]
pub struct PageVideo {
    pub id: String,
    pub file_url: String,
    /// What the fake fetched from `file_url`, and its type.
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub title: Option<String>,
    pub description: String,
    pub published: bool,
}

/// A comment on a post (or a reply, with `parent_id`).
#[derive(Clone, Debug, PartialEq)]
pub struct PageComment {
    pub id: String,
    pub post_id: String,
    pub parent_id: Option<String>,
    pub from_id: String,
    pub from_name: String,
    pub message: String,
    pub created_time: i64,
    pub hidden: bool,
    pub deleted: bool,
    pub liked_by_page: bool,
}

/// An Instagram media container, before and after publishing.
#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    pub id: String,
    /// `IMAGE`, `CAROUSEL` or `REELS`.
    pub media_type: String,
    pub image_url: Option<String>,
    pub video_url: Option<String>,
    pub bytes: Vec<u8>,
    pub caption: Option<String>,
    pub is_carousel_item: bool,
    pub children: Vec<String>,
    pub user_tags: Option<Value>,
    /// The place Page the media is at.
    pub location_id: Option<String>,
    pub published_as: Option<String>,
    /// How many times its `status_code` was asked for.
    pub status_checks: u32,
}

/// A published Instagram media.
#[derive(Clone, Debug, PartialEq)]
pub struct Media {
    pub id: String,
    pub caption: String,
    /// `IMAGE`, `CAROUSEL_ALBUM` or `VIDEO` (a reel).
    pub media_type: String,
    /// The containers of its images (one, or the carousel's children).
    pub images: Vec<String>,
    pub user_tags: Option<Value>,
    pub location_id: Option<String>,
    pub timestamp: i64,
    pub deleted: bool,
}

/// A comment under an Instagram media (or a reply, with `parent_id`).
#[derive(Clone, Debug, PartialEq)]
pub struct MediaComment {
    pub id: String,
    pub media_id: String,
    pub parent_id: Option<String>,
    pub from_id: String,
    pub username: String,
    pub text: String,
    pub timestamp: i64,
    pub hidden: bool,
    pub deleted: bool,
}

/// Someone commenting: their id for the Page (or Instagram-scoped id) and name.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: String,
    pub name: String,
}

/// A Graph error the next call answers ([`GraphSandbox::fail_next`]).
#[derive(Clone, Debug)]
pub struct GraphFailure {
    pub status: u16,
    pub code: i64,
    pub message: String,
}

impl GraphFailure {
    /// Error 32: the Page's request limit.
    pub fn page_rate_limit() -> GraphFailure {
        GraphFailure {
            status: 400,
            code: 32,
            message: "Page request limit reached".into(),
        }
    }
}

#[derive(Default)]
struct Records {
    posts: Vec<PagePost>,
    photos: Vec<Photo>,
    videos: Vec<PageVideo>,
    comments: Vec<PageComment>,
    containers: Vec<Container>,
    media: Vec<Media>,
    media_comments: Vec<MediaComment>,
    subscribed_fields: Vec<String>,
    callbacks: HashMap<String, String>,
    deliveries: Vec<Delivery>,
    codes: HashMap<String, String>,
    failures: Vec<GraphFailure>,
    calls: Vec<String>,
    next: u64,
}

struct State {
    config: GraphConfig,
    spec: GraphSpec,
    violations: Violations,
    records: Mutex<Records>,
    caller: Caller,
}

impl State {
    fn records(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_number(&self) -> u64 {
        let mut records = self.records();
        records.next += 1;
        records.next
    }
}

/// The running fake.
pub struct GraphSandbox {
    addr: SocketAddr,
    state: Arc<State>,
    handle: ServerHandle,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn iso(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string()
}

impl GraphSandbox {
    pub async fn start(config: GraphConfig) -> std::io::Result<GraphSandbox> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            config,
            spec: GraphSpec::load().map_err(std::io::Error::other)?,
            violations: Violations::default(),
            records: Mutex::new(Records::default()),
            caller: Caller::new(),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/{version}/dialog/oauth", web::get().to(oauth_dialog))
                .route("/{version}/oauth/access_token", web::get().to(access_token))
                .route(
                    "/{version}/oauth/access_token",
                    web::post().to(access_token),
                )
                .default_service(web::to(graph_call))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(GraphSandbox {
            addr,
            state,
            handle,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Graph base to give the connector (`http://127.0.0.1:<port>/`).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The OAuth dialog's URL (`…/v23.0/dialog/oauth`).
    pub fn authorize_url(&self) -> String {
        format!("http://{}/v23.0/dialog/oauth", self.addr)
    }

    /// The token endpoint's URL (`…/v23.0/oauth/access_token`).
    pub fn token_url(&self) -> String {
        format!("http://{}/v23.0/oauth/access_token", self.addr)
    }

    pub fn config(&self) -> &GraphConfig {
        &self.state.config
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.violations.all()
    }

    /// Every call as `METHOD /path` (without the version).
    pub fn calls(&self) -> Vec<String> {
        self.state.records().calls.clone()
    }

    pub fn posts(&self) -> Vec<PagePost> {
        self.state.records().posts.clone()
    }

    pub fn photos(&self) -> Vec<Photo> {
        self.state.records().photos.clone()
    }

    pub fn videos(&self) -> Vec<PageVideo> {
        self.state.records().videos.clone()
    }

    pub fn comments(&self) -> Vec<PageComment> {
        self.state.records().comments.clone()
    }

    pub fn containers(&self) -> Vec<Container> {
        self.state.records().containers.clone()
    }

    pub fn media(&self) -> Vec<Media> {
        self.state.records().media.clone()
    }

    pub fn media_comments(&self) -> Vec<MediaComment> {
        self.state.records().media_comments.clone()
    }

    /// The fields the Page subscribed the application to (empty: not subscribed).
    pub fn subscribed_fields(&self) -> Vec<String> {
        self.state.records().subscribed_fields.clone()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.records().deliveries.clone()
    }

    /// The next call answers this error instead.
    pub fn fail_next(&self, failure: GraphFailure) {
        self.state.records().failures.push(failure);
    }

    /// A post made on the Page outside omnihub.
    pub fn seed_post(&self, message: &str) -> String {
        let n = self.state.next_number();
        let id = format!("{}_{}", self.state.config.page_id, 900_000 + n);
        self.state.records().posts.push(PagePost {
            id: id.clone(),
            message: message.to_string(),
            link: None,
            photos: Vec::new(),
            video: None,
            place: None,
            created_time: now(),
            application: None,
            deleted: false,
            liked_by_page: false,
        });
        id
    }

    /// Sets the application's callback URL for `object` (`page` or `instagram`) after Meta's
    /// GET handshake with `verify_token` succeeded there, as the dashboard does.
    pub async fn configure_callback(
        &self,
        object: &str,
        url: &str,
        verify_token: &str,
    ) -> Result<(), String> {
        let challenge = format!("{}", 1_000_000 + self.state.next_number());
        let (status, body) = self.handshake(url, verify_token, &challenge).await;
        if status != Some(200) || body != challenge {
            return Err(format!("the handshake failed: {status:?} {body}"));
        }
        self.state
            .records()
            .callbacks
            .insert(object.to_string(), url.to_string());
        Ok(())
    }

    /// Meta's subscription handshake against `url`: the status and body of the answer.
    pub async fn handshake(
        &self,
        url: &str,
        verify_token: &str,
        challenge: &str,
    ) -> (Option<u16>, String) {
        self.state
            .caller
            .get(
                url,
                &[
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", verify_token),
                    ("hub.challenge", challenge),
                ],
            )
            .await
    }

    /// A person comments on a Page post (answering `parent` when given); Meta's `feed` webhook
    /// is delivered when the Page subscribed the application and a callback is set.
    pub async fn person_comments(
        &self,
        post_id: &str,
        person: &Person,
        message: &str,
        parent: Option<&str>,
    ) -> Option<Delivery> {
        let n = self.state.next_number();
        let post_number = post_id.rsplit('_').next().unwrap_or(post_id).to_string();
        let comment = PageComment {
            id: format!("{post_number}_{}", 500_000 + n),
            post_id: post_id.to_string(),
            parent_id: parent.map(str::to_string),
            from_id: person.id.clone(),
            from_name: person.name.clone(),
            message: message.to_string(),
            created_time: now(),
            hidden: false,
            deleted: false,
            liked_by_page: false,
        };
        self.state.records().comments.push(comment.clone());
        let body = json!({"object": "page", "entry": [{
            "id": self.state.config.page_id, "time": now(),
            "changes": [{"field": "feed", "value": {
                "item": "comment", "verb": "add", "post_id": comment.post_id,
                "comment_id": comment.id,
                "parent_id": parent.unwrap_or(post_id),
                "created_time": comment.created_time, "message": comment.message,
                "from": {"id": person.id, "name": person.name}}}]}]});
        let subscribed = self
            .state
            .records()
            .subscribed_fields
            .iter()
            .any(|f| f == "feed");
        if !subscribed {
            return None;
        }
        self.deliver("page", &body).await
    }

    /// A person comments on an Instagram media (answering `parent` when given); Meta's
    /// `comments` webhook is delivered as for the Page.
    pub async fn person_comments_on_media(
        &self,
        media_id: &str,
        person: &Person,
        text: &str,
        parent: Option<&str>,
    ) -> Option<Delivery> {
        let n = self.state.next_number();
        let comment = MediaComment {
            id: format!("{}", 18_000_000_000_000_000u64 + n),
            media_id: media_id.to_string(),
            parent_id: parent.map(str::to_string),
            from_id: person.id.clone(),
            username: person.name.clone(),
            text: text.to_string(),
            timestamp: now(),
            hidden: false,
            deleted: false,
        };
        self.state.records().media_comments.push(comment.clone());
        let mut value = json!({"id": comment.id, "text": text,
            "from": {"id": person.id, "username": person.name},
            "media": {"id": media_id, "media_product_type": "FEED"}});
        if let Some(parent) = parent {
            value["parent_id"] = json!(parent);
        }
        let body = json!({"object": "instagram", "entry": [{
            "id": self.state.config.ig_user_id, "time": now(),
            "changes": [{"field": "comments", "value": value}]}]});
        if self.state.records().subscribed_fields.is_empty() {
            return None;
        }
        self.deliver("instagram", &body).await
    }

    /// POSTs `body` to the callback of `object`, signed with the app secret.
    pub async fn deliver(&self, object: &str, body: &Value) -> Option<Delivery> {
        let key = self.state.config.app_secret.clone();
        self.deliver_signed(object, body, &key).await
    }

    /// The same body signed with another key: Meta did not send it.
    pub async fn forge(&self, object: &str, body: &Value) -> Option<Delivery> {
        self.deliver_signed(object, body, "not-the-app-secret")
            .await
    }

    async fn deliver_signed(&self, object: &str, body: &Value, key: &str) -> Option<Delivery> {
        let url = self.state.records().callbacks.get(object).cloned()?;
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let signature = format!("sha256={}", hmac_sha256_hex(key.as_bytes(), &bytes));
        let headers = vec![("X-Hub-Signature-256".to_string(), signature)];
        let delivery = self.state.caller.post(&url, bytes, headers).await;
        self.state.records().deliveries.push(delivery.clone());
        Some(delivery)
    }

    /// Delivers a recorded delivery again, byte for byte (Meta's retry).
    pub async fn redeliver(&self, delivery: &Delivery) -> Delivery {
        let again = self.state.caller.redeliver(delivery).await;
        self.state.records().deliveries.push(again.clone());
        again
    }
}

impl Drop for GraphSandbox {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

// --- errors ---------------------------------------------------------------------------------

fn graph_error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> HttpResponse {
    let mut error = json!({"message": message, "type": "OAuthException", "code": code,
        "fbtrace_id": "AsandboxTrace"});
    if code != 190 && code != 102 {
        error["type"] = json!(if code == 100 {
            "GraphMethodException"
        } else {
            "OAuthException"
        });
    }
    if let Some(sub) = subcode {
        error["error_subcode"] = json!(sub);
    }
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .json(json!({ "error": error }))
}

fn invalid_token() -> HttpResponse {
    graph_error(
        400,
        190,
        None,
        "Invalid OAuth access token - Cannot parse access token",
    )
}

fn does_not_exist(id: &str) -> HttpResponse {
    graph_error(
        400,
        100,
        Some(33),
        &format!(
            "Unsupported request. Object with ID '{id}' does not exist, cannot be loaded due to \
             missing permissions, or does not support this operation."
        ),
    )
}

fn invalid_param(message: &str) -> HttpResponse {
    graph_error(400, 100, None, &format!("(#100) {message}"))
}

/// The place Page named by the parameter `name`, which must be one Graph knows.
fn place_param(
    state: &State,
    params: &[(String, String)],
    name: &str,
) -> Result<Option<String>, Box<HttpResponse>> {
    let Some(place) = param(params, name) else {
        return Ok(None);
    };
    // `place` is typed Object (`{"id": …}`, the place Page); `location_id` a bare id.
    let id = match serde_json::from_str::<Value>(place) {
        Ok(Value::Object(object)) => object
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => place.to_string(),
    };
    if state.config.place_ids.contains(&id) {
        Ok(Some(id))
    } else {
        Err(Box::new(invalid_param(&format!(
            "Param {name} must be a valid place ID"
        ))))
    }
}

fn success() -> HttpResponse {
    HttpResponse::Ok().json(json!({"success": true}))
}

// --- the Graph API --------------------------------------------------------------------------

/// Who a token is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenOf {
    Page,
    User,
}

fn params_of(request: &HttpRequest, body: &[u8]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    if !body.is_empty() {
        params.extend(
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default(),
        );
    }
    params
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What a node id is.
enum Node {
    Me,
    Page,
    Post(String),
    Comment(String),
    IgUser,
    IgMedia(String),
    IgComment(String),
    Container(String),
    Unknown,
}

fn node_of(state: &State, id: &str) -> Node {
    let config = &state.config;
    if id == "me" {
        return Node::Me;
    }
    if id == config.page_id {
        return Node::Page;
    }
    if id == config.ig_user_id {
        return Node::IgUser;
    }
    let records = state.records();
    if records.posts.iter().any(|p| p.id == id) {
        Node::Post(id.into())
    } else if records.comments.iter().any(|c| c.id == id) {
        Node::Comment(id.into())
    } else if records.media.iter().any(|m| m.id == id) {
        Node::IgMedia(id.into())
    } else if records.media_comments.iter().any(|c| c.id == id) {
        Node::IgComment(id.into())
    } else if records.containers.iter().any(|c| c.id == id) {
        Node::Container(id.into())
    } else {
        Node::Unknown
    }
}

async fn graph_call(
    state: web::Data<State>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let segments: Vec<String> = request
        .path()
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let method = request.method().as_str().to_string();
    let params = params_of(&request, &body);
    let (id, edge) = match segments.as_slice() {
        [_version, id] => (id.clone(), None),
        [_version, id, edge] => (id.clone(), Some(edge.clone())),
        _ => return graph_error(400, 2500, None, "Unknown path components"),
    };
    state.records().calls.push(format!(
        "{method} /{id}{}",
        edge.as_deref().map(|e| format!("/{e}")).unwrap_or_default()
    ));
    if let Some(failure) = {
        let mut records = state.records();
        (!records.failures.is_empty()).then(|| records.failures.remove(0))
    } {
        return graph_error(failure.status, failure.code, None, &failure.message);
    }
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or_else(|| param(&params, "access_token").map(str::to_string));
    let who = match token.as_deref() {
        Some(t) if t == state.config.page_token => TokenOf::Page,
        Some(t) if t == state.config.user_token || t == state.config.long_lived_user_token => {
            TokenOf::User
        }
        _ => return invalid_token(),
    };
    let node = node_of(&state, &id);
    let spec_node = match (&node, who) {
        (Node::Me, TokenOf::Page) | (Node::Page, _) => "Page",
        (Node::Me, TokenOf::User) => "User",
        (Node::Post(_), _) => "PagePost",
        (Node::Comment(_), _) => "Comment",
        (Node::IgUser, _) => "IGUser",
        (Node::IgMedia(_), _) => "IGMedia",
        (Node::IgComment(_), _) => "IGComment",
        (Node::Container(_), _) => "IGMedia",
        (Node::Unknown, _) => return does_not_exist(&id),
    };
    for problem in state
        .spec
        .check(spec_node, &method, edge.as_deref(), &params)
    {
        state.violations.record(problem);
    }
    if who == TokenOf::User && !matches!(node, Node::Me) {
        return graph_error(
            400,
            190,
            None,
            "(#190) This method must be called with a Page Access Token",
        );
    }
    let p = &params;
    match (node, method.as_str(), edge.as_deref()) {
        (Node::Me, "GET", None) => match who {
            TokenOf::Page => page_json(&state),
            TokenOf::User => {
                HttpResponse::Ok().json(json!({"id": "10000000000042", "name": "Sandbox Person"}))
            }
        },
        (Node::Me, "GET", Some("accounts")) if who == TokenOf::User => accounts(&state),
        (Node::Page, "GET", None) => page_json(&state),
        (Node::Page, "GET", Some("published_posts" | "feed")) => list_posts(&state, p),
        (Node::Page, "POST", Some("feed")) => create_post(&state, p),
        (Node::Page, "POST", Some("photos")) => upload_photo(&state, p).await,
        (Node::Page, "POST", Some("videos")) => upload_video(&state, p).await,
        (Node::Page, "POST", Some("subscribed_apps")) => {
            let fields: Vec<String> = param(p, "subscribed_fields")
                .unwrap_or_default()
                .split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect();
            state.records().subscribed_fields = fields;
            success()
        }
        (Node::Page, "GET", Some("subscribed_apps")) => {
            let fields = state.records().subscribed_fields.clone();
            let data = if fields.is_empty() {
                json!([])
            } else {
                json!([{"id": state.config.app_id, "name": "omnihub", "subscribed_fields": fields}])
            };
            HttpResponse::Ok().json(json!({ "data": data }))
        }
        (Node::Page, "DELETE", Some("subscribed_apps")) => {
            state.records().subscribed_fields.clear();
            success()
        }
        (Node::Post(id), method, edge) => post_call(&state, &id, method, edge, p),
        (Node::Comment(id), method, edge) => comment_call(&state, &id, method, edge, p),
        (Node::IgUser, "GET", None) => HttpResponse::Ok().json(json!({
            "id": state.config.ig_user_id, "username": state.config.ig_username,
            "name": state.config.page_name})),
        (Node::IgUser, "GET", Some("media")) => list_media(&state, p),
        (Node::IgUser, "POST", Some("media")) => create_container(&state, p).await,
        (Node::IgUser, "POST", Some("media_publish")) => publish(&state, p),
        (Node::IgMedia(id), method, edge) => media_call(&state, &id, method, edge, p),
        (Node::IgComment(id), method, edge) => media_comment_call(&state, &id, method, edge, p),
        (Node::Container(id), "GET", None) => container_status(&state, &id),
        _ => graph_error(400, 100, None, "(#100) Unsupported request"),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn page_json(state: &State) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "id": state.config.page_id, "name": state.config.page_name,
        "instagram_business_account": {"id": state.config.ig_user_id}}))
}

fn accounts(state: &State) -> HttpResponse {
    let c = &state.config;
    HttpResponse::Ok().json(json!({"data": [{
        "id": c.page_id, "name": c.page_name, "access_token": c.page_token,
        "category": "Shopping & retail", "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT",
            "MESSAGING", "MODERATE", "MANAGE"],
        "instagram_business_account": {"id": c.ig_user_id, "username": c.ig_username}}],
        "paging": {"cursors": {"before": "QVFIU", "after": "QVFIU"}}}))
}

fn limit(params: &[(String, String)], default: usize) -> usize {
    param(params, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(default)
        .min(100)
}

fn post_json(state: &State, records: &Records, post: &PagePost) -> Value {
    let comments = records
        .comments
        .iter()
        .filter(|c| c.post_id == post.id && !c.deleted)
        .count();
    let likes = u64::from(post.liked_by_page);
    let mut item = json!({
        "id": post.id, "message": post.message, "created_time": iso(post.created_time),
        "from": {"id": state.config.page_id, "name": state.config.page_name},
        "shares": {"count": 0},
        "likes": {"data": [], "summary": {"total_count": likes, "can_like": true,
            "has_liked": post.liked_by_page}},
        "comments": {"data": [], "summary": {"order": "ranked", "total_count": comments,
            "can_comment": true}},
    });
    if let Some(app) = &post.application {
        item["application"] = json!({"id": app, "name": "omnihub"});
    }
    item
}

fn list_posts(state: &State, params: &[(String, String)]) -> HttpResponse {
    let records = state.records();
    let data: Vec<Value> = records
        .posts
        .iter()
        .rev()
        .filter(|p| !p.deleted)
        .take(limit(params, 25))
        .map(|p| post_json(state, &records, p))
        .collect();
    HttpResponse::Ok().json(json!({ "data": data }))
}

fn create_post(state: &State, params: &[(String, String)]) -> HttpResponse {
    let message = param(params, "message").unwrap_or_default().to_string();
    let link = param(params, "link").map(str::to_string);
    let mut photos = Vec::new();
    if let Some(attached) = param(params, "attached_media") {
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(attached) else {
            return invalid_param("attached_media must be an array");
        };
        let records = state.records();
        for item in items {
            let Some(id) = item.get("media_fbid").and_then(Value::as_str) else {
                return invalid_param("attached_media items need media_fbid");
            };
            let Some(photo) = records.photos.iter().find(|p| p.id == id) else {
                return does_not_exist(id);
            };
            if photo.published {
                return invalid_param("attached_media must be unpublished photos");
            }
            photos.push(id.to_string());
        }
    }
    if message.is_empty() && link.is_none() && photos.is_empty() {
        return invalid_param("A post needs a message, a link or attached media");
    }
    if link.is_some() && !photos.is_empty() {
        return invalid_param("A post cannot have both a link and attached_media");
    }
    let place = match place_param(state, params, "place") {
        Ok(place) => place,
        Err(answer) => return *answer,
    };
    let n = state.next_number();
    let id = format!("{}_{}", state.config.page_id, 100_000 + n);
    state.records().posts.push(PagePost {
        id: id.clone(),
        message,
        link,
        photos,
        video: None,
        place,
        created_time: now(),
        application: Some(state.config.app_id.clone()),
        deleted: false,
        liked_by_page: false,
    });
    HttpResponse::Ok().json(json!({ "id": id }))
}

/// Fetches a media URL as Meta does; `Err` with Graph's answer.
async fn fetch(state: &State, url: &str, code: i64) -> Result<(Vec<u8>, String), HttpResponse> {
    match state.caller.fetch(url).await {
        Ok(fetched) if fetched.status == 200 && !fetched.bytes.is_empty() => {
            Ok((fetched.bytes, fetched.content_type.unwrap_or_default()))
        }
        Ok(fetched) => Err(graph_error(
            400,
            code,
            None,
            &format!(
                "Media download has failed: the URL answered {}",
                fetched.status
            ),
        )),
        Err(err) => Err(graph_error(
            400,
            code,
            None,
            &format!("Media download has failed: {err}"),
        )),
    }
}

async fn upload_photo(state: &State, params: &[(String, String)]) -> HttpResponse {
    let Some(url) = param(params, "url") else {
        return invalid_param("a photo needs url (or a source upload)");
    };
    let (bytes, content_type) = match fetch(state, url, 324).await {
        Ok(fetched) => fetched,
        Err(answer) => return answer,
    };
    if !content_type.starts_with("image/") {
        return graph_error(400, 324, None, "(#324) Missing or invalid image file");
    }
    let published = !matches!(param(params, "published"), Some("false" | "0"));
    let n = state.next_number();
    let id = format!("{}", 200_000_000 + n);
    state.records().photos.push(Photo {
        id: id.clone(),
        url: url.to_string(),
        bytes,
        published,
    });
    HttpResponse::Ok().json(json!({ "id": id }))
}

/// Whether the bytes open like a video (an ISO media `ftyp` box or an EBML header).
fn looks_like_video(bytes: &[u8]) -> bool {
    (bytes.len() >= 12 && &bytes[4..8] == b"ftyp") || bytes.starts_with(&[0x1a, 0x45, 0xdf, 0xa3])
}

/// `POST /{page-id}/videos` by `file_url`: Graph fetches the file; a published video is a post
/// of the Page.
async fn upload_video(state: &State, params: &[(String, String)]) -> HttpResponse {
    let Some(url) = param(params, "file_url") else {
        return invalid_param("a video needs file_url (or a source upload)");
    };
    let (bytes, content_type) = match fetch(state, url, 352).await {
        Ok(fetched) => fetched,
        Err(answer) => return answer,
    };
    if !content_type.starts_with("video/") || !looks_like_video(&bytes) {
        return graph_error(
            400,
            352,
            None,
            "(#352) Sorry, the video file you selected is in a format that we don't support.",
        );
    }
    let description = param(params, "description").unwrap_or_default().to_string();
    let published = !matches!(param(params, "published"), Some("false" | "0"));
    let n = state.next_number();
    let id = format!("{}", 300_000_000 + n);
    let mut records = state.records();
    records.videos.push(PageVideo {
        id: id.clone(),
        file_url: url.to_string(),
        bytes,
        content_type,
        title: param(params, "title").map(str::to_string),
        description: description.clone(),
        published,
    });
    if published {
        records.posts.push(PagePost {
            id: format!("{}_{}", state.config.page_id, 100_000 + n),
            message: description,
            link: None,
            photos: Vec::new(),
            video: Some(id.clone()),
            place: None,
            created_time: now(),
            application: Some(state.config.app_id.clone()),
            deleted: false,
            liked_by_page: false,
        });
    }
    HttpResponse::Ok().json(json!({ "id": id }))
}

fn post_call(
    state: &State,
    id: &str,
    method: &str,
    edge: Option<&str>,
    params: &[(String, String)],
) -> HttpResponse {
    let gone = state
        .records()
        .posts
        .iter()
        .any(|p| p.id == id && p.deleted);
    if gone {
        return does_not_exist(id);
    }
    match (method, edge) {
        ("GET", None) => {
            let records = state.records();
            match records.posts.iter().find(|p| p.id == id) {
                Some(post) => HttpResponse::Ok().json(post_json(state, &records, post)),
                None => does_not_exist(id),
            }
        }
        ("POST", None) => {
            let mut records = state.records();
            if let (Some(post), Some(message)) = (
                records.posts.iter_mut().find(|p| p.id == id),
                param(params, "message"),
            ) {
                post.message = message.to_string();
            }
            success()
        }
        ("DELETE", None) => {
            if let Some(post) = state.records().posts.iter_mut().find(|p| p.id == id) {
                post.deleted = true;
            }
            success()
        }
        ("GET", Some("comments")) => list_comments(state, id, params),
        ("POST", Some("comments")) => add_comment(state, id, None, params),
        ("POST" | "DELETE", Some("likes")) => {
            if let Some(post) = state.records().posts.iter_mut().find(|p| p.id == id) {
                post.liked_by_page = method == "POST";
            }
            success()
        }
        _ => invalid_param("Unsupported request"),
    }
}

fn comment_json(comment: &PageComment) -> Value {
    let mut item = json!({"id": comment.id, "message": comment.message,
        "created_time": iso(comment.created_time),
        "from": {"id": comment.from_id, "name": comment.from_name},
        "is_hidden": comment.hidden, "like_count": u64::from(comment.liked_by_page),
        "user_likes": comment.liked_by_page});
    if let Some(parent) = &comment.parent_id {
        item["parent"] = json!({"id": parent});
    }
    item
}

fn list_comments(state: &State, post_id: &str, params: &[(String, String)]) -> HttpResponse {
    let stream = param(params, "filter") == Some("stream");
    let records = state.records();
    let data: Vec<Value> = records
        .comments
        .iter()
        .filter(|c| c.post_id == post_id && !c.deleted && (stream || c.parent_id.is_none()))
        .take(limit(params, 25))
        .map(comment_json)
        .collect();
    HttpResponse::Ok().json(json!({ "data": data }))
}

fn add_comment(
    state: &State,
    post_id: &str,
    parent: Option<&str>,
    params: &[(String, String)],
) -> HttpResponse {
    let Some(message) = param(params, "message").filter(|m| !m.is_empty()) else {
        return invalid_param("A comment needs a message");
    };
    let n = state.next_number();
    let post_number = post_id.rsplit('_').next().unwrap_or(post_id);
    let id = format!("{post_number}_{}", 600_000 + n);
    state.records().comments.push(PageComment {
        id: id.clone(),
        post_id: post_id.to_string(),
        parent_id: parent.map(str::to_string),
        from_id: state.config.page_id.clone(),
        from_name: state.config.page_name.clone(),
        message: message.to_string(),
        created_time: now(),
        hidden: false,
        deleted: false,
        liked_by_page: false,
    });
    HttpResponse::Ok().json(json!({ "id": id }))
}

fn comment_call(
    state: &State,
    id: &str,
    method: &str,
    edge: Option<&str>,
    params: &[(String, String)],
) -> HttpResponse {
    let Some(comment) = state
        .records()
        .comments
        .iter()
        .find(|c| c.id == id && !c.deleted)
        .cloned()
    else {
        return does_not_exist(id);
    };
    let mut records = state.records();
    let Some(stored) = records.comments.iter_mut().find(|c| c.id == id) else {
        return does_not_exist(id);
    };
    match (method, edge) {
        ("GET", None) => HttpResponse::Ok().json(comment_json(&comment)),
        ("POST", None) => {
            if let Some(hidden) = param(params, "is_hidden") {
                if stored.from_id == state.config.page_id {
                    return graph_error(
                        400,
                        100,
                        None,
                        "(#100) The Page's own comments cannot be hidden",
                    );
                }
                stored.hidden = matches!(hidden, "true" | "1");
            }
            if let Some(message) = param(params, "message") {
                stored.message = message.to_string();
            }
            success()
        }
        ("DELETE", None) => {
            stored.deleted = true;
            success()
        }
        ("POST" | "DELETE", Some("likes")) => {
            stored.liked_by_page = method == "POST";
            success()
        }
        ("POST", Some("comments")) => {
            drop(records);
            // Replies hang under the top-level comment, as on Facebook.
            let parent = comment.parent_id.clone().unwrap_or(comment.id.clone());
            add_comment(state, &comment.post_id, Some(&parent), params)
        }
        ("GET", Some("comments")) => {
            let data: Vec<Value> = records
                .comments
                .iter()
                .filter(|c| c.parent_id.as_deref() == Some(id) && !c.deleted)
                .map(comment_json)
                .collect();
            HttpResponse::Ok().json(json!({ "data": data }))
        }
        _ => invalid_param("Unsupported request"),
    }
}

// --- Instagram ------------------------------------------------------------------------------

fn media_json(records: &Records, media: &Media) -> Value {
    let comments = records
        .media_comments
        .iter()
        .filter(|c| c.media_id == media.id && !c.deleted)
        .count();
    let product = if media.media_type == "VIDEO" {
        "REELS"
    } else {
        "FEED"
    };
    json!({"id": media.id, "caption": media.caption, "media_type": media.media_type,
        "media_product_type": product, "timestamp": iso(media.timestamp),
        "like_count": 0, "comments_count": comments,
        "permalink": format!("https://www.instagram.com/p/{}/", media.id)})
}

fn list_media(state: &State, params: &[(String, String)]) -> HttpResponse {
    let records = state.records();
    let data: Vec<Value> = records
        .media
        .iter()
        .rev()
        .filter(|m| !m.deleted)
        .take(limit(params, 25))
        .map(|m| media_json(&records, m))
        .collect();
    HttpResponse::Ok().json(json!({ "data": data }))
}

/// Checks `user_tags`: a JSON array of `{username, x, y}` with `x` and `y` in 0..=1.
fn user_tags(value: &str) -> Result<Value, String> {
    let tags: Value = serde_json::from_str(value).map_err(|e| e.to_string())?;
    let items = tags.as_array().ok_or("not an array")?;
    for tag in items {
        let in_unit = |k: &str| {
            tag.get(k)
                .and_then(Value::as_f64)
                .is_some_and(|v| (0.0..=1.0).contains(&v))
        };
        if tag.get("username").and_then(Value::as_str).is_none() || !in_unit("x") || !in_unit("y") {
            return Err(format!("a tag needs username, x and y in 0..1: {tag}"));
        }
    }
    Ok(tags)
}

async fn create_container(state: &State, params: &[(String, String)]) -> HttpResponse {
    let caption = param(params, "caption").map(str::to_string);
    if caption.as_ref().is_some_and(|c| c.chars().count() > 2_200) {
        return invalid_param("The caption is longer than 2200 characters");
    }
    let tags = match param(params, "user_tags").map(user_tags).transpose() {
        Ok(tags) => tags,
        Err(why) => {
            state.violations.record(format!("user_tags: {why}"));
            return invalid_param(&format!("Invalid user_tags: {why}"));
        }
    };
    let is_carousel_item = matches!(param(params, "is_carousel_item"), Some("true" | "1"));
    let location_id = match place_param(state, params, "location_id") {
        Ok(place) => place,
        Err(answer) => return *answer,
    };
    let n = state.next_number();
    let id = format!("{}", 17_900_000_000_000_000u64 + n);
    let mut container = Container {
        id: id.clone(),
        media_type: param(params, "media_type").unwrap_or("IMAGE").to_string(),
        image_url: None,
        video_url: None,
        bytes: Vec::new(),
        caption,
        is_carousel_item,
        children: Vec::new(),
        user_tags: tags,
        location_id,
        published_as: None,
        status_checks: 0,
    };
    match param(params, "media_type") {
        Some("CAROUSEL") => {
            let children: Vec<String> = param(params, "children")
                .unwrap_or_default()
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            if !(2..=10).contains(&children.len()) {
                return invalid_param("A carousel takes 2 to 10 children");
            }
            let records = state.records();
            for child in &children {
                if !records
                    .containers
                    .iter()
                    .any(|c| c.id == *child && c.is_carousel_item)
                {
                    return does_not_exist(child);
                }
            }
            container.children = children;
        }
        None | Some("IMAGE") => {
            let Some(url) = param(params, "image_url") else {
                return invalid_param("image_url is required for an image");
            };
            let (bytes, content_type) = match fetch(state, url, 9004).await {
                Ok(fetched) => fetched,
                Err(answer) => return answer,
            };
            if content_type != "image/jpeg" {
                return graph_error(
                    400,
                    9004,
                    Some(2_207_052),
                    "Only photo or video can be accepted as media type (JPEG images only)",
                );
            }
            container.image_url = Some(url.to_string());
            container.bytes = bytes;
        }
        Some("REELS") => {
            if is_carousel_item {
                return invalid_param("A reel is not a carousel item");
            }
            let Some(url) = param(params, "video_url") else {
                return invalid_param("video_url is required for a reel");
            };
            let (bytes, content_type) = match fetch(state, url, 9004).await {
                Ok(fetched) => fetched,
                Err(answer) => return answer,
            };
            let movie = matches!(content_type.as_str(), "video/mp4" | "video/quicktime");
            if !movie || !looks_like_video(&bytes) {
                return graph_error(
                    400,
                    9004,
                    Some(2_207_026),
                    "The video format is not supported. Please check spec for supported formats (MOV or MP4)",
                );
            }
            container.video_url = Some(url.to_string());
            container.bytes = bytes;
        }
        Some(other) => return invalid_param(&format!("media_type {other} is not served here")),
    }
    state.records().containers.push(container);
    HttpResponse::Ok().json(json!({ "id": id }))
}

/// A container's `status_code`: images are `FINISHED` at once; a reel is `IN_PROGRESS` the
/// first time it is asked about (Meta is transcoding it), `FINISHED` from then on.
fn container_status(state: &State, id: &str) -> HttpResponse {
    let mut records = state.records();
    let Some(container) = records.containers.iter_mut().find(|c| c.id == id) else {
        return does_not_exist(id);
    };
    container.status_checks += 1;
    let status = if container.published_as.is_some() {
        "PUBLISHED"
    } else if container.media_type == "REELS" && container.status_checks < 2 {
        "IN_PROGRESS"
    } else {
        "FINISHED"
    };
    HttpResponse::Ok().json(json!({"id": id, "status_code": status}))
}

fn publish(state: &State, params: &[(String, String)]) -> HttpResponse {
    let Some(creation) = param(params, "creation_id") else {
        return invalid_param("creation_id is required");
    };
    let n = state.next_number();
    let media_id = format!("{}", 17_890_000_000_000_000u64 + n);
    let mut records = state.records();
    let Some(container) = records
        .containers
        .iter_mut()
        .find(|c| c.id == creation && !c.is_carousel_item)
    else {
        return does_not_exist(creation);
    };
    if container.published_as.is_some() {
        return invalid_param("The media has already been published");
    }
    if container.media_type == "REELS" && container.status_checks < 2 {
        return graph_error(
            400,
            9007,
            Some(2_207_027),
            "(#9007) The media is not ready for publishing, please wait for a moment",
        );
    }
    container.published_as = Some(media_id.clone());
    let container = container.clone();
    let (media_type, images) = if container.media_type == "REELS" {
        ("VIDEO", vec![container.id.clone()])
    } else if container.children.is_empty() {
        ("IMAGE", vec![container.id.clone()])
    } else {
        ("CAROUSEL_ALBUM", container.children.clone())
    };
    let user_tags = container.user_tags.clone().or_else(|| {
        records
            .containers
            .iter()
            .find(|c| container.children.first() == Some(&c.id))
            .and_then(|c| c.user_tags.clone())
    });
    records.media.push(Media {
        id: media_id.clone(),
        caption: container.caption.unwrap_or_default(),
        media_type: media_type.into(),
        images,
        user_tags,
        location_id: container.location_id.clone(),
        timestamp: now(),
        deleted: false,
    });
    HttpResponse::Ok().json(json!({ "id": media_id }))
}

fn media_comment_json(comment: &MediaComment) -> Value {
    let mut item = json!({"id": comment.id, "text": comment.text,
        "timestamp": iso(comment.timestamp), "username": comment.username,
        "from": {"id": comment.from_id, "username": comment.username},
        "hidden": comment.hidden, "like_count": 0});
    if let Some(parent) = &comment.parent_id {
        item["parent_id"] = json!(parent);
    }
    item
}

fn media_call(
    state: &State,
    id: &str,
    method: &str,
    edge: Option<&str>,
    params: &[(String, String)],
) -> HttpResponse {
    let mut records = state.records();
    let Some(media) = records.media.iter_mut().find(|m| m.id == id && !m.deleted) else {
        return does_not_exist(id);
    };
    match (method, edge) {
        ("GET", None) => {
            let media = media.clone();
            HttpResponse::Ok().json(media_json(&records, &media))
        }
        ("DELETE", None) => {
            media.deleted = true;
            success()
        }
        ("GET", Some("comments")) => {
            let with_replies = param(params, "fields").is_some_and(|f| f.contains("replies"));
            let data: Vec<Value> = records
                .media_comments
                .iter()
                .filter(|c| c.media_id == id && c.parent_id.is_none() && !c.deleted)
                .map(|c| {
                    let mut item = media_comment_json(c);
                    if with_replies {
                        let replies: Vec<Value> = records
                            .media_comments
                            .iter()
                            .filter(|r| r.parent_id.as_deref() == Some(&c.id) && !r.deleted)
                            .map(media_comment_json)
                            .collect();
                        item["replies"] = json!({ "data": replies });
                    }
                    item
                })
                .collect();
            HttpResponse::Ok().json(json!({ "data": data }))
        }
        ("POST", Some("comments")) => {
            drop(records);
            add_media_comment(state, id, None, params)
        }
        _ => invalid_param("Unsupported request"),
    }
}

fn add_media_comment(
    state: &State,
    media_id: &str,
    parent: Option<&str>,
    params: &[(String, String)],
) -> HttpResponse {
    let Some(text) = param(params, "message").filter(|m| !m.is_empty()) else {
        return invalid_param("A comment needs a message");
    };
    let n = state.next_number();
    let id = format!("{}", 18_100_000_000_000_000u64 + n);
    state.records().media_comments.push(MediaComment {
        id: id.clone(),
        media_id: media_id.to_string(),
        parent_id: parent.map(str::to_string),
        from_id: state.config.ig_user_id.clone(),
        username: state.config.ig_username.clone(),
        text: text.to_string(),
        timestamp: now(),
        hidden: false,
        deleted: false,
    });
    HttpResponse::Ok().json(json!({ "id": id }))
}

fn media_comment_call(
    state: &State,
    id: &str,
    method: &str,
    edge: Option<&str>,
    params: &[(String, String)],
) -> HttpResponse {
    let mut records = state.records();
    let Some(comment) = records
        .media_comments
        .iter_mut()
        .find(|c| c.id == id && !c.deleted)
    else {
        return does_not_exist(id);
    };
    match (method, edge) {
        ("GET", None) => HttpResponse::Ok().json(media_comment_json(comment)),
        ("POST", None) => {
            let Some(hide) = param(params, "hide") else {
                return invalid_param("hide is required");
            };
            comment.hidden = matches!(hide, "true" | "1");
            success()
        }
        ("DELETE", None) => {
            comment.deleted = true;
            success()
        }
        ("POST", Some("replies")) => {
            if comment.parent_id.is_some() {
                return invalid_param("Replies can only answer a top-level comment");
            }
            let media = comment.media_id.clone();
            drop(records);
            add_media_comment(state, &media, Some(id), params)
        }
        _ => invalid_param("Unsupported request"),
    }
}

// --- OAuth ----------------------------------------------------------------------------------

async fn oauth_dialog(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    let params = params_of(&request, &[]);
    if param(&params, "client_id") != Some(state.config.app_id.as_str()) {
        return HttpResponse::BadRequest().body("Invalid App ID");
    }
    let Some(redirect) = param(&params, "redirect_uri").and_then(|u| reqwest::Url::parse(u).ok())
    else {
        return HttpResponse::BadRequest().body("redirect_uri is missing or not a URL");
    };
    if param(&params, "response_type").is_some_and(|t| t != "code") {
        return HttpResponse::BadRequest().body("response_type must be code");
    }
    let known: HashSet<&str> = [
        "pages_show_list",
        "pages_manage_posts",
        "pages_read_engagement",
        "pages_manage_engagement",
        "pages_manage_metadata",
        "instagram_basic",
        "instagram_content_publish",
        "instagram_manage_comments",
        "pages_messaging",
        "business_management",
        "public_profile",
        "email",
    ]
    .into_iter()
    .collect();
    for scope in param(&params, "scope").unwrap_or_default().split(',') {
        if !scope.trim().is_empty() && !known.contains(scope.trim()) {
            state
                .violations
                .record(format!("dialog/oauth: unknown scope `{scope}`"));
        }
    }
    let code = format!("AQD-code-{}", state.next_number());
    state
        .records()
        .codes
        .insert(code.clone(), redirect.to_string());
    let mut back = redirect;
    back.query_pairs_mut().append_pair("code", &code);
    if let Some(st) = param(&params, "state") {
        back.query_pairs_mut().append_pair("state", st);
    }
    // Meta appends `#_=_` to the redirect.
    HttpResponse::Found()
        .insert_header(("Location", format!("{back}#_=_")))
        .finish()
}

async fn access_token(
    state: web::Data<State>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let params = params_of(&request, &body);
    let c = &state.config;
    if param(&params, "client_id") != Some(c.app_id.as_str())
        || param(&params, "client_secret") != Some(c.app_secret.as_str())
    {
        return graph_error(400, 101, None, "Error validating client secret.");
    }
    let lifetime = 5_183_944;
    if param(&params, "grant_type") == Some("fb_exchange_token") {
        return match param(&params, "fb_exchange_token") {
            Some(t) if t == c.user_token || t == c.long_lived_user_token => HttpResponse::Ok()
                .json(
                    json!({"access_token": c.long_lived_user_token, "token_type": "bearer",
                    "expires_in": lifetime}),
                ),
            _ => invalid_token(),
        };
    }
    let Some(code) = param(&params, "code") else {
        return invalid_param("Missing code parameter");
    };
    let issued = state.records().codes.remove(code);
    match issued {
        Some(redirect) if param(&params, "redirect_uri") == Some(redirect.as_str()) => {
            HttpResponse::Ok().json(json!({"access_token": c.user_token, "token_type": "bearer",
                "expires_in": lifetime}))
        }
        Some(_) => graph_error(
            400,
            100,
            Some(36008),
            "Error validating verification code. Please make sure your redirect_uri is identical \
             to the one you used in the OAuth dialog request",
        ),
        None => graph_error(
            400,
            100,
            Some(36009),
            "This authorization code has been used or is invalid.",
        ),
    }
}
