//! Google's discovery document of the YouTube Data API v3 (`specs/youtube/`, revision
//! 20261104) turned into checks of the requests a client sends: the method (HTTP method and
//! path), its query parameters (required ones present, no unknown ones beside Google's
//! global parameters, integers, booleans and enums as declared) and its JSON body against the
//! request schema.
//!
//! Discovery schemas are close to JSON Schema: `$ref` names a schema by id (rewritten to
//! `#/definitions/<id>`), `type: any` is anything, and an object lists every property Google
//! knows, so a property it does not list is refused here as Google refuses it ("Unknown
//! name") — the fake adds `additionalProperties: false` where the document gives none.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::support::{compile, errors};

const DISCOVERY: &str = include_str!("../../specs/youtube/youtube.v3.discovery.json");

struct Method {
    id: String,
    http_method: String,
    segments: Vec<String>,
    params: HashMap<String, Value>,
    body: Option<jsonschema::Validator>,
}

pub(crate) struct Matched {
    pub method_id: String,
    pub problems: Vec<String>,
}

pub(crate) struct YoutubeSpec {
    methods: Vec<Method>,
    globals: Vec<String>,
}

impl YoutubeSpec {
    /// Compiles the methods named by `served` (method ids such as `youtube.videos.rate`).
    pub(crate) fn load(served: &[&str]) -> Result<YoutubeSpec, String> {
        let doc: Value = serde_json::from_str(DISCOVERY).map_err(|e| e.to_string())?;
        let definitions = Value::Object(
            doc.get("schemas")
                .and_then(Value::as_object)
                .ok_or("no schemas")?
                .iter()
                .map(|(name, schema)| (name.clone(), to_json_schema(schema)))
                .collect(),
        );
        let mut all = Vec::new();
        collect(doc.get("resources").unwrap_or(&Value::Null), &mut all);
        let mut methods = Vec::new();
        for method in all {
            let Some(id) = method.get("id").and_then(Value::as_str) else {
                continue;
            };
            if !served.contains(&id) {
                continue;
            }
            let body = match method.pointer("/request/$ref").and_then(Value::as_str) {
                Some(name) => Some(
                    compile(&json!({
                        "$ref": format!("#/definitions/{name}"),
                        "definitions": definitions,
                    }))
                    .map_err(|e| format!("{id}: {e}"))?,
                ),
                None => None,
            };
            methods.push(Method {
                id: id.to_string(),
                http_method: method["httpMethod"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                segments: method["path"]
                    .as_str()
                    .unwrap_or_default()
                    .split('/')
                    .map(str::to_string)
                    .collect(),
                params: method
                    .get("parameters")
                    .and_then(Value::as_object)
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                body,
            });
        }
        if methods.len() != served.len() {
            return Err(format!(
                "not every served method is in the document: {served:?}"
            ));
        }
        let globals = doc
            .get("parameters")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        Ok(YoutubeSpec { methods, globals })
    }

    /// The method a request is for (`path` without the API base), and everything wrong
    /// with it.
    pub(crate) fn check(
        &self,
        http_method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        body_len: usize,
    ) -> Option<Matched> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = self.methods.iter().find(|m| {
            m.http_method == http_method
                && m.segments.len() == segments.len()
                && m.segments
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.starts_with('{') || t == s)
        })?;
        let id = &method.id;
        let mut problems = Vec::new();
        for (name, spec) in &method.params {
            let given = query.iter().any(|(k, _)| k == name);
            if spec["required"].as_bool() == Some(true) && spec["location"] == "query" && !given {
                problems.push(format!("{id}: missing required parameter {name}"));
            }
        }
        for (name, value) in query {
            match method.params.get(name) {
                Some(spec) => problems.extend(check_value(id, name, spec, value)),
                None if self.globals.contains(name) => {}
                None => problems.push(format!("{id}: unknown parameter {name}")),
            }
        }
        match (&method.body, body) {
            (Some(validator), Some(body)) => problems.extend(
                errors(validator, body)
                    .into_iter()
                    .map(|e| format!("{id}: body: {e}")),
            ),
            (Some(_), None) => problems.push(format!("{id}: a JSON body is required")),
            (None, _) if body_len > 0 => problems.push(format!("{id}: takes no body")),
            (None, _) => {}
        }
        Some(Matched {
            method_id: id.clone(),
            problems,
        })
    }
}

fn collect<'a>(resources: &'a Value, into: &mut Vec<&'a Value>) {
    for resource in resources.as_object().into_iter().flatten().map(|(_, r)| r) {
        if let Some(methods) = resource.get("methods").and_then(Value::as_object) {
            into.extend(methods.values());
        }
        if let Some(nested) = resource.get("resources") {
            collect(nested, into);
        }
    }
}

/// One query value against its declared type and enum.
fn check_value(id: &str, name: &str, spec: &Value, value: &str) -> Vec<String> {
    let values: Vec<&str> = if spec["repeated"].as_bool() == Some(true) {
        value.split(',').collect()
    } else {
        vec![value]
    };
    let mut problems = Vec::new();
    for value in values {
        let ok = match spec["type"].as_str() {
            Some("integer") => {
                let n = value.parse::<i64>();
                let min = spec["minimum"].as_str().and_then(|m| m.parse::<i64>().ok());
                let max = spec["maximum"].as_str().and_then(|m| m.parse::<i64>().ok());
                n.is_ok_and(|n| min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m))
            }
            Some("boolean") => matches!(value, "true" | "false"),
            _ => true,
        };
        if !ok {
            problems.push(format!(
                "{id}: {name}={value:?} is not a valid {}",
                spec["type"]
            ));
        }
        if let Some(allowed) = spec["enum"].as_array()
            && !allowed.iter().any(|a| a.as_str() == Some(value))
        {
            problems.push(format!("{id}: {name}={value:?} is not one of its values"));
        }
    }
    problems
}

/// A discovery schema as draft-07 JSON Schema.
fn to_json_schema(schema: &Value) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "id" | "description" | "annotations" | "enumDescriptions" | "readOnly"
            | "deprecated" | "enumDeprecated" => {}
            "$ref" => {
                out.insert(
                    key.clone(),
                    json!(format!(
                        "#/definitions/{}",
                        value.as_str().unwrap_or_default()
                    )),
                );
            }
            "type" if value == "any" => {}
            "properties" => {
                let properties: Map<String, Value> = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), to_json_schema(v)))
                    .collect();
                out.insert(key.clone(), Value::Object(properties));
            }
            "items" | "additionalProperties" => {
                out.insert(key.clone(), to_json_schema(value));
            }
            // Google's formats (int64 as a string, byte, google-datetime) are not JSON
            // Schema's; the type is what the wire carries.
            "format" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if out.contains_key("properties") && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requests_are_checked_against_the_discovery_document() {
        let spec = YoutubeSpec::load(&["youtube.comments.insert", "youtube.videos.rate"]).unwrap();
        let ok = json!({"snippet": {"parentId": "Ug1", "textOriginal": "hi"}});
        let m = spec
            .check(
                "POST",
                "/youtube/v3/comments",
                &q(&[("part", "snippet")]),
                Some(&ok),
                9,
            )
            .unwrap();
        assert_eq!(m.method_id, "youtube.comments.insert");
        assert_eq!(m.problems, Vec::<String>::new());
        let bad = json!({"snippet": {"parentId": "Ug1", "colour": "red"}});
        let m = spec
            .check("POST", "/youtube/v3/comments", &q(&[]), Some(&bad), 9)
            .unwrap();
        assert_eq!(m.problems.len(), 2, "{:?}", m.problems);
        let m = spec
            .check(
                "POST",
                "/youtube/v3/videos/rate",
                &q(&[("id", "v1"), ("rating", "love"), ("key", "k")]),
                None,
                0,
            )
            .unwrap();
        assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
    }
}
