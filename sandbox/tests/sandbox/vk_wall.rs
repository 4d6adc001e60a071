//! The VK wall connector (`connectors::social::vk`) against the VK sandbox: posts with photos,
//! a link, hashtags, mentions and a location; the `guid` that publishes once; edit, delete,
//! counters; comments and replies; likes; the Callback API's `wall_reply_new` with the secret;
//! VK's errors classified; and every request checked against VK's schema (v5.199).

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use omnihub_connectors::SendError;
use omnihub_connectors::provider::{WebhookError, WebhookRequest};
use omnihub_connectors::social::vk::{VkWall, community_name, credentials};
use omnihub_connectors::social::{
    Action, Coordinates, Delivered, LikeTarget, Location, MediaSource, PostContent, PostMedia,
    SocialEvent, SocialNetwork, Support,
};
use omnihub_sandbox::vk::{VkConfig, VkSandbox};
use reqwest::Url;
use serde_json::json;

const SECRET: &str = "wallsecret42";
const CUSTOMER: i64 = 2222;

fn wall(sandbox: &VkSandbox) -> VkWall {
    let mut creds = credentials(
        &sandbox.config().access_token,
        sandbox.config().group_id,
        SECRET,
    );
    creds["confirmation_code"] = json!(sandbox.config().confirmation_code);
    VkWall::from_profile(&creds, &Url::parse(&sandbox.base_url()).unwrap()).unwrap()
}

fn assert_no_violations(sandbox: &VkSandbox) {
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

fn photo(name: &str) -> PostMedia {
    PostMedia {
        file_name: name.into(),
        mime_type: "image/png".into(),
        source: MediaSource::from_bytes(omnihub_sandbox::SAMPLE_PHOTO),
        public_url: None,
    }
}

#[tokio::test]
async fn a_post_with_photos_link_tags_mentions_and_place_is_published_once() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let wall = wall(&sandbox);
    assert_eq!(community_name(&wall).await.unwrap(), "Sandbox community");
    let content = PostContent {
        text: "Весенняя распродажа".into(),
        images: vec![photo("a.png"), photo("b.png")],
        link: Some("https://shop.example/sale".into()),
        hashtags: vec!["sale".into(), "весна".into()],
        mentions: vec!["club1".into()],
        location: Some(Location {
            coordinates: Some(Coordinates {
                latitude: 55.75,
                longitude: 37.62,
            }),
            place_id: None,
        }),
        ..PostContent::default()
    };
    let id = wall.create_post(&content, "post-1:profile").await.unwrap();
    // A rerun of the same task (same guid) does not post again.
    let again = wall.create_post(&content, "post-1:profile").await.unwrap();
    assert_eq!(id, again);
    let posts = sandbox.wall_posts();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.id.to_string(), id);
    assert_eq!(post.text, "Весенняя распродажа\n\n@club1\n\n#sale #весна");
    assert_eq!(post.attachments.len(), 3);
    let group = sandbox.config().group_id;
    for photo in &post.attachments[..2] {
        assert!(photo.starts_with(&format!("photo-{group}_")), "{photo}");
        assert_eq!(
            sandbox.media(photo).unwrap(),
            omnihub_sandbox::SAMPLE_PHOTO.to_vec()
        );
    }
    assert_eq!(post.attachments[2], "https://shop.example/sale");
    assert_eq!(post.location, Some((55.75, 37.62)));
    // The rerun uploaded its photos again (VK keeps unattached photos); the post is one.
    assert_eq!(sandbox.calls("photos.getWallUploadServer"), 4);
    assert_eq!(sandbox.calls("photos.saveWallPhoto"), 4);
    assert!(wall.post_exists(&id).await.unwrap());
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn posts_are_listed_with_counters_edited_liked_and_deleted() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let wall = wall(&sandbox);
    let first = PostContent {
        text: "first".into(),
        ..PostContent::default()
    };
    let id = wall.create_post(&first, "g1").await.unwrap();
    wall.create_post(
        &PostContent {
            text: "second".into(),
            ..PostContent::default()
        },
        "g2",
    )
    .await
    .unwrap();

    wall.like(LikeTarget::Post(&id)).await.unwrap();
    // Liking twice is one like.
    wall.like(LikeTarget::Post(&id)).await.unwrap();
    sandbox
        .customer_comments(id.parse().unwrap(), CUSTOMER, "hi", None)
        .await;
    let listed = wall.list_posts(10).await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(),
        ["second", "first"]
    );
    let counted = listed.iter().find(|p| p.id == id).unwrap();
    assert_eq!((counted.counters.likes, counted.counters.comments), (1, 1));
    wall.unlike(LikeTarget::Post(&id)).await.unwrap();
    assert_eq!(sandbox.wall_posts()[0].likes, 0);

    wall.edit_post(
        &id,
        &PostContent {
            text: "first, corrected".into(),
            ..PostContent::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(sandbox.wall_posts()[0].text, "first, corrected");
    assert!(sandbox.wall_posts()[0].edited);

    wall.delete_post(&id).await.unwrap();
    assert!(!wall.post_exists(&id).await.unwrap());
    // Deleting again is not an error (VK keeps the post restorable).
    wall.delete_post(&id).await.unwrap();
    assert_eq!(wall.list_posts(10).await.unwrap().len(), 1);
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn comments_are_listed_answered_liked_and_deleted_as_the_community() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let wall = wall(&sandbox);
    let post = wall
        .create_post(
            &PostContent {
                text: "Ask us".into(),
                ..PostContent::default()
            },
            "ask",
        )
        .await
        .unwrap();
    let asked = sandbox
        .customer_comments(post.parse().unwrap(), CUSTOMER, "Сколько стоит?", None)
        .await
        .unwrap();
    let question = asked.event["object"]["id"].to_string();
    let comments = wall.list_comments(&post).await.unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(
        (comments[0].id.as_str(), comments[0].author_id.as_str()),
        (question.as_str(), "2222")
    );
    assert!(!comments[0].by_profile);

    let reply = wall
        .comment(&post, Some(&question), "500 ₽", "task-1")
        .await
        .unwrap();
    assert_eq!(
        wall.comment(&post, Some(&question), "500 ₽", "task-1")
            .await
            .unwrap(),
        reply,
        "the same guid comments once"
    );
    let on_wall = sandbox.wall_comments();
    assert_eq!(on_wall.len(), 2);
    let answer = &on_wall[1];
    assert_eq!(answer.from_id, -sandbox.config().group_id);
    assert_eq!(answer.reply_to, Some(question.parse().unwrap()));
    assert!(wall.list_comments(&post).await.unwrap()[1].by_profile);

    wall.like(LikeTarget::Comment(&question)).await.unwrap();
    assert_eq!(sandbox.wall_comments()[0].likes, 1);
    wall.unlike(LikeTarget::Comment(&question)).await.unwrap();
    assert_eq!(sandbox.wall_comments()[0].likes, 0);
    wall.delete_comment(&post, &question).await.unwrap();
    assert!(sandbox.wall_comments()[0].deleted);
    assert_eq!(wall.list_comments(&post).await.unwrap().len(), 1);
    // VK has no call to hide a comment: the matrix says so and the connector refuses.
    assert!(matches!(
        wall.capabilities().support(Action::HideComment),
        Support::Unsupported(_)
    ));
    assert!(matches!(
        wall.hide_comment(&post, &reply).await,
        Err(SendError::Permanent { .. })
    ));
    assert_no_violations(&sandbox);
}

/// A stand-in for omnihub's social webhook route: hands each request to the wall's `webhook`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Result<Delivered, WebhookError>>>>,
}

type Got = Arc<Mutex<Vec<Result<Delivered, WebhookError>>>>;

async fn hook(
    wall: web::Data<Arc<VkWall>>,
    got: web::Data<Got>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let request = WebhookRequest::new(req.method().as_str(), "", Vec::new(), &body);
    let outcome = wall.webhook(&request);
    let answer = match &outcome {
        Ok(Delivered { events, .. })
            if let [SocialEvent::Handshake { body, .. }] = events.as_slice() =>
        {
            HttpResponse::Ok().body(body.clone())
        }
        Ok(delivered) => HttpResponse::Ok().body(delivered.ack_body),
        Err(_) => HttpResponse::Unauthorized().finish(),
    };
    got.lock().unwrap().push(outcome);
    answer
}

impl Receiver {
    fn start(wall: Arc<VkWall>) -> Receiver {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got: Got = Arc::default();
        let (data, seen) = (web::Data::new(wall), web::Data::new(got.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(seen.clone())
                .route("/hook", web::post().to(hook))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Receiver { url, got }
    }
}

#[tokio::test]
async fn the_callback_server_is_confirmed_and_gets_new_comments_with_the_secret() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let wall = Arc::new(wall(&sandbox));
    assert_eq!(
        wall.confirmation_code().await.unwrap(),
        sandbox.config().confirmation_code
    );
    let receiver = Receiver::start(wall.clone());
    wall.subscribe(&receiver.url).await.unwrap();
    wall.subscribe(&receiver.url).await.unwrap();
    let servers = sandbox.callback_servers();
    assert_eq!(servers.len(), 1, "subscribing again reuses the server");
    assert_eq!(servers[0].status, "ok");
    assert_eq!(servers[0].secret_key, SECRET);
    for event in ["wall_reply_new", "wall_post_new"] {
        assert!(servers[0].events.iter().any(|e| e == event), "{event}");
    }

    let post = wall
        .create_post(
            &PostContent {
                text: "New arrivals".into(),
                ..PostContent::default()
            },
            "arrivals",
        )
        .await
        .unwrap();
    let delivery = sandbox
        .customer_comments(post.parse().unwrap(), CUSTOMER, "Есть размер M?", None)
        .await
        .unwrap();
    assert_eq!(
        (
            delivery.answers[0].status,
            delivery.answers[0].body.as_str()
        ),
        (200, "ok")
    );
    let got = receiver.got.lock().unwrap().clone();
    // The confirmation of each subscription, then the comment.
    let comment = got
        .iter()
        .find_map(|outcome| match outcome {
            Ok(Delivered {
                events, event_id, ..
            }) => events.iter().find_map(|e| match e {
                SocialEvent::Comment(c) => Some((c.clone(), event_id.clone())),
                _ => None,
            }),
            _ => None,
        })
        .unwrap();
    assert_eq!(comment.1.as_deref(), Some(delivery.event_id.as_str()));
    assert_eq!(
        (
            comment.0.post_id.as_str(),
            comment.0.author_id.as_str(),
            comment.0.text.as_str()
        ),
        (post.as_str(), "2222", "Есть размер M?")
    );

    // The same event with another secret is not VK's.
    let mut forged = delivery.event.clone();
    forged["secret"] = json!("guessed");
    let body = serde_json::to_vec(&forged).unwrap();
    assert_eq!(
        wall.webhook(&WebhookRequest::new("POST", "", Vec::new(), &body)),
        Err(WebhookError::Unauthorized)
    );
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn vk_errors_are_retried_or_refused_by_their_code() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let wall = wall(&sandbox);
    let content = PostContent {
        text: "x".into(),
        ..PostContent::default()
    };
    for (code, transient) in [
        (6, true),
        (9, true),
        (10, true),
        (29, true),
        (5, false),
        (214, false),
    ] {
        sandbox.fail_next("wall.post", code);
        let err = wall.create_post(&content, "e").await.unwrap_err();
        assert_eq!(err.is_transient(), transient, "error {code}: {err}");
    }
    assert!(sandbox.wall_posts().is_empty());
    // An unknown attachment is VK's error 100, a refusal.
    assert!(matches!(
        wall.edit_post("999", &content).await,
        Err(SendError::Permanent { .. })
    ));
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn a_video_is_streamed_to_its_upload_url_and_arrives_whole() {
    let sandbox = VkSandbox::start(VkConfig::default()).await.unwrap();
    let wall = wall(&sandbox);
    // An MP4's first box, then a pattern that shows a byte out of place: many pieces of the
    // streamed multipart part.
    let mut bytes = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    bytes.extend((0..3 * 1024 * 1024 + 77).map(|i: u32| (i % 251) as u8));
    let content = PostContent {
        text: "Backstage".into(),
        videos: vec![PostMedia {
            file_name: "backstage.mp4".into(),
            mime_type: "video/mp4".into(),
            source: MediaSource::from_bytes(bytes.clone()),
            public_url: None,
        }],
        ..PostContent::default()
    };
    let id = wall
        .create_post(&content, "post-video:profile")
        .await
        .unwrap();
    let post = sandbox
        .wall_posts()
        .into_iter()
        .find(|p| p.id.to_string() == id)
        .unwrap();
    let video = &post.attachments[0];
    assert!(
        video.starts_with(&format!("video-{}_", sandbox.config().group_id)),
        "{video}"
    );
    assert!(
        sandbox.media(video).unwrap() == bytes,
        "the video arrived altered"
    );
    assert_no_violations(&sandbox);
}
