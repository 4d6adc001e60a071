//! X and YouTube profiles through the whole application on a real listener, against the
//! sandbox's fakes. X: the owner connects an account by token (the app's webhook registered
//! through a CRC our hook answers, the account subscribed), a scheduled post is published
//! once, a person's reply delivered twice lands in the inbox once, the operator's answer goes
//! out as a reply, replies are liked and hidden, and what X does not allow is refused with
//! its reason. YouTube: the owner connects a channel, its videos come with their statistics,
//! a comment read by polling (`list_comments`, as the poller does) lands in the inbox, the
//! operator's answer goes into the comment's thread, a comment is held for review, and
//! publishing or rating comments is refused with YouTube's reasons.

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
        }
        if let Some(youtube) = youtube {
            options.providers.youtube_api = youtube.base_url();
        }
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
    let r =
        s.w.post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": "Spring drop", "hashtags": ["sale"] },
                "targets": [{ "profile_id": profile }] }),
        )
        .await;
    r.assert_status(201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    s.step(&id, "submit", json!({})).await;
    s.step(&id, "approve", json!({})).await;
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
    let yt = YoutubeSandbox::start(YoutubeConfig::default())
        .await
        .unwrap();
    let s = App::start("social-youtube", None, Some(&yt)).await;
    let owner = Who::Session(&s.w.a.owner);
    let profile = s
        .connect(
            "youtube",
            &yt.config().channel_id,
            &yt.config().access_token,
        )
        .await;
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
    let refused = s.w.post(owner, &actions, json!({ "action": "like" })).await;
    refused.assert_error(422, "unsupported_by_network");
    assert!(
        refused.text().contains("rate comments"),
        "{}",
        refused.text()
    );

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
