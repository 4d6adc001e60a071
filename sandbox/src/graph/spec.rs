//! Meta's own description of the Graph API (the `facebook-business-sdk-codegen` specs copied
//! to `specs/graph/`) turned into checks of the parameters a client sends.
//!
//! Each node type (`Page`, `PagePost`, `Comment`, `User`, `IGUser`, `IGMedia`, `IGComment`)
//! lists its `apis[]`: a method, an edge (`endpoint`, absent for the node itself) and its
//! `params` with a type and `required`. A request is checked against the entry of its node
//! type, method and edge: a parameter the entry does not list is unknown, a required one
//! missing is missing, and each value must read as its declared type (`bool`, integers,
//! `datetime`, JSON for `Object`, `map` and `list<…>`, one of the values for an enum). The
//! parameters every Graph call may carry (`access_token`, `fields`, paging) are not the
//! entry's.

use std::collections::HashMap;

use serde_json::Value;

const NODE_FILES: [(&str, &str); 7] = [
    ("Page", include_str!("../../specs/graph/Page.json")),
    ("PagePost", include_str!("../../specs/graph/PagePost.json")),
    ("Comment", include_str!("../../specs/graph/Comment.json")),
    ("User", include_str!("../../specs/graph/User.json")),
    ("IGUser", include_str!("../../specs/graph/IGUser.json")),
    ("IGMedia", include_str!("../../specs/graph/IGMedia.json")),
    (
        "IGComment",
        include_str!("../../specs/graph/IGComment.json"),
    ),
];
const ENUMS: &str = include_str!("../../specs/graph/enum_types.subset.json");

/// Parameters of every Graph call: the token, field selection, paging, response shaping.
const GLOBAL_PARAMS: [&str; 10] = [
    "access_token",
    "appsecret_proof",
    "fields",
    "limit",
    "after",
    "before",
    "since",
    "until",
    "pretty",
    "suppress_http_code",
];

struct Param {
    name: String,
    kind: String,
    required: bool,
}

struct Api {
    method: String,
    edge: Option<String>,
    params: Vec<Param>,
}

pub(crate) struct GraphSpec {
    nodes: HashMap<&'static str, Vec<Api>>,
    enums: HashMap<String, Vec<String>>,
}

impl GraphSpec {
    pub(crate) fn load() -> Result<GraphSpec, String> {
        let mut nodes = HashMap::new();
        for (node, file) in NODE_FILES {
            let file: Value = serde_json::from_str(file).map_err(|e| format!("{node}: {e}"))?;
            let apis = file["apis"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|api| Api {
                    method: api["method"].as_str().unwrap_or_default().to_string(),
                    edge: api["endpoint"].as_str().map(str::to_string),
                    params: api["params"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| Param {
                            name: p["name"].as_str().unwrap_or_default().to_string(),
                            kind: p["type"].as_str().unwrap_or_default().to_string(),
                            required: p["required"].as_bool().unwrap_or(false),
                        })
                        .collect(),
                })
                .collect();
            nodes.insert(node, apis);
        }
        let enums: Value = serde_json::from_str(ENUMS).map_err(|e| e.to_string())?;
        let enums = enums
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?.to_string(),
                    e["values"]
                        .as_array()?
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                ))
            })
            .collect();
        Ok(GraphSpec { nodes, enums })
    }

    /// Everything wrong with a call of `method` on `node`'s `edge` (`None`: the node itself).
    pub(crate) fn check(
        &self,
        node: &str,
        method: &str,
        edge: Option<&str>,
        params: &[(String, String)],
    ) -> Vec<String> {
        let what = format!(
            "{method} /{{{node}}}{}",
            edge.map(|e| format!("/{e}")).unwrap_or_default()
        );
        let Some(api) = self.nodes.get(node).and_then(|apis| {
            apis.iter()
                .find(|a| a.method == method && a.edge.as_deref() == edge)
        }) else {
            return vec![format!("{what}: not in Meta's spec")];
        };
        let mut problems = Vec::new();
        for (name, value) in params {
            if GLOBAL_PARAMS.contains(&name.as_str()) {
                continue;
            }
            match api.params.iter().find(|p| p.name == *name) {
                None => problems.push(format!("{what}: unknown parameter `{name}`")),
                Some(param) => {
                    if let Err(why) = self.value_fits(&param.kind, value) {
                        problems.push(format!("{what}: `{name}` = {value:?}: {why}"));
                    }
                }
            }
        }
        for param in api.params.iter().filter(|p| p.required) {
            if !params.iter().any(|(name, _)| *name == param.name) {
                problems.push(format!(
                    "{what}: required parameter `{}` missing",
                    param.name
                ));
            }
        }
        problems
    }

    fn value_fits(&self, kind: &str, value: &str) -> Result<(), String> {
        if let Some(inner) = kind.strip_prefix("list<").and_then(|k| k.strip_suffix('>')) {
            // A list goes as a JSON array, or (Graph accepts it) comma-separated.
            let items: Vec<String> = match serde_json::from_str::<Value>(value) {
                Ok(Value::Array(items)) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
                _ if matches!(inner, "Object" | "map") => {
                    return Err("not a JSON array".into());
                }
                _ => value.split(',').map(|s| s.trim().to_string()).collect(),
            };
            for item in &items {
                self.value_fits(inner, item)?;
            }
            return Ok(());
        }
        match kind {
            "list" => serde_json::from_str::<Value>(value)
                .ok()
                .filter(Value::is_array)
                .map(drop)
                .ok_or_else(|| "not a JSON array".into()),
            "string" | "file" => Ok(()),
            "bool" => match value {
                "true" | "false" | "1" | "0" => Ok(()),
                _ => Err("not a bool".into()),
            },
            "int" => value
                .parse::<i64>()
                .map(drop)
                .map_err(|_| "not an int".into()),
            "unsigned int" => value
                .parse::<u64>()
                .map(drop)
                .map_err(|_| "not an unsigned int".into()),
            "float" => value
                .parse::<f64>()
                .map(drop)
                .map_err(|_| "not a float".into()),
            "datetime" => {
                if value.parse::<i64>().is_ok()
                    || chrono::DateTime::parse_from_rfc3339(value).is_ok()
                {
                    Ok(())
                } else {
                    Err("not a time".into())
                }
            }
            "Object" | "map" => serde_json::from_str::<Value>(value)
                .ok()
                .filter(|v| v.is_object() || v.is_array())
                .map(drop)
                .ok_or_else(|| "not JSON".into()),
            other => match self.enums.get(other) {
                Some(values) if values.iter().any(|v| v == value) => Ok(()),
                Some(values) => Err(format!("not one of {values:?}")),
                // An object id (`Page`, `Comment`…): any id.
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_missing_and_mistyped_params_are_found() {
        let spec = GraphSpec::load().unwrap();
        assert_eq!(
            spec.check(
                "Page",
                "POST",
                Some("feed"),
                &params(&[
                    ("message", "hi"),
                    ("attached_media", r#"[{"media_fbid":"1"}]"#)
                ])
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            spec.check("Page", "POST", Some("feed"), &params(&[("guid", "x")]))
                .len(),
            1
        );
        assert_eq!(
            spec.check("Page", "POST", Some("subscribed_apps"), &[])
                .len(),
            1,
            "subscribed_fields is required"
        );
        assert!(
            spec.check(
                "Page",
                "POST",
                Some("subscribed_apps"),
                &params(&[("subscribed_fields", "feed,nonsense")])
            )[0]
            .contains("nonsense")
        );
        assert!(
            spec.check("IGComment", "POST", None, &params(&[("hide", "yes")]))[0].contains("bool")
        );
        assert_eq!(spec.check("IGMedia", "POST", Some("likes"), &[]).len(), 1);
    }
}
