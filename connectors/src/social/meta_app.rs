//! The Meta application's own webhook callback. Meta delivers the events of every Page and
//! Instagram account that subscribed the application to the one callback URL set in the app's
//! dashboard (one per object: `page`, `instagram`), as
//! `{"object", "entry": [{"id": <Page or Instagram account id>, "time", "changes": [...]}]}`.
//!
//! [`app_webhook`] checks such a request once, with what belongs to the application rather
//! than to a profile: the handshake's `hub.verify_token` set in the dashboard, and
//! `X-Hub-Signature-256` over the raw body keyed by the app secret (every profile on Meta is
//! connected through the server's one application, so one key checks every entry). It then
//! splits `entry[]` by account id and maps each account's entries to events exactly as that
//! network's connector does for its own profile's webhook; which profiles an account id
//! stands for is the caller's to find.

use serde_json::Value;

use super::graph::{self, id_of};
use super::{Network, SocialEvent, facebook, instagram};
use crate::provider::{WebhookError, WebhookRequest};

/// What one request to the application's callback carried.
#[derive(Clone, Debug, PartialEq)]
pub enum AppDelivery {
    /// The subscription handshake: answer `hub.challenge` with this text.
    Handshake(String),
    /// A verified delivery: the events of each account it names, in the order the accounts
    /// first appear (an account named by several entries has their events together).
    Accounts(Vec<AccountEvents>),
}

/// The events of one Page or Instagram account in a delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountEvents {
    /// The Page's or Instagram account's id (`entry[].id`).
    pub account: String,
    pub events: Vec<SocialEvent>,
}

/// The webhook object Meta names the network's deliveries with; `None` for networks that are
/// not Meta's.
pub fn object_of(network: Network) -> Option<&'static str> {
    match network {
        Network::Facebook => Some("page"),
        Network::Instagram => Some("instagram"),
        _ => None,
    }
}

/// Checks a request to the application's callback for `network` (Facebook Pages or Instagram
/// accounts) and reads it: a GET is the handshake, answered only with `verify_token`; a POST
/// must be signed with `app_secret` and be a body of the network's object. Entries without an
/// id are skipped.
pub fn app_webhook(
    network: Network,
    request: &WebhookRequest<'_>,
    verify_token: &str,
    app_secret: &str,
) -> Result<AppDelivery, WebhookError> {
    let object = object_of(network).ok_or(WebhookError::Unauthorized)?;
    if let Some(handshake) = graph::verify(request, Some(verify_token), app_secret)? {
        return handshake
            .events
            .into_iter()
            .find_map(|event| match event {
                SocialEvent::Handshake { body, .. } => Some(AppDelivery::Handshake(body)),
                _ => None,
            })
            .ok_or(WebhookError::Unauthorized);
    }
    let body: Value = serde_json::from_slice(request.body)
        .map_err(|err| WebhookError::Malformed(format!("not JSON: {err}")))?;
    if body.get("object").and_then(Value::as_str) != Some(object) {
        return Err(WebhookError::Malformed(format!(
            "not an `{object}` webhook body"
        )));
    }
    let mut accounts: Vec<AccountEvents> = Vec::new();
    let entries = body.get("entry").and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let Some(account) = id_of(entry.get("id")) else {
            continue;
        };
        let events = match network {
            Network::Facebook => facebook::entry_events(entry, &account)?,
            _ => instagram::entry_events(entry, &account)?,
        };
        match accounts.iter_mut().find(|a| a.account == account) {
            Some(known) => known.events.extend(events),
            None => accounts.push(AccountEvents { account, events }),
        }
    }
    Ok(AppDelivery::Accounts(accounts))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::signing::hmac_sha256_hex;

    fn signed(body: &Value, key: &str) -> (Vec<u8>, Vec<(String, String)>) {
        let bytes = serde_json::to_vec(body).unwrap();
        let signature = format!("sha256={}", hmac_sha256_hex(key.as_bytes(), &bytes));
        (bytes, vec![("X-Hub-Signature-256".into(), signature)])
    }

    fn feed_comment(id: &str) -> Value {
        json!({"field": "feed", "value": {"item": "comment", "verb": "add",
            "post_id": "1001_1", "comment_id": id, "message": "hi",
            "from": {"id": "77", "name": "Jane"}}})
    }

    #[test]
    fn a_signed_delivery_is_split_by_account() {
        let body = json!({"object": "page", "entry": [
            {"id": "1001", "time": 1, "changes": [feed_comment("1_1")]},
            {"id": "2002", "time": 1, "changes": [feed_comment("2_1")]},
            {"id": "1001", "time": 2, "changes": [feed_comment("1_2")]},
            {"time": 3, "changes": [feed_comment("3_1")]}]});
        let (bytes, headers) = signed(&body, "shh");
        let request = WebhookRequest::new("POST", "", headers, &bytes);
        let AppDelivery::Accounts(accounts) =
            app_webhook(Network::Facebook, &request, "vt", "shh").unwrap()
        else {
            panic!("not a delivery");
        };
        let ids: Vec<(&str, Vec<&str>)> = accounts
            .iter()
            .map(|a| {
                let comments = a.events.iter().map(|e| match e {
                    SocialEvent::Comment(c) => c.id.as_str(),
                    _ => "",
                });
                (a.account.as_str(), comments.collect())
            })
            .collect();
        assert_eq!(ids, [("1001", vec!["1_1", "1_2"]), ("2002", vec!["2_1"])]);
    }

    #[test]
    fn forged_or_foreign_deliveries_are_refused() {
        let body = json!({"object": "page", "entry": [{"id": "1001", "changes": []}]});
        let (bytes, headers) = signed(&body, "not-the-secret");
        let forged = WebhookRequest::new("POST", "", headers, &bytes);
        assert_eq!(
            app_webhook(Network::Facebook, &forged, "vt", "shh"),
            Err(WebhookError::Unauthorized)
        );
        let (bytes, headers) = signed(&body, "shh");
        let page = WebhookRequest::new("POST", "", headers, &bytes);
        assert!(matches!(
            app_webhook(Network::Instagram, &page, "vt", "shh"),
            Err(WebhookError::Malformed(_))
        ));
        assert_eq!(
            app_webhook(Network::Vk, &page, "vt", "shh"),
            Err(WebhookError::Unauthorized)
        );
    }

    #[test]
    fn the_handshake_needs_the_applications_verify_token() {
        let ask = |token: &str| {
            let query = format!("hub.mode=subscribe&hub.verify_token={token}&hub.challenge=42");
            app_webhook(
                Network::Instagram,
                &WebhookRequest::new("GET", &query, Vec::new(), b""),
                "vt",
                "shh",
            )
        };
        assert_eq!(ask("vt"), Ok(AppDelivery::Handshake("42".into())));
        assert_eq!(ask("no"), Err(WebhookError::Unauthorized));
        let unset = app_webhook(
            Network::Instagram,
            &WebhookRequest::new(
                "GET",
                "hub.mode=subscribe&hub.verify_token=&hub.challenge=42",
                Vec::new(),
                b"",
            ),
            "",
            "shh",
        );
        assert_eq!(unset, Err(WebhookError::Unauthorized));
    }
}
