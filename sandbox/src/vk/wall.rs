//! The community wall of the fake VK: posts, comments and likes, as `wall.*`, `likes.*` and the
//! wall photo upload answer them. Posts and comments keep VK's `guid` rule (the same `guid`
//! publishes once and answers the first id); a deleted post still answers `wall.delete` with 1
//! (VK keeps it restorable) but no longer lists. What VK would publish in someone else's name
//! (no `from_group=1` on a community wall) is recorded as a violation.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::methods::{Refusal, codes, int_param, param, refuse_with};
use super::{State, now_secs};

type Params = [(String, String)];

/// A post on the community's wall.
#[derive(Clone, Debug, PartialEq)]
pub struct WallPost {
    pub id: i64,
    pub text: String,
    /// `photo-1_2` references and at most one link.
    pub attachments: Vec<String>,
    pub location: Option<(f64, f64)>,
    pub guid: Option<String>,
    pub date: i64,
    pub edited: bool,
    pub deleted: bool,
    pub likes: u64,
    /// Whether the community itself likes it.
    pub liked: bool,
}

/// A comment under a wall post.
#[derive(Clone, Debug, PartialEq)]
pub struct WallComment {
    pub id: i64,
    pub post_id: i64,
    /// Negative for the community.
    pub from_id: i64,
    pub text: String,
    pub reply_to: Option<i64>,
    pub date: i64,
    pub deleted: bool,
    pub likes: u64,
    pub liked: bool,
}

#[derive(Default)]
pub(crate) struct Wall {
    pub(crate) posts: Vec<WallPost>,
    pub(crate) comments: Vec<WallComment>,
    posts_by_guid: HashMap<String, i64>,
    comments_by_guid: HashMap<String, i64>,
}

impl Wall {
    fn post_mut(&mut self, id: i64) -> Option<&mut WallPost> {
        self.posts.iter_mut().find(|p| p.id == id)
    }
}

fn owner_is_ours(state: &State, params: &Params) -> Result<(), Refusal> {
    match int_param(params, "owner_id") {
        Some(owner) if owner == -state.config.group_id => Ok(()),
        Some(_) => Err(refuse_with(codes::ACCESS_DENIED, "no access to this wall")),
        None => Err(refuse_with(
            codes::INVALID_PARAM,
            "owner_id is required for a community wall",
        )),
    }
}

fn post_json(state: &State, post: &WallPost, comments: usize) -> Value {
    let attachments: Vec<Value> = post
        .attachments
        .iter()
        .map(|a| {
            if a.starts_with("photo") {
                json!({"type": "photo", "photo": {"id": 0, "owner_id": -state.config.group_id,
                    "access_key": a}})
            } else if a.starts_with("video") {
                json!({"type": "video", "video": {"id": 0, "owner_id": -state.config.group_id,
                    "access_key": a}})
            } else {
                json!({"type": "link", "link": {"url": a, "title": a}})
            }
        })
        .collect();
    let mut item = json!({
        "id": post.id, "owner_id": -state.config.group_id, "from_id": -state.config.group_id,
        "date": post.date, "text": post.text, "attachments": attachments,
        "post_type": "post",
        "likes": {"count": post.likes, "user_likes": i32::from(post.liked), "can_like": 1},
        "comments": {"count": comments, "can_post": 1},
        "reposts": {"count": 0, "user_reposted": 0},
        "views": {"count": post.likes * 10 + 1},
    });
    if let Some((lat, long)) = post.location {
        item["geo"] = json!({"type": "point", "coordinates": format!("{lat} {long}")});
    }
    item
}

fn comment_json(state: &State, comment: &WallComment) -> Value {
    let mut item = json!({
        "id": comment.id, "from_id": comment.from_id, "date": comment.date,
        "text": comment.text, "post_id": comment.post_id,
        "owner_id": -state.config.group_id, "parents_stack": [],
        "likes": {"count": comment.likes, "user_likes": i32::from(comment.liked), "can_like": 1},
    });
    if let Some(reply_to) = comment.reply_to {
        item["reply_to_comment"] = json!(reply_to);
    }
    item
}

pub(super) fn get(state: &State, params: &Params) -> Result<Value, Refusal> {
    let ours = format!("club{}", state.config.group_id);
    let domain = param(params, "domain").unwrap_or_default();
    if domain != ours && domain != (-state.config.group_id).to_string() {
        return Err(refuse_with(codes::ACCESS_DENIED, "no access to this wall"));
    }
    let count = int_param(params, "count").unwrap_or(20).clamp(0, 100) as usize;
    let offset = int_param(params, "offset").unwrap_or(0).max(0) as usize;
    let inner = state.lock();
    let live: Vec<&WallPost> = inner
        .wall
        .posts
        .iter()
        .rev()
        .filter(|p| !p.deleted)
        .collect();
    let items: Vec<Value> = live
        .iter()
        .skip(offset)
        .take(count)
        .map(|p| post_json(state, p, live_comments(&inner.wall, p.id)))
        .collect();
    Ok(json!({"count": live.len(), "items": items}))
}

fn live_comments(wall: &Wall, post_id: i64) -> usize {
    wall.comments
        .iter()
        .filter(|c| c.post_id == post_id && !c.deleted)
        .count()
}

pub(super) fn get_by_id(state: &State, params: &Params) -> Result<Value, Refusal> {
    let wanted = param(params, "posts").unwrap_or_default();
    let inner = state.lock();
    let items: Vec<Value> = wanted
        .split(',')
        .filter_map(|pair| {
            let (owner, id) = pair.split_once('_')?;
            let (owner, id): (i64, i64) = (owner.parse().ok()?, id.parse().ok()?);
            if owner != -state.config.group_id {
                return None;
            }
            let post = inner.wall.posts.iter().find(|p| p.id == id && !p.deleted)?;
            Some(post_json(state, post, live_comments(&inner.wall, id)))
        })
        .collect();
    Ok(json!({"items": items}))
}

/// The attachments of `wall.post`/`wall.edit`: saved photos of this fake, and at most one link.
fn attachments(state: &State, params: &Params) -> Result<Vec<String>, Refusal> {
    let listed: Vec<String> = param(params, "attachments")
        .map(|list| {
            list.split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let inner = state.lock();
    let mut links = 0;
    for attachment in &listed {
        if attachment.starts_with("http://") || attachment.starts_with("https://") {
            links += 1;
        } else if !inner.media.contains_key(attachment) {
            return Err(refuse_with(
                codes::INVALID_PARAM,
                format!("attachment {attachment} not found"),
            ));
        }
    }
    if links > 1 {
        return Err(refuse_with(
            codes::INVALID_PARAM,
            "more than one link is attached",
        ));
    }
    if listed.len() > 10 {
        return Err(refuse_with(codes::INVALID_PARAM, "too many attachments"));
    }
    Ok(listed)
}

fn location(params: &Params) -> Option<(f64, f64)> {
    Some((
        param(params, "lat")?.parse().ok()?,
        param(params, "long")?.parse().ok()?,
    ))
}

pub(super) fn post(state: &State, params: &Params) -> Result<Value, Refusal> {
    owner_is_ours(state, params)?;
    if param(params, "from_group") != Some("1") {
        state.violations.record(
            "wall.post: a community wall post without from_group=1 is published as the user"
                .to_string(),
        );
    }
    let text = param(params, "message").unwrap_or_default().to_string();
    let attachments = attachments(state, params)?;
    if text.is_empty() && attachments.is_empty() {
        return Err(refuse_with(
            codes::INVALID_PARAM,
            "message or attachments is required",
        ));
    }
    if text.chars().count() > 16_384 {
        return Err(refuse_with(codes::INVALID_PARAM, "message is too long"));
    }
    let guid = param(params, "guid").map(str::to_string);
    let mut inner = state.lock();
    if let Some(id) = guid.as_ref().and_then(|g| inner.wall.posts_by_guid.get(g)) {
        return Ok(json!({"post_id": id}));
    }
    let id = inner.next_id;
    inner.next_id += 1;
    if let Some(guid) = &guid {
        inner.wall.posts_by_guid.insert(guid.clone(), id);
    }
    inner.wall.posts.push(WallPost {
        id,
        text,
        attachments,
        location: location(params),
        guid,
        date: now_secs(),
        edited: false,
        deleted: false,
        likes: 0,
        liked: false,
    });
    Ok(json!({"post_id": id}))
}

pub(super) fn edit(state: &State, params: &Params) -> Result<Value, Refusal> {
    owner_is_ours(state, params)?;
    let id = int_param(params, "post_id").unwrap_or(0);
    let text = param(params, "message").unwrap_or_default().to_string();
    let attachments = attachments(state, params)?;
    let mut inner = state.lock();
    let post = inner
        .wall
        .post_mut(id)
        .filter(|p| !p.deleted)
        .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "post_id is invalid"))?;
    post.text = text;
    post.attachments = attachments;
    post.location = location(params);
    post.edited = true;
    Ok(json!({"post_id": id}))
}

pub(super) fn delete(state: &State, params: &Params) -> Result<Value, Refusal> {
    owner_is_ours(state, params)?;
    let id = int_param(params, "post_id").unwrap_or(0);
    let mut inner = state.lock();
    let post = inner
        .wall
        .post_mut(id)
        .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "post_id is invalid"))?;
    post.deleted = true;
    Ok(json!(1))
}

pub(super) fn get_comments(state: &State, params: &Params) -> Result<Value, Refusal> {
    owner_is_ours(state, params)?;
    let post_id = int_param(params, "post_id").unwrap_or(0);
    let count = int_param(params, "count").unwrap_or(10).clamp(0, 100) as usize;
    let inner = state.lock();
    if !inner
        .wall
        .posts
        .iter()
        .any(|p| p.id == post_id && !p.deleted)
    {
        return Err(refuse_with(codes::INVALID_PARAM, "post_id is invalid"));
    }
    let live: Vec<&WallComment> = inner
        .wall
        .comments
        .iter()
        .filter(|c| c.post_id == post_id && !c.deleted)
        .collect();
    let items: Vec<Value> = live
        .iter()
        .take(count)
        .map(|c| comment_json(state, c))
        .collect();
    Ok(
        json!({"count": live.len(), "items": items, "current_level_count": live.len(),
        "can_post": true, "show_reply_button": true, "groups_can_post": true}),
    )
}

pub(super) fn create_comment(state: &State, params: &Params) -> Result<Value, Refusal> {
    owner_is_ours(state, params)?;
    if int_param(params, "from_group") != Some(state.config.group_id) {
        state.violations.record(
            "wall.createComment: without from_group=<community id> the comment is the user's"
                .to_string(),
        );
    }
    let post_id = int_param(params, "post_id").unwrap_or(0);
    let text = param(params, "message").unwrap_or_default().to_string();
    if text.is_empty() {
        return Err(refuse_with(codes::INVALID_PARAM, "message is empty"));
    }
    let guid = param(params, "guid").map(str::to_string);
    let reply_to = int_param(params, "reply_to_comment");
    let from_id = -state.config.group_id;
    let comment = {
        let mut inner = state.lock();
        if !inner
            .wall
            .posts
            .iter()
            .any(|p| p.id == post_id && !p.deleted)
        {
            return Err(refuse_with(codes::INVALID_PARAM, "post_id is invalid"));
        }
        if let Some(id) = guid
            .as_ref()
            .and_then(|g| inner.wall.comments_by_guid.get(g))
        {
            return Ok(json!({"comment_id": id, "parents_stack": []}));
        }
        let id = inner.next_id;
        inner.next_id += 1;
        if let Some(guid) = guid {
            inner.wall.comments_by_guid.insert(guid, id);
        }
        let comment = WallComment {
            id,
            post_id,
            from_id,
            text,
            reply_to,
            date: now_secs(),
            deleted: false,
            likes: 0,
            liked: false,
        };
        inner.wall.comments.push(comment.clone());
        comment
    };
    Ok(json!({"comment_id": comment.id, "parents_stack": []}))
}

pub(super) fn delete_comment(state: &State, params: &Params) -> Result<Value, Refusal> {
    owner_is_ours(state, params)?;
    let id = int_param(params, "comment_id").unwrap_or(0);
    let mut inner = state.lock();
    let comment = inner
        .wall
        .comments
        .iter_mut()
        .find(|c| c.id == id)
        .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "comment_id is invalid"))?;
    comment.deleted = true;
    Ok(json!(1))
}

/// `likes.add` (`on`) and `likes.delete` for posts and comments of the wall.
pub(super) fn like(state: &State, params: &Params, on: bool) -> Result<Value, Refusal> {
    owner_is_ours(state, params)?;
    let id = int_param(params, "item_id").unwrap_or(0);
    let mut inner = state.lock();
    let (likes, liked) = match param(params, "type") {
        Some("post") => {
            let post = inner
                .wall
                .post_mut(id)
                .filter(|p| !p.deleted)
                .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "item_id is invalid"))?;
            (&mut post.likes, &mut post.liked)
        }
        Some("comment") => {
            let comment = inner
                .wall
                .comments
                .iter_mut()
                .find(|c| c.id == id && !c.deleted)
                .ok_or_else(|| refuse_with(codes::INVALID_PARAM, "item_id is invalid"))?;
            (&mut comment.likes, &mut comment.liked)
        }
        _ => {
            return Err(refuse_with(
                codes::INVALID_PARAM,
                "type must be post or comment here",
            ));
        }
    };
    if *liked != on {
        *liked = on;
        if on {
            *likes += 1;
        } else {
            *likes = likes.saturating_sub(1);
        }
    }
    Ok(json!({"likes": *likes}))
}

impl super::VkSandbox {
    /// The posts on the community's wall, deleted ones included (marked).
    pub fn wall_posts(&self) -> Vec<WallPost> {
        self.state.lock().wall.posts.clone()
    }

    /// Every comment under the wall's posts, deleted ones included (marked).
    pub fn wall_comments(&self) -> Vec<WallComment> {
        self.state.lock().wall.comments.clone()
    }

    /// A customer `from_id` comments `text` under post `post_id` (answering `reply_to`): the
    /// comment is on the wall and `wall_reply_new` goes to the callback servers that enabled
    /// it. `None` when there is no such post.
    pub async fn customer_comments(
        &self,
        post_id: i64,
        from_id: i64,
        text: &str,
        reply_to: Option<i64>,
    ) -> Option<super::Delivery> {
        let comment = {
            let mut inner = self.state.lock();
            if !inner
                .wall
                .posts
                .iter()
                .any(|p| p.id == post_id && !p.deleted)
            {
                return None;
            }
            let id = inner.next_id;
            inner.next_id += 1;
            let comment = WallComment {
                id,
                post_id,
                from_id,
                text: text.to_string(),
                reply_to,
                date: now_secs(),
                deleted: false,
                likes: 0,
                liked: false,
            };
            inner.wall.comments.push(comment.clone());
            comment
        };
        let object = comment_json(&self.state, &comment);
        Some(self.emit("wall_reply_new", object).await)
    }
}
