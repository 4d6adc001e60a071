//! The X connector (`connectors::social::x`) against the X sandbox: posts with images and
//! tagged accounts published once, counters, deletion; the Account Activity webhook
//! registered through a CRC, replies delivered signed (a forged signature refused), listed,
//! answered once, hidden and liked; X's errors classified; the OAuth 2.0 flow with PKCE and
//! Basic client authentication; and every request checked against X's OpenAPI document.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use omnihub_connectors::SendError;
use omnihub_connectors::provider::{Problem, WebhookError, WebhookRequest};
use omnihub_connectors::registry::{Endpoints, SocialApp, SocialApps};
use omnihub_connectors::social::x::{XAccount, manageable_profiles};
use omnihub_connectors::social::{
    Delivered, Grant, LikeTarget, MediaSource, Network, PostContent, PostMedia, SocialEvent,
    SocialNetwork, connect,
};
use omnihub_sandbox::x::{XConfig, XSandbox};
use reqwest::Url;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PERSON: &str = "1600000000000000009";

fn endpoints(sandbox: &XSandbox) -> Endpoints {
    Endpoints {
        x: Url::parse(&sandbox.base_url()).unwrap(),
        apps: SocialApps {
            x: SocialApp {
                client_id: sandbox.config().client_id.clone(),
                client_secret: sandbox.config().client_secret.clone(),
                public_key: String::new(),
            },
            ..SocialApps::default()
        },
        ..Endpoints::default()
    }
}

fn account(sandbox: &XSandbox) -> XAccount {
    XAccount::from_profile(
        &json!({"access_token": sandbox.config().access_token, "user_id": sandbox.config().user_id}),
        &endpoints(sandbox),
    )
    .unwrap()
}

fn assert_no_violations(sandbox: &XSandbox) {
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_post_with_images_and_tagged_accounts_is_published_once() {
    let sandbox = XSandbox::start(XConfig::default()).await.unwrap();
    let x = account(&sandbox);
    let connected = connect(
        Network::X,
        &Grant {
            external_id: "@sandbox_shop",
            access_token: &sandbox.config().access_token,
            refresh_token: None,
            webhook_secret: "unused",
        },
        &endpoints(&sandbox),
    )
    .await
    .unwrap();
    assert_eq!(connected.name, "Sandbox Shop (@sandbox_shop)");
    assert_eq!(
        connected.credentials["user_id"],
        sandbox.config().user_id.as_str()
    );
    let content = PostContent {
        text: "Spring sale".into(),
        images: vec![PostMedia {
            file_name: "a.png".into(),
            mime_type: "image/png".into(),
            source: MediaSource::from_bytes(omnihub_sandbox::SAMPLE_PHOTO),
            public_url: None,
        }],
        link: Some("https://shop.example/sale".into()),
        hashtags: vec!["sale".into()],
        mentions: vec!["friend".into(), "1700000000000000001".into()],
        location: None,
        ..PostContent::default()
    };
    let id = x.create_post(&content, "post-1:profile").await.unwrap();
    let posts = sandbox.own_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, id);
    assert_eq!(
        posts[0].text,
        "Spring sale\n\n@friend\n\n#sale\n\nhttps://shop.example/sale"
    );
    assert_eq!(posts[0].tagged_user_ids, ["1700000000000000001"]);
    assert_eq!(
        sandbox.media(&posts[0].media_ids[0]).unwrap(),
        omnihub_sandbox::SAMPLE_PHOTO.to_vec()
    );

    // A text post published again (a task's rerun) is found among the recent posts; X's
    // duplicate-content refusal is answered the same way.
    let text = PostContent {
        text: "Open on Sunday".into(),
        ..PostContent::default()
    };
    let first = x.create_post(&text, "post-2:profile").await.unwrap();
    assert_eq!(x.create_post(&text, "post-2:profile").await.unwrap(), first);
    assert_eq!(sandbox.own_posts().len(), 2);

    let listed = x.list_posts(10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, first, "newest first");
    assert!(listed[0].published_at.is_some());
    x.like(LikeTarget::Post(&first)).await.unwrap();
    x.like(LikeTarget::Post(&first)).await.unwrap();
    assert_eq!(x.list_posts(10).await.unwrap()[0].counters.likes, 1);
    x.unlike(LikeTarget::Post(&first)).await.unwrap();
    assert_eq!(sandbox.tweet(&first).unwrap().likes, 0);

    assert!(x.post_exists(&first).await.unwrap());
    x.delete_post(&first).await.unwrap();
    assert!(!x.post_exists(&first).await.unwrap());
    assert!(sandbox.tweet(&first).unwrap().deleted);
    assert!(x.edit_post(&id, &text).await.is_err());
    assert_no_violations(&sandbox);
}

/// A stand-in for omnihub's social webhook route (GET for the CRC, POST for events).
struct Receiver {
    url: String,
    got: Got,
}

type Got = Arc<Mutex<Vec<Result<Delivered, WebhookError>>>>;

async fn hook(
    account: web::Data<Arc<XAccount>>,
    got: web::Data<Got>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect::<Vec<_>>();
    let request = WebhookRequest::new(req.method().as_str(), req.query_string(), headers, &body);
    let outcome = account.webhook(&request);
    let answer = match &outcome {
        Ok(Delivered { events, .. })
            if let [SocialEvent::Handshake { body, content_type }] = events.as_slice() =>
        {
            HttpResponse::Ok()
                .content_type(*content_type)
                .body(body.clone())
        }
        Ok(delivered) => HttpResponse::Ok().body(delivered.ack_body),
        Err(_) => HttpResponse::Unauthorized().finish(),
    };
    got.lock().unwrap().push(outcome);
    answer
}

impl Receiver {
    fn start(account: Arc<XAccount>) -> Receiver {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got: Got = Arc::default();
        let (data, seen) = (web::Data::new(account), web::Data::new(got.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(seen.clone())
                .route("/hook", web::to(hook))
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
async fn replies_arrive_signed_and_are_answered_hidden_and_liked() {
    let sandbox = XSandbox::start(XConfig::default()).await.unwrap();
    let x = Arc::new(account(&sandbox));
    let receiver = Receiver::start(x.clone());
    x.subscribe(&receiver.url).await.unwrap();
    x.subscribe(&receiver.url).await.unwrap();
    let hooks = sandbox.webhooks();
    assert_eq!(hooks.len(), 1, "subscribing again reuses the webhook");
    assert!(hooks[0].valid, "the CRC was answered right");
    assert!(sandbox.subscribed(&hooks[0].id));
    let (right, answer) = sandbox.crc(&receiver.url).await;
    assert!(right, "{answer}");

    let post = sandbox.seed_post("New arrivals");
    let (reply, deliveries) = sandbox
        .person_replies(&post, PERSON, "buyer", "Size M?")
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].accepted(), "{:?}", deliveries[0]);
    let comment = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .find_map(|outcome| match outcome {
            Ok(Delivered { events, .. }) => events.iter().find_map(|e| match e {
                SocialEvent::Comment(c) => Some(c.clone()),
                _ => None,
            }),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (
            comment.id.as_str(),
            comment.post_id.as_str(),
            comment.author_id.as_str()
        ),
        (reply.as_str(), post.as_str(), PERSON)
    );
    assert_eq!(comment.text, "Size M?");

    // The same bytes with a signature of another secret are not X's.
    let forged = sandbox
        .deliver_forged(&receiver.url, &deliveries[0].body)
        .await;
    assert_eq!(forged.status, Some(401));
    assert!(matches!(
        receiver.got.lock().unwrap().last(),
        Some(Err(WebhookError::Unauthorized))
    ));

    let comments = x.list_comments(&post).await.unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].reply_to.as_deref(), Some(post.as_str()));
    assert!(!comments[0].by_profile);

    // The answer goes out once however often the task runs.
    let ours = x
        .comment(&post, Some(&reply), "Yes, in stock", "task-1")
        .await
        .unwrap();
    let again = x
        .comment(&post, Some(&reply), "Yes, in stock", "task-1")
        .await
        .unwrap();
    assert_eq!(ours, again);
    let answer = sandbox.tweet(&ours).unwrap();
    assert_eq!(
        answer.in_reply_to.as_ref().map(|(id, _)| id.as_str()),
        Some(reply.as_str())
    );
    assert_eq!(answer.author_id, sandbox.config().user_id);
    let listed = x.list_comments(&post).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[1].by_profile);

    x.hide_comment(&post, &reply).await.unwrap();
    assert!(sandbox.tweet(&reply).unwrap().hidden);
    x.like(LikeTarget::Comment(&reply)).await.unwrap();
    assert_eq!(sandbox.tweet(&reply).unwrap().likes, 1);
    x.unlike(LikeTarget::Comment(&reply)).await.unwrap();
    assert!(!sandbox.tweet(&reply).unwrap().liked);
    assert!(matches!(
        x.delete_comment(&post, &reply).await,
        Err(SendError::Permanent { .. })
    ));
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn x_errors_are_retried_or_refused_by_their_status() {
    let sandbox = XSandbox::start(XConfig::default()).await.unwrap();
    let x = account(&sandbox);
    let post = sandbox.seed_post("Hello");
    sandbox.fail_next("likePost", 429);
    let limited = x.like(LikeTarget::Post(&post)).await.unwrap_err();
    assert!(
        matches!(
            limited,
            SendError::Transient {
                retry_after: Some(_),
                ..
            }
        ),
        "{limited:?}"
    );
    assert_eq!(limited.problem(), Problem::RateLimited);
    sandbox.fail_next("likePost", 503);
    assert!(
        x.like(LikeTarget::Post(&post))
            .await
            .unwrap_err()
            .is_transient()
    );
    sandbox.fail_next("likePost", 403);
    assert!(matches!(
        x.like(LikeTarget::Post(&post)).await,
        Err(SendError::Permanent { .. })
    ));
    let stranger = XAccount::from_profile(
        &json!({"access_token": "revoked", "user_id": sandbox.config().user_id}),
        &endpoints(&sandbox),
    )
    .unwrap();
    let refused = stranger.list_posts(5).await.unwrap_err();
    assert_eq!(refused.problem(), Problem::InvalidToken, "{refused:?}");
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn the_oauth_flow_checks_pkce_and_the_client() {
    let sandbox = XSandbox::start(XConfig::default()).await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = "a-verifier-of-enough-length-0123456789-abcdefghijkl";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let redirect = "https://omnihub.test/oauth/x/callback";
    let answer = http
        .get(sandbox.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", sandbox.config().client_id.as_str()),
            ("redirect_uri", redirect),
            (
                "scope",
                &omnihub_connectors::social::x::OAUTH.scopes.join(" "),
            ),
            ("state", "st4te"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    let back = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    assert_eq!(param("state"), "st4te");
    let exchange = |verifier: &'static str, code: String| {
        http.post(sandbox.token_url())
            .basic_auth(
                &sandbox.config().client_id,
                Some(&sandbox.config().client_secret),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ])
            .send()
    };
    let tokens: Value = exchange(verifier, param("code"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let profiles = manageable_profiles(access, &endpoints(&sandbox))
        .await
        .unwrap();
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].external_id, sandbox.config().user_id);
    // A code is good once.
    let reused = exchange(verifier, param("code")).await.unwrap();
    assert_eq!(reused.status().as_u16(), 400);
    let refreshed: Value = http
        .post(sandbox.token_url())
        .basic_auth(
            &sandbox.config().client_id,
            Some(&sandbox.config().client_secret),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(refreshed["access_token"].as_str().unwrap() != access);
    assert!(
        refreshed["refresh_token"].is_string(),
        "X rotates refresh tokens"
    );
    assert_no_violations(&sandbox);

    // A verifier that is not the challenge's is refused (and recorded).
    let answer = http
        .get(sandbox.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", sandbox.config().client_id.as_str()),
            ("redirect_uri", redirect),
            ("scope", "tweet.read"),
            ("state", "s2"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let back = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let wrong = exchange("another-verifier-entirely-0123456789-abcdefghijkl", code)
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 400);
    assert_eq!(sandbox.violations().len(), 1);
}

#[tokio::test]
async fn a_video_larger_than_a_segment_is_appended_in_segments_and_arrives_whole() {
    let sandbox = XSandbox::start(XConfig::default()).await.unwrap();
    let x = account(&sandbox);
    // An MP4's first box, then a pattern that shows a byte out of place: over two segments
    // of 4 MiB.
    let mut bytes = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    bytes.extend((0..8 * 1024 * 1024 + 1234).map(|i: u32| (i % 251) as u8));
    let content = PostContent {
        text: "Long take".into(),
        videos: vec![PostMedia {
            file_name: "long.mp4".into(),
            mime_type: "video/mp4".into(),
            source: MediaSource::from_bytes(bytes.clone()),
            public_url: None,
        }],
        ..PostContent::default()
    };
    let id = x.create_post(&content, "post-video:profile").await.unwrap();
    let post = sandbox.tweet(&id).unwrap();
    let media_id = &post.media_ids[0];
    assert_eq!(sandbox.media_segments(media_id), Some(3));
    assert!(
        sandbox.media(media_id).unwrap() == bytes,
        "the video arrived altered"
    );
    assert_no_violations(&sandbox);
}
