//! The Facebook Page and Instagram connectors (`connectors::social::{facebook, instagram}`)
//! against the sandbox's Graph fake: connecting by token, posts with photos fetched by URL
//! (published once however often retried), counters, edits, comments and replies, hiding,
//! likes, the webhooks (signed, forged, the `hub.challenge` handshake), Meta's OAuth dialog and
//! code exchange, the Pages a grant can connect, Graph's errors classified; and every request
//! checked against Meta's codegen spec.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use omnihub_connectors::provider::{Problem, WebhookError, WebhookRequest};
use omnihub_connectors::registry::{Endpoints, SocialApp};
use omnihub_connectors::social::facebook::{self, FacebookPage};
use omnihub_connectors::social::instagram::{self, InstagramAccount};
use omnihub_connectors::social::{
    Connected, Grant, LikeTarget, MediaSource, PostContent, PostMedia, SocialEvent, SocialNetwork,
    graph,
};
use omnihub_sandbox::graph::{GraphConfig, GraphFailure, GraphSandbox, Person};
use reqwest::Url;

const VERIFY_TOKEN: &str = "verifyTokenOfTheProfile0123456789";

fn endpoints(sandbox: &GraphSandbox) -> Endpoints {
    let mut endpoints = Endpoints {
        graph: Url::parse(&sandbox.base_url()).unwrap(),
        ..Endpoints::default()
    };
    endpoints.apps.meta = SocialApp {
        client_id: sandbox.config().app_id.clone(),
        client_secret: sandbox.config().app_secret.clone(),
        public_key: String::new(),
    };
    endpoints
}

fn jane() -> Person {
    Person {
        id: "6100000000000077".into(),
        name: "Jane Doe".into(),
    }
}

/// Serves the sample images, as omnihub's signed media links would.
struct Images {
    base: String,
    handle: actix_web::dev::ServerHandle,
}

impl Images {
    fn start() -> Images {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(|| {
            App::new()
                .route(
                    "/a.png",
                    web::get().to(|| async {
                        HttpResponse::Ok()
                            .content_type("image/png")
                            .body(omnihub_sandbox::SAMPLE_PHOTO)
                    }),
                )
                .route(
                    "/{name}.jpg",
                    web::get().to(|| async {
                        HttpResponse::Ok()
                            .content_type("image/jpeg")
                            .body(omnihub_sandbox::SAMPLE_JPEG)
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Images { base, handle }
    }

    fn image(&self, name: &str) -> PostMedia {
        let (mime, bytes) = if name.ends_with(".png") {
            ("image/png", omnihub_sandbox::SAMPLE_PHOTO)
        } else {
            ("image/jpeg", omnihub_sandbox::SAMPLE_JPEG)
        };
        PostMedia {
            file_name: name.into(),
            mime_type: mime.into(),
            source: MediaSource::from_bytes(bytes),
            public_url: Some(format!("{}/{name}", self.base)),
        }
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// A webhook endpoint answering with the connector, as omnihub's route does.
struct Hook {
    url: String,
    events: Arc<Mutex<Vec<SocialEvent>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Hook {
    fn start(network: Arc<dyn SocialNetwork>) -> Hook {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let events = Arc::new(Mutex::new(Vec::new()));
        let shared = web::Data::new((network, events.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/hook", web::to(hook))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Hook {
            url,
            events,
            handle,
        }
    }

    fn events(&self) -> Vec<SocialEvent> {
        self.events.lock().unwrap().clone()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

type Shared = (Arc<dyn SocialNetwork>, Arc<Mutex<Vec<SocialEvent>>>);

async fn hook(shared: web::Data<Shared>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()));
    let raw = WebhookRequest::new(
        request.method().as_str(),
        request.query_string(),
        headers,
        &body,
    );
    match shared.0.webhook(&raw) {
        Ok(delivered) => {
            for event in delivered.events {
                if let SocialEvent::Handshake { body, .. } = event {
                    return HttpResponse::Ok().body(body);
                }
                shared.1.lock().unwrap().push(event);
            }
            HttpResponse::Ok().body(delivered.ack_body)
        }
        Err(WebhookError::Unauthorized) => HttpResponse::Unauthorized().finish(),
        Err(other) => HttpResponse::BadRequest().body(other.to_string()),
    }
}

async fn connected(sandbox: &GraphSandbox, instagram: bool) -> Connected {
    let config = sandbox.config();
    let grant = Grant {
        external_id: if instagram {
            &config.ig_user_id
        } else {
            &config.page_id
        },
        access_token: &config.page_token,
        refresh_token: None,
        webhook_secret: VERIFY_TOKEN,
    };
    let endpoints = endpoints(sandbox);
    let connected = if instagram {
        instagram::connect(&grant, &endpoints).await
    } else {
        facebook::connect(&grant, &endpoints).await
    };
    connected.unwrap()
}

fn page(sandbox: &GraphSandbox, connected: &Connected) -> FacebookPage {
    let endpoints = endpoints(sandbox);
    FacebookPage::from_profile(
        &connected.credentials,
        &endpoints.graph,
        &endpoints.apps.meta,
    )
    .unwrap()
}

fn account(sandbox: &GraphSandbox, connected: &Connected) -> InstagramAccount {
    let endpoints = endpoints(sandbox);
    InstagramAccount::from_profile(
        &connected.credentials,
        &endpoints.graph,
        &endpoints.apps.meta,
    )
    .unwrap()
}

#[tokio::test]
async fn a_page_publishes_once_and_moderates_its_comments() {
    let sandbox = GraphSandbox::start(GraphConfig::default()).await.unwrap();
    let images = Images::start();
    let connected = connected(&sandbox, false).await;
    assert_eq!(connected.name, "Sandbox Page");
    let page = page(&sandbox, &connected);

    let content = PostContent {
        text: "Spring sale".into(),
        images: vec![images.image("a.png"), images.image("a.jpg")],
        link: Some("https://shop.example/sale".into()),
        hashtags: vec!["sale".into()],
        mentions: vec!["20531316728".into()],
        location: None,
        ..PostContent::default()
    };
    let id = page.create_post(&content, "post-1:profile").await.unwrap();
    // A retry whose first answer was lost finds the post instead of publishing it again.
    let again = page.create_post(&content, "post-1:profile").await.unwrap();
    assert_eq!(id, again);
    let posts = sandbox.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].message,
        "Spring sale\n\n@[20531316728]\n\n#sale\n\nhttps://shop.example/sale"
    );
    assert_eq!(posts[0].photos.len(), 2);
    let photos = sandbox.photos();
    assert_eq!(photos[0].bytes, omnihub_sandbox::SAMPLE_PHOTO);
    assert!(photos.iter().all(|p| !p.published));
    // A post with a link and no photos takes the link as its attachment.
    let linked = page
        .create_post(
            &PostContent {
                text: "Read more".into(),
                link: Some("https://shop.example/blog".into()),
                ..PostContent::default()
            },
            "post-2:profile",
        )
        .await
        .unwrap();
    let linked_post = sandbox
        .posts()
        .into_iter()
        .find(|p| p.id == linked)
        .unwrap();
    assert_eq!(
        linked_post.link.as_deref(),
        Some("https://shop.example/blog")
    );

    // Someone comments; the Page answers, hides, likes, deletes.
    let comment = {
        sandbox.person_comments(&id, &jane(), "Size M?", None).await;
        sandbox.comments()[0].id.clone()
    };
    let reply = page
        .comment(&id, Some(&comment), "Yes!", "task-1")
        .await
        .unwrap();
    assert_eq!(
        page.comment(&id, Some(&comment), "Yes!", "task-1")
            .await
            .unwrap(),
        reply,
        "a retried reply is found, not repeated"
    );
    let listed = page.list_comments(&id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].author_id, jane().id);
    assert!(!listed[0].by_profile);
    assert!(listed[1].by_profile);
    assert_eq!(listed[1].reply_to.as_deref(), Some(comment.as_str()));
    page.hide_comment(&id, &comment).await.unwrap();
    assert!(sandbox.comments()[0].hidden);
    page.like(LikeTarget::Comment(&comment)).await.unwrap();
    page.like(LikeTarget::Post(&id)).await.unwrap();
    assert!(sandbox.comments()[0].liked_by_page);
    let counted = page.list_posts(10).await.unwrap();
    let counted = counted.iter().find(|p| p.id == id).unwrap();
    assert_eq!((counted.counters.likes, counted.counters.comments), (1, 2));
    page.unlike(LikeTarget::Post(&id)).await.unwrap();
    assert!(!sandbox.posts()[0].liked_by_page);
    page.delete_comment(&id, &reply).await.unwrap();
    page.delete_comment(&id, &reply).await.unwrap();

    page.edit_post(
        &id,
        &PostContent {
            text: "Spring sale, extended".into(),
            ..PostContent::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(sandbox.posts()[0].message, "Spring sale, extended");
    page.delete_post(&id).await.unwrap();
    assert!(!page.post_exists(&id).await.unwrap());
    // Deleting what is gone succeeds.
    page.delete_post(&id).await.unwrap();
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn page_webhooks_are_signed_and_the_handshake_needs_the_verify_token() {
    let sandbox = GraphSandbox::start(GraphConfig::default()).await.unwrap();
    let connected = connected(&sandbox, false).await;
    let page: Arc<dyn SocialNetwork> = Arc::new(page(&sandbox, &connected));
    let hook = Hook::start(page.clone());
    // Meta's handshake: the wrong token is refused, the profile's is answered.
    assert_eq!(
        sandbox.handshake(&hook.url, "not-ours", "123").await.0,
        Some(401)
    );
    assert_eq!(
        sandbox.handshake(&hook.url, VERIFY_TOKEN, "123").await,
        (Some(200), "123".to_string())
    );
    sandbox
        .configure_callback("page", &hook.url, VERIFY_TOKEN)
        .await
        .unwrap();
    let post = sandbox.seed_post("Made on Facebook");
    // Not subscribed yet: Meta delivers nothing.
    assert!(
        sandbox
            .person_comments(&post, &jane(), "early", None)
            .await
            .is_none()
    );
    page.subscribe(&hook.url).await.unwrap();
    assert_eq!(sandbox.subscribed_fields(), ["feed"]);
    let delivery = sandbox
        .person_comments(&post, &jane(), "Nice!", None)
        .await
        .unwrap();
    assert!(delivery.accepted(), "{delivery:?}");
    let forged = sandbox.forge("page", &delivery.json()).await.unwrap();
    assert_eq!(forged.status, Some(401));
    let events = hook.events();
    let [SocialEvent::Comment(comment)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(comment.post_id, post);
    assert_eq!(comment.text, "Nice!");
    assert_eq!(comment.author_id, jane().id);
    assert_eq!(comment.reply_to, None);
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn an_instagram_account_publishes_carousels_and_moderates_comments() {
    let sandbox = GraphSandbox::start(GraphConfig::default()).await.unwrap();
    let images = Images::start();
    let connected = connected(&sandbox, true).await;
    assert_eq!(connected.name, "sandbox.shop");
    assert_eq!(
        connected.credentials["page_id"],
        sandbox.config().page_id.as_str()
    );
    let account = Arc::new(account(&sandbox, &connected));

    let carousel = PostContent {
        text: "New in".into(),
        images: vec![images.image("a.jpg"), images.image("b.jpg")],
        hashtags: vec!["newin".into()],
        mentions: vec!["friend.shop".into()],
        ..PostContent::default()
    };
    let id = account.create_post(&carousel, "p1").await.unwrap();
    assert_eq!(account.create_post(&carousel, "p1").await.unwrap(), id);
    let media = sandbox.media();
    assert_eq!(media.len(), 1);
    assert_eq!(media[0].media_type, "CAROUSEL_ALBUM");
    assert_eq!(media[0].caption, "New in\n\n@friend.shop\n\n#newin");
    assert_eq!(media[0].images.len(), 2);
    let tags = media[0].user_tags.clone().unwrap();
    assert_eq!(tags[0]["username"], "friend.shop");
    let containers = sandbox.containers();
    assert!(
        containers
            .iter()
            .filter(|c| c.is_carousel_item)
            .all(|c| c.bytes == omnihub_sandbox::SAMPLE_JPEG)
    );
    // One image is one container; a PNG is refused by Instagram for good.
    let single = account
        .create_post(
            &PostContent {
                text: "One".into(),
                images: vec![images.image("a.jpg")],
                ..PostContent::default()
            },
            "p2",
        )
        .await
        .unwrap();
    assert_ne!(single, id);
    let png = account
        .create_post(
            &PostContent {
                text: "PNG".into(),
                images: vec![images.image("a.png")],
                ..PostContent::default()
            },
            "p3",
        )
        .await
        .unwrap_err();
    assert!(!png.is_transient(), "{png:?}");
    let text_only = account
        .create_post(
            &PostContent {
                text: "words".into(),
                ..PostContent::default()
            },
            "p4",
        )
        .await
        .unwrap_err();
    assert!(!text_only.is_transient());

    // Comments: a webhook, a reply, hiding, deleting; no likes on Instagram.
    let hook = Hook::start(account.clone());
    sandbox
        .configure_callback("instagram", &hook.url, VERIFY_TOKEN)
        .await
        .unwrap();
    account.subscribe(&hook.url).await.unwrap();
    let delivery = sandbox
        .person_comments_on_media(&id, &jane(), "Price?", None)
        .await
        .unwrap();
    assert!(delivery.accepted());
    assert_eq!(
        sandbox
            .forge("instagram", &delivery.json())
            .await
            .unwrap()
            .status,
        Some(401)
    );
    let events = hook.events();
    let [SocialEvent::Comment(comment)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(
        (comment.post_id.as_str(), comment.text.as_str()),
        (id.as_str(), "Price?")
    );
    let reply = account
        .comment(&id, Some(&comment.id), "DM us", "t1")
        .await
        .unwrap();
    let listed = account.list_comments(&id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].id, reply);
    assert_eq!(listed[1].reply_to.as_deref(), Some(comment.id.as_str()));
    assert!(listed[1].by_profile);
    account.hide_comment(&id, &comment.id).await.unwrap();
    assert!(sandbox.media_comments()[0].hidden);
    account.delete_comment(&id, &reply).await.unwrap();
    let like = account.like(LikeTarget::Post(&id)).await.unwrap_err();
    assert!(like.reason().contains("no likes"), "{like:?}");
    let listed = account.list_posts(5).await.unwrap();
    assert_eq!(listed[1].counters.comments, 1);
    account.delete_post(&single).await.unwrap();
    assert!(!account.post_exists(&single).await.unwrap());
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn oauth_grants_list_the_pages_and_graph_errors_are_classified() {
    let sandbox = GraphSandbox::start(GraphConfig::default()).await.unwrap();
    let config = sandbox.config().clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The dialog approves and sends the browser back with a code and our state.
    let redirect = "https://hub.example/oauth/meta/callback";
    let scope = graph::OAUTH.scopes.join(graph::OAUTH.scope_separator);
    let answer = http
        .get(sandbox.authorize_url())
        .query(&[
            ("client_id", config.app_id.as_str()),
            ("redirect_uri", redirect),
            ("state", "st4te"),
            ("response_type", "code"),
            ("scope", scope.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    let location = Url::parse(
        answer.headers()["location"]
            .to_str()
            .unwrap()
            .trim_end_matches("#_=_"),
    )
    .unwrap();
    let query: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "st4te");
    let exchange = |code: String| {
        http.post(sandbox.token_url()).form(&[
            ("client_id", config.app_id.clone()),
            ("client_secret", config.app_secret.clone()),
            ("redirect_uri", redirect.to_string()),
            ("code", code),
        ])
    };
    let token: serde_json::Value = exchange(query["code"].clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["access_token"], config.user_token.as_str());
    // A code works once.
    assert_eq!(
        exchange(query["code"].clone())
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    let endpoints = endpoints(&sandbox);
    let (long, lifetime) = graph::long_lived_token(&endpoints, &config.user_token)
        .await
        .unwrap();
    assert_eq!(long, config.long_lived_user_token);
    assert!(lifetime.is_some());
    let pages = graph::manageable_profiles(&endpoints, &long, false)
        .await
        .unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].external_id, config.page_id);
    assert_eq!(
        pages[0].access_token.as_deref(),
        Some(config.page_token.as_str())
    );
    let accounts = graph::manageable_profiles(&endpoints, &long, true)
        .await
        .unwrap();
    assert_eq!(accounts[0].external_id, config.ig_user_id);
    assert_eq!(accounts[0].name, config.ig_username);

    // A wrong token is an invalid token; a Page rate limit is worth waiting for.
    let grant = Grant {
        external_id: &config.page_id,
        access_token: "EAA-wrong",
        refresh_token: None,
        webhook_secret: VERIFY_TOKEN,
    };
    let Err(omnihub_connectors::social::ConnectFailure::Network(refused)) =
        facebook::connect(&grant, &endpoints).await
    else {
        panic!("a wrong token connected");
    };
    assert_eq!(refused.problem(), Problem::InvalidToken);
    let connected = connected(&sandbox, false).await;
    let page = page(&sandbox, &connected);
    sandbox.fail_next(GraphFailure::page_rate_limit());
    let limited = page.list_posts(5).await.unwrap_err();
    assert!(limited.is_transient());
    assert_eq!(limited.problem(), Problem::RateLimited);
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}
