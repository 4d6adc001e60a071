//! Small helpers several providers' tests share.

use omnihub_connectors::Button;
use omnihub_connectors::provider::{InboundMessage, InboundUpdate};

/// The messages of `updates`, which must all be messages.
pub fn messages(updates: Vec<InboundUpdate>) -> Vec<InboundMessage> {
    updates
        .into_iter()
        .map(|update| match update {
            InboundUpdate::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        })
        .collect()
}

pub fn button(text: &str, payload: Option<&str>, url: Option<&str>) -> Button {
    Button {
        text: text.into(),
        payload: payload.map(str::to_string),
        url: url.map(str::to_string),
    }
}
