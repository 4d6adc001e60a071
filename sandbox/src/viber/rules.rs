//! Viber's documented rules for `send_message` bodies (Viber publishes no schema): required
//! fields per message type, the limits on names and texts, and the keyboard's shape.

use serde_json::Value;

const MESSAGE_TYPES: [&str; 8] = [
    "text", "picture", "video", "file", "location", "contact", "sticker", "url",
];
const MESSAGE_FIELDS: [&str; 17] = [
    "receiver",
    "min_api_version",
    "sender",
    "tracking_data",
    "type",
    "text",
    "media",
    "thumbnail",
    "size",
    "duration",
    "file_name",
    "contact",
    "location",
    "sticker_id",
    "keyboard",
    "rich_media",
    "alt_text",
];
const ACTION_TYPES: [&str; 6] = [
    "reply",
    "open-url",
    "location-picker",
    "share-phone",
    "none",
    "open-map",
];

/// Viber's documented rules for `send_message`, as a list of what is wrong.
pub fn check_message(message: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(fields) = message.as_object() else {
        return vec!["the body is not an object".into()];
    };
    for key in fields.keys() {
        if !MESSAGE_FIELDS.contains(&key.as_str()) {
            problems.push(format!("unknown field {key}"));
        }
    }
    if message["receiver"].as_str().is_none_or(str::is_empty) {
        problems.push("receiver is required".into());
    }
    match message["sender"]["name"].as_str() {
        Some(name) if !name.is_empty() && name.chars().count() <= 28 => {}
        _ => problems.push("sender.name is required, at most 28 characters".into()),
    }
    if let Some(version) = message.get("min_api_version")
        && version.as_u64().is_none_or(|v| v < 1)
    {
        problems.push("min_api_version must be a positive integer".into());
    }
    if let Some(tracking) = message.get("tracking_data")
        && tracking.as_str().is_none_or(|t| t.len() > 4096)
    {
        problems.push("tracking_data must be a string of at most 4096 characters".into());
    }
    let kind = message["type"].as_str().unwrap_or_default();
    if !MESSAGE_TYPES.contains(&kind) {
        problems.push(format!("type {kind:?} is not a message type"));
    }
    let text = message["text"].as_str();
    let media_url = message["media"]
        .as_str()
        .is_some_and(|m| m.starts_with("http://") || m.starts_with("https://"));
    let size = message["size"].as_u64().is_some();
    match kind {
        "text" if text.is_none_or(|t| t.is_empty() || t.chars().count() > 7000) => {
            problems.push("text messages need text of 1 to 7000 characters".into());
        }
        "picture" => {
            if !media_url {
                problems.push("picture needs a media URL".into());
            }
            if text.is_some_and(|t| t.chars().count() > 120) {
                problems.push("a picture's text is at most 120 characters".into());
            }
        }
        "video" if !media_url || !size => problems.push("video needs media and size".into()),
        "file"
            if !media_url || !size || message["file_name"].as_str().is_none_or(str::is_empty) =>
        {
            problems.push("file needs media, size and file_name".into());
        }
        _ => {}
    }
    if let Some(keyboard) = message.get("keyboard") {
        problems.extend(check_keyboard(keyboard));
    }
    problems
}

fn check_keyboard(keyboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if keyboard["Type"] != "keyboard" {
        problems.push("keyboard.Type must be \"keyboard\"".into());
    }
    let buttons = keyboard["Buttons"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if buttons.is_empty() || buttons.len() > 24 {
        problems.push("keyboard.Buttons must hold 1 to 24 buttons".into());
    }
    for (i, button) in buttons.iter().enumerate() {
        if button["ActionBody"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("Buttons[{i}].ActionBody is required"));
        }
        let action = button["ActionType"].as_str().unwrap_or("reply");
        if !ACTION_TYPES.contains(&action) {
            problems.push(format!("Buttons[{i}].ActionType {action:?} is unknown"));
        }
        if action == "open-url"
            && !button["ActionBody"]
                .as_str()
                .is_some_and(|url| url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push(format!("Buttons[{i}] opens something that is not a URL"));
        }
        if let Some(columns) = button.get("Columns")
            && !columns.as_u64().is_some_and(|c| (1..=6).contains(&c))
        {
            problems.push(format!("Buttons[{i}].Columns must be 1 to 6"));
        }
        if let Some(rows) = button.get("Rows")
            && !rows.as_u64().is_some_and(|r| (1..=2).contains(&r))
        {
            problems.push(format!("Buttons[{i}].Rows must be 1 or 2"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_spec_sample_request_passes_the_checks() {
        let samples: Value = serde_json::from_str(include_str!("../../specs/viber/callbacks.json"))
            .unwrap_or_default();
        assert_eq!(
            check_message(&samples["send_message_request"]),
            Vec::<String>::new()
        );
        let mut broken = samples["send_message_request"].clone();
        broken["sender"]["name"] = json!("x".repeat(29));
        broken["colour"] = json!("red");
        assert_eq!(check_message(&broken).len(), 2);
    }
}
