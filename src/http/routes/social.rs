//! Social publishing over REST: the capability matrix, connected profiles, posts with their
//! per-profile variants and approval flow, and actions on posts and comments that the
//! scheduler carries out now or at a time (`social.*` tasks, each idempotent by its id).
//!
//! Rights are per profile (a profile is a channel): `publish` writes, submits, schedules and
//! publishes posts; `approve` approves or sends back; `delete` deletes; `moderate` acts on
//! comments and likes; `read` sees. A post needs the right on every profile it targets.
//! Whatever a network does not allow answers 422 `unsupported_by_network` with the reason.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use omnihub_connectors::social::place::BadPlace;
use omnihub_connectors::social::{self as net, Action as NetAction, Network, Support};
use omnihub_core::access::{Action, Decision, channel_rights};
use omnihub_core::social::{PostContent, local_instant, status};
use omnihub_core::{ChannelId, ChannelRights, ConversationId, MessageId, Principal, decide};
use omnihub_store::{
    NewSocialPost, NewTask, PostTransition, SocialPost, SocialProfile, StoreError, Task,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{Auth, Caller, ManageSettings, ViewOwnClient};
use crate::i18n::Msg;
use crate::social::tasks::{self, CommentPayload, DeleteCommentPayload, LikePayload};
use crate::social::{Limit, ProfileToConnect, SocialFailure};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/social/networks", web::get().to(list_networks))
        .route("/social/profiles", web::get().to(list_profiles))
        .route("/social/profiles", web::post().to(connect_profile))
        .route(
            "/social/profiles/{channel_id}",
            web::delete().to(disconnect_profile),
        )
        .route(
            "/social/profiles/{channel_id}/posts",
            web::get().to(profile_posts),
        )
        .route("/social/media", web::get().to(list_media))
        .route("/social/media", web::post().to(upload_media))
        .route("/social/posts", web::get().to(list_posts))
        .route("/social/posts", web::post().to(create_post))
        .route("/social/posts/{id}", web::get().to(get_post))
        .route("/social/posts/{id}", web::patch().to(update_post))
        .route("/social/posts/{id}", web::delete().to(delete_post))
        .route("/social/posts/{id}/submit", web::post().to(submit_post))
        .route("/social/posts/{id}/approve", web::post().to(approve_post))
        .route("/social/posts/{id}/reject", web::post().to(reject_post))
        .route("/social/posts/{id}/schedule", web::post().to(schedule_post))
        .route(
            "/social/posts/{id}/unschedule",
            web::post().to(unschedule_post),
        )
        .route("/social/posts/{id}/publish", web::post().to(publish_post))
        .route("/social/posts/{id}/actions", web::post().to(post_action))
        .route("/social/posts/{id}/comments", web::get().to(post_comments))
        .route(
            "/social/comments/{message_id}/actions",
            web::post().to(comment_action),
        );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_networks,
        list_profiles,
        connect_profile,
        disconnect_profile,
        profile_posts,
        list_media,
        upload_media,
        list_posts,
        create_post,
        get_post,
        update_post,
        delete_post,
        submit_post,
        approve_post,
        reject_post,
        schedule_post,
        unschedule_post,
        publish_post,
        post_action,
        post_comments,
        comment_action
    ),
    components(schemas(
        NetworkRow,
        ActionRow,
        SocialProfile,
        ProfileList,
        ConnectProfile,
        RemotePostView,
        omnihub_store::SocialMedia,
        MediaList,
        SocialPost,
        omnihub_store::PostTarget,
        PostList,
        PostInput,
        TargetInput,
        PostContent,
        omnihub_core::social::Location,
        ScheduleInput,
        PostActionInput,
        CommentActionInput,
        When,
        CommentThreads
    ))
)]
pub struct Api;

// ---------------------------------------------------------------------------------------------
// The capability matrix
// ---------------------------------------------------------------------------------------------

/// One action on one network.
#[derive(Serialize, ToSchema)]
pub struct ActionRow {
    pub action: String,
    /// `supported`, `planned` (the network allows it; not built yet) or `unsupported` (the
    /// network's API does not allow it).
    pub status: &'static str,
    pub reason: Option<&'static str>,
}

impl ActionRow {
    fn of(action: String, support: Support) -> ActionRow {
        let (status, reason) = match support {
            Support::Supported => ("supported", None),
            Support::Planned(r) => ("planned", Some(r)),
            Support::Unsupported(r) => ("unsupported", Some(r)),
        };
        ActionRow {
            action,
            status,
            reason,
        }
    }
}

/// A network's row of the capability matrix.
#[derive(Serialize, ToSchema)]
pub struct NetworkRow {
    /// `vk`, `ok`, `facebook`, `instagram`, `x`, `youtube` or `google_plus`.
    pub network: &'static str,
    /// Whether its profiles can be connected.
    pub connect: ActionRow,
    /// How new comments arrive: `webhook`, `polling` or `none`.
    pub comments: &'static str,
    /// Characters of a post's text, images a post, image types, bytes an image (when built).
    #[schema(value_type = Option<Object>)]
    pub limits: Option<serde_json::Value>,
    pub actions: Vec<ActionRow>,
    /// Whether profiles can be connected through the network's own authorization page
    /// (`POST /api/v1/social/oauth/{network}/start`): omnihub has the flow and the server's
    /// application on the network is configured.
    pub oauth: bool,
}

fn action_name(action: NetAction) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The capability matrix: what each network allows and what omnihub does of it. Google+ is
/// listed as dead (its API was shut down in 2019).
#[utoipa::path(get, path = "/api/v1/social/networks", tag = "social",
    responses((status = 200, body = [NetworkRow]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_networks(
    state: web::Data<AppState>,
    _caller: Auth<ViewOwnClient>,
) -> web::Json<Vec<NetworkRow>> {
    web::Json(
        Network::ALL
            .into_iter()
            .map(|network| {
                let row = net::capabilities(network);
                NetworkRow {
                    network: network.as_str(),
                    connect: ActionRow::of("connect".into(), row.connect),
                    comments: match row.comments {
                        net::CommentDelivery::Webhook => "webhook",
                        net::CommentDelivery::Polling => "polling",
                        net::CommentDelivery::None => "none",
                    },
                    limits: row.limits.and_then(|l| serde_json::to_value(l).ok()),
                    actions: row
                        .matrix()
                        .into_iter()
                        .map(|(a, s)| ActionRow::of(action_name(a), s))
                        .collect(),
                    oauth: row.connect == Support::Supported
                        && net::oauth_spec(network).is_some_and(|spec| {
                            spec.ready(net::oauth_app(network, &state.endpoints))
                        }),
                }
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct ProfileList {
    pub items: Vec<SocialProfile>,
}

/// A profile to connect with an access token the client already holds.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectProfile {
    /// `vk` (the networks whose `connect` is `supported` in the matrix).
    pub network: String,
    /// The community's id on the network (VK: the number, without the minus).
    pub external_id: String,
    /// An administrator's token with the scopes the network needs (VK: `wall`, `photos`,
    /// `groups`). Stored sealed, never returned.
    pub access_token: String,
}

fn network_param(raw: &str) -> ApiResult<Network> {
    Network::parse(raw).ok_or(ApiError::Validation(Msg::SocialBadValue {
        field: "network",
    }))
}

/// The public address the network's events for profiles of `network` go to.
pub(crate) fn hooks_base(state: &AppState, network: Network) -> String {
    format!(
        "{}/hooks/social/{}/",
        state.config.server.public_url.trim_end_matches('/'),
        network.as_str()
    )
}

/// Maps what the service says to the API's errors.
pub(crate) fn api_failure(err: SocialFailure, network: &str) -> ApiError {
    let network = network.to_string();
    match err {
        SocialFailure::NotFound => ApiError::NotFound,
        SocialFailure::BadExternalId => ApiError::Validation(Msg::SocialBadValue {
            field: "external_id",
        }),
        SocialFailure::Unsupported { action, reason } => {
            ApiError::Unsupported(Msg::SocialUnsupported {
                network,
                action: action_name(action),
                reason: reason.to_string(),
            })
        }
        SocialFailure::Limit(limit) => ApiError::Validation(match limit {
            Limit::Empty => Msg::SocialPostEmpty { network },
            Limit::TextLength { max } => Msg::SocialTextTooLong { network, max },
            Limit::ImageCount { max } => Msg::SocialTooManyImages { network, max },
            Limit::ImageType => Msg::SocialImageType { network },
            Limit::ImageSize { max } => Msg::SocialImageSize { network, max },
            Limit::VideoCount { max } => Msg::SocialTooManyVideos { network, max },
            Limit::VideoWithImages => Msg::SocialVideoWithImages { network },
            Limit::VideoType => Msg::SocialVideoType { network },
            Limit::VideoSize { max } => Msg::SocialVideoSize { network, max },
        }),
        SocialFailure::Place(bad) => place_failure(bad, network),
        SocialFailure::Network(err) => match err {
            omnihub_connectors::SendError::Permanent { reason }
            | omnihub_connectors::SendError::Blocked { reason } => {
                ApiError::Validation(Msg::ProviderRefused { reason })
            }
            omnihub_connectors::SendError::Transient { reason, .. } => {
                ApiError::NotReady(format!("{network}: {reason}"))
            }
        },
        SocialFailure::Config(reason) => ApiError::Validation(Msg::ProviderRefused { reason }),
        SocialFailure::Store(err) => err.into(),
    }
}

/// Why a network cannot take a post's location: 422 when it takes locations of another kind,
/// 400 when what was pasted is no place of that network.
fn place_failure(bad: BadPlace, network: String) -> ApiError {
    match bad {
        BadPlace::NeedsPlace(_) => ApiError::Unsupported(Msg::SocialPlaceNeeded { network }),
        BadPlace::NeedsCoordinates(_) => {
            ApiError::Unsupported(Msg::SocialCoordinatesNeeded { network })
        }
        BadPlace::NotAPlace(on) => ApiError::Validation(Msg::SocialBadPlace {
            network,
            example: omnihub_connectors::social::place::example(on).to_string(),
        }),
        BadPlace::NotTaken(_) => ApiError::Unsupported(Msg::SocialUnsupported {
            network,
            action: action_name(NetAction::PostLocation),
            reason: bad.to_string(),
        }),
    }
}

/// The client's profiles the caller may see (all of them for whoever manages settings).
#[utoipa::path(get, path = "/api/v1/social/profiles", tag = "social",
    responses((status = 200, body = ProfileList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_profiles(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
) -> ApiResult<web::Json<ProfileList>> {
    let client = caller.client_id()?;
    let items = state
        .store
        .list_social_profiles(client)
        .await?
        .into_iter()
        .filter(|p| decide(&caller.principal, Action::ViewChannel(p.id)) == Decision::Allow)
        .collect();
    Ok(web::Json(ProfileList { items }))
}

/// Connects a community with an administrator's token: the token is checked with the
/// network, stored sealed, and the network's comment events are pointed at
/// `/hooks/social/{network}/{profile_id}`. A profile whose events could not be set up is
/// kept with status `failing` and the network's words.
#[utoipa::path(post, path = "/api/v1/social/profiles", tag = "social",
    request_body = ConnectProfile,
    responses((status = 201, body = SocialProfile),
        (status = 400, description = "unknown network or id, or the network refused the token", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "this community is already connected", body = ErrorBody),
        (status = 422, description = "`unsupported_by_network`: this network's profiles cannot be connected", body = ErrorBody),
        (status = 503, description = "the network could not be reached", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn connect_profile(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    body: web::Json<ConnectProfile>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let network = network_param(&body.network)?;
    if let Support::Planned(reason) | Support::Unsupported(reason) =
        net::capabilities(network).connect
    {
        return Err(ApiError::Unsupported(Msg::NetworkNotConnectable {
            network: network.as_str().into(),
            reason: reason.into(),
        }));
    }
    let token = omnihub_core::validate::text("access_token", &body.access_token, 1_000)?;
    let hooks = hooks_base(&state, network);
    let profile = state
        .social
        .connect(&ProfileToConnect {
            client,
            network,
            external_id: &body.external_id,
            access_token: &token,
            refresh_token: None,
            token_expires_at: None,
            kept: &[],
            hooks_base: &hooks,
        })
        .await
        .map_err(|err| api_failure(err, network.as_str()))?;
    state
        .audit(caller.audit(
            Some(client),
            "social_profile.connect",
            "channel",
            profile.id,
            json!({ "network": profile.network, "external_id": profile.external_id }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(profile))
}

/// Disconnects a profile: its tokens, posts' targets on it and comment conversations go.
#[utoipa::path(delete, path = "/api/v1/social/profiles/{channel_id}", tag = "social",
    params(("channel_id" = ChannelId, Path, description = "the profile")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn disconnect_profile(
    state: web::Data<AppState>,
    caller: Auth<ManageSettings>,
    path: web::Path<ChannelId>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let profile = state
        .store
        .get_social_profile(client, path.into_inner())
        .await?;
    state.store.delete_channel(client, profile.id).await?;
    state
        .audit(caller.audit(
            Some(client),
            "social_profile.disconnect",
            "channel",
            profile.id,
            json!({ "network": profile.network }),
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A post as the network shows it, with our post when it was published from here.
#[derive(Serialize, ToSchema)]
pub struct RemotePostView {
    pub id: String,
    pub text: String,
    pub published_at: Option<DateTime<Utc>>,
    pub likes: u64,
    pub comments: u64,
    pub reposts: u64,
    pub views: u64,
    pub post_id: Option<uuid::Uuid>,
}

/// The profile's latest posts as the network shows them, with their counters (the counters
/// of posts published from here are updated too). Needs `read` on the profile.
#[utoipa::path(get, path = "/api/v1/social/profiles/{channel_id}/posts", tag = "social",
    params(("channel_id" = ChannelId, Path, description = "the profile")),
    responses((status = 200, body = [RemotePostView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn profile_posts(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<ChannelId>,
) -> ApiResult<web::Json<Vec<RemotePostView>>> {
    let client = caller.client_id()?;
    let profile_id = path.into_inner();
    need(&caller, profile_id, ChannelRights::READ)?;
    let profile = state.store.get_social_profile(client, profile_id).await?;
    let fail = |err| api_failure(err, &profile.network);
    let capabilities = state
        .social
        .capabilities_of(client, profile_id)
        .await
        .map_err(fail)?;
    capabilities
        .require(NetAction::ListPosts)
        .map_err(|reason| {
            fail(SocialFailure::Unsupported {
                action: NetAction::ListPosts,
                reason,
            })
        })?;
    let network = state
        .social
        .network(client, profile_id)
        .await
        .map_err(fail)?;
    let remote = network
        .list_posts(20)
        .await
        .map_err(|err| fail(SocialFailure::Network(err)))?;
    let ours = state.store.list_social_posts(client).await?;
    let mut items = Vec::with_capacity(remote.len());
    for post in remote {
        let mine = ours.iter().find_map(|p| {
            p.targets
                .iter()
                .any(|t| t.profile_id == profile_id && t.remote_id.as_deref() == Some(&post.id))
                .then_some(p.id)
        });
        let c = post.counters;
        if let Some(mine) = mine {
            let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            state
                .store
                .set_target_counters(
                    client,
                    mine,
                    profile_id,
                    [
                        as_i64(c.likes),
                        as_i64(c.comments),
                        as_i64(c.reposts),
                        as_i64(c.views),
                    ],
                )
                .await?;
        }
        items.push(RemotePostView {
            id: post.id,
            text: post.text,
            published_at: post.published_at,
            likes: c.likes,
            comments: c.comments,
            reposts: c.reposts,
            views: c.views,
            post_id: mine,
        });
    }
    Ok(web::Json(items))
}

// ---------------------------------------------------------------------------------------------
// The media library
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct MediaList {
    pub items: Vec<omnihub_store::SocialMedia>,
}

/// Image types some network takes in a post.
const POST_IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];
/// Video types some network takes in a post.
const POST_VIDEO_TYPES: [&str; 3] = ["video/mp4", "video/quicktime", "video/webm"];

/// Whether the caller may publish on some profile (the owner always).
fn publishes_somewhere(who: &Principal) -> bool {
    who.role == omnihub_core::Role::ClientOwner
        || who
            .channels
            .values()
            .any(|r| r.contains(ChannelRights::PUBLISH))
}

/// The client's media library, newest first (at most 500).
#[utoipa::path(get, path = "/api/v1/social/media", tag = "social",
    responses((status = 200, body = MediaList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_media(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
) -> ApiResult<web::Json<MediaList>> {
    let items = state.store.list_social_media(caller.client_id()?).await?;
    Ok(web::Json(MediaList { items }))
}

/// Adds an image or a video to the media library (`multipart/form-data`, one part named
/// `file`), for posts to name in `media`. The type is the file's content, whatever was
/// declared: an image (JPEG, PNG, GIF or WebP) within `[media] max_upload_bytes`, or a video
/// (MP4, QuickTime or WebM) within `[media] max_video_bytes`; nothing is kept of a refused
/// file. Needs `publish` on some profile.
#[utoipa::path(post, path = "/api/v1/social/media", tag = "social",
    request_body(content = String, description = "`multipart/form-data` with one part named `file`", content_type = "multipart/form-data"),
    responses((status = 201, body = omnihub_store::SocialMedia),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, description = "larger than the limit of its kind", body = ErrorBody),
        (status = 415, description = "not multipart, or not an image or video a network takes", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn upload_media(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    if !publishes_somewhere(&caller.principal) {
        return Err(ApiError::Forbidden);
    }
    // The file's first bytes decide its type, and with it its limit; only images and videos
    // a network takes are kept.
    let media = &state.config.media;
    let (image_limit, video_limit) = (media.max_upload_bytes as u64, media.max_video_bytes);
    let file = super::attachments::receive_typed_file(&req, payload, &state, |_, name, head| {
        let mime = omnihub_core::media::sniff_type(head, name);
        if POST_IMAGE_TYPES.contains(&mime) {
            Ok((mime.to_string(), image_limit))
        } else if POST_VIDEO_TYPES.contains(&mime) {
            Ok((mime.to_string(), video_limit))
        } else {
            Err(ApiError::UnsupportedFile(Msg::SocialMediaType {
                mime: mime.to_string(),
            }))
        }
    })
    .await?;
    let media = match state
        .store
        .create_social_media(&omnihub_store::NewSocialMedia {
            client_id: client,
            file_name: file.file_name,
            mime_type: file.mime_type,
            size: i64::try_from(file.put.size).unwrap_or(i64::MAX),
            storage_key: file.put.key.clone(),
            uploaded_by: Some(caller.principal.user_id),
        })
        .await
    {
        Ok(media) => media,
        Err(err) => {
            let _ = state.media.delete(&file.put.key).await;
            return Err(err.into());
        }
    };
    state
        .audit(caller.audit(
            Some(client),
            "social_media.upload",
            "social_media",
            media.id,
            json!({ "file_name": media.file_name, "size": media.size, "kind": media.kind }),
        ))
        .await?;
    Ok(HttpResponse::Created().json(media))
}

// ---------------------------------------------------------------------------------------------
// Posts
// ---------------------------------------------------------------------------------------------

/// The caller holds `rights` on the profile (owners hold everything).
fn need(caller: &Caller, profile: ChannelId, rights: ChannelRights) -> ApiResult<()> {
    match decide(&caller.principal, Action::Channel(profile, rights)) {
        Decision::Allow => Ok(()),
        Decision::Deny(denial) => Err(denial.into()),
    }
}

/// Whether the caller may see the post: `read` on every profile it targets.
fn sees(who: &Principal, post: &SocialPost) -> bool {
    post.targets
        .iter()
        .all(|t| channel_rights(who, t.profile_id).contains(ChannelRights::READ))
}

/// The post, when the caller may see it (else 404, as for another client's).
async fn visible_post(state: &AppState, caller: &Caller, id: uuid::Uuid) -> ApiResult<SocialPost> {
    let post = state.store.get_social_post(caller.client_id()?, id).await?;
    if !sees(&caller.principal, &post) {
        return Err(ApiError::NotFound);
    }
    Ok(post)
}

/// The post, when the caller may see it and holds `rights` on every profile it targets.
async fn post_with(
    state: &AppState,
    caller: &Caller,
    id: uuid::Uuid,
    rights: ChannelRights,
) -> ApiResult<SocialPost> {
    let post = visible_post(state, caller, id).await?;
    for target in &post.targets {
        need(caller, target.profile_id, rights)?;
    }
    Ok(post)
}

#[derive(Serialize, ToSchema)]
pub struct PostList {
    pub items: Vec<SocialPost>,
}

/// One profile a post goes to, and that profile's variant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    pub profile_id: ChannelId,
    /// Replaces the post's fields it sets, on this profile only.
    pub content: Option<PostContent>,
}

/// A post and the profiles it goes to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostInput {
    pub content: PostContent,
    pub targets: Vec<TargetInput>,
}

/// Checks a post's content and each profile's variant, against the shared rules and each
/// profile's network; returns what to store. Needs `publish` on every profile.
async fn checked_input(
    state: &AppState,
    caller: &Caller,
    input: PostInput,
) -> ApiResult<(
    serde_json::Value,
    Vec<(ChannelId, Option<serde_json::Value>)>,
)> {
    let client = caller.client_id()?;
    let mut seen = std::collections::HashSet::new();
    if input.targets.is_empty() || !input.targets.iter().all(|t| seen.insert(t.profile_id)) {
        return Err(ApiError::Validation(Msg::PostNoProfiles));
    }
    let content = input
        .content
        .checked()
        .map_err(Msg::from)
        .map_err(ApiError::Validation)?;
    let mut targets = Vec::with_capacity(input.targets.len());
    for target in input.targets {
        need(caller, target.profile_id, ChannelRights::PUBLISH)?;
        let profile = state
            .store
            .get_social_profile(client, target.profile_id)
            .await?;
        let variant = match target.content {
            Some(v) => Some(
                v.checked()
                    .map_err(Msg::from)
                    .map_err(ApiError::Validation)?,
            ),
            None => None,
        };
        let merged = content.with_variant(variant.as_ref());
        let capabilities = state
            .social
            .capabilities_of(client, profile.id)
            .await
            .map_err(|e| api_failure(e, &profile.network))?;
        state
            .social
            .check(client, &capabilities, &merged)
            .await
            .map_err(|e| api_failure(e, &profile.network))?;
        let variant = variant
            .map(|v| serde_json::to_value(v).map_err(ApiError::internal))
            .transpose()?;
        targets.push((profile.id, variant));
    }
    let content = serde_json::to_value(content).map_err(ApiError::internal)?;
    Ok((content, targets))
}

/// The client's posts the caller may see, newest first (at most 500).
#[utoipa::path(get, path = "/api/v1/social/posts", tag = "social",
    responses((status = 200, body = PostList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_posts(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
) -> ApiResult<web::Json<PostList>> {
    let client = caller.client_id()?;
    let items = state
        .store
        .list_social_posts(client)
        .await?
        .into_iter()
        .filter(|p| sees(&caller.principal, p))
        .collect();
    Ok(web::Json(PostList { items }))
}

/// Writes a draft: the content, the profiles it goes to and each one's variant, checked
/// against each network's limits (length with mentions and hashtags, image count and type)
/// and capabilities. Needs `publish` on every profile.
#[utoipa::path(post, path = "/api/v1/social/posts", tag = "social",
    request_body = PostInput,
    responses((status = 201, body = SocialPost),
        (status = 400, description = "content breaking a rule or a network's limit", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "a profile or media file that is not the client's", body = ErrorBody),
        (status = 422, description = "`unsupported_by_network`: e.g. a video where the network takes none", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    body: web::Json<PostInput>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let (content, targets) = checked_input(&state, &caller, body.into_inner()).await?;
    let post = state
        .store
        .create_social_post(&NewSocialPost {
            client_id: client,
            author_id: Some(caller.principal.user_id),
            content,
            targets,
        })
        .await?;
    state
        .audit(caller.audit(
            Some(client),
            "social_post.create",
            "social_post",
            post.id,
            json!({}),
        ))
        .await?;
    Ok(HttpResponse::Created().json(post))
}

/// One post with its targets' states, remote ids and counters. Needs `read` on its profiles.
#[utoipa::path(get, path = "/api/v1/social/posts/{id}", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    responses((status = 200, body = SocialPost), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<web::Json<SocialPost>> {
    Ok(web::Json(
        visible_post(&state, &caller, path.into_inner()).await?,
    ))
}

/// Rewrites a draft (content, profiles, variants), checked as on creation.
#[utoipa::path(patch, path = "/api/v1/social/posts/{id}", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    request_body = PostInput,
    responses((status = 200, body = SocialPost), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the post is no longer a draft", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
    body: web::Json<PostInput>,
) -> ApiResult<web::Json<SocialPost>> {
    let client = caller.client_id()?;
    let post = post_with(&state, &caller, path.into_inner(), ChannelRights::PUBLISH).await?;
    let (content, targets) = checked_input(&state, &caller, body.into_inner()).await?;
    let post = state
        .store
        .update_social_post(client, post.id, &content, &targets)
        .await
        .map_err(|e| status_conflict(e, &post.status))?;
    state
        .audit(caller.audit(
            Some(client),
            "social_post.update",
            "social_post",
            post.id,
            json!({}),
        ))
        .await?;
    Ok(web::Json(post))
}

/// A `Conflict("status")` from the store as the API says it.
fn status_conflict(err: StoreError, status: &str) -> ApiError {
    match err {
        StoreError::Conflict("status") => ApiError::Conflict(Msg::PostStatus {
            status: status.to_string(),
        }),
        other => other.into(),
    }
}

/// Deletes a post that is on no network (a published one is taken down first with the
/// `delete` action). Needs `delete` on its profiles.
#[utoipa::path(delete, path = "/api/v1/social/posts/{id}", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the post is published somewhere", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let post = post_with(&state, &caller, path.into_inner(), ChannelRights::DELETE).await?;
    state
        .store
        .delete_social_post(client, post.id)
        .await
        .map_err(|e| status_conflict(e, &post.status))?;
    state
        .audit(caller.audit(
            Some(client),
            "social_post.delete",
            "social_post",
            post.id,
            json!({}),
        ))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Moves a post along the approval flow, with the right every profile needs for it.
async fn transition(
    state: &AppState,
    caller: &Caller,
    id: uuid::Uuid,
    rights: ChannelRights,
    change: PostTransition<'_>,
    audit: &str,
) -> ApiResult<SocialPost> {
    let client = caller.client_id()?;
    let post = post_with(state, caller, id, rights).await?;
    let moved = state
        .store
        .transition_social_post(client, post.id, &change)
        .await
        .map_err(|e| status_conflict(e, &post.status))?;
    state
        .audit(caller.audit(
            Some(client),
            audit,
            "social_post",
            post.id,
            json!({ "from": post.status, "to": moved.status }),
        ))
        .await?;
    Ok(moved)
}

/// Sends a draft for approval. Needs `publish`.
#[utoipa::path(post, path = "/api/v1/social/posts/{id}/submit", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    responses((status = 200, body = SocialPost), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "not a draft", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn submit_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<web::Json<SocialPost>> {
    let change = PostTransition {
        from: &[status::DRAFT],
        to: status::AWAITING_APPROVAL,
        approved_by: None,
        scheduled: None,
    };
    let post = transition(
        &state,
        &caller,
        path.into_inner(),
        ChannelRights::PUBLISH,
        change,
        "social_post.submit",
    )
    .await?;
    Ok(web::Json(post))
}

/// Approves a post waiting for approval. Needs `approve` on every profile.
#[utoipa::path(post, path = "/api/v1/social/posts/{id}/approve", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    responses((status = 200, body = SocialPost), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "not waiting for approval", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn approve_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<web::Json<SocialPost>> {
    let change = PostTransition {
        from: &[status::AWAITING_APPROVAL],
        to: status::APPROVED,
        approved_by: Some(caller.principal.user_id),
        scheduled: None,
    };
    let post = transition(
        &state,
        &caller,
        path.into_inner(),
        ChannelRights::APPROVE,
        change,
        "social_post.approve",
    )
    .await?;
    Ok(web::Json(post))
}

/// Sends a post waiting for approval back to its author as a draft. Needs `approve`.
#[utoipa::path(post, path = "/api/v1/social/posts/{id}/reject", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    responses((status = 200, body = SocialPost), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "not waiting for approval", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn reject_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<web::Json<SocialPost>> {
    let change = PostTransition {
        from: &[status::AWAITING_APPROVAL],
        to: status::DRAFT,
        approved_by: None,
        scheduled: None,
    };
    let post = transition(
        &state,
        &caller,
        path.into_inner(),
        ChannelRights::APPROVE,
        change,
        "social_post.reject",
    )
    .await?;
    Ok(web::Json(post))
}

/// A wall-clock time in a time zone.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Local time, `YYYY-MM-DDTHH:MM[:SS]`.
    #[schema(example = "2026-11-28T10:00")]
    pub at: String,
    /// An IANA time zone, e.g. `Europe/Moscow`.
    pub time_zone: String,
}

impl When {
    /// The instant, which must be in the future.
    fn instant(&self) -> ApiResult<DateTime<Utc>> {
        let local = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(self.at.trim(), f).ok())
            .ok_or(ApiError::Validation(Msg::SocialBadValue { field: "at" }))?;
        let at = local_instant(local, self.time_zone.trim())
            .map_err(Msg::from)
            .map_err(ApiError::Validation)?;
        if at <= Utc::now() {
            return Err(ApiError::Validation(Msg::ScheduleInPast));
        }
        Ok(at)
    }
}

/// When an approved post goes out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    #[serde(flatten)]
    pub when: When,
}

async fn schedule(
    state: &AppState,
    kind: &str,
    client: omnihub_core::ClientId,
    payload: serde_json::Value,
    due_at: DateTime<Utc>,
    key: String,
) -> ApiResult<Task> {
    Ok(state
        .store
        .schedule_task(&NewTask {
            client_id: Some(client),
            kind: kind.to_string(),
            payload,
            due_at,
            idempotency_key: key,
        })
        .await?)
}

/// Plans an approved post (or moves a scheduled one) to a time in a time zone; the scheduler
/// publishes it then (`social.publish`, once: a moved post's earlier task does nothing).
/// Needs `publish`.
#[utoipa::path(post, path = "/api/v1/social/posts/{id}/schedule", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    request_body = ScheduleInput,
    responses((status = 200, body = SocialPost), (status = 400, description = "not a time, not a time zone, or in the past", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "not approved or scheduled", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn schedule_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
    body: web::Json<ScheduleInput>,
) -> ApiResult<web::Json<SocialPost>> {
    let client = caller.client_id()?;
    let at = body.when.instant()?;
    let zone = body.when.time_zone.trim().to_string();
    let change = PostTransition {
        from: &[status::APPROVED, status::SCHEDULED],
        to: status::SCHEDULED,
        approved_by: None,
        scheduled: Some(Some((at, zone))),
    };
    let post = transition(
        &state,
        &caller,
        path.into_inner(),
        ChannelRights::PUBLISH,
        change,
        "social_post.schedule",
    )
    .await?;
    let due = post.scheduled_at.unwrap_or(at);
    let payload = serde_json::to_value(tasks::PublishPayload {
        client_id: client,
        post_id: post.id,
        due_at: Some(due.timestamp_millis()),
    })
    .map_err(ApiError::internal)?;
    let key = format!("{}:{}:{}", tasks::PUBLISH, post.id, due.timestamp_millis());
    schedule(&state, tasks::PUBLISH, client, payload, due, key).await?;
    Ok(web::Json(post))
}

/// Takes a scheduled post back to approved; its task then does nothing. Needs `publish`.
#[utoipa::path(post, path = "/api/v1/social/posts/{id}/unschedule", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    responses((status = 200, body = SocialPost), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "not scheduled", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn unschedule_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<web::Json<SocialPost>> {
    let change = PostTransition {
        from: &[status::SCHEDULED],
        to: status::APPROVED,
        approved_by: None,
        scheduled: Some(None),
    };
    let post = transition(
        &state,
        &caller,
        path.into_inner(),
        ChannelRights::PUBLISH,
        change,
        "social_post.unschedule",
    )
    .await?;
    Ok(web::Json(post))
}

/// Publishes an approved (or scheduled, or failed) post now: the scheduler runs
/// `social.publish` at once; a failed post retries only the profiles that failed. Needs
/// `publish`.
#[utoipa::path(post, path = "/api/v1/social/posts/{id}/publish", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    responses((status = 202, body = SocialPost), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "not approved, scheduled or failed", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn publish_post(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let change = PostTransition {
        from: &[status::APPROVED, status::SCHEDULED, status::FAILED],
        to: status::PUBLISHING,
        approved_by: None,
        scheduled: Some(None),
    };
    let post = transition(
        &state,
        &caller,
        path.into_inner(),
        ChannelRights::PUBLISH,
        change,
        "social_post.publish",
    )
    .await?;
    let payload = serde_json::to_value(tasks::PublishPayload {
        client_id: client,
        post_id: post.id,
        due_at: None,
    })
    .map_err(ApiError::internal)?;
    // One task per request to publish: the transition above lets only one through.
    let key = format!(
        "{}:{}:now:{}",
        tasks::PUBLISH,
        post.id,
        post.updated_at.timestamp_millis()
    );
    schedule(&state, tasks::PUBLISH, client, payload, Utc::now(), key).await?;
    Ok(HttpResponse::Accepted().json(post))
}

/// Something to do with a published post, now or at a time.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostActionInput {
    /// `delete` (from every profile; needs `delete`), `like`, `unlike`, `dislike` or
    /// `undislike` (as the profile; needs `moderate`; dislikes only where the network has
    /// them: YouTube's videos), `comment` (as the profile, with `text`; needs `reply`).
    pub action: String,
    /// For `like`, `unlike`, `dislike`, `undislike` and `comment`: the profile acting; every
    /// profile when left out.
    pub profile_id: Option<ChannelId>,
    pub text: Option<String>,
    /// When; now if left out.
    pub when: Option<When>,
}

/// Schedules an action on a published post (`social.delete_post`, `social.like`,
/// `social.unlike`, `social.dislike`, `social.undislike`, `social.comment`), now or at a time
/// in a time zone; answers the tasks. An action a profile's network does not allow (a dislike
/// on VK) is refused with the network's reason and nothing is scheduled.
#[utoipa::path(post, path = "/api/v1/social/posts/{id}/actions", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    request_body = PostActionInput,
    responses((status = 202, body = [Task]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the post is not published on that profile", body = ErrorBody),
        (status = 422, description = "`unsupported_by_network`: e.g. a dislike on VK", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn post_action(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
    body: web::Json<PostActionInput>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let body = body.into_inner();
    let post = visible_post(&state, &caller, path.into_inner()).await?;
    let due = match &body.when {
        Some(when) => when.instant()?,
        None => Utc::now(),
    };
    let request = uuid::Uuid::now_v7();
    let (kind, net_action, rights) = match body.action.as_str() {
        "delete" => (
            tasks::DELETE_POST,
            NetAction::DeletePost,
            ChannelRights::DELETE,
        ),
        "like" => (tasks::LIKE, NetAction::LikePost, ChannelRights::MODERATE),
        "unlike" => (
            tasks::UNLIKE,
            NetAction::UnlikePost,
            ChannelRights::MODERATE,
        ),
        // Disliking and taking the dislike back are one action of the matrix.
        "dislike" => (tasks::DISLIKE, NetAction::Dislike, ChannelRights::MODERATE),
        "undislike" => (
            tasks::UNDISLIKE,
            NetAction::Dislike,
            ChannelRights::MODERATE,
        ),
        "comment" => (
            tasks::COMMENT,
            NetAction::ReplyComment,
            ChannelRights::REPLY,
        ),
        _ => {
            return Err(ApiError::Validation(Msg::SocialBadValue {
                field: "action",
            }));
        }
    };
    let targets: Vec<_> = post
        .targets
        .iter()
        .filter(|t| body.profile_id.is_none_or(|p| p == t.profile_id))
        .collect();
    if targets.is_empty() {
        return Err(ApiError::NotFound);
    }
    let mut payloads = Vec::new();
    for target in &targets {
        need(&caller, target.profile_id, rights)?;
        let profile = state
            .store
            .get_social_profile(client, target.profile_id)
            .await?;
        let capabilities = state
            .social
            .capabilities_of(client, profile.id)
            .await
            .map_err(|e| api_failure(e, &profile.network))?;
        capabilities.require(net_action).map_err(|reason| {
            api_failure(
                SocialFailure::Unsupported {
                    action: net_action,
                    reason,
                },
                &profile.network,
            )
        })?;
        let remote = match (&target.remote_id, target.status.as_str()) {
            (Some(remote), "published") => remote.clone(),
            _ => {
                return Err(ApiError::Conflict(Msg::PostStatus {
                    status: post.status.clone(),
                }));
            }
        };
        let payload = match kind {
            tasks::DELETE_POST => json!({ "client_id": client, "post_id": post.id }),
            tasks::COMMENT => {
                let text = super::conversations::message_text(
                    "text",
                    body.text.as_deref().unwrap_or_default(),
                    4_000,
                )?;
                serde_json::to_value(CommentPayload {
                    client_id: client,
                    profile_id: profile.id,
                    remote_post_id: remote,
                    reply_to: None,
                    text,
                })
                .map_err(ApiError::internal)?
            }
            _ => serde_json::to_value(LikePayload {
                client_id: client,
                profile_id: profile.id,
                target: "post".into(),
                remote_id: remote,
            })
            .map_err(ApiError::internal)?,
        };
        payloads.push((profile.id, payload));
    }
    // Deleting covers every profile in one task.
    if kind == tasks::DELETE_POST {
        payloads.truncate(1);
    }
    let mut scheduled = Vec::with_capacity(payloads.len());
    for (profile, payload) in payloads {
        let key = format!("{kind}:{}:{profile}:{request}", post.id);
        scheduled.push(schedule(&state, kind, client, payload, due, key).await?);
    }
    state
        .audit(caller.audit(
            Some(client),
            "social_post.action",
            "social_post",
            post.id,
            json!({ "action": body.action, "due_at": due }),
        ))
        .await?;
    Ok(HttpResponse::Accepted().json(scheduled))
}

/// The comment conversations of a post.
#[derive(Serialize, ToSchema)]
pub struct CommentThreads {
    /// One conversation per person commenting, in the unified inbox.
    pub conversation_ids: Vec<ConversationId>,
}

/// The inbox conversations holding the comments under a post (one per person commenting).
#[utoipa::path(get, path = "/api/v1/social/posts/{id}/comments", tag = "social",
    params(("id" = uuid::Uuid, Path, description = "post id")),
    responses((status = 200, body = CommentThreads), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn post_comments(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<web::Json<CommentThreads>> {
    let post = visible_post(&state, &caller, path.into_inner()).await?;
    let conversation_ids = state
        .store
        .post_threads(caller.client_id()?, post.id)
        .await?;
    Ok(web::Json(CommentThreads { conversation_ids }))
}

/// Something to do with a comment, now or at a time.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentActionInput {
    /// `delete`, `hide`, `like`, `unlike`, `dislike` or `undislike` (no network lets a
    /// comment be disliked through its API: refused with the reason). Needs `moderate` on the
    /// profile.
    pub action: String,
    /// When; now if left out.
    pub when: Option<When>,
}

/// Schedules a moderation action on a comment, named by its message in the comment
/// conversation (`social.delete_comment`, `social.like`, `social.unlike`); `hide`, `dislike`
/// and `undislike` where the network allows it. Replies are written in the conversation like any reply.
#[utoipa::path(post, path = "/api/v1/social/comments/{message_id}/actions", tag = "social",
    params(("message_id" = MessageId, Path, description = "the comment's message")),
    request_body = CommentActionInput,
    responses((status = 202, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "not a comment the caller may see", body = ErrorBody),
        (status = 409, description = "a reply not sent yet", body = ErrorBody),
        (status = 422, description = "`unsupported_by_network`: e.g. hiding on VK, a dislike of a comment", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn comment_action(
    state: web::Data<AppState>,
    caller: Auth<ViewOwnClient>,
    path: web::Path<MessageId>,
    body: web::Json<CommentActionInput>,
) -> ApiResult<HttpResponse> {
    let client = caller.client_id()?;
    let message = path.into_inner();
    let comment = state.store.social_comment(client, message).await?;
    // Whoever may not see the conversation does not learn the comment exists.
    super::conversations::visible_conversation(
        &state,
        &caller.principal,
        comment.conversation_id,
        super::conversations::Need::See,
    )
    .await?;
    need(&caller, comment.profile_id, ChannelRights::MODERATE)?;
    let profile = state
        .store
        .get_social_profile(client, comment.profile_id)
        .await?;
    let (kind, net_action) = match body.action.as_str() {
        "delete" => (tasks::DELETE_COMMENT, NetAction::DeleteComment),
        "hide" => (tasks::HIDE_COMMENT, NetAction::HideComment),
        "like" => (tasks::LIKE, NetAction::LikeComment),
        "unlike" => (tasks::UNLIKE, NetAction::UnlikeComment),
        "dislike" => (tasks::DISLIKE, NetAction::DislikeComment),
        "undislike" => (tasks::UNDISLIKE, NetAction::DislikeComment),
        _ => {
            return Err(ApiError::Validation(Msg::SocialBadValue {
                field: "action",
            }));
        }
    };
    let capabilities = state
        .social
        .capabilities_of(client, profile.id)
        .await
        .map_err(|e| api_failure(e, &profile.network))?;
    capabilities.require(net_action).map_err(|reason| {
        api_failure(
            SocialFailure::Unsupported {
                action: net_action,
                reason,
            },
            &profile.network,
        )
    })?;
    let comment_id = comment
        .comment_id
        .clone()
        .ok_or(ApiError::Conflict(Msg::PostStatus {
            status: "pending".into(),
        }))?;
    let payload = if kind == tasks::DELETE_COMMENT || kind == tasks::HIDE_COMMENT {
        serde_json::to_value(DeleteCommentPayload {
            client_id: client,
            profile_id: profile.id,
            remote_post_id: comment.remote_post_id.clone(),
            comment_id,
        })
    } else {
        serde_json::to_value(LikePayload {
            client_id: client,
            profile_id: profile.id,
            target: "comment".into(),
            remote_id: comment_id,
        })
    }
    .map_err(ApiError::internal)?;
    let due = match &body.when {
        Some(when) => when.instant()?,
        None => Utc::now(),
    };
    let key = format!("{kind}:{message}:{}", uuid::Uuid::now_v7());
    let task = schedule(&state, kind, client, payload, due, key).await?;
    state
        .audit(caller.audit(
            Some(client),
            "social_comment.action",
            "message",
            message,
            json!({ "action": body.action, "due_at": due }),
        ))
        .await?;
    Ok(HttpResponse::Accepted().json(task))
}
