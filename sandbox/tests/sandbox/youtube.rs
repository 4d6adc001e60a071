//! The YouTube connector (`connectors::social::youtube`) against the YouTube sandbox: the channel
//! connected by its owner's token, its videos with statistics, comment threads listed (as the
//! poller reads them), answered once, started, held for review, deleted or rejected; videos liked
//! and disliked, each taken back without touching the other; Google's errors classified; Google's
//! OAuth 2.0 code flow; a video uploaded by the resumable protocol (whole, and in chunks of which
//! Google may keep part), whose metadata the fake checks; and every request checked against the
//! Data API's discovery document.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use omnihub_connectors::SendError;
use omnihub_connectors::provider::Problem;
use omnihub_connectors::registry::Endpoints;
use omnihub_connectors::social::youtube::{OAUTH, YoutubeChannel, manageable_profiles};
use omnihub_connectors::social::{
    ConnectFailure, Grant, LikeTarget, Network, PostContent, SocialNetwork, connect,
};
use omnihub_sandbox::youtube::{YoutubeConfig, YoutubeSandbox};
use reqwest::Url;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PERSON: &str = "UCpersonChannel00000001";

fn endpoints(sandbox: &YoutubeSandbox) -> Endpoints {
    Endpoints {
        youtube: Url::parse(&sandbox.base_url()).unwrap(),
        ..Endpoints::default()
    }
}

fn channel(sandbox: &YoutubeSandbox) -> YoutubeChannel {
    YoutubeChannel::from_profile(
        &json!({"access_token": sandbox.config().access_token,
            "channel_id": sandbox.config().channel_id}),
        &endpoints(sandbox).youtube,
    )
    .unwrap()
}

fn grant<'a>(external_id: &'a str, token: &'a str) -> Grant<'a> {
    Grant {
        external_id,
        access_token: token,
        refresh_token: None,
        webhook_secret: "unused",
    }
}

#[tokio::test]
async fn comments_are_listed_answered_moderated_and_videos_rated() {
    let sandbox = YoutubeSandbox::start(YoutubeConfig::default())
        .await
        .unwrap();
    let config = sandbox.config().clone();
    let connected = connect(
        Network::Youtube,
        &grant(&config.channel_id, &config.access_token),
        &endpoints(&sandbox),
    )
    .await
    .unwrap();
    assert_eq!(connected.name, "Sandbox Channel");
    assert!(matches!(
        connect(
            Network::Youtube,
            &grant("UCsomeoneElse", &config.access_token),
            &endpoints(&sandbox)
        )
        .await,
        Err(ConnectFailure::BadExternalId)
    ));
    let yt = channel(&sandbox);
    let older = sandbox.seed_video("Unboxing", "");
    let video = sandbox.seed_video("Spring collection", "All the new things");
    let posts = yt.list_posts(10).await.unwrap();
    assert_eq!(posts.len(), 2);
    let ids: Vec<&str> = posts.iter().map(|p| p.id.as_str()).collect();
    assert!(ids.contains(&older.as_str()) && ids.contains(&video.as_str()));
    let spring = posts.iter().find(|p| p.id == video).unwrap();
    assert_eq!(spring.text, "Spring collection\n\nAll the new things");

    // A person's comment and a reply under it, as the poller finds them.
    let question = sandbox
        .person_comments(&video, PERSON, "Buyer", "Is there size M?", None)
        .unwrap();
    let follow_up = sandbox
        .person_comments(&video, PERSON, "Buyer", "And L?", Some(&question))
        .unwrap();
    let comments = yt.list_comments(&video).await.unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(
        (comments[0].id.as_str(), comments[0].author_id.as_str()),
        (question.as_str(), PERSON)
    );
    assert_eq!(comments[1].reply_to.as_deref(), Some(question.as_str()));
    assert!(!comments[0].by_profile);
    assert_eq!(yt.list_posts(10).await.unwrap()[0].counters.comments, 2);

    // The answer to the reply goes into the thread (YouTube is one level deep), once.
    let answer = yt
        .comment(&video, Some(&follow_up), "Both, yes", "task-1")
        .await
        .unwrap();
    let again = yt
        .comment(&video, Some(&follow_up), "Both, yes", "task-1")
        .await
        .unwrap();
    assert_eq!(answer, again);
    let stored = sandbox.comment(&answer).unwrap();
    assert_eq!(stored.parent_id.as_deref(), Some(question.as_str()));
    assert_eq!(stored.author_channel_id, config.channel_id);
    // A top-level comment of the channel's own.
    let pinned = yt
        .comment(&video, None, "Shipping is free this week", "task-2")
        .await
        .unwrap();
    assert!(sandbox.comment(&pinned).unwrap().parent_id.is_none());
    let listed = yt.list_comments(&video).await.unwrap();
    assert_eq!(listed.iter().filter(|c| c.by_profile).count(), 2);

    // Hiding holds the comment for review; deleting the channel's own deletes it, deleting
    // a person's rejects it.
    yt.hide_comment(&video, &follow_up).await.unwrap();
    assert_eq!(
        sandbox.comment(&follow_up).unwrap().moderation_status,
        "heldForReview"
    );
    yt.delete_comment(&video, &pinned).await.unwrap();
    assert!(sandbox.comment(&pinned).unwrap().deleted);
    yt.delete_comment(&video, &question).await.unwrap();
    assert_eq!(
        sandbox.comment(&question).unwrap().moderation_status,
        "rejected"
    );

    yt.like(LikeTarget::Post(&video)).await.unwrap();
    yt.like(LikeTarget::Post(&video)).await.unwrap();
    assert_eq!(sandbox.videos()[1].likes, 1);
    assert_eq!(sandbox.videos()[1].rating, "like");
    yt.unlike(LikeTarget::Post(&video)).await.unwrap();
    assert_eq!(sandbox.videos()[1].rating, "none");
    assert!(yt.like(LikeTarget::Comment(&question)).await.is_err());

    // A video has one rating: a dislike replaces the like, twice is one dislike.
    yt.like(LikeTarget::Post(&video)).await.unwrap();
    yt.dislike(LikeTarget::Post(&video)).await.unwrap();
    yt.dislike(LikeTarget::Post(&video)).await.unwrap();
    let rated = &sandbox.videos()[1];
    assert_eq!(
        (rated.rating.as_str(), rated.likes, rated.dislikes),
        ("dislike", 0, 1)
    );
    // Taking a like back leaves the dislike alone, and the other way round.
    let rates = sandbox.calls("youtube.videos.rate");
    yt.unlike(LikeTarget::Post(&video)).await.unwrap();
    assert_eq!(sandbox.videos()[1].rating, "dislike");
    assert_eq!(
        sandbox.calls("youtube.videos.rate"),
        rates,
        "nothing to take back"
    );
    yt.undislike(LikeTarget::Post(&video)).await.unwrap();
    let rated = &sandbox.videos()[1];
    assert_eq!((rated.rating.as_str(), rated.dislikes), ("none", 0));
    yt.undislike(LikeTarget::Post(&video)).await.unwrap();
    yt.like(LikeTarget::Post(&video)).await.unwrap();
    yt.undislike(LikeTarget::Post(&video)).await.unwrap();
    assert_eq!(
        sandbox.videos()[1].rating,
        "like",
        "undisliking keeps a like"
    );
    yt.unlike(LikeTarget::Post(&video)).await.unwrap();
    assert_eq!(sandbox.videos()[1].rating, "none");
    assert_eq!(
        sandbox.calls("youtube.videos.getRating"),
        6,
        "one look before each taking back"
    );
    // The Data API rates videos only.
    for refused in [
        yt.dislike(LikeTarget::Comment(&question)).await,
        yt.undislike(LikeTarget::Comment(&question)).await,
    ] {
        assert!(
            refused
                .unwrap_err()
                .reason()
                .contains("cannot rate comments")
        );
    }
    assert!(yt.dislike(LikeTarget::Post("vidGone")).await.is_err());
    assert!(
        yt.create_post(&PostContent::default(), "g").await.is_err(),
        "a post without a video is refused"
    );

    assert!(yt.post_exists(&older).await.unwrap());
    yt.delete_post(&older).await.unwrap();
    yt.delete_post(&older).await.unwrap();
    assert!(!yt.post_exists(&older).await.unwrap());
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn google_errors_are_retried_or_refused_by_their_reason() {
    let sandbox = YoutubeSandbox::start(YoutubeConfig::default())
        .await
        .unwrap();
    let yt = channel(&sandbox);
    let video = sandbox.seed_video("Clip", "");
    for (reason, transient) in [
        ("quotaExceeded", true),
        ("rateLimitExceeded", true),
        ("backendError", true),
        ("forbidden", false),
        ("commentsDisabled", false),
    ] {
        sandbox.fail_next("youtube.commentThreads.list", reason);
        let err = yt.list_comments(&video).await.unwrap_err();
        assert_eq!(err.is_transient(), transient, "{reason}: {err:?}");
        assert!(err.reason().contains(reason), "{err:?}");
    }
    let stranger = YoutubeChannel::from_profile(
        &json!({"access_token": "expired", "channel_id": sandbox.config().channel_id}),
        &endpoints(&sandbox).youtube,
    )
    .unwrap();
    let refused = stranger.list_posts(5).await.unwrap_err();
    assert_eq!(refused.problem(), Problem::InvalidToken, "{refused:?}");
    assert!(matches!(
        yt.hide_comment(&video, "Ugznothing").await,
        Err(SendError::Permanent { .. })
    ));
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn googles_oauth_flow_gives_a_token_for_the_channel() {
    let sandbox = YoutubeSandbox::start(YoutubeConfig::default())
        .await
        .unwrap();
    let config = sandbox.config().clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = "google-verifier-0123456789-0123456789-abcdefghijk";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let redirect = "https://omnihub.test/oauth/youtube/callback";
    let mut query = vec![
        ("response_type", "code".to_string()),
        ("client_id", config.client_id.clone()),
        ("redirect_uri", redirect.to_string()),
        ("scope", OAUTH.scopes.join(" ")),
        ("state", "yt-state".to_string()),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".to_string()),
    ];
    query.extend(
        OAUTH
            .extra_authorize_params
            .iter()
            .map(|(k, v)| (*k, v.to_string())),
    );
    let answer = http
        .get(sandbox.authorize_url())
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    let back = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let tokens: Value = http
        .post(sandbox.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
        ])
        .send()
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
    assert_eq!(profiles[0].external_id, config.channel_id);
    assert_eq!(profiles[0].name, "Sandbox Channel");
    let refreshed: Value = http
        .post(sandbox.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(refreshed["access_token"].is_string());
    assert!(
        refreshed.get("refresh_token").is_none(),
        "Google keeps the refresh token"
    );
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

/// An MP4 file's first box and some bytes.
fn clip() -> Vec<u8> {
    let mut bytes = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    bytes.extend((0..5_000u32).map(|i| (i % 199) as u8));
    bytes
}

#[tokio::test]
async fn a_video_is_uploaded_by_the_resumable_protocol_and_its_metadata_checked() {
    let sandbox = YoutubeSandbox::start(YoutubeConfig::default())
        .await
        .unwrap();
    let yt = channel(&sandbox);
    let video = omnihub_connectors::social::PostMedia {
        file_name: "clip.mp4".into(),
        mime_type: "video/mp4".into(),
        source: omnihub_connectors::social::MediaSource::from_bytes(clip()),
        public_url: None,
    };
    let content = PostContent {
        text: "Behind the scenes".into(),
        hashtags: vec!["studio".into()],
        videos: vec![video.clone()],
        video_privacy: omnihub_core::social::VideoPrivacy::Private,
        ..PostContent::default()
    };
    let id = yt.create_post(&content, "g1").await.unwrap();
    let videos = sandbox.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].id, id);
    assert_eq!(videos[0].title, "Behind the scenes");
    assert_eq!(videos[0].description, "Behind the scenes\n\n#studio");
    assert_eq!(videos[0].privacy_status, "private");
    assert_eq!(videos[0].bytes, clip());
    // Again (its answer lost): the upload is found, not repeated.
    assert_eq!(yt.create_post(&content, "g1").await.unwrap(), id);
    assert_eq!(sandbox.calls("youtube.videos.insert"), 1);
    // Images are not YouTube's.
    let with_image = PostContent {
        images: vec![video.clone()],
        ..content.clone()
    };
    assert!(yt.create_post(&with_image, "g2").await.is_err());
    assert_eq!(sandbox.violations(), Vec::<String>::new());

    // The fake holds a client to Google's rules: a title with `<` is refused, a property the
    // document does not know and a short upload are violations.
    let http = reqwest::Client::new();
    let start = |metadata: Value| {
        http.post(format!(
            "{}upload/youtube/v3/videos?uploadType=resumable&part=snippet",
            sandbox.base_url()
        ))
        .bearer_auth(&sandbox.config().access_token)
        .header("X-Upload-Content-Length", "100")
        .header("X-Upload-Content-Type", "video/mp4")
        .json(&metadata)
        .send()
    };
    let refused = start(json!({"snippet": {"title": "<b>bold</b>"}}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "invalidTitle");
    assert!(sandbox.violations().is_empty());
    let opened = start(json!({"snippet": {"title": "Fine", "colour": "red"}}))
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["location"].to_str().unwrap().to_string();
    let short = http
        .put(&session)
        .bearer_auth(&sandbox.config().access_token)
        .body(clip()[..50].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 400);
    let violations = sandbox.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("colour"), "{violations:?}");
    assert!(violations[1].contains("announced"), "{violations:?}");
    assert_eq!(sandbox.videos().len(), 1);
}

/// An MP4 of `len` bytes: its first box, then a pattern that shows a byte out of place.
fn long_clip(len: usize) -> Vec<u8> {
    let mut bytes = clip();
    bytes.extend((0..len - bytes.len()).map(|i| (i % 251) as u8));
    bytes
}

#[tokio::test]
async fn a_video_larger_than_a_chunk_goes_in_chunks_and_arrives_whole() {
    let sandbox = YoutubeSandbox::start(YoutubeConfig::default())
        .await
        .unwrap();
    let yt = channel(&sandbox);
    // Over one 8 MiB chunk: two chunks, each with its Content-Range, the first answered 308.
    let bytes = long_clip(8 * 1024 * 1024 + 300 * 1024 + 7);
    let post = |title: &str| PostContent {
        text: title.into(),
        videos: vec![omnihub_connectors::social::PostMedia {
            file_name: "long.mp4".into(),
            mime_type: "video/mp4".into(),
            source: omnihub_connectors::social::MediaSource::from_bytes(bytes.clone()),
            public_url: None,
        }],
        ..PostContent::default()
    };
    let id = yt.create_post(&post("Long take"), "g1").await.unwrap();
    assert_eq!(sandbox.upload_chunks(), 2);
    let videos = sandbox.videos();
    assert_eq!(videos[0].id, id);
    assert!(videos[0].bytes == bytes, "the video arrived altered");
    assert_eq!(sandbox.violations(), Vec::<String>::new());

    // Google keeps only part of a chunk: its 308 says how much, and the rest is sent again.
    sandbox.keep_of_next_chunk(1024 * 1024 + 17);
    let again = yt.create_post(&post("Another take"), "g2").await.unwrap();
    assert_eq!(sandbox.upload_chunks(), 4);
    let video = sandbox
        .videos()
        .into_iter()
        .find(|v| v.id == again)
        .unwrap();
    assert!(video.bytes == bytes, "the resumed video arrived altered");
    assert_eq!(sandbox.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn the_fake_upload_session_follows_the_resumable_protocol() {
    let sandbox = YoutubeSandbox::start(YoutubeConfig::default())
        .await
        .unwrap();
    let bytes = long_clip(300 * 1024);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = http
        .post(format!(
            "{}upload/youtube/v3/videos?uploadType=resumable&part=snippet",
            sandbox.base_url()
        ))
        .bearer_auth(&sandbox.config().access_token)
        .header("X-Upload-Content-Length", bytes.len().to_string())
        .header("X-Upload-Content-Type", "video/mp4")
        .json(&json!({"snippet": {"title": "Chunks"}}))
        .send()
        .await
        .unwrap();
    let session = opened.headers()["location"].to_str().unwrap().to_string();
    let put = |range: String, body: Vec<u8>| {
        http.put(&session)
            .bearer_auth(&sandbox.config().access_token)
            .header("Content-Range", range)
            .body(body)
            .send()
    };
    let total = bytes.len();
    // Nothing kept yet: 308 without Range.
    let status = put(format!("bytes */{total}"), Vec::new()).await.unwrap();
    assert_eq!(status.status(), 308);
    assert!(status.headers().get("range").is_none());
    // A first chunk of 256 KiB: 308 with the kept bytes.
    let first = put(format!("bytes 0-262143/{total}"), bytes[..262_144].to_vec())
        .await
        .unwrap();
    assert_eq!(first.status(), 308);
    assert_eq!(first.headers()["range"], "bytes=0-262143");
    assert!(sandbox.violations().is_empty());
    // A chunk that is not the last must be a multiple of 256 KiB, and start where the kept
    // bytes end.
    let odd = put(
        format!("bytes 262144-262243/{total}"),
        bytes[262_144..262_244].to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(odd.status(), 400);
    let gap = put(
        format!("bytes 262145-{}/{total}", total - 1),
        bytes[262_145..].to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(gap.status(), 400);
    let violations = sandbox.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("256 KiB"), "{violations:?}");
    assert!(
        violations[1].contains("starts at byte 262145"),
        "{violations:?}"
    );
    // The last chunk creates the video from all the kept bytes.
    let last = put(
        format!("bytes 262144-{}/{total}", total - 1),
        bytes[262_144..].to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(last.status(), 200);
    let created: Value = last.json().await.unwrap();
    let video = sandbox.videos().into_iter().next().unwrap();
    assert_eq!(created["id"], video.id.as_str());
    assert!(video.bytes == bytes);
}
