//! The fake OK's group and what its REST methods do with it: topics (`mediatopic.*`), their
//! comments and likes (`discussions.*`), photo slots (`photosV2.getUploadUrl`), and what the
//! moderator's token may see of users and groups (`users.getCurrentUser`, `group.*`). A
//! deleted topic or comment no longer lists and answers 300 (NOT_FOUND); liking twice is one
//! like. What OK would not take as a group topic (no `type=GROUP_THEME` beside `gid`, an
//! attachment that is not OK's `media` list, a photo token never uploaded) is a violation.

use serde_json::{Value, json};

use super::Refusal;
use super::{State, codes, param, refuse};

type Params = [(String, String)];

/// A group the moderator is only a member of (listed, not manageable).
const OTHER_GROUP: (&str, &str) = ("70000009999999", "Neighbours");

/// A topic of the group.
#[derive(Clone, Debug, PartialEq)]
pub struct OkTopic {
    pub id: String,
    /// The `text` media, joined by blank lines.
    pub text: String,
    pub link: Option<String>,
    /// The upload tokens of its photos.
    pub photos: Vec<String>,
    pub created_ms: i64,
    /// Whether the attachment asked for the group as its author (`onBehalfOfGroup`).
    pub on_behalf_of_group: bool,
    pub deleted: bool,
    pub likes: u64,
    /// Whether the moderator's session likes it.
    pub liked: bool,
}

/// A comment under a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct OkComment {
    /// OK's opaque comment id.
    pub id: String,
    pub topic_id: String,
    /// The group's id when `by_group`.
    pub author_id: String,
    /// Written as the group (`as_admin=true`).
    pub by_group: bool,
    pub text: String,
    pub reply_to: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, Moscow time.
    pub date: String,
    pub deleted: bool,
    pub likes: u64,
    pub liked: bool,
}

#[derive(Default)]
pub(crate) struct Group {
    pub(crate) topics: Vec<OkTopic>,
    pub(crate) comments: Vec<OkComment>,
}

/// An opaque comment id, as OK's look (base64-like).
pub(crate) fn comment_id(n: u64) -> String {
    format!("MTU{n:x}Q==")
}

/// Now as OK dates comments: Moscow time (UTC+3).
pub(crate) fn now_date() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(3))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, Refusal> {
    param(params, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| refuse(codes::PARAM, format!("Missing required parameter {name}")))
}

fn our_group(state: &State, gid: Option<&str>) -> Result<(), Refusal> {
    match gid {
        Some(gid) if gid == state.config.group_id => Ok(()),
        Some(_) => Err(refuse(
            codes::PERMISSION_DENIED,
            "No permission for this group",
        )),
        None => Ok(()),
    }
}

fn topic_json(state: &State, topic: &OkTopic, comments: usize) -> Value {
    let mut media = Vec::new();
    if !topic.text.is_empty() {
        media.push(json!({"type": "text", "text": topic.text}));
    }
    if let Some(link) = &topic.link {
        media.push(json!({"type": "link", "url": link, "title": link}));
    }
    if !topic.photos.is_empty() {
        let refs: Vec<String> = topic
            .photos
            .iter()
            .map(|t| format!("group_photo:{t}"))
            .collect();
        media.push(json!({"type": "photo", "photo_refs": refs}));
    }
    let group = format!("group:{}", state.config.group_id);
    json!({
        "id": topic.id, "created_ms": topic.created_ms, "media": media,
        "author_ref": group, "owner_ref": group,
        "like_summary": {"count": topic.likes, "self": topic.liked},
        "discussion_summary": {"comments_count": comments},
        "reshare_summary": {"count": 0},
    })
}

fn comment_json(state: &State, comment: &OkComment) -> Value {
    let mut item = json!({
        "id": comment.id, "date": comment.date, "author_id": comment.author_id,
        "author_type": if comment.by_group { "GROUP" } else { "USER" },
        "text": comment.text, "like_count": comment.likes, "liked_it": comment.liked,
    });
    if let Some(reply_to) = &comment.reply_to {
        item["reply_to_comment_id"] = json!(reply_to);
        if let Some(to) = state
            .lock()
            .group
            .comments
            .iter()
            .find(|c| &c.id == reply_to)
        {
            item["reply_to_id"] = json!(to.author_id);
        }
    }
    item
}

fn live_comments(state: &State, topic: &str) -> usize {
    state
        .lock()
        .group
        .comments
        .iter()
        .filter(|c| c.topic_id == topic && !c.deleted)
        .count()
}

fn live_topic(state: &State, id: &str) -> Result<OkTopic, Refusal> {
    state
        .lock()
        .group
        .topics
        .iter()
        .find(|t| t.id == id && !t.deleted)
        .cloned()
        .ok_or_else(|| refuse(codes::NOT_FOUND, format!("Topic {id} not found")))
}

/// The topic a `discussions.*` call names (it must be a group topic of ours).
fn discussion(state: &State, params: &Params, id: &str, kind: &str) -> Result<OkTopic, Refusal> {
    let id = required(params, id)?;
    let kind = required(params, kind)?;
    if kind != "GROUP_TOPIC" {
        return Err(refuse(
            codes::PARAM,
            format!("Unsupported discussion type {kind}"),
        ));
    }
    live_topic(state, id)
}

pub(crate) fn serve(
    state: &State,
    method: &str,
    params: &Params,
    user: &str,
) -> Result<Value, Refusal> {
    let config = &state.config;
    match method {
        "users.getCurrentUser" => Ok(json!({"uid": user, "name": config.user_name})),
        "group.getUserGroupsV2" => {
            if let Some(uid) = param(params, "uid")
                && uid != user
            {
                return Err(refuse(codes::PERMISSION_DENIED, "Only the session's user"));
            }
            Ok(json!({"groups": [
                {"groupId": config.group_id, "userId": user, "status": "MODERATOR"},
                {"groupId": OTHER_GROUP.0, "userId": user, "status": "ACTIVE"},
            ]}))
        }
        "group.getUserGroupsByIds" => {
            let gid = required(params, "group_id")?;
            let uids = required(params, "uids")?;
            let rows: Vec<Value> = uids
                .split(',')
                .filter(|uid| *uid == config.user_id)
                .map(|uid| {
                    let status = if gid == config.group_id {
                        "MODERATOR"
                    } else {
                        "ACTIVE"
                    };
                    json!({"groupId": gid, "userId": uid, "status": status})
                })
                .collect();
            Ok(Value::Array(rows))
        }
        "group.getInfo" => {
            let uids = required(params, "uids")?;
            required(params, "fields")?;
            let groups: Vec<Value> = uids
                .split(',')
                .filter_map(|id| {
                    if id == config.group_id {
                        Some(json!({"uid": id, "name": config.group_name}))
                    } else if id == OTHER_GROUP.0 {
                        Some(json!({"uid": id, "name": OTHER_GROUP.1}))
                    } else {
                        None
                    }
                })
                .collect();
            Ok(Value::Array(groups))
        }
        "mediatopic.getTopics" => {
            our_group(state, param(params, "gid"))?;
            if param(params, "gid").is_none() {
                return Err(refuse(codes::PARAM, "Only group topics are served"));
            }
            let count = param(params, "count")
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(20)
                .clamp(1, 100);
            let topics: Vec<OkTopic> = state
                .lock()
                .group
                .topics
                .iter()
                .rev()
                .filter(|t| !t.deleted)
                .take(count)
                .cloned()
                .collect();
            let listed: Vec<Value> = topics
                .iter()
                .map(|t| topic_json(state, t, live_comments(state, &t.id)))
                .collect();
            Ok(json!({"media_topics": listed, "has_more": false}))
        }
        "mediatopic.getByIds" => {
            let ids = required(params, "topic_ids")?;
            let topics: Vec<OkTopic> = {
                let inner = state.lock();
                ids.split(',')
                    .filter_map(|id| {
                        inner
                            .group
                            .topics
                            .iter()
                            .find(|t| t.id == id && !t.deleted)
                            .cloned()
                    })
                    .collect()
            };
            let listed: Vec<Value> = topics
                .iter()
                .map(|t| topic_json(state, t, live_comments(state, &t.id)))
                .collect();
            Ok(json!({"media_topics": listed}))
        }
        "mediatopic.post" => post(state, params),
        "mediatopic.deleteTopic" => {
            let id = required(params, "topic_id")?;
            our_group(state, param(params, "gid"))?;
            let mut inner = state.lock();
            let topic = inner
                .group
                .topics
                .iter_mut()
                .find(|t| t.id == id && !t.deleted)
                .ok_or_else(|| refuse(codes::NOT_FOUND, format!("Topic {id} not found")))?;
            topic.deleted = true;
            Ok(json!({"success": true}))
        }
        "photosV2.getUploadUrl" => {
            match param(params, "gid") {
                Some(gid) if gid == config.group_id => {}
                Some(_) => return Err(refuse(codes::PERMISSION_DENIED, "No permission")),
                None => state
                    .violations
                    .record("photosV2.getUploadUrl: a group topic's photos need gid"),
            }
            let count = param(params, "count")
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(1);
            if !(1..=100).contains(&count) {
                return Err(refuse(codes::PARAM, "count must be between 1 and 100"));
            }
            let ids: Vec<String> = (0..count)
                .map(|_| format!("ph{}", state.next_id()))
                .collect();
            state.lock().photo_slots.extend(ids.iter().cloned());
            Ok(json!({
                "upload_url": format!("{}upload/{}", state.base, ids.join(",")),
                "photo_ids": ids,
                "expires_ms": chrono::Utc::now().timestamp_millis() + 3_600_000,
            }))
        }
        "discussions.getComments" => {
            let topic = discussion(state, params, "discussionId", "discussionType")?;
            let count = param(params, "count")
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(20)
                .clamp(1, 100);
            let comments: Vec<OkComment> = state
                .lock()
                .group
                .comments
                .iter()
                .filter(|c| c.topic_id == topic.id && !c.deleted)
                .take(count)
                .cloned()
                .collect();
            let listed: Vec<Value> = comments.iter().map(|c| comment_json(state, c)).collect();
            Ok(json!({"comments": listed, "has_more": false}))
        }
        "discussions.addDiscussionComment" => {
            let topic = discussion(state, params, "entityId", "entityType")?;
            let text = required(params, "comment")?.to_string();
            let reply_to = param(params, "reply_to_comment_id").map(str::to_string);
            let by_group = param(params, "as_admin") == Some("true");
            let id = comment_id(state.next_id());
            let mut inner = state.lock();
            if let Some(to) = &reply_to
                && !inner
                    .group
                    .comments
                    .iter()
                    .any(|c| &c.id == to && c.topic_id == topic.id && !c.deleted)
            {
                return Err(refuse(codes::NOT_FOUND, format!("Comment {to} not found")));
            }
            inner.group.comments.push(OkComment {
                id: id.clone(),
                topic_id: topic.id,
                author_id: if by_group {
                    config.group_id.clone()
                } else {
                    user.to_string()
                },
                by_group,
                text,
                reply_to,
                date: now_date(),
                deleted: false,
                likes: 0,
                liked: false,
            });
            Ok(json!(id))
        }
        "discussions.deleteDiscussionComment" => {
            let topic = discussion(state, params, "discussionId", "discussionType")?;
            let id = required(params, "comment_id")?;
            let mut inner = state.lock();
            let comment = inner
                .group
                .comments
                .iter_mut()
                .find(|c| c.id == id && c.topic_id == topic.id && !c.deleted)
                .ok_or_else(|| refuse(codes::NOT_FOUND, format!("Comment {id} not found")))?;
            comment.deleted = true;
            Ok(json!({"success": true}))
        }
        "discussions.addDiscussionLike" => {
            let topic = discussion(state, params, "discussionId", "discussionType")?;
            let mut inner = state.lock();
            if let Some(t) = inner.group.topics.iter_mut().find(|t| t.id == topic.id)
                && !t.liked
            {
                t.liked = true;
                t.likes += 1;
            }
            Ok(json!({"success": true}))
        }
        "discussions.addCommentLike" => {
            let topic = discussion(state, params, "discussionId", "discussionType")?;
            let id = required(params, "comment_id")?;
            let mut inner = state.lock();
            let comment = inner
                .group
                .comments
                .iter_mut()
                .find(|c| c.id == id && c.topic_id == topic.id && !c.deleted)
                .ok_or_else(|| refuse(codes::NOT_FOUND, format!("Comment {id} not found")))?;
            if !comment.liked {
                comment.liked = true;
                comment.likes += 1;
            }
            Ok(json!({"success": true}))
        }
        other => Err(refuse(codes::METHOD, format!("Method {other} not served"))),
    }
}

/// `mediatopic.post` of a group topic.
fn post(state: &State, params: &Params) -> Result<Value, Refusal> {
    let gid = param(params, "gid");
    our_group(state, gid)?;
    if gid.is_none() {
        return Err(refuse(codes::PARAM, "Only group topics are served"));
    }
    if !matches!(
        param(params, "type"),
        Some("GROUP_THEME" | "GROUP_THEME_PROMO")
    ) {
        state
            .violations
            .record("mediatopic.post: gid without type=GROUP_THEME or GROUP_THEME_PROMO");
    }
    let attachment: Value = serde_json::from_str(required(params, "attachment")?)
        .map_err(|err| refuse(codes::PARAM, format!("attachment is not JSON: {err}")))?;
    let media = attachment
        .get("media")
        .and_then(Value::as_array)
        .ok_or_else(|| refuse(codes::PARAM, "attachment has no media list"))?;
    if media.is_empty() {
        return Err(refuse(codes::PARAM, "attachment media is empty"));
    }
    if let Some(keys) = attachment.as_object() {
        for key in keys.keys() {
            if ![
                "media",
                "publishAt",
                "publishAtMs",
                "onBehalfOfGroup",
                "disableComments",
            ]
            .contains(&key.as_str())
            {
                state
                    .violations
                    .record(format!("mediatopic.post: unknown attachment field {key:?}"));
            }
        }
    }
    let mut texts = Vec::new();
    let mut link = None;
    let mut photos = Vec::new();
    for item in media {
        match item.get("type").and_then(Value::as_str) {
            Some("text") => texts.push(
                item.get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| refuse(codes::PARAM, "a text media without text"))?
                    .to_string(),
            ),
            Some("link") => {
                link = Some(
                    item.get("url")
                        .and_then(Value::as_str)
                        .ok_or_else(|| refuse(codes::PARAM, "a link media without url"))?
                        .to_string(),
                );
            }
            Some("photo") => {
                for photo in item
                    .get("list")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let token = photo.get("id").and_then(Value::as_str).unwrap_or_default();
                    if !state.lock().photos.contains_key(token) {
                        return Err(refuse(codes::PARAM, format!("Invalid photo id {token}")));
                    }
                    photos.push(token.to_string());
                }
            }
            other => state.violations.record(format!(
                "mediatopic.post: media type {other:?} not served by the fake"
            )),
        }
    }
    let on_behalf_of_group = matches!(
        attachment.get("onBehalfOfGroup"),
        Some(Value::String(s)) if s == "true"
    ) || attachment.get("onBehalfOfGroup") == Some(&Value::Bool(true));
    let id = state.next_id().to_string();
    state.lock().group.topics.push(OkTopic {
        id: id.clone(),
        text: texts.join("\n\n"),
        link,
        photos,
        created_ms: chrono::Utc::now().timestamp_millis(),
        on_behalf_of_group,
        deleted: false,
        likes: 0,
        liked: false,
    });
    Ok(json!(id))
}
