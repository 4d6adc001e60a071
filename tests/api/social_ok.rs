//! An OK group through the whole application, against the sandbox's OK fake: the owner
//! connects it by token (signed calls with the server's OK application), a post with a photo is
//! scheduled and published once; OK has no comment webhooks, so the comment poller brings a
//! person's comment into the inbox, exactly once however often it polls; the operator's reply
//! goes out as the group's reply comment, likes reach OK, and what OK cannot do answers 422
//! with the reason.

use std::time::{Duration, Instant};

use chrono::Utc;
use omnihub_core::ChannelId;
use omnihub_sandbox::ok::{OkConfig, OkSandbox};
use serde_json::{Value, json};

use crate::support::{Options, Who, World};

const PERSON: &str = "580000000042";

struct Social {
    w: World,
    ok: OkSandbox,
}

impl Social {
    async fn start(label: &str) -> Social {
        let ok = OkSandbox::start(OkConfig::default()).await.unwrap();
        let mut options = Options::default();
        options.providers.ok_api = ok.base_url();
        options.providers.ok_oauth_authorize = ok.authorize_url();
        options.providers.ok_oauth_token = ok.token_url();
        options.social.ok_client_id = ok.config().application_id.clone();
        options.social.ok_client_secret =
            omnihub::config::Secret::new(ok.config().secret_key.clone());
        options.social.ok_public_key = ok.config().application_key.clone();
        options.social.comments_poll_secs = 1;
        options.max_body_bytes = 256 * 1024;
        let w = World::with(label, options).await;
        Social { w, ok }
    }

    /// Waits for `check` to hold, for at most 15 seconds.
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

    async fn post(&self, id: &str) -> Value {
        let r = self
            .w
            .get(
                Who::Session(&self.w.a.owner),
                &format!("/api/v1/social/posts/{id}"),
            )
            .await;
        r.assert_status(200);
        r.json()
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

    async fn upload_photo(&self) -> String {
        let r = self
            .w
            .upload_file(
                Who::Session(&self.w.a.owner),
                "/api/v1/social/media",
                "photo.png",
                "image/png",
                omnihub_sandbox::SAMPLE_PHOTO,
            )
            .await;
        r.assert_status(201);
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// The messages of the post's only comment conversation.
    async fn thread(&self, post: &str) -> (String, Vec<Value>) {
        let owner = Who::Session(&self.w.a.owner);
        let r = self
            .w
            .get(owner, &format!("/api/v1/social/posts/{post}/comments"))
            .await;
        r.assert_status(200);
        let threads = r.json()["conversation_ids"].as_array().unwrap().clone();
        assert_eq!(threads.len(), 1, "{threads:?}");
        let conversation = threads[0].as_str().unwrap().to_string();
        let r = self
            .w
            .get(
                owner,
                &format!("/api/v1/conversations/{conversation}/messages"),
            )
            .await;
        let messages = r.json()["items"].as_array().unwrap().clone();
        (conversation, messages)
    }
}

/// Now plus `secs` as a Moscow wall-clock time (UTC+3 all year since 2014).
fn moscow_in(secs: i64) -> String {
    let at = Utc::now() + chrono::Duration::seconds(secs) + chrono::Duration::hours(3);
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[actix_web::test]
async fn an_ok_group_publishes_once_and_its_polled_comments_reach_the_inbox_once() {
    let s = Social::start("social-ok").await;
    let owner = Who::Session(&s.w.a.owner);
    let config = s.ok.config().clone();

    // Connected by a pasted token: the group's name comes from OK, the token never back.
    let r =
        s.w.post(
            owner,
            "/api/v1/social/profiles",
            json!({ "network": "ok", "external_id": config.group_id,
                "access_token": config.access_token }),
        )
        .await;
    r.assert_status(201);
    let profile = r.json();
    assert_eq!(profile["status"], "active", "{profile}");
    assert_eq!(profile["name"], "Sandbox group");
    assert!(
        !r.text().contains(&config.access_token),
        "tokens never come back"
    );
    let profile = profile["id"].as_str().unwrap().to_string();
    let profile_id: ChannelId = profile.parse().unwrap();

    // What OK cannot take is refused when written, with the reason.
    for content in [
        json!({ "text": "Here", "location": { "latitude": 55.75, "longitude": 37.62 } }),
        json!({ "text": "Hi @friend", "mentions": ["friend"] }),
    ] {
        let r =
            s.w.post(
                owner,
                "/api/v1/social/posts",
                json!({ "content": content, "targets": [{ "profile_id": profile }] }),
            )
            .await;
        r.assert_error(422, "unsupported_by_network");
    }

    // A post with a photo, approved and scheduled in Moscow time.
    let image = s.upload_photo().await;
    let r =
        s.w.post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": "Новая коллекция", "hashtags": ["новинки"],
                "media": [image] }, "targets": [{ "profile_id": profile }] }),
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
        s.post(&id).await["status"] == "published"
    })
    .await;
    let topics = s.ok.topics();
    assert_eq!(topics.len(), 1, "published exactly once");
    assert_eq!(topics[0].text, "Новая коллекция\n\n#новинки");
    assert!(topics[0].on_behalf_of_group);
    assert_eq!(topics[0].photos.len(), 1);
    assert_eq!(
        s.ok.photo(&topics[0].photos[0]).unwrap(),
        omnihub_sandbox::SAMPLE_PHOTO.to_vec(),
        "the library's image went to OK's upload"
    );
    let topic = topics[0].id.clone();
    assert_eq!(s.post(&id).await["targets"][0]["remote_id"], topic.as_str());

    // A person comments; OK calls no webhook: the poller finds it.
    let question =
        s.ok.person_comments(&topic, PERSON, "А размер M есть?", None)
            .unwrap();
    let pollers = omnihub::pollers::start(s.w.state.clone());
    s.until("the polled comment in the inbox", || async {
        let r =
            s.w.get(owner, &format!("/api/v1/social/posts/{id}/comments"))
                .await;
        r.json()["conversation_ids"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    })
    .await;
    pollers.stop().await;
    // Polled twice more: nothing is taken twice.
    let client = s.w.a.client.id;
    for _ in 0..2 {
        assert!(
            omnihub::social::poller::poll_comments_once(&s.w.state, client, profile_id)
                .await
                .unwrap()
        );
    }
    let (conversation, messages) = s.thread(&id).await;
    assert_eq!(messages.len(), 1, "polled comments arrive once");
    assert_eq!(messages[0]["text"], "А размер M есть?");
    let comment_message = messages[0]["id"].as_str().unwrap().to_string();

    // The operator answers in the conversation: the group's reply to that comment.
    s.w.post(
        owner,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({ "text": "Есть, заходите!", "idempotency_key": "reply-1" }),
    )
    .await
    .assert_status(201);
    s.until("the reply under the topic", || async {
        s.ok.comments().len() == 2
    })
    .await;
    let reply = &s.ok.comments()[1];
    assert!(reply.by_group);
    assert_eq!(reply.author_id, config.group_id);
    assert_eq!(reply.reply_to.as_deref(), Some(question.as_str()));
    assert_eq!(reply.text, "Есть, заходите!");
    // Our own reply, polled back, is not a new message; a second comment is.
    s.ok.person_comments(&topic, PERSON, "Спасибо", Some(&question))
        .unwrap();
    omnihub::social::poller::poll_comments_once(&s.w.state, client, profile_id)
        .await
        .unwrap();
    omnihub::social::poller::poll_comments_once(&s.w.state, client, profile_id)
        .await
        .unwrap();
    let (_, messages) = s.thread(&id).await;
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["А размер M есть?", "Есть, заходите!", "Спасибо"]);

    // Likes reach OK; what OK cannot do says why.
    let actions = format!("/api/v1/social/comments/{comment_message}/actions");
    let act = |action: &str| s.w.post(owner, &actions, json!({ "action": action }));
    act("like").await.assert_status(202);
    s.until("the comment's like", || async {
        s.ok.comments()[0].likes == 1
    })
    .await;
    for (action, words) in [("hide", "hide"), ("unlike", "take a like back")] {
        let r = act(action).await;
        r.assert_error(422, "unsupported_by_network");
        assert!(r.text().contains(words), "{}", r.text());
    }
    s.w.post(
        owner,
        &format!("/api/v1/social/posts/{id}/actions"),
        json!({ "action": "like" }),
    )
    .await
    .assert_status(202);
    s.until("the topic's like", || async { s.ok.topics()[0].likes == 1 })
        .await;
    s.w.post(
        owner,
        &format!("/api/v1/social/posts/{id}/actions"),
        json!({ "action": "unlike" }),
    )
    .await
    .assert_error(422, "unsupported_by_network");
    // Counters come back with the profile's posts.
    let r =
        s.w.get(owner, &format!("/api/v1/social/profiles/{profile}/posts"))
            .await;
    r.assert_status(200);
    let listed = r.json();
    assert_eq!(listed[0]["post_id"], id.as_str());
    assert_eq!(listed[0]["likes"], 1);
    assert_eq!(listed[0]["comments"], 3);

    // Taken down by a delete.
    s.w.post(
        owner,
        &format!("/api/v1/social/posts/{id}/actions"),
        json!({ "action": "delete" }),
    )
    .await
    .assert_status(202);
    s.until("the deletion", || async {
        s.post(&id).await["status"] == "deleted"
    })
    .await;
    assert!(s.ok.topics()[0].deleted);
    assert_eq!(s.ok.violations(), Vec::<String>::new());
}
