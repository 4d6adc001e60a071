//! Triggered tasks: a client's rules of the form "when a post or comment with hashtag #X
//! appears" or "when user Y writes" (on one profile or any of the client's profiles) → an
//! action (like or dislike it, reply from a template, hide it, notify an employee). Matching is
//! pure and lives here; the scheduler runs the actions as tasks.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::conversation::{TemplateError, render_template};
use crate::ids::*;

/// What a rule waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TriggerCondition {
    /// A post or comment carrying this hashtag (compared normalised: see [`normalize_hashtag`]).
    Hashtag { hashtag: String },
    /// A post or comment by this author, by their id on the network.
    Author { author_id: String },
}

/// What a rule does with a matching item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TriggerAction {
    /// Like the post or comment.
    Like,
    /// Dislike the post (comments are left alone: no network lets them be disliked; and
    /// only on networks with dislikes: YouTube's videos).
    Dislike,
    /// Comment on the post, or answer the comment, with the template filled in (see
    /// [`TEMPLATE_VARIABLES`]).
    Reply { template: String },
    /// Hide the comment (posts are left alone).
    Hide,
    /// Tell an employee of the client, in the console.
    Notify { user_id: UserId },
}

/// The variables a reply template may use.
pub const TEMPLATE_VARIABLES: &[&str] = &["author.name", "item.text", "network"];

/// Whether a post or a comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Post,
    Comment,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Post => "post",
            ItemKind::Comment => "comment",
        }
    }
}

/// A post or comment social ingestion has just seen on one of the client's profiles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SocialItem {
    pub client_id: ClientId,
    /// The client's connected profile the item appeared on.
    pub profile_id: Uuid,
    /// The network's name, e.g. `vk`.
    pub network: String,
    pub kind: ItemKind,
    /// The item's id on the network.
    pub remote_id: String,
    /// For a comment, the id on the network of the post it belongs to.
    pub parent_remote_id: Option<String>,
    pub author_id: String,
    pub author_name: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

impl SocialItem {
    /// The item's identity across redeliveries.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.network,
            self.profile_id,
            self.kind.as_str(),
            self.remote_id
        )
    }
}

/// A client's rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Trigger {
    pub id: TriggerId,
    pub client_id: ClientId,
    pub name: String,
    /// Only items of this profile; `None` for any profile of the client.
    pub profile_id: Option<Uuid>,
    pub condition: TriggerCondition,
    pub action: TriggerAction,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl Trigger {
    /// Whether this rule fires on `item`, whose hashtags are `tags` (from [`hashtags`]).
    pub fn matches(&self, item: &SocialItem, tags: &BTreeSet<String>) -> bool {
        self.enabled
            && self.client_id == item.client_id
            && self.profile_id.is_none_or(|p| p == item.profile_id)
            && !(item.kind == ItemKind::Post && self.action == TriggerAction::Hide)
            && !(item.kind == ItemKind::Comment && self.action == TriggerAction::Dislike)
            && match &self.condition {
                TriggerCondition::Hashtag { hashtag } => {
                    normalize_hashtag(hashtag).is_some_and(|h| tags.contains(&h))
                }
                TriggerCondition::Author { author_id } => author_id.trim() == item.author_id.trim(),
            }
    }

    /// The idempotency key of this rule's task for `item`: the same item delivered again
    /// keys the same task, so the rule fires once per item.
    pub fn task_key(&self, item: &SocialItem) -> String {
        format!("trigger:{}:{}", self.id, item.key())
    }
}

/// A hashtag as compared: without the `#`, lower-cased (Cyrillic included), `ё` read as `е`;
/// `None` when nothing of a tag is left.
pub fn normalize_hashtag(tag: &str) -> Option<String> {
    let tag = tag.trim().trim_start_matches('#');
    if tag.is_empty() || !tag.chars().all(is_tag_char) {
        return None;
    }
    Some(
        tag.chars()
            .flat_map(char::to_lowercase)
            .map(|c| if c == 'ё' { 'е' } else { c })
            .collect(),
    )
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every hashtag of a text, normalised: a `#` at the start or after a character that is not
/// part of a word, followed by letters, digits or `_`.
pub fn hashtags(text: &str) -> BTreeSet<String> {
    let mut tags = BTreeSet::new();
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        if c == '#' && !previous.is_some_and(is_tag_char) {
            let rest = &text[at + 1..];
            let end = rest.find(|c: char| !is_tag_char(c)).unwrap_or(rest.len());
            if let Some(tag) = normalize_hashtag(&rest[..end]) {
                tags.insert(tag);
            }
        }
        previous = Some(c);
    }
    tags
}

/// A reply template filled for `item`.
pub fn render_reply(template: &str, item: &SocialItem) -> Result<String, TemplateError> {
    let vars: BTreeMap<String, String> = [
        ("author.name", item.author_name.as_str()),
        ("item.text", item.text.as_str()),
        ("network", item.network.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    render_template(template, &vars)
}

/// Task kinds the actions become. The social side runs the `social.*` ones; the hub runs the
/// last.
pub const SOCIAL_LIKE: &str = "social.like";
pub const SOCIAL_DISLIKE: &str = "social.dislike";
pub const SOCIAL_COMMENT: &str = "social.comment";
pub const SOCIAL_HIDE_COMMENT: &str = "social.hide_comment";
pub const TRIGGER_NOTIFY: &str = "trigger.notify";

/// The task a rule's action on `item` becomes: its kind and payload, in the shape the social
/// task kinds take. Every payload names the client, the rule, the profile and the network; a
/// like names its `target` (`post` or `comment`) and `remote_id`; a reply names the post
/// (`remote_post_id`), the comment it answers (`reply_to`, for a comment) and its `text` (the
/// filled template); hiding names the post and the `comment_id`; a notification names the
/// employee (`user_id`) and carries the item as it came (`item`). A dislike is shaped as a
/// like.
pub fn action_task(
    rule: &Trigger,
    item: &SocialItem,
) -> Result<(&'static str, serde_json::Value), TemplateError> {
    let mut payload = serde_json::json!({
        "client_id": item.client_id,
        "trigger_id": rule.id,
        "profile_id": item.profile_id,
        "network": item.network,
    });
    // A comment's post is its parent; a post is its own.
    let post = item.parent_remote_id.as_deref().unwrap_or(&item.remote_id);
    let comment = (item.kind == ItemKind::Comment).then_some(item.remote_id.as_str());
    let kind = match &rule.action {
        TriggerAction::Like | TriggerAction::Dislike => {
            payload["target"] = item.kind.as_str().into();
            payload["remote_id"] = item.remote_id.clone().into();
            if rule.action == TriggerAction::Like {
                SOCIAL_LIKE
            } else {
                SOCIAL_DISLIKE
            }
        }
        TriggerAction::Hide => {
            payload["remote_post_id"] = post.into();
            payload["comment_id"] = item.remote_id.clone().into();
            SOCIAL_HIDE_COMMENT
        }
        TriggerAction::Reply { template } => {
            payload["remote_post_id"] = post.into();
            payload["reply_to"] = comment.into();
            payload["text"] = render_reply(template, item)?.into();
            SOCIAL_COMMENT
        }
        TriggerAction::Notify { user_id } => {
            payload["user_id"] = serde_json::json!(user_id);
            payload["trigger_name"] = rule.name.clone().into();
            payload["item"] = serde_json::to_value(item).unwrap_or_default();
            TRIGGER_NOTIFY
        }
    };
    Ok((kind, payload))
}

/// Checks a reply template against [`TEMPLATE_VARIABLES`] before it is saved.
pub fn check_reply_template(template: &str) -> Result<(), TemplateError> {
    let vars: BTreeMap<String, String> = TEMPLATE_VARIABLES
        .iter()
        .map(|v| (v.to_string(), String::new()))
        .collect();
    render_template(template, &vars).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn item(kind: ItemKind, author: &str, text: &str) -> SocialItem {
        SocialItem {
            client_id: ClientId(Uuid::nil()),
            profile_id: Uuid::from_u128(7),
            network: "vk".into(),
            kind,
            remote_id: "101".into(),
            parent_remote_id: Some("100".into()),
            author_id: author.into(),
            author_name: "Анна".into(),
            text: text.into(),
            created_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        }
    }

    fn rule(condition: TriggerCondition, action: TriggerAction) -> Trigger {
        Trigger {
            id: TriggerId(Uuid::from_u128(1)),
            client_id: ClientId(Uuid::nil()),
            name: "r".into(),
            profile_id: None,
            condition,
            action,
            enabled: true,
            created_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        }
    }

    #[test]
    fn hashtags_are_found_and_normalised() {
        let tags = hashtags("Привет! #Скидка, #ЁЛКА и #sale_2026. Не тег: C#sharp, #, ##двойной");
        let expected: BTreeSet<String> = ["скидка", "елка", "sale_2026", "двойной"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(tags, expected);
        assert_eq!(normalize_hashtag("#СКИДКА").as_deref(), Some("скидка"));
        assert_eq!(normalize_hashtag(" Ёж "), Some("еж".into()));
        assert_eq!(normalize_hashtag("#"), None);
        assert_eq!(normalize_hashtag("two words"), None);
    }

    #[test]
    fn rules_match_their_hashtag_author_and_profile_only() {
        let tag = rule(
            TriggerCondition::Hashtag {
                hashtag: "#Скидка".into(),
            },
            TriggerAction::Like,
        );
        let hit = item(ItemKind::Comment, "42", "хочу #скидка");
        let miss = item(ItemKind::Comment, "42", "хочу скидку");
        assert!(tag.matches(&hit, &hashtags(&hit.text)));
        assert!(!tag.matches(&miss, &hashtags(&miss.text)));

        let mut by_author = rule(
            TriggerCondition::Author {
                author_id: "42".into(),
            },
            TriggerAction::Hide,
        );
        let other = item(ItemKind::Comment, "43", "hi");
        assert!(by_author.matches(&hit, &hashtags(&hit.text)));
        assert!(!by_author.matches(&other, &BTreeSet::new()));
        // A post cannot be hidden: the rule does not fire on one.
        let post = item(ItemKind::Post, "42", "hi");
        assert!(!by_author.matches(&post, &BTreeSet::new()));
        // Bound to another profile, or disabled: nothing.
        by_author.profile_id = Some(Uuid::from_u128(8));
        assert!(!by_author.matches(&hit, &BTreeSet::new()));
        by_author.profile_id = Some(Uuid::from_u128(7));
        assert!(by_author.matches(&hit, &BTreeSet::new()));
        by_author.enabled = false;
        assert!(!by_author.matches(&hit, &BTreeSet::new()));
        // Dislikes are for posts: a comment is left alone.
        let dislike = rule(
            TriggerCondition::Author {
                author_id: "42".into(),
            },
            TriggerAction::Dislike,
        );
        assert!(dislike.matches(&post, &BTreeSet::new()));
        assert!(!dislike.matches(&hit, &BTreeSet::new()));
    }

    #[test]
    fn one_task_key_per_rule_and_item() {
        let r = rule(
            TriggerCondition::Author {
                author_id: "42".into(),
            },
            TriggerAction::Like,
        );
        let a = item(ItemKind::Comment, "42", "x");
        let mut b = a.clone();
        b.text = "edited".into();
        assert_eq!(r.task_key(&a), r.task_key(&b));
        b.remote_id = "102".into();
        assert_ne!(r.task_key(&a), r.task_key(&b));
    }

    #[test]
    fn actions_become_tasks_naming_their_target() {
        let i = item(ItemKind::Comment, "42", "#скидка?");
        let like = rule(
            TriggerCondition::Author {
                author_id: "42".into(),
            },
            TriggerAction::Like,
        );
        let (kind, payload) = action_task(&like, &i).unwrap();
        assert_eq!(kind, SOCIAL_LIKE);
        assert_eq!(payload["target"], "comment");
        assert_eq!(payload["remote_id"], "101");
        let mut hide = like.clone();
        hide.action = TriggerAction::Hide;
        let (kind, payload) = action_task(&hide, &i).unwrap();
        assert_eq!(kind, SOCIAL_HIDE_COMMENT);
        assert_eq!(
            (&payload["remote_post_id"], &payload["comment_id"]),
            (&"100".into(), &"101".into())
        );
        let mut reply = like.clone();
        reply.action = TriggerAction::Reply {
            template: "{{author.name}}, спасибо!".into(),
        };
        let (kind, payload) = action_task(&reply, &i).unwrap();
        assert_eq!(
            (kind, payload["text"].as_str()),
            (SOCIAL_COMMENT, Some("Анна, спасибо!"))
        );
        assert_eq!(
            (&payload["remote_post_id"], &payload["reply_to"]),
            (&"100".into(), &"101".into())
        );
        let mut dislike = like.clone();
        dislike.action = TriggerAction::Dislike;
        let post = item(ItemKind::Post, "42", "a video");
        let (kind, payload) = action_task(&dislike, &post).unwrap();
        assert_eq!(kind, SOCIAL_DISLIKE);
        assert_eq!(
            (&payload["target"], &payload["remote_id"]),
            (&"post".into(), &"101".into())
        );
        let mut notify = like;
        notify.action = TriggerAction::Notify {
            user_id: UserId(Uuid::from_u128(9)),
        };
        let (kind, payload) = action_task(&notify, &i).unwrap();
        assert_eq!(kind, TRIGGER_NOTIFY);
        assert_eq!(payload["item"]["author_name"], "Анна");
    }

    #[test]
    fn reply_templates_fill_the_item() {
        let i = item(ItemKind::Comment, "42", "где купить?");
        assert_eq!(
            render_reply("{{author.name}}, ответили в личку ({{network}})", &i).unwrap(),
            "Анна, ответили в личку (vk)"
        );
        assert!(check_reply_template("Hi {{author.name}}").is_ok());
        assert!(check_reply_template("Hi {{contact.name}}").is_err());
    }
}
