//! X and YouTube profiles through the whole application on a real listener, against the
//! sandbox's fakes. X: the owner connects an account by token (the app's webhook registered
//! through a CRC our hook answers, the account subscribed), a scheduled post is published
//! once, a person's reply delivered twice lands in the inbox once, the operator's answer goes
//! out as a reply, replies are liked and hidden, and what X does not allow is refused with
//! its reason. YouTube: the owner connects a channel, its videos come with their statistics,
//! a comment read by polling (`list_comments`, as the poller does) lands in the inbox, the
//! operator's answer goes into the comment's thread, a comment is held for review, and
//! publishing text or rating comments (likes and dislikes) is refused with YouTube's reasons;
//! a video of the media library (its type sniffed from its bytes, within its own size limit)
//! is published once through the resumable upload, its title and description made from the
//! post; a published video is disliked and the dislike taken back, now, at a time (once) and
//! by a rule, by those who may moderate the channel.

use std::time::{Duration, Instant};

use actix_web::HttpServer;
use chrono::Utc;
use omnihub::social::inbound::{self, Profile};
use omnihub_connectors::social::{Network, thread_id};
use omnihub_core::ChannelId;
use omnihub_sandbox::x::{XConfig, XSandbox};
use omnihub_sandbox::youtube::{YoutubeConfig, YoutubeSandbox};
use serde_json::{Value, json};

use crate::support::{Options, Who, World};

const PERSON_X: &str = "1600000000000000007";
const PERSON_YT: &str = "UCpersonChannel00000042";
/// `[media] max_video_bytes` in these tests.
const MAX_VIDEO_BYTES: u64 = 64 * 1024;

/// How many files are under `dir`, however deep.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { files_under(&path) } else { 1 }
        })
        .sum()
}

/// An MP4 file's first box (`ftyp`, brand `isom`) and some bytes of "movie".
fn mp4(len: usize) -> Vec<u8> {
    let mut bytes = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    bytes.extend((0..len).map(|i| (i % 251) as u8));
    bytes
}

struct App {
    w: World,
    base: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for App {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

impl App {
    /// The application on a loopback port that is also its public URL, so the fakes'
    /// webhooks reach it.
    async fn start(label: &str, x: Option<&XSandbox>, youtube: Option<&YoutubeSandbox>) -> App {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut options = Options::default();
        if let Some(x) = x {
            options.providers.x_api = x.base_url();
            options.social.x_client_id = x.config().client_id.clone();
            options.social.x_client_secret =
                omnihub::config::Secret::new(x.config().client_secret.clone());
            options.providers.x_oauth_authorize = x.authorize_url();
            options.providers.x_oauth_token = x.token_url();
        }
        if let Some(youtube) = youtube {
            options.providers.youtube_api = youtube.base_url();
            options.social.google_client_id = youtube.config().client_id.clone();
            options.social.google_client_secret =
                omnihub::config::Secret::new(youtube.config().client_secret.clone());
            options.providers.google_oauth_authorize = youtube.authorize_url();
            options.providers.google_oauth_token = youtube.token_url();
        }
        options.max_video_bytes = MAX_VIDEO_BYTES;
        options.public_url = Some(base.clone());
        let w = World::with(label, options).await;
        let state = w.state.clone();
        let server = HttpServer::new(move || omnihub::create_app(state.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .unwrap()
            .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        App { w, base, handle }
    }

    async fn connect(&self, network: &str, external_id: &str, token: &str) -> Value {
        let r = self
            .w
            .post(
                Who::Session(&self.w.a.owner),
                "/api/v1/social/profiles",
                json!({ "network": network, "external_id": external_id, "access_token": token }),
            )
            .await;
        r.assert_status(201);
        assert!(!r.text().contains(token), "tokens never come back");
        r.json()
    }

    /// Adds a file to the media library as the owner.
    async fn upload(&self, file_name: &str, mime: &str, bytes: &[u8]) -> crate::support::Resp {
        self.w
            .upload_file(
                Who::Session(&self.w.a.owner),
                "/api/v1/social/media",
                file_name,
                mime,
                bytes,
            )
            .await
    }

    async fn library(&self) -> Vec<Value> {
        let r = self
            .w
            .get(Who::Session(&self.w.a.owner), "/api/v1/social/media")
            .await;
        r.assert_status(200);
        r.json()["items"].as_array().unwrap().clone()
    }

    async fn until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !check().await {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes a post as the owner (201), submits and approves it; its id.
    async fn approved_post(&self, body: Value) -> String {
        let r = self
            .w
            .post(Who::Session(&self.w.a.owner), "/api/v1/social/posts", body)
            .await;
        r.assert_status(201);
        let id = r.json()["id"].as_str().unwrap().to_string();
        self.step(&id, "submit", json!({})).await;
        self.step(&id, "approve", json!({})).await;
        id
    }

    async fn step(&self, id: &str, step: &str, body: Value) -> Value {
        let r = self
            .w
            .post(
                Who::Session(&self.w.a.owner),
                &format!("/api/v1/social/posts/{id}/{step}"),
                body,
            )
            .await;
        assert!(r.status < 300, "{step}: {} {}", r.status, r.text());
        r.json()
    }

    async fn messages(&self, conversation: &str) -> Vec<Value> {
        let r = self
            .w
            .get(
                Who::Session(&self.w.a.owner),
                &format!("/api/v1/conversations/{conversation}/messages"),
            )
            .await;
        r.assert_status(200);
        r.json()["items"].as_array().unwrap().clone()
    }
}

/// A browser that does not follow redirects, so each hop of an OAuth flow can be looked at.
/// A YouTube fake, an app on it, and the fake's channel connected by its owner's token.
async fn youtube_app(name: &str) -> (YoutubeSandbox, App, Value) {
    let yt = YoutubeSandbox::start(YoutubeConfig::default())
        .await
        .unwrap();
    let s = App::start(name, None, Some(&yt)).await;
    let profile = s
        .connect(
            "youtube",
            &yt.config().channel_id,
            &yt.config().access_token,
        )
        .await;
    (yt, s, profile)
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

impl App {
    /// The owner starts connecting `network`; the network's page approves and the browser comes
    /// back to omnihub. Checks a forged state is refused first, and answers the authorization
    /// URL's parameters and the sealed grant of the connect page.
    async fn authorize(
        &self,
        network: &str,
        authorize_url: &str,
        token_requests: impl Fn() -> usize,
    ) -> (std::collections::HashMap<String, String>, String) {
        let owner = Who::Session(&self.w.a.owner);
        let r = self
            .w
            .post(
                owner,
                &format!("/api/v1/social/oauth/{network}/start"),
                json!({}),
            )
            .await;
        r.assert_status(200);
        let authorize = r.json()["authorize_url"].as_str().unwrap().to_string();
        assert!(authorize.starts_with(authorize_url), "{authorize}");
        let asked = query_of(&authorize);
        let browser = browser();
        let answer = browser.get(&authorize).send().await.unwrap();
        assert_eq!(answer.status(), 302, "{:?}", answer.text().await);
        let back = location(&answer);
        assert!(
            back.starts_with(&format!("{}/oauth/social/{network}/callback?", self.base)),
            "{back}"
        );

        // A state altered on the way is refused before any exchange.
        let forged = back.replace("state=", "state=A");
        let r = browser.get(&forged).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), "/social/connect?error=invalid_state");
        // So is a state made for another network.
        let elsewhere = back.replace(&format!("/social/{network}/"), "/social/vk/");
        let r = browser.get(&elsewhere).send().await.unwrap();
        assert_eq!(location(&r), "/social/connect?error=invalid_state");
        assert_eq!(token_requests(), 0);

        let r = browser.get(&back).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let connect_page = location(&r);
        let grant = connect_page
            .strip_prefix("/social/connect?grant=")
            .unwrap_or_else(|| panic!("{connect_page}"))
            .to_string();
        assert!(
            !grant.contains("access-") && !grant.contains("refresh-"),
            "the tokens travel sealed"
        );
        // The code is good once.
        let again = location(&browser.get(&back).send().await.unwrap());
        assert!(
            again.starts_with("/social/connect?error=refused&detail="),
            "{again}"
        );
        (asked, grant)
    }

    /// Lists what the grant manages (only for its person), then connects `external_id` with it.
    async fn connect_granted(&self, grant: &str, external_id: &str, name: &str) -> Value {
        let owner = Who::Session(&self.w.a.owner);
        let path = format!("/api/v1/social/oauth/grants/{grant}");
        for other in [&self.w.a.manager, &self.w.b.owner] {
            self.w
                .get(Who::Session(other), &path)
                .await
                .assert_status(400);
        }
        let r = self.w.get(owner, &path).await;
        r.assert_status(200);
        let listed = r.json();
        assert_eq!(
            listed["profiles"],
            json!([{"external_id": external_id, "name": name}]),
            "{listed}"
        );
        let r = self
            .w
            .post(
                owner,
                &format!("{path}/connect"),
                json!({"external_ids": [external_id]}),
            )
            .await;
        r.assert_status(201);
        assert!(
            !r.text().contains("access-") && !r.text().contains("refresh-"),
            "tokens never come back: {}",
            r.text()
        );
        let connected = r.json();
        assert_eq!(connected["failed"], json!([]), "{connected}");
        let profile = connected["profiles"][0].clone();
        assert_eq!(profile["status"], "active", "{connected}");
        profile
    }

    /// The profile's token, granted expiring within minutes, is refreshed once when it is
    /// connected and once more before each use (two reads of its posts): `refreshes` counts
    /// the fake's accepted refresh requests.
    async fn each_use_refreshes_once(&self, id: &str, refreshes: impl Fn() -> usize) {
        let owner = Who::Session(&self.w.a.owner);
        let after_connect = refreshes();
        assert_eq!(after_connect, 1);
        for round in 1..=2 {
            self.w
                .get(owner, &format!("/api/v1/social/profiles/{id}/posts"))
                .await
                .assert_status(200);
            assert_eq!(refreshes(), after_connect + round);
        }
    }

    /// The stored profile as the API lists it, checked to carry no token.
    async fn listed_profile(&self, id: &str) -> Value {
        let r = self
            .w
            .get(Who::Session(&self.w.a.owner), "/api/v1/social/profiles")
            .await;
        r.assert_status(200);
        assert!(!r.text().contains("access-") && !r.text().contains("refresh-"));
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap()
    }
}

#[actix_web::test]
async fn an_x_account_connected_through_oauth_keeps_its_rotating_refresh_token() {
    // Tokens that lapse in two minutes: inside the refresh margin at once.
    let x = XSandbox::start(XConfig {
        oauth_token_ttl_secs: 120,
        ..XConfig::default()
    })
    .await
    .unwrap();
    let s = App::start("social-x-oauth", Some(&x), None).await;
    let token_requests = || x.oauth_requests().len();
    let (asked, grant) = s.authorize("x", &x.authorize_url(), token_requests).await;
    // PKCE with S256, and the scopes that let omnihub work and refresh.
    assert_eq!(asked["code_challenge_method"], "S256");
    let scopes: Vec<&str> = asked["scope"].split(' ').collect();
    for needed in ["tweet.write", "like.write", "offline.access"] {
        assert!(scopes.contains(&needed), "{scopes:?}");
    }
    // The exchange authenticated the confidential client (HTTP Basic) and sent the verifier.
    let requests = x.oauth_requests();
    assert_eq!(
        requests.len(),
        2,
        "the exchange, then the reused code: {requests:?}"
    );
    assert!(requests[0].accepted && !requests[1].accepted);

    let profile = s
        .connect_granted(&grant, &x.config().user_id, "Sandbox Shop (@sandbox_shop)")
        .await;
    let id = profile["id"].as_str().unwrap().to_string();
    // The account's events were set up with the granted token.
    assert_eq!(x.webhooks().len(), 1);

    // Each use within five minutes of the expiry refreshes first; X rotates the refresh token
    // and refuses a used one, so every refresh succeeding shows the new one was kept.
    let refreshes = || {
        let all: Vec<_> = x
            .oauth_requests()
            .into_iter()
            .filter(|r| r.grant_type == "refresh_token")
            .collect();
        assert!(all.iter().all(|r| r.accepted), "{all:?}");
        all.len()
    };
    s.each_use_refreshes_once(&id, refreshes).await;
    let grants = x.grants();
    assert_eq!(grants.len(), 1, "only the latest refresh token is alive");
    let stored = s.listed_profile(&id).await;
    assert_eq!(stored["status"], "active");
    let expires: chrono::DateTime<Utc> = stored["token_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires > Utc::now() && expires < Utc::now() + chrono::Duration::minutes(3));
    assert_eq!(x.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn a_youtube_channel_connected_through_google_oauth_refreshes_with_its_offline_token() {
    let yt = YoutubeSandbox::start(YoutubeConfig {
        oauth_token_ttl_secs: 120,
        ..YoutubeConfig::default()
    })
    .await
    .unwrap();
    let s = App::start("social-youtube-oauth", None, Some(&yt)).await;
    let token_requests = || yt.oauth_requests().len();
    let (asked, grant) = s
        .authorize("youtube", &yt.authorize_url(), token_requests)
        .await;
    // Offline access, asked with consent, is what makes Google issue a refresh token.
    assert_eq!(asked["access_type"], "offline");
    assert_eq!(asked["prompt"], "consent");
    assert_eq!(
        asked["scope"],
        "https://www.googleapis.com/auth/youtube.force-ssl"
    );

    let profile = s
        .connect_granted(&grant, &yt.config().channel_id, "Sandbox Channel")
        .await;
    let id = profile["id"].as_str().unwrap().to_string();

    // Google keeps the refresh token (a refresh answers none), so the one from the exchange
    // serves every refresh.
    let refreshes = || {
        let all: Vec<_> = yt
            .oauth_requests()
            .into_iter()
            .filter(|r| r.grant_type == "refresh_token")
            .collect();
        assert!(all.iter().all(|r| r.accepted), "{all:?}");
        all.len()
    };
    s.each_use_refreshes_once(&id, refreshes).await;
    let grants = yt.grants();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let stored = s.listed_profile(&id).await;
    assert_eq!(stored["status"], "active");
    assert!(stored["token_expires_at"].is_string(), "{stored}");
    assert_eq!(yt.violations(), Vec::<String>::new());
}

/// Now plus `secs` as a Moscow wall-clock time (UTC+3 all year since 2014).
fn moscow_in(secs: i64) -> String {
    let at = Utc::now() + chrono::Duration::seconds(secs) + chrono::Duration::hours(3);
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[actix_web::test]
async fn an_x_account_publishes_once_and_its_replies_are_answered_from_the_inbox() {
    let x = XSandbox::start(XConfig::default()).await.unwrap();
    let s = App::start("social-x", Some(&x), None).await;
    let owner = Who::Session(&s.w.a.owner);
    let profile = s
        .connect("x", &x.config().user_id, &x.config().access_token)
        .await;
    assert_eq!(profile["status"], "active", "{profile}");
    assert_eq!(profile["name"], "Sandbox Shop (@sandbox_shop)");
    let profile = profile["id"].as_str().unwrap().to_string();
    let hooks = x.webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].url, format!("{}/hooks/social/x/{profile}", s.base));
    assert!(hooks[0].valid, "our hook answered X's CRC");
    assert!(x.subscribed(&hooks[0].id));

    // Longer than X takes is refused before anything is scheduled.
    s.w.post(
        owner,
        "/api/v1/social/posts",
        json!({ "content": { "text": "x".repeat(281) }, "targets": [{ "profile_id": profile }] }),
    )
    .await
    .assert_error(400, "validation_failed");
    let id = s
        .approved_post(
            json!({ "content": { "text": "Spring drop", "hashtags": ["sale"] },
                "targets": [{ "profile_id": profile }] }),
        )
        .await;
    s.step(
        &id,
        "schedule",
        json!({ "at": moscow_in(2), "time_zone": "Europe/Moscow" }),
    )
    .await;
    s.until("the post to be published", || async {
        s.w.get(owner, &format!("/api/v1/social/posts/{id}"))
            .await
            .json()["status"]
            == "published"
    })
    .await;
    let posts = x.own_posts();
    assert_eq!(posts.len(), 1, "published exactly once");
    assert_eq!(posts[0].text, "Spring drop\n\n#sale");
    let remote = posts[0].id.clone();

    // A person replies; X delivers it twice; one conversation with one message.
    let (reply, deliveries) = x
        .person_replies(&remote, PERSON_X, "buyer", "Is M in stock?")
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].accepted(), "{:?}", deliveries[0]);
    assert!(x.redeliver(&deliveries[0]).await.accepted());
    let r =
        s.w.get(owner, &format!("/api/v1/social/posts/{id}/comments"))
            .await;
    let threads = r.json()["conversation_ids"].as_array().unwrap().clone();
    assert_eq!(threads.len(), 1);
    let conversation = threads[0].as_str().unwrap().to_string();
    let messages = s.messages(&conversation).await;
    assert_eq!(messages.len(), 1, "a redelivery adds nothing");
    assert_eq!(messages[0]["text"], "Is M in stock?");
    let comment_message = messages[0]["id"].as_str().unwrap().to_string();

    // A forged delivery is refused.
    let forged = x
        .deliver_forged(&deliveries[0].url, &deliveries[0].body)
        .await;
    assert_eq!(forged.status, Some(401));

    // The operator's answer goes out as a reply to the person's reply.
    s.w.post(
        owner,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({ "text": "Yes, come by!", "idempotency_key": "x-reply-1" }),
    )
    .await
    .assert_status(201);
    s.until("the reply on X", || async {
        x.tweets().iter().any(|t| t.text == "Yes, come by!")
    })
    .await;
    let answer = x
        .tweets()
        .into_iter()
        .find(|t| t.text == "Yes, come by!")
        .unwrap();
    assert_eq!(answer.author_id, x.config().user_id);
    assert_eq!(
        answer.in_reply_to.as_ref().map(|(id, _)| id.as_str()),
        Some(reply.as_str())
    );

    // Moderation: like and hide the reply; deleting someone's reply is not X's.
    let actions = format!("/api/v1/social/comments/{comment_message}/actions");
    let act = |action: &str| s.w.post(owner, &actions, json!({ "action": action }));
    act("like").await.assert_status(202);
    s.until("the like", || async { x.tweet(&reply).unwrap().likes == 1 })
        .await;
    act("hide").await.assert_status(202);
    s.until("the hidden reply", || async {
        x.tweet(&reply).unwrap().hidden
    })
    .await;
    let refused = act("delete").await;
    refused.assert_error(422, "unsupported_by_network");
    assert!(refused.text().contains("author"), "{}", refused.text());

    // A like of the post, and its counters back with the profile's posts.
    s.w.post(
        owner,
        &format!("/api/v1/social/posts/{id}/actions"),
        json!({ "action": "like" }),
    )
    .await
    .assert_status(202);
    s.until("the post's like", || async {
        x.tweet(&remote).unwrap().likes == 1
    })
    .await;
    let r =
        s.w.get(owner, &format!("/api/v1/social/profiles/{profile}/posts"))
            .await;
    r.assert_status(200);
    // The account's timeline holds its replies too.
    let listed = r.json();
    let ours = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == remote.as_str())
        .unwrap();
    assert_eq!(ours["likes"], 1);
    assert_eq!(ours["post_id"], id.as_str());
    assert_eq!(x.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn a_youtube_channel_answers_polled_comments_and_refuses_what_youtube_cannot_do() {
    let (yt, s, profile) = youtube_app("social-youtube").await;
    let owner = Who::Session(&s.w.a.owner);
    assert_eq!(profile["status"], "active", "{profile}");
    assert_eq!(profile["name"], "Sandbox Channel");
    let profile_id: ChannelId = profile["id"].as_str().unwrap().parse().unwrap();

    let video = yt.seed_video("Spring collection", "Everything new");
    let question = yt
        .person_comments(&video, PERSON_YT, "Buyer", "Is there size M?", None)
        .unwrap();
    let r =
        s.w.get(
            owner,
            &format!("/api/v1/social/profiles/{profile_id}/posts"),
        )
        .await;
    r.assert_status(200);
    let listed = r.json();
    assert_eq!(listed[0]["id"], video.as_str());
    assert_eq!(listed[0]["comments"], 1);

    // What the poller does: read the comments and hand each over, twice over.
    let client = s.w.a.client.id;
    let network = s.w.state.social.network(client, profile_id).await.unwrap();
    let comments = network.list_comments(&video).await.unwrap();
    assert_eq!(comments.len(), 1);
    for _ in 0..2 {
        for comment in comments.clone() {
            inbound::comment_arrived(
                &s.w.state.hub,
                &s.w.state.store,
                Profile {
                    client,
                    id: profile_id,
                    network: Network::Youtube,
                },
                comment,
            )
            .await
            .unwrap();
        }
    }
    let conversation =
        s.w.state
            .store
            .conversation_by_external_id(client, profile_id, &thread_id(&video, PERSON_YT))
            .await
            .unwrap()
            .unwrap()
            .to_string();
    let messages = s.messages(&conversation).await;
    assert_eq!(messages.len(), 1, "a comment read twice is one message");
    assert_eq!(messages[0]["text"], "Is there size M?");
    let comment_message = messages[0]["id"].as_str().unwrap().to_string();

    // The operator's answer goes into the comment's thread.
    s.w.post(
        owner,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({ "text": "Yes, all sizes", "idempotency_key": "yt-reply-1" }),
    )
    .await
    .assert_status(201);
    s.until("the reply on YouTube", || async {
        yt.comments().iter().any(|c| c.text == "Yes, all sizes")
    })
    .await;
    let answer = yt
        .comments()
        .into_iter()
        .find(|c| c.text == "Yes, all sizes")
        .unwrap();
    assert_eq!(answer.parent_id.as_deref(), Some(question.as_str()));
    assert_eq!(answer.author_channel_id, yt.config().channel_id);

    // Hiding holds the comment for review; comments cannot be rated on YouTube.
    let actions = format!("/api/v1/social/comments/{comment_message}/actions");
    s.w.post(owner, &actions, json!({ "action": "hide" }))
        .await
        .assert_status(202);
    s.until("the held comment", || async {
        yt.comment(&question).unwrap().moderation_status == "heldForReview"
    })
    .await;
    for action in ["like", "dislike", "undislike"] {
        let refused = s.w.post(owner, &actions, json!({ "action": action })).await;
        refused.assert_error(422, "unsupported_by_network");
        assert!(
            refused.text().contains("rate comments"),
            "{action}: {}",
            refused.text()
        );
    }

    // A channel's posts are videos: a text post is refused with the reason.
    let r =
        s.w.post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": "Hello" }, "targets": [{ "profile_id": profile_id }] }),
        )
        .await;
    r.assert_error(422, "unsupported_by_network");
    assert!(r.text().contains("videos"), "{}", r.text());
    assert_eq!(yt.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn a_video_of_the_library_is_uploaded_to_youtube_once() {
    let (yt, s, profile) = youtube_app("social-youtube-video").await;
    let owner = Who::Session(&s.w.a.owner);
    let profile_id: ChannelId = profile["id"].as_str().unwrap().parse().unwrap();

    // The bytes decide: an MP4 declared as text is a video; a page declared as MP4 is
    // refused; a video over `max_video_bytes` is refused and nothing is kept.
    let clip = mp4(40 * 1024);
    let r = s.upload("clip.txt", "text/plain", &clip).await;
    r.assert_status(201);
    let video = r.json();
    assert_eq!(video["mime_type"], "video/mp4");
    assert_eq!(video["kind"], "video");
    assert_eq!(video["size"], clip.len());
    let media_dir = s.w.state.config.media_dir();
    let kept = files_under(&media_dir);
    assert_eq!(kept, 1, "the video is under {}", media_dir.display());
    s.upload(
        "page.mp4",
        "video/mp4",
        b"<html><script>alert(1)</script></html>",
    )
    .await
    .assert_error(415, "unsupported_media_type");
    s.upload("big.mp4", "video/mp4", &mp4(MAX_VIDEO_BYTES as usize))
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(
        files_under(&media_dir),
        kept,
        "refused files leave nothing behind"
    );
    let webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87\x81\x04";
    let r = s
        .upload("clip.webm", "application/octet-stream", webm)
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["mime_type"], "video/webm");
    let library = s.library().await;
    assert_eq!(
        library.len(),
        2,
        "the refused files left nothing: {library:?}"
    );
    assert!(library.iter().all(|m| m["kind"] == "video"));

    // Two videos are more than a YouTube post takes.
    let two = json!({ "content": { "text": "Two", "media": [video["id"], library[0]["id"]] },
        "targets": [{ "profile_id": profile_id }] });
    s.w.post(owner, "/api/v1/social/posts", two)
        .await
        .assert_error(400, "validation_failed");

    // One video with its text, link, hashtags and mentions, unlisted.
    let id = s
        .approved_post(json!({ "content": {
                    "text": "Spring collection\nEverything new this week.",
                    "link": "https://shop.example/spring",
                    "hashtags": ["spring"],
                    "mentions": ["friendshop"],
                    "media": [video["id"]],
                    "video_privacy": "unlisted" },
                "targets": [{ "profile_id": profile_id }] }))
        .await;
    let r =
        s.w.post(
            owner,
            &format!("/api/v1/social/posts/{id}/publish"),
            json!({}),
        )
        .await;
    r.assert_status(202);
    s.until("the video to be published", || async {
        s.w.get(owner, &format!("/api/v1/social/posts/{id}"))
            .await
            .json()["status"]
            == "published"
    })
    .await;
    let videos = yt.videos();
    assert_eq!(videos.len(), 1, "uploaded exactly once");
    let uploaded = &videos[0];
    assert_eq!(uploaded.title, "Spring collection");
    assert_eq!(
        uploaded.description,
        "Spring collection\nEverything new this week.\n\nhttps://shop.example/spring\n\n@friendshop\n\n#spring"
    );
    assert_eq!(uploaded.privacy_status, "unlisted");
    assert_eq!(uploaded.content_type, "video/mp4");
    assert_eq!(uploaded.bytes, clip, "the library's bytes, as uploaded");
    assert_eq!(yt.calls("youtube.videos.insert"), 1);
    let post =
        s.w.get(owner, &format!("/api/v1/social/posts/{id}"))
            .await
            .json();
    assert_eq!(post["targets"][0]["remote_id"], uploaded.id.as_str());

    // The video is listed with the channel's posts from then on.
    let r =
        s.w.get(
            owner,
            &format!("/api/v1/social/profiles/{profile_id}/posts"),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json()[0]["id"], uploaded.id.as_str());
    assert_eq!(r.json()[0]["post_id"], id.as_str());

    // Publishing again after an answer was lost finds the upload instead of repeating it.
    let client = s.w.a.client.id;
    let network = s.w.state.social.network(client, profile_id).await.unwrap();
    let stored =
        s.w.state
            .store
            .get_social_post(client, id.parse().unwrap())
            .await
            .unwrap();
    let content = omnihub::social::SocialService::content_on(&stored, profile_id);
    let wire =
        s.w.state
            .social
            .wire(
                client,
                omnihub_connectors::social::Network::Youtube,
                &content,
            )
            .await
            .unwrap();
    let again = network.create_post(&wire, "retry").await.unwrap();
    assert_eq!(again, uploaded.id);
    assert_eq!(yt.calls("youtube.videos.insert"), 1);
    assert_eq!(yt.videos().len(), 1);

    // A quota refusal is transient: the scheduler tries again later.
    yt.fail_next("youtube.videos.insert", "quotaExceeded");
    let other = omnihub_connectors::social::PostContent {
        text: "Another one".into(),
        ..wire
    };
    let err = network.create_post(&other, "other").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(yt.videos().len(), 1);
    assert_eq!(yt.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn a_published_video_is_disliked_and_the_dislike_taken_back() {
    let (yt, s, profile) = youtube_app("social-youtube-dislike").await;
    let owner = Who::Session(&s.w.a.owner);
    let profile_id: ChannelId = profile["id"].as_str().unwrap().parse().unwrap();

    // A video of the library, published.
    let r = s.upload("clip.mp4", "video/mp4", &mp4(1024)).await;
    r.assert_status(201);
    let media = r.json()["id"].clone();
    let id = s
        .approved_post(
            json!({ "content": { "text": "Spring collection", "media": [media] },
                "targets": [{ "profile_id": profile_id }] }),
        )
        .await;
    s.step(&id, "publish", json!({})).await;
    s.until("the video to be published", || async {
        s.w.get(owner, &format!("/api/v1/social/posts/{id}"))
            .await
            .json()["status"]
            == "published"
    })
    .await;
    let rating = || yt.videos()[0].rating.clone();
    assert_eq!(rating(), "none");
    let actions = format!("/api/v1/social/posts/{id}/actions");

    // Disliking needs `moderate` on the profile, as liking does.
    let plain = &s.w.a.plain;
    let grant = async |rights: omnihub_core::ChannelRights| {
        s.w.store
            .set_channel_grants(
                s.w.a.client.id,
                plain.user.id,
                &[omnihub_core::model::ChannelGrant {
                    channel_id: profile_id,
                    rights,
                }],
            )
            .await
            .unwrap();
        s.w.state.auth_cache.invalidate_user(plain.user.id);
    };
    grant(omnihub_core::ChannelRights::READ | omnihub_core::ChannelRights::PUBLISH).await;
    for action in ["like", "dislike", "undislike"] {
        s.w.post(Who::Session(plain), &actions, json!({ "action": action }))
            .await
            .assert_error(403, "forbidden");
    }
    grant(omnihub_core::ChannelRights::READ | omnihub_core::ChannelRights::MODERATE).await;

    // Disliked now: the channel's rating of the video is a dislike, counted once.
    let r =
        s.w.post(
            Who::Session(plain),
            &actions,
            json!({ "action": "dislike" }),
        )
        .await;
    r.assert_status(202);
    assert_eq!(r.json()[0]["kind"], "social.dislike");
    s.until("the dislike", || async { rating() == "dislike" })
        .await;
    assert_eq!((yt.videos()[0].dislikes, yt.videos()[0].likes), (1, 0));
    // Taken back: no rating at all.
    s.w.post(owner, &actions, json!({ "action": "undislike" }))
        .await
        .assert_status(202);
    s.until("the dislike taken back", || async { rating() == "none" })
        .await;
    assert_eq!(yt.videos()[0].dislikes, 0);

    // A dislike at a wall-clock time fires once, at its time.
    let rates = yt.calls("youtube.videos.rate");
    let r =
        s.w.post(
            owner,
            &actions,
            json!({ "action": "dislike",
                "when": { "at": moscow_in(2), "time_zone": "Europe/Moscow" } }),
        )
        .await;
    r.assert_status(202);
    let task = r.json()[0]["id"].as_str().unwrap().to_string();
    assert_eq!(rating(), "none", "not before its time");
    s.until("the scheduled dislike", || async { rating() == "dislike" })
        .await;
    s.until("its task to be done", || async {
        s.w.get(owner, &format!("/api/v1/tasks/{task}"))
            .await
            .json()["status"]
            == "done"
    })
    .await;
    let done =
        s.w.get(owner, "/api/v1/tasks?kind=social.dislike")
            .await
            .json();
    assert_eq!(done["items"].as_array().unwrap().len(), 2, "{done}");
    assert_eq!(yt.calls("youtube.videos.rate"), rates + 1, "fired once");
    assert_eq!(yt.videos()[0].dislikes, 1);

    // Taking back a like leaves the dislike alone.
    s.w.post(owner, &actions, json!({ "action": "unlike" }))
        .await
        .assert_status(202);
    s.until("the unlike to be done", || async {
        let tasks =
            s.w.get(owner, "/api/v1/tasks?kind=social.unlike")
                .await
                .json();
        tasks["items"][0]["status"] == "done"
    })
    .await;
    assert_eq!(rating(), "dislike");

    // A rule for any profile: videos tagged #ads are disliked when they appear.
    s.w.post(
        owner,
        "/api/v1/triggers",
        json!({ "name": "Ads", "condition": { "kind": "hashtag", "hashtag": "#ads" },
            "action": { "kind": "dislike" } }),
    )
    .await
    .assert_status(201);
    let tagged = yt.seed_video("Buy now", "#ads everywhere");
    let video =
        s.w.state
            .social
            .network(s.w.a.client.id, profile_id)
            .await
            .unwrap()
            .list_posts(10)
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.id == tagged)
            .unwrap();
    let seen = Profile {
        client: s.w.a.client.id,
        id: profile_id,
        network: Network::Youtube,
    };
    for _ in 0..2 {
        inbound::post_arrived(&s.w.state.hub, seen, video.clone())
            .await
            .unwrap();
    }
    s.until("the triggered dislike", || async {
        yt.videos()
            .iter()
            .any(|v| v.id == tagged && v.rating == "dislike")
    })
    .await;
    assert_eq!(yt.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn an_x_post_carries_a_video_once_x_has_processed_it() {
    let x = XSandbox::start(XConfig::default()).await.unwrap();
    let s = App::start("social-x-video", Some(&x), None).await;
    let owner = Who::Session(&s.w.a.owner);
    let profile = s
        .connect("x", &x.config().user_id, &x.config().access_token)
        .await;
    let profile = profile["id"].as_str().unwrap().to_string();
    let clip = mp4(20 * 1024);
    let r = s.upload("clip.mp4", "video/mp4", &clip).await;
    r.assert_status(201);
    let video = r.json()["id"].as_str().unwrap().to_string();
    let id = s
        .approved_post(
            json!({ "content": { "text": "Spring in motion", "media": [video] },
                "targets": [{ "profile_id": profile }] }),
        )
        .await;
    s.w.post(
        owner,
        &format!("/api/v1/social/posts/{id}/publish"),
        json!({}),
    )
    .await
    .assert_status(202);
    s.until("the post to be published", || async {
        s.w.get(owner, &format!("/api/v1/social/posts/{id}"))
            .await
            .json()["status"]
            == "published"
    })
    .await;
    let posts = x.own_posts();
    assert_eq!(posts.len(), 1, "published exactly once");
    assert_eq!(posts[0].text, "Spring in motion");
    assert_eq!(posts[0].media_ids.len(), 1);
    assert_eq!(x.media(&posts[0].media_ids[0]).unwrap(), clip);
    assert!(
        x.calls("getMediaUploadStatus") >= 2,
        "attached only once processed"
    );
    assert_eq!(x.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn an_x_post_is_tied_to_a_place_of_x() {
    let x = XSandbox::start(XConfig::default()).await.unwrap();
    let s = App::start("social-x-place", Some(&x), None).await;
    let owner = Who::Session(&s.w.a.owner);
    let profile = s
        .connect("x", &x.config().user_id, &x.config().access_token)
        .await;
    let profile = profile["id"].as_str().unwrap().to_string();
    let place = x.config().place_ids[0].clone();
    let write = |content: Value| {
        s.w.post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": "Meet us here" },
                "targets": [{ "profile_id": profile, "content": content }] }),
        )
    };

    // X takes a place of its own, not coordinates nor another network's place.
    write(json!({ "location": { "latitude": 55.75, "longitude": 37.62 } }))
        .await
        .assert_error(422, "unsupported_by_network");
    let r =
        write(json!({ "location": { "place": "https://www.facebook.com/110843418940484" } })).await;
    r.assert_error(400, "validation_failed");
    assert!(r.text().contains("x.com/places/"), "{}", r.text());

    // The place's address, pasted in the post's variant for X, becomes geo.place_id.
    let r = write(json!({ "location": { "latitude": 55.75, "longitude": 37.62,
        "place": format!("https://x.com/places/{place}") } }))
    .await;
    r.assert_status(201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    s.step(&id, "submit", json!({})).await;
    s.step(&id, "approve", json!({})).await;
    s.step(&id, "publish", json!({})).await;
    s.until("the post to be published", || async {
        s.w.get(owner, &format!("/api/v1/social/posts/{id}"))
            .await
            .json()["status"]
            == "published"
    })
    .await;
    let posts = x.own_posts();
    assert_eq!(posts.len(), 1, "published exactly once");
    assert_eq!(posts[0].place_id.as_deref(), Some(place.as_str()));
    assert_eq!(x.violations(), Vec::<String>::new());
}
