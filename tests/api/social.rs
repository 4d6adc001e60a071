//! Social profiles through the whole application on a real listener, against the sandbox's
//! VK fake: the owner connects a community (token checked, callback server confirmed), a post
//! goes through approval, is scheduled at a wall-clock time in a time zone and published once;
//! a customer's comment arrives by the Callback API as an inbox conversation tied to its post,
//! the operator's reply goes out as a comment answering it, moderation actions reach VK (and
//! dislikes, which VK has not, are refused with its reason), and forged callbacks and another
//! client's ids are refused.

use std::time::{Duration, Instant};

use actix_web::HttpServer;
use chrono::Utc;
use omnihub_sandbox::vk::{VkConfig, VkSandbox};
use serde_json::{Value, json};

use crate::support::{Options, Who, World};

const CUSTOMER: i64 = 3333;

struct Social {
    w: World,
    vk: VkSandbox,
    base: String,
    http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Social {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

impl Social {
    /// The application on a loopback port that is also its public URL, so VK's callbacks
    /// reach it.
    async fn start(label: &str) -> Social {
        Social::start_with(label, VkConfig::default()).await
    }

    /// As `start`, with the fake's settings, and the server's VK ID application registered
    /// with the fake.
    async fn start_with(label: &str, config: VkConfig) -> Social {
        let vk = VkSandbox::start(config).await.unwrap();
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut options = Options::default();
        options.providers.vk_api = vk.base_url();
        options.providers.vk_oauth_authorize = vk.oauth_authorize_url();
        options.providers.vk_oauth_token = vk.oauth_token_url();
        options.social.vk_client_id = vk.config().client_id.clone();
        options.public_url = Some(base.clone());
        // Room for a post longer than VK takes.
        options.max_body_bytes = 256 * 1024;
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
        Social {
            w,
            vk,
            base,
            http: reqwest::Client::new(),
            handle,
        }
    }

    async fn connect(&self) -> String {
        let r = self
            .w
            .post(
                Who::Session(&self.w.a.owner),
                "/api/v1/social/profiles",
                json!({
                    "network": "vk",
                    "external_id": self.vk.config().group_id.to_string(),
                    "access_token": self.vk.config().access_token,
                }),
            )
            .await;
        r.assert_status(201);
        let profile = r.json();
        assert_eq!(profile["status"], "active", "{profile}");
        assert_eq!(profile["name"], "Sandbox community");
        assert!(
            profile.get("access_token").is_none() && !r.text().contains("vk1.a."),
            "tokens never come back"
        );
        profile["id"].as_str().unwrap().to_string()
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
}

/// Now plus `secs` as a Moscow wall-clock time (UTC+3 all year since 2014).
fn moscow_in(secs: i64) -> String {
    let at = Utc::now() + chrono::Duration::seconds(secs) + chrono::Duration::hours(3);
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[actix_web::test]
async fn a_scheduled_post_is_published_once_and_its_comments_are_moderated_from_the_inbox() {
    let s = Social::start("social-vk").await;
    let owner = Who::Session(&s.w.a.owner);
    let profile = s.connect().await;
    let servers = s.vk.callback_servers();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].status, "ok", "VK confirmed our callback URL");
    assert_eq!(
        servers[0].url,
        format!("{}/hooks/social/vk/{profile}", s.base)
    );

    // VK takes a location as coordinates: a place alone is refused when written.
    s.w.post(
        owner,
        "/api/v1/social/posts",
        json!({ "content": { "text": "Here", "location": { "place": "110843418940484" } },
            "targets": [{ "profile_id": profile }] }),
    )
    .await
    .assert_error(422, "unsupported_by_network");

    // Draft → approval → scheduled in Moscow time; VK takes the coordinates and leaves the
    // place, which is for other networks.
    let r =
        s.w.post(
            owner,
            "/api/v1/social/posts",
            json!({
                "content": { "text": "Новая коллекция", "hashtags": ["новинки"] },
                "targets": [{ "profile_id": profile,
                    "content": { "location": { "latitude": 55.75, "longitude": 37.62,
                        "place": "110843418940484" } } }],
            }),
        )
        .await;
    r.assert_status(201);
    let post = r.json();
    assert_eq!(post["status"], "draft");
    let id = post["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.step(&id, "submit", json!({})).await["status"],
        "awaiting_approval"
    );
    assert_eq!(
        s.step(&id, "approve", json!({})).await["status"],
        "approved"
    );
    let scheduled = s
        .step(
            &id,
            "schedule",
            json!({ "at": moscow_in(2), "time_zone": "Europe/Moscow" }),
        )
        .await;
    assert_eq!(scheduled["status"], "scheduled");
    assert_eq!(scheduled["time_zone"], "Europe/Moscow");
    assert!(s.vk.wall_posts().is_empty(), "not before its time");

    s.until("the post to be published", || async {
        s.post(&id).await["status"] == "published"
    })
    .await;
    let posts = s.vk.wall_posts();
    assert_eq!(posts.len(), 1, "published exactly once");
    assert_eq!(posts[0].text, "Новая коллекция\n\n#новинки");
    assert_eq!(posts[0].location, Some((55.75, 37.62)));
    let published = s.post(&id).await;
    let remote = published["targets"][0]["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(remote, posts[0].id.to_string());
    // Publishing a published post again is refused; the wall keeps one post.
    s.w.post(
        owner,
        &format!("/api/v1/social/posts/{id}/publish"),
        json!({}),
    )
    .await
    .assert_error(409, "conflict");
    assert_eq!(s.vk.wall_posts().len(), 1);

    // A customer comments: VK's callback lands it in the inbox, tied to the post.
    let delivery =
        s.vk.customer_comments(posts[0].id, CUSTOMER, "А размер M есть?", None)
            .await
            .unwrap();
    assert_eq!(
        (
            delivery.answers[0].status,
            delivery.answers[0].body.as_str()
        ),
        (200, "ok")
    );
    s.vk.redeliver(&delivery.event_id).await.unwrap();
    let r =
        s.w.get(owner, &format!("/api/v1/social/posts/{id}/comments"))
            .await;
    r.assert_status(200);
    let threads = r.json()["conversation_ids"].as_array().unwrap().clone();
    assert_eq!(threads.len(), 1);
    let conversation = threads[0].as_str().unwrap().to_string();
    let r =
        s.w.get(
            owner,
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
    let messages = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 1, "a redelivery adds nothing");
    assert_eq!(messages[0]["text"], "А размер M есть?");
    let comment_message = messages[0]["id"].as_str().unwrap().to_string();
    let question = delivery.event["object"]["id"].as_i64().unwrap();

    // The operator answers in the conversation: a comment as the community, replying to it.
    s.w.post(
        owner,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({ "text": "Есть, заходите!", "idempotency_key": "reply-1" }),
    )
    .await
    .assert_status(201);
    s.until("the reply on the wall", || async {
        s.vk.wall_comments().len() == 2
    })
    .await;
    let reply = &s.vk.wall_comments()[1];
    assert_eq!(reply.from_id, -s.vk.config().group_id);
    assert_eq!(reply.reply_to, Some(question));
    assert_eq!(reply.text, "Есть, заходите!");

    // Moderation: a like now; hiding is not VK's; deleting.
    let actions = format!("/api/v1/social/comments/{comment_message}/actions");
    let act = |action: &str| s.w.post(owner, &actions, json!({ "action": action }));
    act("like").await.assert_status(202);
    s.until("the like", || async { s.vk.wall_comments()[0].likes == 1 })
        .await;
    let hidden = act("hide").await;
    hidden.assert_error(422, "unsupported_by_network");
    assert!(hidden.text().contains("hide"), "{}", hidden.text());
    act("delete").await.assert_status(202);
    s.until("the deletion", || async { s.vk.wall_comments()[0].deleted })
        .await;

    // A like of the post, scheduled a moment ahead.
    s.w.post(
        owner,
        &format!("/api/v1/social/posts/{id}/actions"),
        json!({ "action": "like", "when": { "at": moscow_in(1), "time_zone": "Europe/Moscow" } }),
    )
    .await
    .assert_status(202);
    s.until("the post's like", || async {
        s.vk.wall_posts()[0].likes == 1
    })
    .await;
    // Counters come back with the profile's posts.
    let r =
        s.w.get(owner, &format!("/api/v1/social/profiles/{profile}/posts"))
            .await;
    r.assert_status(200);
    let listed = r.json();
    assert_eq!(listed[0]["post_id"], id.as_str());
    assert_eq!(listed[0]["likes"], 1);
    assert_eq!(s.post(&id).await["targets"][0]["likes"], 1);

    // VK has no dislikes: refused with VK's reason, and nothing is scheduled.
    for (uri, action) in [
        (format!("/api/v1/social/posts/{id}/actions"), "dislike"),
        (format!("/api/v1/social/posts/{id}/actions"), "undislike"),
        (actions.clone(), "dislike"),
    ] {
        let refused = s.w.post(owner, &uri, json!({ "action": action })).await;
        refused.assert_error(422, "unsupported_by_network");
        assert!(refused.text().contains("no dislikes"), "{}", refused.text());
    }
    let rule =
        s.w.post(
            owner,
            "/api/v1/triggers",
            json!({ "name": "Спам", "profile_id": profile,
                "condition": { "kind": "hashtag", "hashtag": "#спам" },
                "action": { "kind": "dislike" } }),
        )
        .await;
    rule.assert_error(422, "unsupported_by_network");
    assert!(rule.text().contains("no dislikes"), "{}", rule.text());
    let tasks = s.w.get(owner, "/api/v1/tasks?kind=social.dislike").await;
    assert_eq!(tasks.json()["items"], json!([]));

    // A forged callback (wrong secret) is refused and adds nothing.
    let mut forged = delivery.event.clone();
    forged["secret"] = json!("not-the-secret");
    forged["object"]["id"] = json!(999_999);
    let answer = s
        .http
        .post(format!("{}/hooks/social/vk/{profile}", s.base))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    let r =
        s.w.get(
            owner,
            &format!("/api/v1/conversations/{conversation}/messages"),
        )
        .await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);

    // A rule: comments tagged #вопрос get a like from the community.
    s.w.post(
        owner,
        "/api/v1/triggers",
        json!({
            "name": "Вопросы",
            "condition": { "kind": "hashtag", "hashtag": "#вопрос" },
            "action": { "kind": "like" },
        }),
    )
    .await
    .assert_status(201);

    // The rule fires on a tagged comment, once however often VK delivers it, and not on the
    // untagged one.
    let tagged =
        s.vk.customer_comments(
            posts[0].id,
            CUSTOMER,
            "Доставка в Казань есть? #Вопрос",
            None,
        )
        .await
        .unwrap();
    s.vk.redeliver(&tagged.event_id).await.unwrap();
    let tagged_id = tagged.event["object"]["id"].as_i64().unwrap();
    s.until("the triggered like", || async {
        s.vk.wall_comments()
            .iter()
            .any(|c| c.id == tagged_id && c.likes == 1)
    })
    .await;
    let triggered = async || {
        let tasks =
            s.w.get(owner, "/api/v1/tasks?kind=social.like")
                .await
                .json();
        tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["payload"]["trigger_id"].is_string())
            .map(|t| t["status"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<String>>()
    };
    s.until("the triggered task to be done", || async {
        triggered().await == ["done"]
    })
    .await;
    assert_eq!(
        triggered().await,
        ["done"],
        "one like task for two deliveries"
    );
    let others: Vec<u64> =
        s.vk.wall_comments()
            .iter()
            .filter(|c| c.id != tagged_id)
            .map(|c| c.likes)
            .collect();
    assert_eq!(
        others,
        [1, 0],
        "the operator's like of the question, none of the reply"
    );

    // Another client's owner finds none of it.
    let other = Who::Session(&s.w.b.owner);
    for uri in [
        format!("/api/v1/social/posts/{id}"),
        format!("/api/v1/social/posts/{id}/comments"),
        format!("/api/v1/social/profiles/{profile}/posts"),
    ] {
        s.w.get(other, &uri).await.assert_error(404, "not_found");
    }
    s.w.post(
        other,
        &format!("/api/v1/social/comments/{comment_message}/actions"),
        json!({ "action": "like" }),
    )
    .await
    .assert_error(404, "not_found");
    s.w.delete(other, &format!("/api/v1/social/profiles/{profile}"))
        .await
        .assert_error(404, "not_found");
    let r = s.w.get(other, "/api/v1/social/profiles").await;
    assert_eq!(r.json()["items"], json!([]));
    assert_eq!(s.vk.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn a_rescheduled_post_goes_out_once_at_its_new_time_and_limits_are_checked() {
    let s = Social::start("social-reschedule").await;
    let owner = Who::Session(&s.w.a.owner);
    let profile = s.connect().await;
    let too_long = "я".repeat(16_385);
    let r =
        s.w.post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": too_long }, "targets": [{ "profile_id": profile }] }),
        )
        .await;
    r.assert_error(400, "validation_failed");
    assert!(r.text().contains("16384"), "{}", r.text());
    s.w.post(
        owner,
        "/api/v1/social/posts",
        json!({ "content": { "text": "" }, "targets": [{ "profile_id": profile }] }),
    )
    .await
    .assert_error(400, "validation_failed");

    // An image of the media library goes with the post; a page is no image.
    s.upload("page.html", "text/html", b"<script>")
        .await
        .assert_error(415, "unsupported_media_type");
    let r = s
        .upload("photo.png", "image/png", omnihub_sandbox::SAMPLE_PHOTO)
        .await;
    r.assert_status(201);
    let image = r.json()["id"].as_str().unwrap().to_string();
    // A video goes beside it: VK attaches both.
    let mut clip = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    clip.extend((0..10_000u32).map(|i| (i % 241) as u8));
    let r = s.upload("clip.mp4", "video/mp4", &clip).await;
    r.assert_status(201);
    assert_eq!(r.json()["kind"], "video");
    let video = r.json()["id"].as_str().unwrap().to_string();
    let r =
        s.w.post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": "Moved", "media": [image, video] },
                "targets": [{ "profile_id": profile }] }),
        )
        .await;
    r.assert_status(201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    // Scheduling needs approval first.
    s.w.post(
        owner,
        &format!("/api/v1/social/posts/{id}/schedule"),
        json!({ "at": moscow_in(60), "time_zone": "Europe/Moscow" }),
    )
    .await
    .assert_error(409, "conflict");
    s.step(&id, "submit", json!({})).await;
    s.step(&id, "approve", json!({})).await;
    for (at, zone) in [
        (moscow_in(-60), "Europe/Moscow"),
        (moscow_in(60), "Mars/Olympus"),
    ] {
        s.w.post(
            owner,
            &format!("/api/v1/social/posts/{id}/schedule"),
            json!({ "at": at, "time_zone": zone }),
        )
        .await
        .assert_error(400, "validation_failed");
    }
    // First in an hour, then moved to two seconds from now: only the new time publishes.
    s.step(
        &id,
        "schedule",
        json!({ "at": moscow_in(3600), "time_zone": "Europe/Moscow" }),
    )
    .await;
    s.step(
        &id,
        "schedule",
        json!({ "at": moscow_in(2), "time_zone": "Europe/Moscow" }),
    )
    .await;
    s.until("the moved post", || async {
        s.post(&id).await["status"] == "published"
    })
    .await;
    let posts = s.vk.wall_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].attachments.len(), 2);
    assert_eq!(
        s.vk.media(&posts[0].attachments[0]).unwrap(),
        omnihub_sandbox::SAMPLE_PHOTO.to_vec(),
        "the library's image went to VK's wall upload"
    );
    let attached = &posts[0].attachments[1];
    assert!(
        attached.starts_with(&format!("video-{}_", s.vk.config().group_id)),
        "{attached}"
    );
    assert_eq!(
        s.vk.media(attached).unwrap(),
        clip,
        "the library's video went through video.save's upload"
    );

    // Taken down by a scheduled delete.
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
    assert!(s.vk.wall_posts()[0].deleted);
    assert_eq!(s.vk.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn the_capability_matrix_names_every_network_and_google_plus_is_dead() {
    let s = Social::start("social-matrix").await;
    let r =
        s.w.get(Who::Session(&s.w.a.owner), "/api/v1/social/networks")
            .await;
    r.assert_status(200);
    let rows = r.json();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["network"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "vk",
            "ok",
            "facebook",
            "instagram",
            "x",
            "youtube",
            "google_plus"
        ]
    );
    let vk = &rows[0];
    assert_eq!(vk["connect"]["status"], "supported");
    let hide = vk["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "hide_comment")
        .unwrap();
    assert_eq!(hide["status"], "unsupported");
    // Dislikes: YouTube's videos only, and no network's comments.
    let support = |row: &Value, action: &str| {
        row["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == action)
            .unwrap()
            .clone()
    };
    for row in &rows.as_array().unwrap()[..6] {
        let dislike = support(row, "dislike")["status"].clone();
        let supported = row["network"] == "youtube";
        assert_eq!(dislike == "supported", supported, "{row}");
        let comment = support(row, "dislike_comment");
        assert_eq!(comment["status"], "unsupported", "{row}");
        assert!(comment["reason"].is_string(), "{row}");
    }
    let google = &rows[6];
    assert_eq!(google["connect"]["status"], "unsupported");
    assert!(
        google["connect"]["reason"]
            .as_str()
            .unwrap()
            .contains("2019")
    );
    // Every other network connects; connecting the dead one says why.
    for row in &rows.as_array().unwrap()[..6] {
        assert_eq!(row["connect"]["status"], "supported", "{row}");
    }
    let r =
        s.w.post(
            Who::Session(&s.w.a.owner),
            "/api/v1/social/profiles",
            json!({ "network": "google_plus", "external_id": "1", "access_token": "t" }),
        )
        .await;
    r.assert_error(422, "unsupported_by_network");
}

#[actix_web::test]
async fn a_community_connected_through_vk_id_keeps_its_token_fresh() {
    // Tokens that lapse in two minutes: inside the refresh margin at once.
    let s = Social::start_with(
        "social-oauth",
        VkConfig {
            oauth_token_ttl_secs: 120,
            ..VkConfig::default()
        },
    )
    .await;
    let owner = Who::Session(&s.w.a.owner);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_string();

    let networks = s.w.get(owner, "/api/v1/social/networks").await.json();
    let oauth: Vec<&str> = networks
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["oauth"] == true)
        .map(|n| n["network"].as_str().unwrap())
        .collect();
    assert_eq!(oauth, ["vk"], "only VK's application is configured");
    s.w.post(owner, "/api/v1/social/oauth/x/start", json!({}))
        .await
        .assert_status(422);
    s.w.post(
        Who::Session(&s.w.a.plain),
        "/api/v1/social/oauth/vk/start",
        json!({}),
    )
    .await
    .assert_status(403);

    // The owner starts; VK ID approves and sends the browser back with the code.
    let r =
        s.w.post(owner, "/api/v1/social/oauth/vk/start", json!({}))
            .await;
    r.assert_status(200);
    let authorize = r.json()["authorize_url"].as_str().unwrap().to_string();
    assert!(
        authorize.starts_with(&s.vk.oauth_authorize_url()),
        "{authorize}"
    );
    let back = location(&browser.get(&authorize).send().await.unwrap());
    assert!(
        back.starts_with(&format!("{}/oauth/social/vk/callback?", s.base)),
        "{back}"
    );

    // A state altered on the way is refused before any exchange.
    let forged = back.replace("state=", "state=A");
    let r = browser.get(&forged).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/social/connect?error=invalid_state");
    assert!(s.vk.oauth_requests().is_empty());

    // The real one: no session cookie comes with the cross-site redirect, and none is needed.
    let r = browser.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let connect_page = location(&r);
    let grant = connect_page
        .strip_prefix("/social/connect?grant=")
        .unwrap_or_else(|| panic!("{connect_page}"))
        .to_string();
    assert!(!grant.contains("vk2."), "the tokens travel sealed");
    // The same code again: VK ID refuses it, and the person is told.
    let again = location(&browser.get(&back).send().await.unwrap());
    assert!(
        again.starts_with("/social/connect?error=refused&detail="),
        "{again}"
    );

    // The grant is the owner's alone: not a colleague's with the same rights, nor another
    // client's owner's.
    let path = format!("/api/v1/social/oauth/grants/{grant}");
    for other in [&s.w.a.manager, &s.w.b.owner] {
        s.w.get(Who::Session(other), &path).await.assert_status(400);
    }
    let r = s.w.get(owner, &path).await;
    r.assert_status(200);
    let group = s.vk.config().group_id.to_string();
    assert_eq!(
        r.json(),
        json!({"network": "vk", "profiles": [{"external_id": group, "name": "Sandbox community"}]})
    );
    s.w.post(
        owner,
        &format!("{path}/connect"),
        json!({"external_ids": ["999"]}),
    )
    .await
    .assert_status(400);
    let r =
        s.w.post(
            owner,
            &format!("{path}/connect"),
            json!({"external_ids": [group]}),
        )
        .await;
    r.assert_status(201);
    let connected = r.json();
    let profile = connected["profiles"][0].clone();
    assert_eq!(
        (
            profile["status"].as_str(),
            connected["failed"].as_array().map(Vec::len)
        ),
        (Some("active"), Some(0)),
        "{connected}"
    );
    let id = profile["id"].as_str().unwrap().to_string();
    assert_eq!(s.vk.callback_servers()[0].status, "ok");

    // Each use within five minutes of the expiry refreshes first (connecting used it once, to
    // set up the callback server); VK ID rotates the refresh token, so every later refresh
    // succeeding shows the rotated one was kept.
    let refreshes = || {
        let all: Vec<(String, bool)> =
            s.vk.oauth_requests()
                .into_iter()
                .filter(|(kind, _)| kind == "refresh_token")
                .collect();
        assert!(all.iter().all(|(_, accepted)| *accepted), "{all:?}");
        all.len()
    };
    let after_connect = refreshes();
    assert_eq!(after_connect, 1);
    for round in 1..=2 {
        s.w.get(owner, &format!("/api/v1/social/profiles/{id}/posts"))
            .await
            .assert_status(200);
        assert_eq!(refreshes(), after_connect + round);
    }
    let profiles = s.w.get(owner, "/api/v1/social/profiles").await.json();
    let stored = &profiles["items"][0];
    assert_eq!(stored["status"], "active");
    let expires: chrono::DateTime<Utc> = stored["token_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires > Utc::now() && expires < Utc::now() + chrono::Duration::minutes(3));
}
