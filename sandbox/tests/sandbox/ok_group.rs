//! The OK group connector (`connectors::social::ok`) against the OK sandbox: connecting by
//! token, a topic with photos, a link and hashtags published exactly once, counters, delete;
//! comments, replies as the group, likes; the groups a token manages; OAuth's code and refresh
//! grants; a forged signature refused with OK's error 104; OK's errors classified; and every
//! request checked against the parameters OK's own docs list.

use omnihub_connectors::SendError;
use omnihub_connectors::registry::{Endpoints, SocialApp};
use omnihub_connectors::social::ok::{OkGroup, credentials, manageable_profiles, signature};
use omnihub_connectors::social::{
    self as net, Action, Coordinates, Grant, LikeTarget, Location, MediaSource, Network,
    PostContent, PostMedia, SocialNetwork, Support,
};
use omnihub_sandbox::ok::{OkConfig, OkSandbox, codes};
use reqwest::Url;
use serde_json::Value;

const PERSON: &str = "580000000042";

fn endpoints(sandbox: &OkSandbox) -> Endpoints {
    let config = sandbox.config();
    let mut endpoints = Endpoints {
        ok: Url::parse(&sandbox.base_url()).unwrap(),
        ..Endpoints::default()
    };
    endpoints.apps.ok = SocialApp {
        client_id: config.application_id.clone(),
        client_secret: config.secret_key.clone(),
        public_key: config.application_key.clone(),
    };
    endpoints
}

fn group(sandbox: &OkSandbox) -> OkGroup {
    let config = sandbox.config();
    let endpoints = endpoints(sandbox);
    OkGroup::from_profile(
        &credentials(&config.access_token, &config.group_id),
        &endpoints.ok,
        &endpoints.apps.ok,
    )
    .unwrap()
}

fn photo(name: &str) -> PostMedia {
    PostMedia {
        file_name: name.into(),
        mime_type: "image/png".into(),
        source: MediaSource::from_bytes(omnihub_sandbox::SAMPLE_PHOTO),
        public_url: None,
    }
}

fn assert_no_violations(sandbox: &OkSandbox) {
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_group_is_connected_by_token_and_a_topic_is_published_once() {
    let sandbox = OkSandbox::start(OkConfig::default()).await.unwrap();
    let config = sandbox.config().clone();
    let endpoints = endpoints(&sandbox);
    let grant = Grant {
        external_id: &config.group_id,
        access_token: &config.access_token,
        refresh_token: None,
        webhook_secret: "unused",
    };
    let connected = net::connect(Network::Ok, &grant, &endpoints).await.unwrap();
    assert_eq!(connected.name, "Sandbox group");
    assert_eq!(connected.credentials["group_id"], config.group_id.as_str());
    // A group the token's user does not moderate, and no id at all.
    let other = Grant {
        external_id: "70000009999999",
        ..grant
    };
    assert!(matches!(
        net::connect(Network::Ok, &other, &endpoints).await,
        Err(net::ConnectFailure::Network(SendError::Permanent { .. }))
    ));
    let bad = Grant {
        external_id: "club1",
        ..grant
    };
    assert!(matches!(
        net::connect(Network::Ok, &bad, &endpoints).await,
        Err(net::ConnectFailure::BadExternalId)
    ));

    let group = group(&sandbox);
    let content = PostContent {
        text: "Весенняя распродажа".into(),
        images: vec![photo("a.png"), photo("b.png")],
        link: Some("https://shop.example/sale".into()),
        hashtags: vec!["sale".into(), "весна".into()],
        ..PostContent::default()
    };
    let id = group.create_post(&content, "post-1:profile").await.unwrap();
    // A rerun of the same publication (its answer lost) finds the first topic.
    let again = group.create_post(&content, "post-1:profile").await.unwrap();
    assert_eq!(id, again);
    assert_eq!(sandbox.calls("mediatopic.post"), 1);
    let topics = sandbox.topics();
    assert_eq!(topics.len(), 1);
    let topic = &topics[0];
    assert_eq!(topic.id, id);
    assert_eq!(topic.text, "Весенняя распродажа\n\n#sale #весна");
    assert_eq!(topic.link.as_deref(), Some("https://shop.example/sale"));
    assert!(topic.on_behalf_of_group);
    assert_eq!(topic.photos.len(), 2);
    for token in &topic.photos {
        assert_eq!(
            sandbox.photo(token).unwrap(),
            omnihub_sandbox::SAMPLE_PHOTO.to_vec()
        );
    }
    assert!(group.post_exists(&id).await.unwrap());

    // Counters come back with the topics, newest first.
    let older = sandbox.seed_topic("Made on OK's site");
    let first = sandbox.person_comments(&id, PERSON, "Класс", None).unwrap();
    group.like(LikeTarget::Post(&id)).await.unwrap();
    group.like(LikeTarget::Post(&id)).await.unwrap();
    let listed = group.list_posts(10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, older);
    assert_eq!(listed[1].id, id);
    assert_eq!(listed[1].text, "Весенняя распродажа\n\n#sale #весна");
    assert_eq!(
        (listed[1].counters.likes, listed[1].counters.comments),
        (1, 1)
    );
    assert!(listed[1].published_at.is_some());

    // Comments: the person's, a reply as the group, a like, a deletion.
    let comments = group.list_comments(&id).await.unwrap();
    assert_eq!(comments.len(), 1);
    let question = &comments[0];
    assert_eq!(question.id, format!("{id}_{first}"));
    assert_eq!(question.author_id, PERSON);
    assert!(!question.by_profile);
    assert!(question.created_at.is_some());
    let reply = group
        .comment(&id, Some(&question.id), "Спасибо!", "task-1")
        .await
        .unwrap();
    let reply_again = group
        .comment(&id, Some(&question.id), "Спасибо!", "task-1")
        .await
        .unwrap();
    assert_eq!(reply, reply_again, "a rerun comments once");
    let stored = sandbox.comments();
    assert_eq!(stored.len(), 2);
    assert!(stored[1].by_group);
    assert_eq!(stored[1].author_id, config.group_id);
    assert_eq!(stored[1].reply_to.as_deref(), Some(first.as_str()));
    let comments = group.list_comments(&id).await.unwrap();
    assert!(comments[1].by_profile);
    assert_eq!(comments[1].reply_to.as_deref(), Some(question.id.as_str()));
    group.like(LikeTarget::Comment(&question.id)).await.unwrap();
    assert_eq!(sandbox.comments()[0].likes, 1);
    group.delete_comment(&id, &reply).await.unwrap();
    group.delete_comment(&id, &reply).await.unwrap();
    assert!(sandbox.comments()[1].deleted);

    // What OK cannot do says why.
    let unlike = group.unlike(LikeTarget::Post(&id)).await.unwrap_err();
    assert!(unlike.to_string().contains("take a like back"), "{unlike}");
    let placed = PostContent {
        text: "Here".into(),
        location: Some(Location {
            coordinates: Some(Coordinates {
                latitude: 55.75,
                longitude: 37.62,
            }),
            place_id: None,
        }),
        ..PostContent::default()
    };
    assert!(group.create_post(&placed, "p2").await.is_err());
    assert!(matches!(
        group.capabilities().support(Action::HideComment),
        Support::Unsupported(_)
    ));

    // Deleting twice is one deletion.
    group.delete_post(&id).await.unwrap();
    group.delete_post(&id).await.unwrap();
    assert!(!group.post_exists(&id).await.unwrap());
    assert!(sandbox.topics()[0].deleted);
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn a_forged_signature_is_refused_with_oks_error() {
    let sandbox = OkSandbox::start(OkConfig::default()).await.unwrap();
    let config = sandbox.config().clone();
    let http = reqwest::Client::new();
    let call = |sig: String| {
        let mut form = vec![
            (
                "application_key".to_string(),
                config.application_key.clone(),
            ),
            ("method".to_string(), "users.getCurrentUser".to_string()),
            ("format".to_string(), "json".to_string()),
        ];
        form.push(("sig".into(), sig));
        form.push(("access_token".into(), config.access_token.clone()));
        http.post(format!("{}fb.do", sandbox.base_url()))
            .form(&form)
            .send()
    };
    let pairs = [
        ("application_key", config.application_key.as_str()),
        ("method", "users.getCurrentUser"),
        ("format", "json"),
    ];
    let good = signature(&pairs, &config.access_token, &config.secret_key);
    let answer: Value = call(good.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["uid"], config.user_id.as_str());
    // Signed with another secret key, over other parameters, or made up.
    let other_key = signature(&pairs, &config.access_token, "not-the-secret");
    let other_params = signature(&pairs[..2], &config.access_token, &config.secret_key);
    for forged in [other_key, other_params, "0".repeat(32)] {
        let answer: Value = call(forged).await.unwrap().json().await.unwrap();
        assert_eq!(answer["error_code"], codes::PARAM_SIGNATURE);
        assert!(
            answer["error_msg"]
                .as_str()
                .unwrap()
                .starts_with("PARAM_SIGNATURE")
        );
    }
    assert_eq!(sandbox.bad_signatures(), 3);

    // The connector with a wrong secret key is told so, for good.
    let mut endpoints = endpoints(&sandbox);
    endpoints.apps.ok.client_secret = "wrong".into();
    let group = OkGroup::from_profile(
        &credentials(&config.access_token, &config.group_id),
        &endpoints.ok,
        &endpoints.apps.ok,
    )
    .unwrap();
    let err = group.list_posts(5).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent { reason } if reason.contains("104")),
        "{err:?}"
    );
    // Without the server's application set, no connector at all.
    endpoints.apps.ok = SocialApp::default();
    assert!(
        OkGroup::from_profile(
            &credentials(&config.access_token, &config.group_id),
            &endpoints.ok,
            &endpoints.apps.ok,
        )
        .is_err()
    );
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn oks_errors_are_transient_or_permanent() {
    let sandbox = OkSandbox::start(OkConfig::default()).await.unwrap();
    let group = group(&sandbox);
    sandbox.fail_next("mediatopic.getTopics", 8);
    assert!(matches!(
        group.list_posts(5).await,
        Err(SendError::Transient {
            retry_after: Some(_),
            ..
        })
    ));
    sandbox.fail_next("mediatopic.getTopics", codes::PERMISSION_DENIED);
    assert!(matches!(
        group.list_posts(5).await,
        Err(SendError::Permanent { .. })
    ));
    sandbox.revoke(&sandbox.config().access_token);
    let err = group.list_posts(5).await.unwrap_err();
    assert!(err.to_string().contains("invalid token"), "{err}");
    assert_no_violations(&sandbox);
}

#[tokio::test]
async fn oauth_grants_a_token_that_lists_the_groups_it_manages() {
    let sandbox = OkSandbox::start(OkConfig::default()).await.unwrap();
    let config = sandbox.config().clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let spec = omnihub_connectors::social::ok::OAUTH;
    let scope = spec.scopes.join(spec.scope_separator);
    let redirect = "https://omnihub.example/oauth/ok/callback";
    let answer = http
        .get(sandbox.authorize_url())
        .query(&[
            ("client_id", config.application_id.as_str()),
            ("scope", scope.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("state", "st4te"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    let location = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(redirect));
    let query: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "st4te");
    let token = |form: Vec<(&str, String)>| http.post(sandbox.token_url()).form(&form).send();
    let base = |grant: &str| {
        vec![
            ("grant_type", grant.to_string()),
            ("client_id", config.application_id.clone()),
            ("client_secret", config.secret_key.clone()),
        ]
    };
    let mut form = base("authorization_code");
    form.push(("code", query["code"].clone()));
    form.push(("redirect_uri", redirect.to_string()));
    let granted: Value = token(form.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(granted["token_type"], "session");
    let access = granted["access_token"].as_str().unwrap().to_string();
    let refresh = granted["refresh_token"].as_str().unwrap().to_string();
    // A code is good once.
    let reused = token(form).await.unwrap();
    assert_eq!(reused.status().as_u16(), 400);
    let mut form = base("refresh_token");
    form.push(("refresh_token", refresh));
    let renewed: Value = token(form).await.unwrap().json().await.unwrap();
    let renewed = renewed["access_token"].as_str().unwrap().to_string();
    assert_ne!(renewed, access);

    let endpoints = endpoints(&sandbox);
    let profiles = manageable_profiles(&renewed, &endpoints).await.unwrap();
    assert_eq!(profiles.len(), 1, "only the moderated group: {profiles:?}");
    assert_eq!(profiles[0].external_id, config.group_id);
    assert_eq!(profiles[0].name, "Sandbox group");
    assert_eq!(profiles[0].access_token, None);
    assert_no_violations(&sandbox);
}
