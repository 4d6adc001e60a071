//! A Facebook Page and an Instagram business account through the whole application on a real
//! listener, against the sandbox's Graph fake: the owner connects a profile with a Page token
//! (checked, the Page subscribes the application to its feed), Meta's `hub.challenge`
//! handshake is answered only with the profile's verify token, a post with a photo from the
//! media library is scheduled and published once (the network fetches the photo by its signed
//! link), a person's comment arrives by signed webhook into the inbox once however often it is
//! delivered, the operator's reply goes out as a reply comment, hiding reaches the network, a
//! forged webhook is refused, and what a network does not allow answers 422 with its reason.
//! A video of the library goes to the Page through `/{page-id}/videos` by its signed link, and
//! to Instagram as a reel whose container is polled until Meta has processed it.
//! The Meta application's one callback (`/hooks/social/facebook`, `/hooks/social/instagram`)
//! answers the handshake with the server's verify token, checks each delivery's signature once,
//! and gives each entry to every client's profile of its account, ignoring unknown accounts.

use std::time::{Duration, Instant};

use actix_web::HttpServer;
use chrono::Utc;
use omnihub_sandbox::graph::{GraphConfig, GraphSandbox, Person};
use serde_json::{Value, json};

use crate::support::{Options, Tenant, Who, World};

struct Meta {
    w: World,
    graph: GraphSandbox,
    base: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Meta {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

/// The verify token set beside the application's callback in Meta's dashboard.
const APP_VERIFY_TOKEN: &str = "meta-app-verify-token";

fn jane() -> Person {
    Person {
        id: "6100000000000077".into(),
        name: "Jane Doe".into(),
    }
}

/// Now plus `secs` as a Moscow wall-clock time (UTC+3 all year since 2014).
fn moscow_in(secs: i64) -> String {
    let at = Utc::now() + chrono::Duration::seconds(secs) + chrono::Duration::hours(3);
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

impl Meta {
    /// The application on a loopback port that is also its public URL, so Meta's webhooks
    /// and its fetches of media links reach it.
    async fn start(label: &str) -> Meta {
        let graph = GraphSandbox::start(GraphConfig::default()).await.unwrap();
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut options = Options::default();
        options.providers.graph_api = graph.base_url();
        options.social.meta_app_id = graph.config().app_id.clone();
        options.social.meta_app_secret =
            omnihub::config::Secret::new(graph.config().app_secret.clone());
        options.social.meta_verify_token = omnihub::config::Secret::new(APP_VERIFY_TOKEN);
        options.public_url = Some(base.clone());
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
        Meta {
            w,
            graph,
            base,
            handle,
        }
    }

    /// Connects the network's profile with the Page token; answers its id.
    async fn connect(&self, network: &str, external_id: &str) -> String {
        self.connect_for(&self.w.a, network, external_id).await
    }

    /// Connects the network's profile for `tenant`'s client.
    async fn connect_for(&self, tenant: &Tenant, network: &str, external_id: &str) -> String {
        let r = self
            .w
            .post(
                Who::Session(&tenant.owner),
                "/api/v1/social/profiles",
                json!({
                    "network": network,
                    "external_id": external_id,
                    "access_token": self.graph.config().page_token,
                }),
            )
            .await;
        r.assert_status(201);
        let profile = r.json();
        assert_eq!(profile["status"], "active", "{profile}");
        assert!(
            !r.text().contains(&self.graph.config().page_token),
            "tokens never come back"
        );
        profile["id"].as_str().unwrap().to_string()
    }

    /// Points the Meta app's callback for `object` at the profile's hook, after the handshake
    /// with the profile's verify token (as the person setting up the app would).
    async fn configure_callback(&self, object: &str, network: &str, profile: &str) -> String {
        let id: omnihub_core::ChannelId = profile.parse().unwrap();
        let credentials = self
            .w
            .state
            .store
            .channel_credentials(self.w.a.client.id, id)
            .await
            .unwrap()
            .unwrap();
        let token = credentials["verify_token"].as_str().unwrap().to_string();
        assert!(token.len() >= 32);
        let url = format!("{}/hooks/social/{network}/{profile}", self.base);
        assert_eq!(
            self.graph.handshake(&url, "not-the-token", "7").await.0,
            Some(401)
        );
        self.graph
            .configure_callback(object, &url, &token)
            .await
            .unwrap();
        url
    }

    /// The texts of the messages in `tenant`'s conversations of `profile`, sorted.
    async fn texts_of(&self, tenant: &Tenant, profile: &str) -> Vec<String> {
        let who = Who::Session(&tenant.owner);
        let r = self.w.get(who, "/api/v1/conversations?limit=100").await;
        r.assert_status(200);
        let mut texts = Vec::new();
        for item in r.json()["items"].as_array().unwrap() {
            if item["conversation"]["channel_id"] != profile {
                continue;
            }
            let id = item["conversation"]["id"].as_str().unwrap();
            let r = self
                .w
                .get(who, &format!("/api/v1/conversations/{id}/messages"))
                .await;
            r.assert_status(200);
            for message in r.json()["items"].as_array().unwrap() {
                texts.push(message["text"].as_str().unwrap().to_string());
            }
        }
        texts.sort();
        texts
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

    /// Adds a file to the media library as the owner; answers its id.
    async fn upload(&self, file_name: &str, mime: &str, bytes: &[u8]) -> String {
        let r = self
            .w
            .upload_file(
                Who::Session(&self.w.a.owner),
                "/api/v1/social/media",
                file_name,
                mime,
                bytes,
            )
            .await;
        r.assert_status(201);
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// Creates a post for `profile` and schedules it two seconds ahead; answers its id.
    async fn schedule(&self, profile: &str, content: Value) -> String {
        let owner = Who::Session(&self.w.a.owner);
        let r = self
            .w
            .post(
                owner,
                "/api/v1/social/posts",
                json!({ "content": content, "targets": [{ "profile_id": profile }] }),
            )
            .await;
        r.assert_status(201);
        let id = r.json()["id"].as_str().unwrap().to_string();
        for (step, body) in [
            ("submit", json!({})),
            ("approve", json!({})),
            (
                "schedule",
                json!({ "at": moscow_in(2), "time_zone": "Europe/Moscow" }),
            ),
        ] {
            let r = self
                .w
                .post(owner, &format!("/api/v1/social/posts/{id}/{step}"), body)
                .await;
            assert!(r.status < 300, "{step}: {} {}", r.status, r.text());
        }
        self.until("the post to be published", || async {
            self.post(&id).await["status"] == "published"
        })
        .await;
        id
    }

    /// The inbox conversation of the post's comments, and its messages.
    async fn thread(&self, post: &str) -> (String, Vec<Value>) {
        let owner = Who::Session(&self.w.a.owner);
        let r = self
            .w
            .get(owner, &format!("/api/v1/social/posts/{post}/comments"))
            .await;
        r.assert_status(200);
        let threads = r.json()["conversation_ids"].as_array().unwrap().clone();
        assert_eq!(threads.len(), 1);
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

#[actix_web::test]
async fn a_facebook_page_publishes_a_scheduled_photo_post_and_moderates_comments() {
    let m = Meta::start("social-facebook").await;
    let owner = Who::Session(&m.w.a.owner);
    let page_id = m.graph.config().page_id.clone();
    let profile = m.connect("facebook", &page_id).await;
    assert_eq!(m.graph.subscribed_fields(), ["feed"]);
    let hook = m.configure_callback("page", "facebook", &profile).await;

    let image = m
        .upload("photo.png", "image/png", omnihub_sandbox::SAMPLE_PHOTO)
        .await;
    let id = m
        .schedule(
            &profile,
            json!({ "text": "Spring collection", "hashtags": ["spring"], "media": [image] }),
        )
        .await;
    let posts = m.graph.posts();
    assert_eq!(posts.len(), 1, "published exactly once");
    assert_eq!(posts[0].message, "Spring collection\n\n#spring");
    let photos = m.graph.photos();
    assert_eq!(photos.len(), 1);
    assert_eq!(posts[0].photos, [photos[0].id.clone()]);
    assert_eq!(
        photos[0].bytes,
        omnihub_sandbox::SAMPLE_PHOTO,
        "Graph fetched the library's image by its signed link"
    );
    assert!(
        photos[0]
            .url
            .starts_with(&format!("{}/media/social/", m.base))
    );
    let remote = m.post(&id).await["targets"][0]["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(remote, posts[0].id);

    // A person comments; Meta delivers twice; the inbox has it once.
    let delivery = m
        .graph
        .person_comments(&remote, &jane(), "Is M in stock?", None)
        .await
        .unwrap();
    assert!(delivery.accepted(), "{delivery:?}");
    assert_eq!(delivery.url, hook);
    assert!(m.graph.redeliver(&delivery).await.accepted());
    let (conversation, messages) = m.thread(&id).await;
    assert_eq!(messages.len(), 1, "a redelivery adds nothing");
    assert_eq!(messages[0]["text"], "Is M in stock?");
    let comment_message = messages[0]["id"].as_str().unwrap().to_string();
    let question = m.graph.comments()[0].id.clone();

    // The operator's reply is a comment answering it, as the Page.
    m.w.post(
        owner,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({ "text": "Yes, come by!", "idempotency_key": "reply-1" }),
    )
    .await
    .assert_status(201);
    m.until("the reply on the Page", || async {
        m.graph.comments().len() == 2
    })
    .await;
    let reply = &m.graph.comments()[1];
    assert_eq!(reply.from_id, page_id);
    assert_eq!(reply.parent_id.as_deref(), Some(question.as_str()));
    assert_eq!(reply.message, "Yes, come by!");

    // Hiding and liking reach Facebook.
    let actions = format!("/api/v1/social/comments/{comment_message}/actions");
    m.w.post(owner, &actions, json!({ "action": "hide" }))
        .await
        .assert_status(202);
    m.until("the hidden comment", || async {
        m.graph.comments()[0].hidden
    })
    .await;
    m.w.post(owner, &actions, json!({ "action": "like" }))
        .await
        .assert_status(202);
    m.until("the like", || async { m.graph.comments()[0].liked_by_page })
        .await;

    // A forged webhook is refused and adds nothing.
    let mut forged = delivery.json();
    forged["entry"][0]["changes"][0]["value"]["comment_id"] = json!("1_999");
    assert_eq!(
        m.graph.forge("page", &forged).await.unwrap().status,
        Some(401)
    );
    assert_eq!(m.thread(&id).await.1.len(), 2, "the question and the reply");

    // A place is not Facebook's from coordinates: refused with the reason.
    let r = m
        .w
        .post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": "Here", "location": { "latitude": 55.75, "longitude": 37.62 } },
                "targets": [{ "profile_id": profile }] }),
        )
        .await;
    r.assert_error(422, "unsupported_by_network");
    assert!(r.text().contains("place"), "{}", r.text());
    assert_eq!(m.graph.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn an_instagram_account_publishes_a_scheduled_photo_and_moderates_comments() {
    let m = Meta::start("social-instagram").await;
    let owner = Who::Session(&m.w.a.owner);
    let ig_user = m.graph.config().ig_user_id.clone();
    let profile = m.connect("instagram", &ig_user).await;
    assert!(!m.graph.subscribed_fields().is_empty());
    m.configure_callback("instagram", "instagram", &profile)
        .await;

    let image = m
        .upload("photo.jpg", "image/jpeg", omnihub_sandbox::SAMPLE_JPEG)
        .await;
    let id = m
        .schedule(
            &profile,
            json!({ "text": "New in", "hashtags": ["newin"], "mentions": ["friend.shop"],
                "media": [image] }),
        )
        .await;
    let media = m.graph.media();
    assert_eq!(media.len(), 1, "published exactly once");
    assert_eq!(media[0].caption, "New in\n\n@friend.shop\n\n#newin");
    assert_eq!(media[0].media_type, "IMAGE");
    let container = m.graph.containers()[0].clone();
    assert_eq!(container.bytes, omnihub_sandbox::SAMPLE_JPEG);
    assert_eq!(container.user_tags.unwrap()[0]["username"], "friend.shop");
    let remote = m.post(&id).await["targets"][0]["remote_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(remote, media[0].id);

    let delivery = m
        .graph
        .person_comments_on_media(&remote, &jane(), "Price?", None)
        .await
        .unwrap();
    assert!(delivery.accepted(), "{delivery:?}");
    assert!(m.graph.redeliver(&delivery).await.accepted());
    let (conversation, messages) = m.thread(&id).await;
    assert_eq!(messages.len(), 1, "a redelivery adds nothing");
    let comment_message = messages[0]["id"].as_str().unwrap().to_string();
    let question = m.graph.media_comments()[0].id.clone();

    m.w.post(
        owner,
        &format!("/api/v1/conversations/{conversation}/messages"),
        json!({ "text": "Sent you a DM", "idempotency_key": "reply-1" }),
    )
    .await
    .assert_status(201);
    m.until("the reply on Instagram", || async {
        m.graph.media_comments().len() == 2
    })
    .await;
    let reply = &m.graph.media_comments()[1];
    assert_eq!(reply.from_id, ig_user);
    assert_eq!(reply.parent_id.as_deref(), Some(question.as_str()));

    let actions = format!("/api/v1/social/comments/{comment_message}/actions");
    m.w.post(owner, &actions, json!({ "action": "hide" }))
        .await
        .assert_status(202);
    m.until("the hidden comment", || async {
        m.graph.media_comments()[0].hidden
    })
    .await;
    // Instagram's API has no likes, and captions take no links.
    let r = m.w.post(owner, &actions, json!({ "action": "like" })).await;
    r.assert_error(422, "unsupported_by_network");
    assert!(r.text().contains("no likes"), "{}", r.text());
    let r =
        m.w.post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": "Shop", "link": "https://shop.example", "media": [image] },
                "targets": [{ "profile_id": profile }] }),
        )
        .await;
    r.assert_error(422, "unsupported_by_network");
    assert_eq!(m.graph.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn a_video_goes_to_a_facebook_page_and_as_a_reel_to_instagram() {
    let m = Meta::start("social-meta-video").await;
    let owner = Who::Session(&m.w.a.owner);
    let page = m
        .connect("facebook", &m.graph.config().page_id.clone())
        .await;
    let instagram = m
        .connect("instagram", &m.graph.config().ig_user_id.clone())
        .await;
    let mut clip = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    clip.extend((0..20_000u32).map(|i| (i % 253) as u8));
    let video = m.upload("clip.mp4", "video/mp4", &clip).await;
    let image = m
        .upload("photo.jpg", "image/jpeg", omnihub_sandbox::SAMPLE_JPEG)
        .await;

    // Neither network takes a photo beside a video.
    for profile in [&page, &instagram] {
        m.w.post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": "Both", "media": [video, image] },
                "targets": [{ "profile_id": profile }] }),
        )
        .await
        .assert_error(400, "validation_failed");
    }

    // The Page: one video post, its words the video's description.
    let id = m
        .schedule(
            &page,
            json!({ "text": "Spring in motion", "link": "https://shop.example/spring",
                "media": [video] }),
        )
        .await;
    let videos = m.graph.videos();
    assert_eq!(videos.len(), 1, "uploaded exactly once");
    assert_eq!(videos[0].bytes, clip, "Graph fetched the library's video");
    assert_eq!(videos[0].content_type, "video/mp4");
    assert!(
        videos[0]
            .file_url
            .starts_with(&format!("{}/media/social/", m.base))
    );
    assert_eq!(
        videos[0].description,
        "Spring in motion\n\nhttps://shop.example/spring"
    );
    let posts = m.graph.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].video.as_deref(), Some(videos[0].id.as_str()));
    assert_eq!(
        m.post(&id).await["targets"][0]["remote_id"],
        posts[0].id.as_str()
    );

    // Instagram: a reel, published once Meta has finished processing it.
    let id = m
        .schedule(
            &instagram,
            json!({ "text": "Behind the scenes", "hashtags": ["reels"], "media": [video] }),
        )
        .await;
    let media = m.graph.media();
    assert_eq!(media.len(), 1, "published exactly once");
    assert_eq!(media[0].media_type, "VIDEO");
    assert_eq!(media[0].caption, "Behind the scenes\n\n#reels");
    let container = m.graph.containers()[0].clone();
    assert_eq!(container.media_type, "REELS");
    assert_eq!(container.bytes, clip);
    assert!(
        container.status_checks >= 2,
        "published only after FINISHED: {container:?}"
    );
    assert_eq!(
        m.post(&id).await["targets"][0]["remote_id"],
        media[0].id.as_str()
    );
    assert_eq!(m.graph.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn facebook_and_instagram_posts_are_tied_to_a_place_page() {
    let m = Meta::start("social-meta-place").await;
    let owner = Who::Session(&m.w.a.owner);
    let place = m.graph.config().place_ids[0].clone();
    let page_id = m.graph.config().page_id.clone();
    let ig_user = m.graph.config().ig_user_id.clone();
    let facebook = m.connect("facebook", &page_id).await;
    let instagram = m.connect("instagram", &ig_user).await;

    // Coordinates alone are not a place on Meta's networks: refused when written, with why.
    for profile in [&facebook, &instagram] {
        let r =
            m.w.post(
                owner,
                "/api/v1/social/posts",
                json!({ "content": { "text": "Here",
                    "location": { "latitude": 55.75, "longitude": 37.62 } },
                    "targets": [{ "profile_id": profile }] }),
            )
            .await;
        r.assert_error(422, "unsupported_by_network");
    }
    // An address that is not a Facebook place Page's is refused, not guessed at.
    let r =
        m.w.post(
            owner,
            "/api/v1/social/posts",
            json!({ "content": { "text": "Here",
                "location": { "place": "https://x.com/places/5a110d312052166f" } },
                "targets": [{ "profile_id": facebook }] }),
        )
        .await;
    r.assert_error(400, "validation_failed");
    assert!(r.text().contains("facebook.com"), "{}", r.text());

    // The Page's post: the place read out of its page's address, beside the photo.
    let png = m
        .upload("cafe.png", "image/png", omnihub_sandbox::SAMPLE_PHOTO)
        .await;
    m.schedule(
        &facebook,
        json!({ "text": "At the cafe", "media": [png], "location": {
            "latitude": 55.75, "longitude": 37.62,
            "place": format!("https://www.facebook.com/pages/Cafe-Pushkin/{place}/") } }),
    )
    .await;
    let posts = m.graph.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].place.as_deref(), Some(place.as_str()));
    assert_eq!(posts[0].photos.len(), 1);

    // The Instagram media: the bare id as the container's location_id.
    let jpeg = m
        .upload("cafe.jpg", "image/jpeg", omnihub_sandbox::SAMPLE_JPEG)
        .await;
    m.schedule(
        &instagram,
        json!({ "text": "At the cafe", "media": [jpeg], "location": { "place": place } }),
    )
    .await;
    let media = m.graph.media();
    assert_eq!(media.len(), 1);
    assert_eq!(media[0].location_id.as_deref(), Some(place.as_str()));
    assert_eq!(m.graph.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn the_meta_apps_callback_gives_each_account_its_entries_in_every_client() {
    let m = Meta::start("social-meta-app").await;
    let page_id = m.graph.config().page_id.clone();
    let ig_user = m.graph.config().ig_user_id.clone();
    // Client A connects the Page; client B the same Page and its Instagram account.
    let a_page = m.connect_for(&m.w.a, "facebook", &page_id).await;
    let b_page = m.connect_for(&m.w.b, "facebook", &page_id).await;
    let b_instagram = m.connect_for(&m.w.b, "instagram", &ig_user).await;

    // The dashboard's handshake: only the application's verify token, and only on Meta's
    // networks' callbacks.
    let page_hook = format!("{}/hooks/social/facebook", m.base);
    let instagram_hook = format!("{}/hooks/social/instagram", m.base);
    assert_eq!(
        m.graph.handshake(&page_hook, "not-the-token", "7").await.0,
        Some(401)
    );
    assert_eq!(
        m.graph
            .handshake(
                &format!("{}/hooks/social/vk", m.base),
                APP_VERIFY_TOKEN,
                "7"
            )
            .await
            .0,
        Some(404)
    );
    m.graph
        .configure_callback("page", &page_hook, APP_VERIFY_TOKEN)
        .await
        .unwrap();
    m.graph
        .configure_callback("instagram", &instagram_hook, APP_VERIFY_TOKEN)
        .await
        .unwrap();

    // One delivery about the Page and a Page nobody connected: the Page's entry reaches both
    // clients' profiles of it, the other is dropped.
    let post = m.graph.seed_post("Spring collection");
    let first = m
        .graph
        .person_comments(&post, &jane(), "Is M in stock?", None)
        .await
        .unwrap();
    assert!(first.accepted(), "{first:?}");
    assert_eq!(first.url, page_hook);
    let mut body = first.json();
    let mut theirs = body["entry"][0].clone();
    theirs["id"] = json!("109999999999999");
    theirs["changes"][0]["value"]["comment_id"] = json!("109999999999999_7");
    theirs["changes"][0]["value"]["message"] = json!("Not yours");
    let mut ours = body["entry"][0].clone();
    ours["changes"][0]["value"]["comment_id"] = json!(format!("{post}_8"));
    ours["changes"][0]["value"]["message"] = json!("And L?");
    body["entry"] = json!([theirs, ours]);
    let both = m.graph.deliver("page", &body).await.unwrap();
    assert!(both.accepted(), "{both:?}");
    let expected = ["And L?", "Is M in stock?"];
    assert_eq!(m.texts_of(&m.w.a, &a_page).await, expected);
    assert_eq!(m.texts_of(&m.w.b, &b_page).await, expected);

    // Instagram's delivery goes to the account's profile only.
    let on_media = m
        .graph
        .person_comments_on_media("17900000000000042", &jane(), "Price?", None)
        .await
        .unwrap();
    assert!(on_media.accepted(), "{on_media:?}");
    assert_eq!(on_media.url, instagram_hook);
    assert_eq!(m.texts_of(&m.w.b, &b_instagram).await, ["Price?"]);

    // Replays add nothing; a forged delivery is refused and adds nothing.
    for delivery in [&first, &both, &on_media] {
        assert!(m.graph.redeliver(delivery).await.accepted());
    }
    let mut forged = first.json();
    forged["entry"][0]["changes"][0]["value"]["comment_id"] = json!(format!("{post}_9"));
    forged["entry"][0]["changes"][0]["value"]["message"] = json!("Forged");
    assert_eq!(
        m.graph.forge("page", &forged).await.unwrap().status,
        Some(401)
    );
    assert_eq!(m.texts_of(&m.w.a, &a_page).await, expected);
    assert_eq!(m.texts_of(&m.w.b, &b_page).await, expected);
    assert_eq!(m.texts_of(&m.w.b, &b_instagram).await, ["Price?"]);
    // Nothing of the unknown Page reached either client, in any conversation.
    for tenant in [&m.w.a, &m.w.b] {
        let r =
            m.w.get(
                Who::Session(&tenant.owner),
                "/api/v1/conversations?limit=100",
            )
            .await;
        assert!(!r.text().contains("Not yours"), "{}", r.text());
        assert!(!r.text().contains("Forged"), "{}", r.text());
    }
    assert_eq!(m.graph.violations(), Vec::<String>::new());
}
