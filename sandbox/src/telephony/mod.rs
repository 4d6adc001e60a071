//! Fake telephony for click-to-call: Asterisk's ARI (HTTP + event WebSocket) and AMI (TCP),
//! Zadarma's callback API and Twilio's Calls API. Each checks omnihub's requests against the
//! provider's published contract (`sandbox/specs/telephony/`: ARI's Swagger, AMI's manager
//! documentation, Zadarma's and Twilio's OpenAPI), authenticates them the provider's way, and
//! plays the call back the way the real one reports it: ARI events on the application's
//! WebSocket, AMI events on the manager connection, Zadarma's signed `NOTIFY_OUT_*` posts,
//! Twilio's signed status callbacks. What the call comes to is scripted per fake
//! ([`Scripted`]); no call waits in real time, only the timestamps say how long it lasted.

use std::sync::Mutex;

pub mod ami;
pub mod ari;
pub mod twilio;
pub mod zadarma;

/// What the next call comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scripted {
    /// Both legs answer; the visitor talks this long.
    Answered { duration_secs: u32 },
    /// The visitor does not pick up.
    NoAnswer,
    /// The visitor's line is busy.
    Busy,
    /// The network refuses the visitor's leg (congestion).
    Failed,
}

/// The script of a fake, changed by tests between calls.
pub(crate) struct Script(Mutex<Scripted>);

impl Script {
    pub(crate) fn new() -> Self {
        Script(Mutex::new(Scripted::Answered { duration_secs: 42 }))
    }

    pub(crate) fn set(&self, next: Scripted) {
        if let Ok(mut s) = self.0.lock() {
            *s = next;
        }
    }

    pub(crate) fn get(&self) -> Scripted {
        self.0
            .lock()
            .map(|s| *s)
            .unwrap_or(Scripted::Answered { duration_secs: 42 })
    }
}

/// The spec files, compiled into the binary so tests never read outside the repository.
pub(crate) mod specs {
    pub const ARI_CHANNELS: &str = include_str!("../../specs/telephony/channels.json");
    pub const ARI_EVENTS: &str = include_str!("../../specs/telephony/events.json");
    pub const AMI_DOC: &str = include_str!("../../specs/telephony/ami_manager_doc.xml");
    pub const ZADARMA: &str = include_str!("../../specs/telephony/zadarma_callback.subset.json");
    pub const TWILIO: &str = include_str!("../../specs/telephony/twilio_calls.subset.json");
}

/// The parameters an AMI action documents in `manager_doc.xml`, each with whether it is
/// required; `ActionID` is included in every action by reference.
pub fn ami_action_parameters(action: &str) -> Vec<(String, bool)> {
    let doc = specs::AMI_DOC;
    let start_tag = format!("<manager name=\"{action}\"");
    let Some(start) = doc.find(&start_tag) else {
        return Vec::new();
    };
    let end = doc[start..]
        .find("</manager>")
        .map_or(doc.len(), |e| start + e);
    let block = &doc[start..end];
    let mut out = vec![("ActionID".to_string(), false)];
    let mut rest = block;
    while let Some(at) = rest.find("<parameter name=\"") {
        rest = &rest[at + "<parameter name=\"".len()..];
        let Some(close) = rest.find('"') else { break };
        let name = rest[..close].to_string();
        let tag_end = rest.find('>').unwrap_or(rest.len());
        let required = rest[..tag_end].contains("required=\"true\"");
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, required));
        }
    }
    out
}

/// The query parameters of ARI's `POST /channels` (name, required, Swagger data type).
pub fn ari_originate_parameters() -> Vec<(String, bool, String)> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(specs::ARI_CHANNELS) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for api in doc["apis"].as_array().into_iter().flatten() {
        if api["path"] != "/channels" {
            continue;
        }
        for op in api["operations"].as_array().into_iter().flatten() {
            if op["httpMethod"] != "POST" {
                continue;
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                out.push((
                    p["name"].as_str().unwrap_or_default().to_string(),
                    p["required"].as_bool().unwrap_or(false),
                    p["dataType"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    out
}

/// The properties ARI's `events.json` requires of a model, its own and its parents'
/// (`Event` → `Message`), for checking the events the fake plays.
pub fn ari_event_required(model: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(specs::ARI_EVENTS) else {
        return Vec::new();
    };
    let models = &doc["models"];
    let mut out = Vec::new();
    let mut chain = vec![model.to_string()];
    // Parents are the models that list this one among their subTypes.
    let mut current = model.to_string();
    for _ in 0..4 {
        let parent = models.as_object().and_then(|m| {
            m.iter()
                .find(|(_, v)| {
                    v["subTypes"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|t| t == current.as_str()))
                })
                .map(|(k, _)| k.clone())
        });
        match parent {
            Some(p) => {
                chain.push(p.clone());
                current = p;
            }
            None => break,
        }
    }
    for name in chain {
        for (prop, spec) in models[&name]["properties"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if spec["required"].as_bool() == Some(true) {
                out.push(prop.clone());
            }
        }
    }
    out
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_specs_are_read() {
        let originate = ami_action_parameters("Originate");
        assert!(originate.contains(&("Channel".to_string(), true)));
        assert!(originate.iter().any(|(n, _)| n == "Async"));
        assert!(ami_action_parameters("Login").contains(&("Username".to_string(), true)));
        let ari = ari_originate_parameters();
        assert!(ari.contains(&("endpoint".to_string(), true, "string".to_string())));
        let destroyed = ari_event_required("ChannelDestroyed");
        for field in [
            "cause",
            "cause_txt",
            "channel",
            "type",
            "application",
            "timestamp",
        ] {
            assert!(destroyed.iter().any(|f| f == field), "{field}");
        }
    }
}
