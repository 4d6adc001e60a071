//! X's own OpenAPI document (`specs/x/openapi.json`, v2.167) turned into checks of the
//! requests a client sends: the operation (method and path template), its path and query
//! parameters (required ones present, no unknown ones, each value valid against its schema)
//! and its JSON or multipart body against the request body's schema.
//!
//! Query values are strings on the wire: each is read as its schema's type first (arrays are
//! `style: form, explode: false`, comma-separated). A multipart body is read as an object of
//! its parts, a file part standing for the binary string the schema expects. Only the
//! operations the fake serves are compiled (the document is large).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::support::{Part, compile, errors};

const SPEC: &str = include_str!("../../specs/x/openapi.json");

struct Param {
    name: String,
    location: String,
    required: bool,
    schema: Value,
    validator: jsonschema::Validator,
}

struct Operation {
    id: String,
    method: String,
    segments: Vec<String>,
    params: Vec<Param>,
    body_required: bool,
    /// Media type → validator of the body.
    bodies: Vec<(String, jsonschema::Validator)>,
}

/// A request as the fake received it.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub content_type: Option<&'a str>,
    pub json: Option<&'a Value>,
    pub parts: Option<&'a [Part]>,
    pub body_len: usize,
}

/// The operation a request matched, with its path parameters.
pub(crate) struct Matched {
    pub operation_id: String,
    pub path_params: HashMap<String, String>,
    pub problems: Vec<String>,
}

pub(crate) struct XSpec {
    operations: Vec<Operation>,
}

impl XSpec {
    /// Compiles the operations named by `served` (operation ids).
    pub(crate) fn load(served: &[&str]) -> Result<XSpec, String> {
        let doc: Value = serde_json::from_str(SPEC).map_err(|e| e.to_string())?;
        let schemas = doc
            .pointer("/components/schemas")
            .cloned()
            .unwrap_or(Value::Null);
        // `$ref` ignores its siblings in draft 7, so the schema goes under `allOf`, with only
        // the components it reaches beside it (the whole set is large to compile each time).
        let wrap = |schema: &Value| {
            let mut reached = Map::new();
            reach(&schemas, schema, &mut reached);
            json!({ "allOf": [schema], "components": { "schemas": reached } })
        };
        let mut operations = Vec::new();
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("no paths")?;
        for (template, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                if !served.contains(&id) {
                    continue;
                }
                let mut params = Vec::new();
                for param in op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let param = match param.get("$ref").and_then(Value::as_str) {
                        Some(reference) => resolve(&doc, reference).cloned().unwrap_or(Value::Null),
                        None => param.clone(),
                    };
                    let schema = param.get("schema").cloned().unwrap_or(json!({}));
                    let resolved = match schema.get("$ref").and_then(Value::as_str) {
                        Some(reference) => resolve(&doc, reference).cloned().unwrap_or(json!({})),
                        None => schema.clone(),
                    };
                    params.push(Param {
                        name: param["name"].as_str().unwrap_or_default().to_string(),
                        location: param["in"].as_str().unwrap_or_default().to_string(),
                        required: param["required"].as_bool().unwrap_or(false),
                        validator: compile(&wrap(&schema)).map_err(|e| format!("{id}: {e}"))?,
                        schema: resolved,
                    });
                }
                let mut bodies = Vec::new();
                let body = op.get("requestBody");
                for (media, content) in body
                    .and_then(|b| b.get("content"))
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let schema = content.get("schema").cloned().unwrap_or(json!({}));
                    bodies.push((
                        media.clone(),
                        compile(&wrap(&schema)).map_err(|e| format!("{id}: {e}"))?,
                    ));
                }
                operations.push(Operation {
                    id: id.to_string(),
                    method: method.to_ascii_uppercase(),
                    segments: template
                        .trim_start_matches('/')
                        .split('/')
                        .map(str::to_string)
                        .collect(),
                    params,
                    body_required: body
                        .and_then(|b| b.get("required"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    bodies,
                });
            }
        }
        let missing: Vec<&&str> = served
            .iter()
            .filter(|id| !operations.iter().any(|op| op.id == **id))
            .collect();
        if !missing.is_empty() {
            return Err(format!("operations not in the document: {missing:?}"));
        }
        Ok(XSpec { operations })
    }

    /// The served operation a request is for (literal segments win over parameters), and
    /// everything wrong with it.
    pub(crate) fn check(&self, request: &Request<'_>) -> Option<Matched> {
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        let op = self
            .operations
            .iter()
            .filter(|op| op.method == request.method && op.segments.len() == segments.len())
            .filter(|op| {
                op.segments
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.starts_with('{') || t == s)
            })
            .max_by_key(|op| op.segments.iter().filter(|t| !t.starts_with('{')).count())?;
        let mut problems = Vec::new();
        let mut path_params = HashMap::new();
        for (template, value) in op.segments.iter().zip(&segments) {
            if let Some(name) = template.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                path_params.insert(name.to_string(), value.to_string());
            }
        }
        for param in &op.params {
            let given: Vec<&str> = match param.location.as_str() {
                "path" => path_params
                    .get(&param.name)
                    .map(String::as_str)
                    .into_iter()
                    .collect(),
                "query" => request
                    .query
                    .iter()
                    .filter(|(k, _)| *k == param.name)
                    .map(|(_, v)| v.as_str())
                    .collect(),
                _ => continue,
            };
            match given.as_slice() {
                [] if param.required => {
                    problems.push(format!(
                        "{}: missing {} parameter {}",
                        op.id, param.location, param.name
                    ));
                }
                [] => {}
                [value] => {
                    let instance = read_as(&param.schema, value);
                    problems.extend(
                        errors(&param.validator, &instance)
                            .into_iter()
                            .map(|e| format!("{}: {}: {e}", op.id, param.name)),
                    );
                }
                _ => problems.push(format!("{}: {} given more than once", op.id, param.name)),
            }
        }
        for (name, _) in request.query {
            if !op
                .params
                .iter()
                .any(|p| p.location == "query" && p.name == *name)
            {
                problems.push(format!("{}: unknown query parameter {name}", op.id));
            }
        }
        let media = request.content_type.map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        if op.bodies.is_empty() {
            if request.body_len > 0 {
                problems.push(format!("{}: takes no body", op.id));
            }
        } else if request.body_len == 0 {
            if op.body_required {
                problems.push(format!("{}: the request body is required", op.id));
            }
        } else {
            match op
                .bodies
                .iter()
                .find(|(m, _)| Some(m.as_str()) == media.as_deref())
            {
                None => problems.push(format!(
                    "{}: body of type {media:?}; the operation takes {:?}",
                    op.id,
                    op.bodies.iter().map(|(m, _)| m).collect::<Vec<_>>()
                )),
                Some((kind, validator)) => {
                    let instance = if kind == "multipart/form-data" {
                        request.parts.map(parts_object)
                    } else {
                        request.json.cloned()
                    };
                    match instance {
                        Some(instance) => problems.extend(
                            errors(validator, &instance)
                                .into_iter()
                                .map(|e| format!("{}: body: {e}", op.id)),
                        ),
                        None => {
                            problems.push(format!("{}: the body does not parse as {kind}", op.id))
                        }
                    }
                }
            }
        }
        Some(Matched {
            operation_id: op.id.clone(),
            path_params,
            problems,
        })
    }
}

/// The component schemas `schema` references, transitively.
fn reach(schemas: &Value, schema: &Value, into: &mut Map<String, Value>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref"
                    && let Some(name) = value
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    if !into.contains_key(name)
                        && let Some(target) = schemas.get(name)
                    {
                        into.insert(name.to_string(), target.clone());
                        reach(schemas, target, into);
                    }
                } else {
                    reach(schemas, value, into);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| reach(schemas, item, into)),
        _ => {}
    }
}

/// `#/components/...` in the document.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// A query value read as its schema's type; what does not read stays a string, so the schema
/// reports it.
fn read_as(schema: &Value, text: &str) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => Value::Array(
            text.split(',')
                .map(|item| read_as(schema.get("items").unwrap_or(&Value::Null), item))
                .collect(),
        ),
        Some("integer") => text
            .parse::<i64>()
            .map_or_else(|_| json!(text), |n| json!(n)),
        Some("number") => text
            .parse::<f64>()
            .map_or_else(|_| json!(text), |n| json!(n)),
        Some("boolean") => match text {
            "true" => json!(true),
            "false" => json!(false),
            _ => json!(text),
        },
        _ => json!(text),
    }
}

/// A multipart body as the object its schema describes: a file part is the binary string,
/// a text part its text (or its number).
fn parts_object(parts: &[Part]) -> Value {
    let mut object = Map::new();
    for part in parts {
        let value = if part.file_name.is_some() {
            json!("<binary>")
        } else {
            let text = String::from_utf8_lossy(&part.bytes).into_owned();
            text.parse::<i64>()
                .map_or_else(|_| json!(text), |n| json!(n))
        };
        object.insert(part.name.clone(), value);
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requests_are_checked_against_the_document() {
        let spec = XSpec::load(&["createPosts", "getUsersPosts", "searchPostsRecent"]).unwrap();
        let ok = json!({"text": "hi", "reply": {"in_reply_to_tweet_id": "12"}});
        let matched = spec
            .check(&Request {
                method: "POST",
                path: "/2/tweets",
                query: &[],
                content_type: Some("application/json"),
                json: Some(&ok),
                parts: None,
                body_len: 10,
            })
            .unwrap();
        assert_eq!(matched.operation_id, "createPosts");
        assert_eq!(matched.problems, Vec::<String>::new());
        let bad = json!({"text": "hi", "colour": "red", "reply": {}});
        let matched = spec
            .check(&Request {
                method: "POST",
                path: "/2/tweets",
                query: &[],
                content_type: Some("application/json"),
                json: Some(&bad),
                parts: None,
                body_len: 10,
            })
            .unwrap();
        assert!(matched.problems.len() >= 2, "{:?}", matched.problems);
        let q = query(&[
            ("post.fields", "public_metrics,nonsense"),
            ("max_results", "2"),
            ("colour", "x"),
        ]);
        let matched = spec
            .check(&Request {
                method: "GET",
                path: "/2/users/42/tweets",
                query: &q,
                content_type: None,
                json: None,
                parts: None,
                body_len: 0,
            })
            .unwrap();
        assert_eq!(matched.path_params["id"], "42");
        assert_eq!(matched.problems.len(), 3, "{:?}", matched.problems);
        let matched = spec
            .check(&Request {
                method: "GET",
                path: "/2/tweets/search/recent",
                query: &[],
                content_type: None,
                json: None,
                parts: None,
                body_len: 0,
            })
            .unwrap();
        assert_eq!(matched.operation_id, "searchPostsRecent");
        assert!(matched.problems[0].contains("missing query parameter query"));
    }
}
