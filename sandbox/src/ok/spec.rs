//! The parameters of each OK REST method the fake serves, as OK's own method docs
//! (`specs/ok/*.md`, apiok/documentation) list them: every `$params#<name>` line is a
//! parameter the method takes. The docs mark no parameter required, so which ones are is
//! written here from the same methods' pages on apiok.ru ("Обязательный: Да"). Two methods the
//! 2017 snapshot lacks (`mediatopic.getTopics`, `mediatopic.deleteTopic`) are described in a
//! hand-written file of the same form.

use std::collections::{HashMap, HashSet};

const DOCS: [&str; 13] = [
    include_str!("../../specs/ok/mediatopic.post.md"),
    include_str!("../../specs/ok/mediatopic.getByIds.md"),
    include_str!("../../specs/ok/photosV2.getUploadUrl.md"),
    include_str!("../../specs/ok/discussions.getComments.md"),
    include_str!("../../specs/ok/discussions.addDiscussionComment.md"),
    include_str!("../../specs/ok/discussions.addDiscussionLike.md"),
    include_str!("../../specs/ok/discussions.addCommentLike.md"),
    include_str!("../../specs/ok/discussions.deleteDiscussionComment.md"),
    include_str!("../../specs/ok/group.getInfo.md"),
    include_str!("../../specs/ok/group.getUserGroupsV2.md"),
    include_str!("../../specs/ok/group.getUserGroupsByIds.md"),
    include_str!("../../specs/ok/users.getCurrentUser.md"),
    include_str!("../../specs/ok/mediatopic.extra.md"),
];

/// The parameters every call carries besides the method's own.
pub(crate) const GLOBAL_PARAMS: [&str; 5] =
    ["application_key", "method", "format", "sig", "access_token"];

/// Required parameters, per apiok.ru.
const REQUIRED: [(&str, &[&str]); 13] = [
    ("mediatopic.post", &["attachment"]),
    ("mediatopic.getByIds", &["topic_ids"]),
    ("mediatopic.getTopics", &[]),
    ("mediatopic.deleteTopic", &["topic_id"]),
    ("photosV2.getUploadUrl", &[]),
    (
        "discussions.getComments",
        &["discussionId", "discussionType"],
    ),
    (
        "discussions.addDiscussionComment",
        &["entityId", "entityType", "comment"],
    ),
    (
        "discussions.addDiscussionLike",
        &["discussionId", "discussionType"],
    ),
    (
        "discussions.addCommentLike",
        &["discussionId", "discussionType", "comment_id"],
    ),
    (
        "discussions.deleteDiscussionComment",
        &["discussionId", "discussionType", "comment_id"],
    ),
    ("group.getInfo", &["uids", "fields"]),
    ("group.getUserGroupsByIds", &["group_id", "uids"]),
    ("users.getCurrentUser", &[]),
];

/// The documented parameters of every served method.
pub(crate) struct OkSpec {
    methods: HashMap<String, HashSet<String>>,
}

impl OkSpec {
    pub(crate) fn load() -> OkSpec {
        let mut methods: HashMap<String, HashSet<String>> = HashMap::new();
        for doc in DOCS {
            let mut current: Option<String> = None;
            for line in doc.lines().map(str::trim) {
                if let Some(name) = line.strip_prefix("$params#") {
                    if let Some(method) = &current {
                        methods
                            .entry(method.clone())
                            .or_default()
                            .insert(name.trim().to_string());
                    }
                } else if !line.is_empty()
                    && !line.starts_with('$')
                    && !line.contains(' ')
                    && line.contains('.')
                    && line.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
                {
                    // A method's name opens its doc.
                    current = Some(line.to_string());
                    methods.entry(line.to_string()).or_default();
                }
            }
        }
        OkSpec { methods }
    }

    pub(crate) fn knows(&self, method: &str) -> bool {
        self.methods.contains_key(method)
    }

    /// Every way `params` break the method's docs: unknown and missing parameters.
    pub(crate) fn check(&self, method: &str, params: &[(String, String)]) -> Vec<String> {
        let Some(known) = self.methods.get(method) else {
            return vec![format!("{method}: not a method the docs describe")];
        };
        let mut problems = Vec::new();
        for (name, _) in params {
            if !known.contains(name) && !GLOBAL_PARAMS.contains(&name.as_str()) {
                problems.push(format!("{method}: unknown parameter {name:?}"));
            }
        }
        let required = REQUIRED
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, r)| *r)
            .unwrap_or_default();
        for name in required {
            if !params.iter().any(|(k, v)| k == name && !v.is_empty()) {
                problems.push(format!("{method}: required parameter {name:?} is missing"));
            }
        }
        for global in ["application_key", "sig"] {
            if !params.iter().any(|(k, _)| k == global) {
                problems.push(format!("{method}: {global:?} is missing"));
            }
        }
        let mut seen = HashSet::new();
        for (name, _) in params {
            if !seen.insert(name) {
                problems.push(format!("{method}: parameter {name:?} given twice"));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_give_each_method_its_parameters() {
        let spec = OkSpec::load();
        for (method, required) in REQUIRED {
            assert!(spec.knows(method), "{method}");
            for name in required {
                assert!(spec.methods[method].contains(*name), "{method} {name}");
            }
        }
        let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            spec.check(
                "mediatopic.post",
                &params(&[
                    ("application_key", "k"),
                    ("sig", "s"),
                    ("gid", "1"),
                    ("attachment", "{}"),
                ])
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            spec.check(
                "mediatopic.post",
                &params(&[("application_key", "k"), ("sig", "s"), ("text", "x")])
            )
            .len(),
            2
        );
    }
}
