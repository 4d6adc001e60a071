//! The VK API's own JSON Schema (`specs/vk/`, v5.199) turned into checks of the parameters a
//! client sends to each method.
//!
//! VK describes a method's parameters as a list (name, type, limits, `"required": true`), not
//! as one schema, and its object schemas mark required properties draft-03 style
//! (`"required": true` on the property). So the fake builds one draft-07 object schema per
//! method from the list, rewrites the draft-03 marks into `required` arrays, and resolves
//! `../x/objects.json#/definitions/NAME` against the definitions of the copied object files
//! (VK's definition names are unique across files: they carry the file's prefix). Form values
//! are strings on the wire: each is read as the type the parameter declares before checking,
//! and parameters whose schema is an object but whose wire type is a string (`keyboard`,
//! `forward`) are parsed as JSON and checked against that object.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::support::{compile, errors};

const METHOD_FILES: [&str; 7] = [
    include_str!("../../specs/vk/messages/methods.json"),
    include_str!("../../specs/vk/groups/methods.json"),
    include_str!("../../specs/vk/photos/methods.json"),
    include_str!("../../specs/vk/docs/methods.json"),
    include_str!("../../specs/vk/wall/methods.json"),
    include_str!("../../specs/vk/likes/methods.json"),
    include_str!("../../specs/vk/video/methods.json"),
];
const OBJECT_FILES: [&str; 6] = [
    include_str!("../../specs/vk/messages/objects.json"),
    include_str!("../../specs/vk/groups/objects.json"),
    include_str!("../../specs/vk/wall/objects.json"),
    include_str!("../../specs/vk/likes/objects.json"),
    include_str!("../../specs/vk/base/objects.json"),
    include_str!("../../specs/vk/video/objects.json"),
];
const ERRORS: &str = include_str!("../../specs/vk/errors.json");

/// The parameters every call carries besides the method's own.
const GLOBAL_PARAMS: [&str; 2] = ["access_token", "v"];

struct MethodSpec {
    /// Declared type of each parameter, for reading form values.
    types: HashMap<String, Value>,
    validator: Option<jsonschema::Validator>,
    /// Parameters sent as JSON text, with the validator of what the text must hold.
    json_params: Vec<(String, jsonschema::Validator)>,
    compile_error: Option<String>,
}

/// Checks for every method in the copied schema files.
pub(crate) struct VkSpec {
    methods: HashMap<String, MethodSpec>,
    error_messages: HashMap<i64, String>,
}

impl VkSpec {
    pub(crate) fn load() -> Result<VkSpec, String> {
        let mut definitions = Map::new();
        for file in OBJECT_FILES {
            let file: Value = serde_json::from_str(file).map_err(|e| e.to_string())?;
            if let Some(defs) = file.get("definitions").and_then(Value::as_object) {
                definitions.extend(defs.clone());
            }
        }
        let definitions = normalize(Value::Object(definitions));
        let mut methods = HashMap::new();
        for file in METHOD_FILES {
            let file: Value = serde_json::from_str(file).map_err(|e| e.to_string())?;
            for method in file["methods"].as_array().into_iter().flatten() {
                let Some(name) = method["name"].as_str() else {
                    continue;
                };
                methods.insert(name.to_string(), method_spec(method, &definitions));
            }
        }
        let errors: Value = serde_json::from_str(ERRORS).map_err(|e| e.to_string())?;
        let error_messages = errors["errors"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, error)| {
                Some((
                    error["code"].as_i64()?,
                    error["description"].as_str()?.to_string(),
                ))
            })
            .collect();
        Ok(VkSpec {
            methods,
            error_messages,
        })
    }

    pub(crate) fn knows(&self, method: &str) -> bool {
        self.methods.contains_key(method)
    }

    /// VK's wording of an error code (from `errors.json`).
    pub(crate) fn error_message(&self, code: i64) -> String {
        self.error_messages
            .get(&code)
            .cloned()
            .unwrap_or_else(|| "Unknown error occurred".into())
    }

    /// Everything wrong with `params` for `method`, as readable lines.
    pub(crate) fn check(&self, method: &str, params: &[(String, String)]) -> Vec<String> {
        let Some(spec) = self.methods.get(method) else {
            return vec![format!("{method}: not a method of the schema")];
        };
        if let Some(error) = &spec.compile_error {
            return vec![format!("{method}: {error}")];
        }
        let mut problems = Vec::new();
        let mut instance = Map::new();
        for (name, value) in params {
            if GLOBAL_PARAMS.contains(&name.as_str()) {
                continue;
            }
            match spec.types.get(name) {
                Some(declared) => {
                    instance.insert(name.clone(), read_as(declared, value));
                }
                None => problems.push(format!("{method}: unknown parameter {name}")),
            }
        }
        for name in GLOBAL_PARAMS {
            if !params.iter().any(|(n, _)| n == name) {
                problems.push(format!("{method}: missing {name}"));
            }
        }
        if let Some(validator) = &spec.validator {
            let instance = Value::Object(instance);
            problems.extend(
                errors(validator, &instance)
                    .into_iter()
                    .map(|e| format!("{method}: {e}")),
            );
        }
        for (name, validator) in &spec.json_params {
            let Some((_, text)) = params.iter().find(|(n, _)| n == name) else {
                continue;
            };
            match serde_json::from_str::<Value>(text) {
                Ok(value) => problems.extend(
                    errors(validator, &value)
                        .into_iter()
                        .map(|e| format!("{method}: {name}: {e}")),
                ),
                Err(err) => problems.push(format!("{method}: {name} is not JSON: {err}")),
            }
        }
        problems
    }
}

fn method_spec(method: &Value, definitions: &Value) -> MethodSpec {
    let mut types = HashMap::new();
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut json_params = Vec::new();
    let mut compile_error = None;
    for param in method["parameters"].as_array().into_iter().flatten() {
        let Some(name) = param["name"].as_str() else {
            continue;
        };
        types.insert(name.to_string(), param["type"].clone());
        if param["required"].as_bool() == Some(true) {
            required.push(Value::String(name.to_string()));
        }
        let mut schema = param.clone();
        if let Some(fields) = schema.as_object_mut() {
            for key in ["name", "description", "required", "entity", "default"] {
                fields.remove(key);
            }
        }
        let referenced = param
            .get("$ref")
            .and_then(Value::as_str)
            .map(|reference| (reference, definition(definitions, reference)));
        if let Some((reference, Some(target))) = referenced
            && target.get("type").and_then(Value::as_str) != Some("object")
        {
            // A plain value (an enum of strings, say) checked against its definition.
            schema = json!({"$ref": local_ref(reference)});
        } else if let Some(reference) = param.get("$ref").and_then(Value::as_str) {
            // A string on the wire holding the referenced object as JSON.
            let target = json!({"$ref": local_ref(reference), "definitions": definitions});
            match compile(&target) {
                Ok(validator) => json_params.push((name.to_string(), validator)),
                Err(err) => compile_error = Some(format!("{name}: {err}")),
            }
            schema = json!({"type": "string"});
        }
        properties.insert(name.to_string(), normalize(schema));
    }
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "definitions": definitions,
    });
    let validator = match compile(&schema) {
        Ok(validator) => Some(validator),
        Err(err) => {
            compile_error = Some(err);
            None
        }
    };
    MethodSpec {
        types,
        validator,
        json_params,
        compile_error,
    }
}

/// The definition a `../x/objects.json#/definitions/NAME` reference names.
fn definition<'a>(definitions: &'a Value, reference: &str) -> Option<&'a Value> {
    let name = reference.rsplit('/').next()?;
    definitions.get(name)
}

/// `../messages/objects.json#/definitions/X` → `#/definitions/X`.
fn local_ref(reference: &str) -> String {
    match reference.split_once('#') {
        Some((_, pointer)) => format!("#{pointer}"),
        None => reference.to_string(),
    }
}

/// Rewrites VK's draft-03 habits into draft-07: `"required": true` on a property becomes the
/// parent's `required` list, and cross-file references become local ones.
fn normalize(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let local = local_ref(reference);
                map.insert("$ref".into(), Value::String(local));
            }
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                let mut required: Vec<Value> = Vec::new();
                for (name, property) in properties.iter_mut() {
                    if let Some(fields) = property.as_object_mut()
                        && let Some(Value::Bool(flag)) = fields.get("required").cloned()
                    {
                        fields.remove("required");
                        if flag {
                            required.push(Value::String(name.clone()));
                        }
                    }
                }
                if !required.is_empty() {
                    map.insert("required".into(), Value::Array(required));
                }
            }
            if matches!(map.get("required"), Some(Value::Bool(_))) {
                map.remove("required");
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, normalize(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// A form value read as the type its parameter declares; what does not read stays a string, so
/// the schema reports it.
fn read_as(declared: &Value, text: &str) -> Value {
    let kinds: Vec<&str> = match declared {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for kind in kinds {
        match kind {
            "integer" => {
                if let Ok(n) = text.parse::<i64>() {
                    return json!(n);
                }
            }
            "number" => {
                if let Ok(n) = text.parse::<f64>() {
                    return json!(n);
                }
            }
            "boolean" => match text {
                "1" | "true" => return json!(true),
                "0" | "false" => return json!(false),
                _ => {}
            },
            "array" => {
                return Value::Array(
                    text.split(',')
                        .filter(|item| !item.is_empty())
                        .map(|item| match item.parse::<i64>() {
                            Ok(n) => json!(n),
                            Err(_) => json!(item),
                        })
                        .collect(),
                );
            }
            "string" => return json!(text),
            _ => {}
        }
    }
    json!(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([
                ("access_token".into(), "t".into()),
                ("v".into(), "5.199".into()),
            ])
            .collect()
    }

    #[test]
    fn the_copied_schema_compiles_for_every_method() {
        let spec = VkSpec::load().unwrap();
        for (name, method) in &spec.methods {
            assert_eq!(method.compile_error, None, "{name}");
        }
        assert!(spec.knows("messages.send"));
        assert_eq!(spec.error_message(6), "Too many requests per second");
    }

    #[test]
    fn parameters_are_checked_against_the_schema() {
        let spec = VkSpec::load().unwrap();
        let ok = params(&[("peer_id", "5"), ("random_id", "7"), ("message", "hi")]);
        assert_eq!(spec.check("messages.send", &ok), Vec::<String>::new());
        let keyboard = r#"{"inline":true,"one_time":false,"buttons":[[{"action":{"type":"callback","label":"Yes","payload":"\"y\""}}]]}"#;
        let with_keyboard = params(&[("peer_id", "5"), ("random_id", "7"), ("keyboard", keyboard)]);
        assert_eq!(
            spec.check("messages.send", &with_keyboard),
            Vec::<String>::new()
        );
        // A button without its required label, a keyboard without one_time.
        let bad_keyboard = r#"{"buttons":[[{"action":{"type":"callback"}}]]}"#;
        let bad = params(&[
            ("peer_id", "x"),
            ("keyboard", bad_keyboard),
            ("colour", "red"),
        ]);
        let problems = spec.check("messages.send", &bad);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("unknown parameter colour")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("keyboard")),
            "{problems:?}"
        );
        assert!(problems.len() >= 3, "{problems:?}");
        let missing = params(&[("user_id", "1")]);
        assert!(
            !spec
                .check("messages.sendMessageEventAnswer", &missing)
                .is_empty()
        );
    }
}
