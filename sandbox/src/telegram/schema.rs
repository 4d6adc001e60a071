//! The Bot API's contract as `specs/telegram/api.json` states it (methods with their
//! parameters, types with their fields), and the checks of requests and of the sandbox's own
//! answers against it: required fields present, every value of a type the field allows, no
//! field the contract does not know.
//!
//! Values sent as form fields (urlencoded or multipart) are strings, as Telegram receives them:
//! a number or boolean is read from its text, and an object or array from its JSON text.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

/// The contract, parsed once.
pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(Schema::load);

#[derive(Deserialize)]
pub(crate) struct Schema {
    methods: HashMap<String, Definition>,
    types: HashMap<String, Definition>,
}

#[derive(Deserialize)]
struct Definition {
    #[serde(default)]
    fields: Vec<Field>,
    #[serde(default)]
    subtypes: Vec<String>,
}

#[derive(Deserialize)]
struct Field {
    name: String,
    types: Vec<String>,
    required: bool,
}

/// A request parameter as it arrived.
#[derive(Clone, Debug)]
pub(crate) enum Param {
    /// From a JSON body: typed.
    Json(Value),
    /// From the query string, a urlencoded body or a multipart text field.
    Text(String),
    /// A multipart file.
    File,
}

impl Schema {
    fn load() -> Schema {
        let text = include_str!("../../specs/telegram/api.json");
        match serde_json::from_str(text) {
            Ok(schema) => schema,
            // The file is part of the crate: a broken copy is a build mistake.
            Err(error) => panic!("sandbox/specs/telegram/api.json does not parse: {error}"),
        }
    }

    pub fn has_method(&self, method: &str) -> bool {
        self.methods.contains_key(method)
    }

    /// Checks a method's parameters and returns them as typed JSON (files left out). The error
    /// is Telegram's style of `description`.
    pub fn check_request(
        &self,
        method: &str,
        params: &[(String, Param)],
    ) -> Result<serde_json::Map<String, Value>, String> {
        let definition = self
            .methods
            .get(method)
            .ok_or_else(|| format!("method {method} is not in the contract"))?;
        let mut typed = serde_json::Map::new();
        for (name, param) in params {
            let field = definition
                .fields
                .iter()
                .find(|field| &field.name == name)
                .ok_or_else(|| format!("Bad Request: unknown parameter \"{name}\""))?;
            match param {
                Param::File if field.types.iter().any(|t| t == "InputFile") => {}
                Param::File => {
                    return Err(format!(
                        "Bad Request: parameter \"{name}\" can't be a file upload"
                    ));
                }
                Param::Json(value) => {
                    self.check_any(&field.types, value, name)?;
                    typed.insert(name.clone(), value.clone());
                }
                Param::Text(text) => {
                    let value = self.read_text(&field.types, text, name)?;
                    typed.insert(name.clone(), value);
                }
            }
        }
        for field in definition.fields.iter().filter(|field| field.required) {
            if !params.iter().any(|(name, _)| name == &field.name) {
                return Err(format!(
                    "Bad Request: parameter \"{}\" is required",
                    field.name
                ));
            }
        }
        Ok(typed)
    }

    /// Checks a value the sandbox itself sends (an `Update`, a `Message`) against a type.
    pub fn check_value(&self, type_name: &str, value: &Value) -> Result<(), String> {
        self.check_type(type_name, value, type_name)
    }

    /// A form field's text read as the first of the field's types it fits.
    fn read_text(&self, types: &[String], text: &str, path: &str) -> Result<Value, String> {
        let mut last_error = format!("Bad Request: parameter \"{path}\" has a wrong type");
        for type_name in types {
            let candidate = match type_name.as_str() {
                "String" => Some(Value::String(text.to_string())),
                "Integer" => text.trim().parse::<i64>().ok().map(Value::from),
                "Float" => text.trim().parse::<f64>().ok().map(Value::from),
                "Boolean" => match text.trim() {
                    "true" | "True" | "1" => Some(Value::Bool(true)),
                    "false" | "False" | "0" => Some(Value::Bool(false)),
                    _ => None,
                },
                // A file by attach://<part name> is only valid inside media objects.
                "InputFile" => None,
                _ => match serde_json::from_str::<Value>(text) {
                    Ok(value) => match self.check_type(type_name, &value, path) {
                        Ok(()) => Some(value),
                        Err(error) => {
                            last_error = error;
                            None
                        }
                    },
                    Err(_) => {
                        last_error = format!("Bad Request: can't parse {path} JSON object");
                        None
                    }
                },
            };
            if let Some(value) = candidate {
                return Ok(value);
            }
        }
        Err(last_error)
    }

    /// Valid when the value fits one of `types`. Otherwise the error reported is that of the
    /// first type sharing a field name with the value (the type the sender evidently meant),
    /// else of the last type tried.
    fn check_any(&self, types: &[String], value: &Value, path: &str) -> Result<(), String> {
        let mut meant = None;
        let mut last_error = None;
        for type_name in types {
            match self.check_type(type_name, value, path) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    if meant.is_none() && self.shares_a_field(type_name, value) {
                        meant = Some(error.clone());
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(meant
            .or(last_error)
            .unwrap_or_else(|| format!("Bad Request: field \"{path}\" has no type")))
    }

    fn shares_a_field(&self, type_name: &str, value: &Value) -> bool {
        let (Some(definition), Some(object)) = (self.types.get(type_name), value.as_object())
        else {
            return false;
        };
        definition
            .fields
            .iter()
            .any(|field| object.contains_key(&field.name))
    }

    fn check_type(&self, type_name: &str, value: &Value, path: &str) -> Result<(), String> {
        let wrong = || format!("Bad Request: field \"{path}\" must be of type {type_name}");
        if let Some(item_type) = type_name.strip_prefix("Array of ") {
            let items = value.as_array().ok_or_else(wrong)?;
            for (index, item) in items.iter().enumerate() {
                self.check_type(item_type, item, &format!("{path}[{index}]"))?;
            }
            return Ok(());
        }
        let fits = match type_name {
            "String" => value.is_string(),
            "Integer" => value.is_i64() || value.is_u64(),
            "Float" => value.is_number(),
            "Boolean" => value.is_boolean(),
            "True" => value == &Value::Bool(true),
            "InputFile" => false,
            _ => return self.check_object(type_name, value, path),
        };
        if fits { Ok(()) } else { Err(wrong()) }
    }

    fn check_object(&self, type_name: &str, value: &Value, path: &str) -> Result<(), String> {
        let definition = self
            .types
            .get(type_name)
            .ok_or_else(|| format!("type {type_name} is not in the contract"))?;
        if !definition.subtypes.is_empty() {
            return self.check_any(&definition.subtypes, value, path);
        }
        let object = value
            .as_object()
            .ok_or_else(|| format!("Bad Request: field \"{path}\" must be an object"))?;
        for (name, field_value) in object {
            let field = definition
                .fields
                .iter()
                .find(|field| &field.name == name)
                .ok_or_else(|| {
                    format!("Bad Request: unknown field \"{name}\" in {path} ({type_name})")
                })?;
            self.check_any(&field.types, field_value, &format!("{path}.{name}"))?;
        }
        for field in definition.fields.iter().filter(|field| field.required) {
            if !object.contains_key(&field.name) {
                return Err(format!(
                    "Bad Request: field \"{path}.{}\" is required ({type_name})",
                    field.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn json(params: Value) -> Vec<(String, Param)> {
        params
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), Param::Json(v.clone())))
            .collect()
    }

    #[test]
    fn a_correct_send_message_passes() {
        let params = json(json!({"chat_id": 5, "text": "hi",
            "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]},
            "reply_parameters": {"message_id": 3, "allow_sending_without_reply": true}}));
        assert!(SCHEMA.check_request("sendMessage", &params).is_ok());
    }

    #[test]
    fn missing_unknown_and_mistyped_fields_fail() {
        let check = |params| {
            SCHEMA
                .check_request("sendMessage", &json(params))
                .unwrap_err()
        };
        assert!(check(json!({"chat_id": 5})).contains("\"text\" is required"));
        assert!(check(json!({"chat_id": 5, "text": "a", "colour": 1})).contains("unknown"));
        assert!(check(json!({"chat_id": true, "text": "a"})).contains("chat_id"));
        let bad_button = json!({"chat_id": 5, "text": "a",
            "reply_markup": {"inline_keyboard": [[{"txt": "a"}]]}});
        assert!(check(bad_button).contains("txt"));
    }

    #[test]
    fn form_text_is_read_as_the_fields_type() {
        let params = vec![
            ("chat_id".to_string(), Param::Text("-100".into())),
            ("photo".to_string(), Param::File),
            (
                "reply_markup".to_string(),
                Param::Text(r#"{"inline_keyboard":[[{"text":"a","url":"https://x"}]]}"#.into()),
            ),
        ];
        let typed = SCHEMA.check_request("sendPhoto", &params).unwrap();
        assert_eq!(typed["chat_id"], json!(-100));
        assert!(typed["reply_markup"].is_object());
        let file_in_text_field = vec![
            ("chat_id".to_string(), Param::File),
            ("photo".to_string(), Param::Text("file-id".into())),
        ];
        assert!(
            SCHEMA
                .check_request("sendPhoto", &file_in_text_field)
                .is_err()
        );
    }

    #[test]
    fn unions_accept_any_of_their_subtypes() {
        let message = json!({"message_id": 1, "date": 0,
            "chat": {"id": 1, "type": "private"}});
        let query = json!({"id": "q", "from": {"id": 1, "is_bot": false, "first_name": "A"},
            "chat_instance": "c", "message": message});
        assert!(SCHEMA.check_value("CallbackQuery", &query).is_ok());
    }
}
