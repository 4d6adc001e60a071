//! The MAX Bot API's own OpenAPI document (`specs/max/schema.json`, v0.0.33) turned into checks
//! of the requests a client sends: query parameters against each operation's `parameters`,
//! bodies against its `requestBody` schema.
//!
//! OpenAPI 3.0 schemas are almost draft-07 JSON Schema; the differences handled here:
//! `nullable: true` becomes a `null` alternative, and `discriminator` (which JSON Schema
//! ignores) is applied by hand to the two polymorphic lists a message carries, attachments
//! (`AttachmentRequest`) and keyboard buttons (`Button`), so each element is checked against
//! the schema its `type` names.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::support::{compile, errors};

const SCHEMA: &str = include_str!("../../specs/max/schema.json");

struct Operation {
    /// Declared types of the query parameters, for reading them from the query string.
    query_types: HashMap<String, Value>,
    query: Option<jsonschema::Validator>,
    body: Option<(String, jsonschema::Validator)>,
}

pub(crate) struct MaxSpec {
    operations: HashMap<(String, String), Operation>,
    /// Every component schema that a discriminator names, by component name.
    components: HashMap<String, jsonschema::Validator>,
    /// `AttachmentRequest`, `Button`, `Update`, `Attachment`: the discriminating property, and
    /// its value → component name.
    mappings: HashMap<String, (String, HashMap<String, String>)>,
    problems: Vec<String>,
}

impl MaxSpec {
    pub(crate) fn load() -> Result<MaxSpec, String> {
        let document: Value = serde_json::from_str(SCHEMA).map_err(|e| e.to_string())?;
        let document = openapi_to_json_schema(document);
        let schemas = document["components"]["schemas"].clone();
        let root =
            |schema: Value| json!({"allOf": [schema], "components": {"schemas": schemas.clone()}});
        let mut problems = Vec::new();
        let mut operations = HashMap::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let mut properties = Map::new();
                let mut required = Vec::new();
                let mut query_types = HashMap::new();
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    if parameter["in"] != "query" {
                        continue;
                    }
                    let Some(name) = parameter["name"].as_str() else {
                        continue;
                    };
                    let schema = parameter["schema"].clone();
                    query_types.insert(name.to_string(), declared_type(&schema, &schemas));
                    properties.insert(name.to_string(), schema);
                    if parameter["required"] == true {
                        required.push(json!(name));
                    }
                }
                let query = compile(&root(json!({
                    "type": "object", "properties": properties, "required": required,
                })))
                .map_err(|e| problems.push(format!("{method} {path}: {e}")))
                .ok();
                let body_schema =
                    operation["requestBody"]["content"]["application/json"]["schema"].clone();
                let body = if body_schema.is_null() {
                    None
                } else {
                    let name = body_schema["$ref"]
                        .as_str()
                        .and_then(|r| r.rsplit('/').next())
                        .unwrap_or("body")
                        .to_string();
                    compile(&root(body_schema))
                        .map_err(|e| problems.push(format!("{method} {path} body: {e}")))
                        .ok()
                        .map(|validator| (name, validator))
                };
                operations.insert(
                    (method.to_ascii_uppercase(), path.clone()),
                    Operation {
                        query_types,
                        query,
                        body,
                    },
                );
            }
        }
        let mut mappings = HashMap::new();
        let mut components = HashMap::new();
        for base in ["AttachmentRequest", "Button", "Update", "Attachment"] {
            let property = schemas[base]["discriminator"]["propertyName"]
                .as_str()
                .unwrap_or("type")
                .to_string();
            let mapping: HashMap<String, String> = schemas[base]["discriminator"]["mapping"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(kind, target)| {
                    Some((
                        kind.clone(),
                        target.as_str()?.rsplit('/').next()?.to_string(),
                    ))
                })
                .collect();
            for component in mapping.values() {
                let schema = json!({"$ref": format!("#/components/schemas/{component}")});
                match compile(&root(schema)) {
                    Ok(validator) => {
                        components.insert(component.clone(), validator);
                    }
                    Err(e) => problems.push(format!("{component}: {e}")),
                }
            }
            mappings.insert(base.to_string(), (property, mapping));
        }
        Ok(MaxSpec {
            operations,
            components,
            mappings,
            problems,
        })
    }

    /// Whether the document has this operation (`GET`, `/updates`).
    pub(crate) fn knows(&self, method: &str, path: &str) -> bool {
        self.operations
            .contains_key(&(method.to_string(), path.to_string()))
    }

    /// Everything wrong with a request to a documented operation.
    pub(crate) fn check(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        let what = format!("{method} {path}");
        let Some(operation) = self.operations.get(&(method.to_string(), path.to_string())) else {
            return vec![format!("{what}: not an operation of the schema")];
        };
        let mut problems: Vec<String> = self
            .problems
            .iter()
            .map(|p| format!("{what}: schema: {p}"))
            .collect();
        let mut instance = Map::new();
        for (name, value) in query {
            match operation.query_types.get(name) {
                Some(declared) => {
                    instance.insert(name.clone(), read_as(declared, value));
                }
                None => problems.push(format!("{what}: unknown query parameter {name}")),
            }
        }
        if let Some(validator) = &operation.query {
            problems.extend(
                errors(validator, &Value::Object(instance))
                    .into_iter()
                    .map(|e| format!("{what}: query: {e}")),
            );
        }
        match (&operation.body, body) {
            (Some((name, validator)), Some(body)) => {
                problems.extend(
                    errors(validator, body)
                        .into_iter()
                        .map(|e| format!("{what}: {name}: {e}")),
                );
                let message = if name == "CallbackAnswer" {
                    &body["message"]
                } else {
                    body
                };
                problems.extend(self.check_polymorphic(&what, message));
            }
            (Some((name, _)), None) => problems.push(format!("{what}: {name} body missing")),
            (None, Some(_)) => problems.push(format!("{what}: takes no body")),
            (None, None) => {}
        }
        problems
    }

    /// Attachments and buttons checked against the schema their `type` names.
    fn check_polymorphic(&self, what: &str, message: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        for attachment in message["attachments"].as_array().into_iter().flatten() {
            problems.extend(self.check_one(what, "AttachmentRequest", attachment));
            if attachment["type"] == "inline_keyboard" {
                let rows = attachment["payload"]["buttons"].as_array();
                for button in rows
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_array)
                    .flatten()
                {
                    problems.extend(self.check_one(what, "Button", button));
                }
            }
        }
        problems
    }

    /// An update the fake is about to send, checked against the schema its `update_type`
    /// names, with the attachments of the message it carries.
    pub(crate) fn check_update(&self, update: &Value) -> Vec<String> {
        let mut problems = self.check_one("update", "Update", update);
        let attachments = update["message"]["body"]["attachments"].as_array();
        for attachment in attachments.into_iter().flatten() {
            problems.extend(self.check_one("update", "Attachment", attachment));
        }
        problems
    }

    fn check_one(&self, what: &str, base: &str, instance: &Value) -> Vec<String> {
        let Some((property, mapping)) = self.mappings.get(base) else {
            return vec![format!("{what}: {base} has no discriminator")];
        };
        let kind = instance[property.as_str()].as_str().unwrap_or("");
        let Some(component) = mapping.get(kind) else {
            return vec![format!("{what}: {base} of unknown type {kind:?}")];
        };
        match self.components.get(component) {
            Some(validator) => errors(validator, instance)
                .into_iter()
                .map(|e| format!("{what}: {component}: {e}"))
                .collect(),
            None => vec![format!("{what}: {component} did not compile")],
        }
    }
}

/// The JSON type a parameter's schema declares, following one `$ref`.
fn declared_type(schema: &Value, schemas: &Value) -> Value {
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
        return schemas[name]["type"].clone();
    }
    schema["type"].clone()
}

/// OpenAPI's `nullable: true` as JSON Schema: a `null` alternative.
fn openapi_to_json_schema(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            let nullable = map.remove("nullable") == Some(Value::Bool(true));
            let map: Map<String, Value> = map
                .into_iter()
                .map(|(k, v)| (k, openapi_to_json_schema(v)))
                .collect();
            if !nullable {
                return Value::Object(map);
            }
            match map.get("type").and_then(Value::as_str).map(str::to_string) {
                Some(kind) => {
                    let mut map = map;
                    map.insert("type".into(), json!([kind, "null"]));
                    // An enum must then allow null too.
                    if let Some(Value::Array(values)) = map.get_mut("enum") {
                        values.push(Value::Null);
                    }
                    Value::Object(map)
                }
                None => json!({"anyOf": [{"type": "null"}, Value::Object(map)]}),
            }
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(openapi_to_json_schema).collect())
        }
        other => other,
    }
}

/// A query value read as its declared type; what does not read stays a string for the schema
/// to report.
fn read_as(declared: &Value, text: &str) -> Value {
    // A nullable parameter declares `[type, "null"]`.
    let declared = match declared {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").unwrap_or(&Value::Null),
        other => other,
    };
    match declared.as_str() {
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
        Some("array") => Value::Array(
            text.split(',')
                .filter(|item| !item.is_empty())
                .map(|item| json!(item))
                .collect(),
        ),
        _ => json!(text),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_document_compiles() {
        let spec = MaxSpec::load().unwrap();
        assert_eq!(spec.problems, Vec::<String>::new());
        assert!(spec.knows("POST", "/messages"));
        assert!(spec.knows("GET", "/updates"));
    }

    #[test]
    fn requests_are_checked() {
        let spec = MaxSpec::load().unwrap();
        let body = json!({"text": "hi", "attachments": [
            {"type": "inline_keyboard", "payload": {"buttons": [[
                {"type": "callback", "text": "Yes", "payload": "y"},
                {"type": "link", "text": "Site", "url": "https://example.com"}]]}},
            {"type": "image", "payload": {"token": "t"}}],
            "link": {"type": "reply", "mid": "mid.1"}});
        let query = pairs(&[("chat_id", "5")]);
        assert_eq!(
            spec.check("POST", "/messages", &query, Some(&body)),
            Vec::<String>::new()
        );
        let bad = json!({"text": "x".repeat(4001), "attachments": [
            {"type": "inline_keyboard", "payload": {"buttons": [[{"type": "callback", "text": ""}]]}},
            {"type": "hologram"}]});
        let problems = spec.check(
            "POST",
            "/messages",
            &pairs(&[("chat_id", "x"), ("to", "1")]),
            Some(&bad),
        );
        for needle in [
            "longer than 4000",
            "\"payload\" is a required property",
            "hologram",
            "unknown query parameter to",
            "query: \"x\"",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle}: {problems:?}"
            );
        }
        let update = json!({"update_type": "message_created", "timestamp": 1, "message": {
            "recipient": {"chat_id": 1, "chat_type": "dialog"}, "timestamp": 1,
            "body": {"mid": "mid.1", "seq": 1, "text": "hi",
                "attachments": [{"type": "image", "payload": {"photo_id": 1, "token": "t", "url": "u"}}]}}});
        assert_eq!(spec.check_update(&update), Vec::<String>::new());
        let broken = json!({"update_type": "message_created", "timestamp": 1, "message": {
            "recipient": {"chat_type": "dialog"}, "timestamp": 1,
            "body": {"mid": "mid.1", "seq": 1, "attachments": [{"type": "image"}]}}});
        assert_eq!(
            spec.check_update(&broken).len(),
            1,
            "{:?}",
            spec.check_update(&broken)
        );
        assert!(
            !spec
                .check_update(&json!({"update_type": "message_created"}))
                .is_empty()
        );
        let subscribe = json!({"url": "https://x/hook", "secret": "bad secret"});
        assert!(
            !spec
                .check("POST", "/subscriptions", &[], Some(&subscribe))
                .is_empty()
        );
        assert!(
            !spec
                .check("POST", "/answers", &[], Some(&json!({})))
                .is_empty()
        );
    }
}
