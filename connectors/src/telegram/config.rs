//! A Telegram channel's stored credentials and settings, checked once when the channel is built
//! so that a wrong value is reported to the client owner instead of failing every call.

use crate::provider::ConfigError;

/// Where the bot's updates come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateDelivery {
    /// Telegram POSTs each update to our webhook (set with `set_webhook`).
    Webhook,
    /// We fetch updates with `getUpdates`; no webhook may be set meanwhile.
    LongPoll,
}

/// The checked configuration of one bot.
pub(crate) struct TelegramConfig {
    pub token: BotToken,
    pub webhook_secret: Option<String>,
    pub delivery: UpdateDelivery,
}

/// A bot token (`<bot id>:<secret>`). It goes into every URL path, so it is checked to hold
/// nothing that could change the path, and it never prints.
#[derive(Clone)]
pub(crate) struct BotToken(String);

impl BotToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BotToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl TelegramConfig {
    pub fn parse(
        credentials: Option<&serde_json::Value>,
        settings: &serde_json::Value,
    ) -> Result<TelegramConfig, ConfigError> {
        let credentials =
            credentials.ok_or_else(|| ConfigError("credentials: bot_token is required".into()))?;
        if !credentials.is_object() {
            return Err(ConfigError("credentials must be a JSON object".into()));
        }
        let token = match credentials.get("bot_token") {
            Some(serde_json::Value::String(token)) => parse_token(token)?,
            Some(_) => return Err(ConfigError("credentials.bot_token must be a string".into())),
            None => return Err(ConfigError("credentials: bot_token is required".into())),
        };
        let webhook_secret = match credentials.get("webhook_secret") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(secret)) => Some(parse_secret(secret)?),
            Some(_) => {
                return Err(ConfigError(
                    "credentials.webhook_secret must be a string".into(),
                ));
            }
        };
        let delivery = match settings.get("updates") {
            None | Some(serde_json::Value::Null) => UpdateDelivery::Webhook,
            Some(serde_json::Value::String(mode)) if mode == "webhook" => UpdateDelivery::Webhook,
            Some(serde_json::Value::String(mode)) if mode == "long_poll" => {
                UpdateDelivery::LongPoll
            }
            Some(_) => {
                return Err(ConfigError(
                    "settings.updates must be \"webhook\" or \"long_poll\"".into(),
                ));
            }
        };
        Ok(TelegramConfig {
            token,
            webhook_secret,
            delivery,
        })
    }
}

/// `<digits>:<letters, digits, '_' or '-'>`, as BotFather issues them.
fn parse_token(token: &str) -> Result<BotToken, ConfigError> {
    let well_formed = token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret.bytes().all(is_token_byte)
    });
    if well_formed {
        Ok(BotToken(token.to_string()))
    } else {
        Err(ConfigError(
            "credentials.bot_token is not a Telegram bot token (expected <bot id>:<secret>, \
             as BotFather gives it)"
                .into(),
        ))
    }
}

/// Telegram's rule for `secret_token`: 1–256 characters from `A-Z a-z 0-9 _ -`.
fn parse_secret(secret: &str) -> Result<String, ConfigError> {
    if (1..=256).contains(&secret.len()) && secret.bytes().all(is_token_byte) {
        Ok(secret.to_string())
    } else {
        Err(ConfigError(
            "credentials.webhook_secret must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -"
                .into(),
        ))
    }
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn parse(credentials: serde_json::Value) -> Result<TelegramConfig, ConfigError> {
        TelegramConfig::parse(Some(&credentials), &json!({}))
    }

    #[test]
    fn a_token_and_secret_as_botfather_and_telegram_allow() {
        let config =
            parse(json!({"bot_token": "123456:AAE-x_y9", "webhook_secret": "s3cr_et-"})).unwrap();
        assert_eq!(config.token.as_str(), "123456:AAE-x_y9");
        assert_eq!(config.webhook_secret.as_deref(), Some("s3cr_et-"));
        assert_eq!(config.delivery, UpdateDelivery::Webhook);
        assert!(
            parse(json!({"bot_token": "1:a"}))
                .unwrap()
                .webhook_secret
                .is_none()
        );
    }

    #[test]
    fn malformed_values_are_refused_by_field_name_without_their_value() {
        let cases = [
            json!({}),
            json!({"bot_token": 42}),
            json!({"bot_token": "no-colon"}),
            json!({"bot_token": "abc:def"}),
            json!({"bot_token": "1:def/../../x"}),
            json!({"bot_token": "1:def?x=1"}),
            json!({"bot_token": "1:"}),
            json!({"bot_token": "1:a", "webhook_secret": ""}),
            json!({"bot_token": "1:a", "webhook_secret": "has space"}),
            json!({"bot_token": "1:a", "webhook_secret": "x".repeat(257)}),
            json!({"bot_token": "1:a", "webhook_secret": 7}),
        ];
        for credentials in cases {
            let error = parse(credentials.clone()).err().unwrap();
            assert!(error.0.contains("credentials"), "{credentials}: {error}");
            assert!(!error.0.contains("def"), "{error}");
        }
        assert!(TelegramConfig::parse(None, &json!({})).is_err());
        assert!(parse(json!("1:a")).is_err());
    }

    #[test]
    fn the_update_delivery_setting() {
        let credentials = json!({"bot_token": "1:a"});
        let delivery = |settings| {
            TelegramConfig::parse(Some(&credentials), &settings).map(|config| config.delivery)
        };
        assert_eq!(
            delivery(json!({"updates": "long_poll"})),
            Ok(UpdateDelivery::LongPoll)
        );
        assert_eq!(
            delivery(json!({"updates": "webhook"})),
            Ok(UpdateDelivery::Webhook)
        );
        assert!(delivery(json!({"updates": "carrier pigeon"})).is_err());
    }
}
