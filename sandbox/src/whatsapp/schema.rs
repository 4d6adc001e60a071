//! Meta's own schemas for the requests the fake Graph API receives and the webhooks it sends,
//! from the subset of Meta's Cloud API OpenAPI kept in `sandbox/specs/whatsapp/` (provenance in
//! `sandbox/specs/README.md`).
//!
//! One repair is made when loading, and only this one: Meta writes message types as
//! `allOf: [BaseMessageProperties, {additionalProperties: false, properties: {type, text}}]`.
//! Read literally, `additionalProperties: false` in the second branch forbids `to` and
//! `messaging_product`, which the first branch requires, so no request could ever be valid.
//! What Meta means is "no properties beyond both branches", which JSON Schema 2020-12 spells as
//! `unevaluatedProperties: false` beside the `allOf`; the loader rewrites it so.
//!
//! Webhook bodies are not validated: the spec's `IncomingMessage` refers to the *outbound*
//! `TextMessage`, `ImageMessage`… (one name for two shapes), so even Meta's own webhook
//! examples fail it. The fake builds its webhooks after those examples instead, and the tests
//! check that the connector reads the examples themselves.

use jsonschema::Validator;
use serde_json::{Value, json};

/// The subset of `business-messaging-api_v23.0.yaml`, converted to JSON.
const SPEC: &str = include_str!("../../specs/whatsapp/cloud-api.subset.json");

/// Validators for the bodies the sandbox checks.
pub struct Schemas {
    pub message: Validator,
    pub subscription: Validator,
}

impl Schemas {
    pub fn load() -> Result<Schemas, String> {
        let spec = spec()?;
        let mut components = spec
            .get("components")
            .cloned()
            .ok_or("the spec has no components")?;
        close_all_of(&mut components);
        let validator = |name: &str| {
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": format!("#/components/schemas/{name}"),
                "components": components,
            });
            jsonschema::draft202012::options()
                .build(&root)
                .map_err(|err| format!("schema {name}: {err}"))
        };
        Ok(Schemas {
            message: validator("Message")?,
            subscription: validator("SubscriptionRequest")?,
        })
    }
}

/// The whole kept subset of the spec.
pub fn spec() -> Result<Value, String> {
    serde_json::from_str(SPEC).map_err(|err| format!("the WhatsApp spec subset: {err}"))
}

/// The example webhook bodies of the spec's `/whatsapp/webhooks` path, by name.
pub fn webhook_examples() -> Result<Vec<(String, Value)>, String> {
    let spec = spec()?;
    let examples = spec
        .pointer("/paths/~1whatsapp~1webhooks/post/requestBody/content/application~1json/examples")
        .and_then(Value::as_object)
        .ok_or("the spec has no webhook examples")?;
    Ok(examples
        .iter()
        .filter_map(|(name, example)| Some((name.clone(), example.get("value")?.clone())))
        .collect())
}

/// The repair described in the module doc, applied everywhere in `node`.
fn close_all_of(node: &mut Value) {
    match node {
        Value::Object(map) => {
            let mut closed = false;
            if let Some(Value::Array(branches)) = map.get_mut("allOf") {
                for branch in branches.iter_mut() {
                    if let Some(branch) = branch.as_object_mut()
                        && branch.get("additionalProperties") == Some(&Value::Bool(false))
                    {
                        branch.remove("additionalProperties");
                        closed = true;
                    }
                }
            }
            if closed {
                map.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
            for value in map.values_mut() {
                close_all_of(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_all_of),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::support::errors;

    #[test]
    fn a_text_message_is_valid_and_unknown_fields_are_not() {
        let schemas = Schemas::load().unwrap();
        let mut text = json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "16505551234", "type": "text", "text": {"body": "hi"}});
        assert_eq!(errors(&schemas.message, &text), Vec::<String>::new());
        text["colour"] = json!("red");
        assert!(!errors(&schemas.message, &text).is_empty());
        let missing_to = json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "type": "text", "text": {"body": "hi"}});
        assert!(!errors(&schemas.message, &missing_to).is_empty());
    }

    #[test]
    fn the_spec_examples_are_there() {
        let examples = webhook_examples().unwrap();
        assert!(examples.len() >= 5, "{}", examples.len());
    }
}
