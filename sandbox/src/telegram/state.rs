//! What the fake Bot API remembers: its bots (webhook, pending updates, chats and their
//! messages, what each bot sent, flood buckets, injected failures), the files, and the
//! contract violations it saw. Also the JSON of the objects it hands out (`User`, `Chat`,
//! `Message`, `Update`, `File`), each checked against the contract as it is made.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::body::UploadedFile;
use super::limits::{FloodControl, RateLimits};
use super::schema::SCHEMA;
use super::{ApiError, Customer, SentButton, SentMessage, Violation, WebhookRegistration};

pub(crate) struct State {
    pub bots: HashMap<String, BotState>,
    pub files: HashMap<String, StoredFile>,
    pub violations: Vec<Violation>,
    pub too_many_requests: u64,
    next_file: u64,
}

pub(crate) struct StoredFile {
    pub unique_id: String,
    /// Relative to `/file/bot<token>/`.
    pub path: String,
    pub bytes: Vec<u8>,
}

pub(crate) struct BotState {
    pub id: i64,
    pub webhook: Option<WebhookRegistration>,
    /// `(unix time, message)` of the last failed webhook delivery, as getWebhookInfo shows it.
    pub last_webhook_error: Option<(u64, String)>,
    /// The kinds asked for by the last setWebhook or getUpdates that named them.
    pub allowed_updates: Option<Vec<String>>,
    /// Updates waiting for getUpdates, oldest first.
    pub pending: VecDeque<Value>,
    /// Every update ever made, by id, for redelivery.
    pub history: BTreeMap<i64, Value>,
    next_update_id: i64,
    pub chats: HashMap<i64, ChatState>,
    pub sent: Vec<SentMessage>,
    /// Callback queries not yet answered.
    pub open_callbacks: HashSet<String>,
    pub answered_callbacks: Vec<String>,
    next_callback: u64,
    /// Counts getUpdates calls: a waiting call that sees a newer one give up, as in the real
    /// API (two instances polling one bot).
    pub poll_generation: u64,
    /// getUpdates calls cut short by a newer one (two instances polling at once).
    pub poll_conflicts: u64,
    /// Injected failures, in order; `None` matches any method.
    pub failures: VecDeque<(Option<String>, ApiError)>,
    pub flood: FloodControl,
    /// Sends refused because the customer blocked the bot.
    pub blocked_refusals: u64,
}

pub(crate) struct ChatState {
    pub chat: Value,
    next_message_id: i32,
    pub blocked: bool,
    /// Every message of the chat, by id (customer's and bot's).
    pub messages: HashMap<i32, Value>,
}

impl State {
    pub fn new() -> State {
        State {
            bots: HashMap::new(),
            files: HashMap::new(),
            violations: Vec::new(),
            too_many_requests: 0,
            next_file: 1,
        }
    }

    pub fn violation(&mut self, method: &str, problem: impl Into<String>) {
        let problem = problem.into();
        tracing::warn!(method, %problem, "telegram sandbox: contract violation");
        self.violations.push(Violation {
            method: method.to_string(),
            problem,
        });
    }

    /// Keeps `bytes` as a new file under `folder` and returns its id.
    pub fn store_file(&mut self, folder: &str, extension: &str, bytes: Vec<u8>) -> String {
        let number = self.next_file;
        self.next_file += 1;
        let id = format!("SBX-file-{number}");
        self.files.insert(
            id.clone(),
            StoredFile {
                unique_id: format!("SBX-unique-{number}"),
                path: format!("{folder}/file_{number}.{extension}"),
                bytes,
            },
        );
        id
    }

    /// The `File` object of getFile.
    pub fn file_json(&self, file_id: &str) -> Option<Value> {
        let file = self.files.get(file_id)?;
        Some(json!({
            "file_id": file_id,
            "file_unique_id": file.unique_id,
            "file_size": file.bytes.len(),
            "file_path": file.path,
        }))
    }

    /// `file_id`, `file_unique_id` and `file_size` of a stored file, to merge into a media
    /// object.
    pub fn file_fields(&self, file_id: &str) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("file_id".into(), json!(file_id));
        if let Some(file) = self.files.get(file_id) {
            fields.insert("file_unique_id".into(), json!(file.unique_id));
            fields.insert("file_size".into(), json!(file.bytes.len()));
        }
        fields
    }

    /// A photo as Telegram describes one: a 90-pixel-wide thumbnail (for photos wider than
    /// that) and the full size. The sandbox does not resize, so every size holds the original
    /// bytes; the thumbnail only claims to be small.
    pub fn photo_sizes(&mut self, bytes: Vec<u8>) -> Value {
        let (width, height) = image_size(&bytes);
        let extension = if bytes.starts_with(b"\x89PNG") {
            "png"
        } else {
            "jpg"
        };
        let mut sizes = Vec::new();
        if width > 90 {
            let thumbnail_id = self.store_file("photos", extension, bytes.clone());
            let mut thumbnail = self.file_fields(&thumbnail_id);
            thumbnail.insert("width".into(), json!(90));
            thumbnail.insert("height".into(), json!((height * 90 / width).max(1)));
            sizes.push(Value::Object(thumbnail));
        }
        let full_id = self.store_file("photos", extension, bytes);
        let mut full = self.file_fields(&full_id);
        full.insert("width".into(), json!(width));
        full.insert("height".into(), json!(height));
        sizes.push(Value::Object(full));
        Value::Array(sizes)
    }

    /// Records a violation when the sandbox's own object does not follow the contract, so a
    /// test's "no violations" also vouches for what the sandbox sent.
    pub fn self_check(&mut self, type_name: &str, value: &Value) {
        if let Err(problem) = SCHEMA.check_value(type_name, value) {
            self.violation(&format!("sandbox {type_name}"), problem);
        }
    }
}

impl BotState {
    pub fn new(id: i64, limits: RateLimits) -> BotState {
        BotState {
            id,
            webhook: None,
            last_webhook_error: None,
            allowed_updates: None,
            pending: VecDeque::new(),
            history: BTreeMap::new(),
            // Telegram's ids start at some large number, not at 1.
            next_update_id: 483_000_001,
            chats: HashMap::new(),
            sent: Vec::new(),
            open_callbacks: HashSet::new(),
            answered_callbacks: Vec::new(),
            next_callback: 1,
            poll_generation: 0,
            poll_conflicts: 0,
            failures: VecDeque::new(),
            flood: FloodControl::new(limits),
            blocked_refusals: 0,
        }
    }

    pub fn user_json(&self) -> Value {
        json!({
            "id": self.id,
            "is_bot": true,
            "first_name": "Sandbox bot",
            "username": format!("sandbox_{}_bot", self.id),
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
        })
    }

    /// The private chat with `customer`, opened on first contact.
    pub fn chat_with(&mut self, chat_id: i64, customer: &Customer) -> &mut ChatState {
        self.chats.entry(chat_id).or_insert_with(|| {
            let mut chat =
                json!({"id": chat_id, "type": "private", "first_name": customer.first_name});
            if let Some(last) = &customer.last_name {
                chat["last_name"] = json!(last);
            }
            if let Some(username) = &customer.username {
                chat["username"] = json!(username);
            }
            ChatState {
                chat,
                next_message_id: 1,
                blocked: false,
                messages: HashMap::new(),
            }
        })
    }

    pub fn next_callback_id(&mut self) -> String {
        let id = format!("{}{:06}", self.id, self.next_callback);
        self.next_callback += 1;
        id
    }

    /// Records a new update and returns its id; `kind` is its field name (`message`…).
    pub fn new_update(&mut self, kind: &str, object: Value) -> (i64, Value) {
        let id = self.next_update_id;
        self.next_update_id += 1;
        let mut update = json!({"update_id": id});
        update[kind] = object;
        self.history.insert(id, update.clone());
        (id, update)
    }

    /// Whether the bot asked for updates of this kind (all but a few when it did not say).
    pub fn wants(&self, kind: &str) -> bool {
        match &self.allowed_updates {
            Some(kinds) if !kinds.is_empty() => kinds.iter().any(|k| k == kind),
            _ => !matches!(
                kind,
                "chat_member" | "message_reaction" | "message_reaction_count"
            ),
        }
    }

    /// The next injected failure for `method`, if any.
    pub fn take_failure(&mut self, method: &str) -> Option<ApiError> {
        let index = self
            .failures
            .iter()
            .position(|(only, _)| only.as_deref().is_none_or(|only| only == method))?;
        self.failures.remove(index).map(|(_, error)| error)
    }
}

impl ChatState {
    /// A new message in this chat with its content fields, kept for replies and button
    /// presses.
    pub fn add_message(&mut self, from: Value, content: serde_json::Map<String, Value>) -> Value {
        let message_id = self.next_message_id;
        self.next_message_id += 1;
        let mut message = json!({
            "message_id": message_id,
            "from": from,
            "chat": self.chat,
            "date": now(),
        });
        for (key, value) in content {
            message[key] = value;
        }
        self.messages.insert(message_id, message.clone());
        message
    }
}

/// A sent message as tests read it back.
pub(crate) fn sent_message(
    method: &str,
    message: &Value,
    reply_to: Option<i32>,
    files: Vec<UploadedFile>,
) -> SentMessage {
    let keyboard = message["reply_markup"]["inline_keyboard"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .into_iter()
                        .flatten()
                        .map(|button| SentButton {
                            text: button["text"].as_str().unwrap_or_default().to_string(),
                            callback_data: button["callback_data"].as_str().map(str::to_string),
                            url: button["url"].as_str().map(str::to_string),
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    SentMessage {
        chat_id: message["chat"]["id"].as_i64().unwrap_or_default(),
        message_id: message["message_id"]
            .as_i64()
            .and_then(|id| i32::try_from(id).ok())
            .unwrap_or_default(),
        method: method.to_string(),
        text: message["text"]
            .as_str()
            .or_else(|| message["caption"].as_str())
            .map(str::to_string),
        keyboard,
        reply_to,
        files,
        accepted_at: std::time::Instant::now(),
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// Width and height of a PNG or JPEG, from its header; `(0, 0)` for anything else.
fn image_size(bytes: &[u8]) -> (u32, u32) {
    let be16 = |at: usize| {
        bytes
            .get(at..at + 2)
            .map_or(0, |b| u32::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let be32 = |at: usize| {
        bytes
            .get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return (be32(16), be32(20));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // Walk the segments to the start-of-frame, which holds the size.
        let mut at = 2;
        while at + 9 < bytes.len() && bytes[at] == 0xFF {
            let marker = bytes[at + 1];
            if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                return (be16(at + 7), be16(at + 5));
            }
            at += 2 + be16(at + 2) as usize;
        }
    }
    (0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_jpeg_sizes() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(image_size(&png), (640, 480));
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 0, 200, 1, 44, 3, 0, 0,
        ];
        assert_eq!(image_size(&jpeg), (300, 200));
        assert_eq!(image_size(b"GIF89a"), (0, 0));
    }
}
