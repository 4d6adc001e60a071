//! Which module serves which provider, and where each provider's API lives. The base URLs are
//! the server's configuration (the real providers by default; the sandbox in the demo and the
//! tests), never a tenant's: a tenant choosing where our server sends its requests would be a
//! server-side request forgery.

use std::sync::Arc;

use omnihub_core::model::Provider;
use reqwest::Url;
use serde_json::Value;

use crate::provider::{ConfigError, ProviderChannel};
use crate::{email, max, telegram, viber, vk, whatsapp};

/// The API base URL of every provider reached over HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub telegram: Url,
    pub whatsapp: Url,
    pub vk: Url,
    pub viber: Url,
    pub max: Url,
    /// Zadarma API (click-to-call).
    pub zadarma: Url,
    /// Twilio REST API (click-to-call).
    pub twilio: Url,
    /// OK (Odnoklassniki) REST API (`/fb.do`).
    pub ok: Url,
    /// Meta Graph API for Facebook Pages and Instagram business accounts.
    pub graph: Url,
    /// X API v2.
    pub x: Url,
    /// YouTube Data API v3 (uploads go to `/upload/youtube/v3/…` on the same host).
    pub youtube: Url,
    /// The server's own applications registered with the social networks.
    pub apps: SocialApps,
    /// The social networks' OAuth authorization and token endpoints.
    pub oauth: crate::social::oauth::OAuthUrls,
    /// Whether a tenant's mailbox may name a loopback, private or link-local address as its
    /// IMAP or SMTP host. Off by default: otherwise a tenant could make the server connect to
    /// services on its own network.
    pub private_mail_hosts: bool,
    /// Whether a tenant's Asterisk (ARI or AMI) may be on a loopback, private or link-local
    /// address. Off by default, for the same reason as mailboxes.
    pub private_pbx_hosts: bool,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            telegram: real("https://api.telegram.org"),
            whatsapp: real("https://graph.facebook.com"),
            vk: real("https://api.vk.com"),
            viber: real("https://chatapi.viber.com"),
            max: real("https://platform-api2.max.ru"),
            zadarma: real("https://api.zadarma.com"),
            twilio: real("https://api.twilio.com"),
            ok: real("https://api.ok.ru"),
            graph: real("https://graph.facebook.com"),
            x: real("https://api.x.com"),
            youtube: real("https://youtube.googleapis.com"),
            apps: SocialApps::default(),
            oauth: Default::default(),
            private_mail_hosts: false,
            private_pbx_hosts: false,
        }
    }
}

/// The server's application on one social network: what its OAuth flow, its request
/// signatures (OK) and its webhook signatures (Meta, X) are keyed by. Registered once by
/// whoever runs omnihub, shared by every tenant's profiles on that network.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SocialApp {
    /// The application's (client's) id.
    pub client_id: String,
    /// The application's secret: OAuth client secret, Meta app secret, X consumer secret, OK
    /// secret key.
    pub client_secret: String,
    /// OK's public application key (sent with every REST call); empty elsewhere.
    pub public_key: String,
}

impl SocialApp {
    pub fn is_configured(&self) -> bool {
        !self.client_id.is_empty() && !self.client_secret.is_empty()
    }
}

impl std::fmt::Debug for SocialApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialApp")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &if self.client_secret.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// The server's applications, one per network (Facebook and Instagram share Meta's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocialApps {
    pub vk: SocialApp,
    pub ok: SocialApp,
    pub meta: SocialApp,
    pub x: SocialApp,
    pub google: SocialApp,
}

fn real(url: &str) -> Url {
    // A constant that parses; the test below proves it.
    Url::parse(url).unwrap_or_else(|_| unreachable!("invalid built-in endpoint {url}"))
}

/// The providers a messenger channel can be connected to through [`provider_channel`].
pub fn is_messenger(provider: Provider) -> bool {
    matches!(
        provider,
        Provider::Telegram | Provider::Whatsapp | Provider::Vk | Provider::Viber | Provider::Max
    )
}

/// Providers some of whose channels are read by polling.
pub const POLLED: [Provider; 4] = [
    Provider::Email,
    Provider::Telegram,
    Provider::Vk,
    Provider::Max,
];

/// Whether the channel is read by polling rather than by webhook: every mailbox (IMAP), and
/// the bots whose settings ask for long polling (`"updates": "long_poll"` for Telegram,
/// `"long_poll": true` for VK and MAX).
pub fn polls(provider: Provider, settings: &Value) -> bool {
    match provider {
        Provider::Email => true,
        Provider::Telegram => settings.get("updates").and_then(Value::as_str) == Some("long_poll"),
        Provider::Vk | Provider::Max => {
            settings.get("long_poll").and_then(Value::as_bool) == Some(true)
        }
        _ => false,
    }
}

/// The connected account of a channel, built from its stored credentials and settings.
pub fn provider_channel(
    provider: Provider,
    credentials: Option<&Value>,
    settings: &Value,
    endpoints: &Endpoints,
) -> Result<Arc<dyn ProviderChannel>, ConfigError> {
    Ok(match provider {
        Provider::Telegram => Arc::new(telegram::TelegramChannel::from_channel(
            credentials,
            settings,
            &endpoints.telegram,
        )?),
        Provider::Whatsapp => Arc::new(whatsapp::WhatsappChannel::from_channel(
            credentials,
            settings,
            &endpoints.whatsapp,
        )?),
        Provider::Viber => Arc::new(viber::ViberChannel::from_channel(
            credentials,
            settings,
            &endpoints.viber,
        )?),
        Provider::Email => {
            let mailbox = email::MailboxChannel::from_channel(credentials, settings)?;
            if endpoints.private_mail_hosts {
                Arc::new(mailbox)
            } else {
                refuse_private_hosts(settings)?;
                Arc::new(mailbox.refusing_private_addresses())
            }
        }
        Provider::Vk => Arc::new(vk::VkChannel::from_channel(
            credentials,
            settings,
            &endpoints.vk,
        )?),
        Provider::Max => Arc::new(max::MaxChannel::from_channel(
            credentials,
            settings,
            &endpoints.max,
        )?),
        other => {
            return Err(ConfigError(format!(
                "{} channels are not supported yet",
                other.as_str()
            )));
        }
    })
}

/// Refuses a mailbox whose IMAP or SMTP host is, as written, `localhost` or an address on the
/// server's own network, so the owner hears it when saving; names are resolved and vetted
/// again at each connection ([`MailboxChannel::refusing_private_addresses`]).
fn refuse_private_hosts(settings: &Value) -> Result<(), ConfigError> {
    for key in ["imap_host", "smtp_host"] {
        let Some(host) = settings.get(key).and_then(Value::as_str) else {
            continue;
        };
        if crate::net_guard::is_private_host(host) {
            return Err(ConfigError(format!(
                "settings.{key}: `{host}` is an address on the server's own network, which \
                 mailboxes may not use"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_always_poll_and_bots_when_asked() {
        let none = serde_json::json!({});
        assert!(polls(Provider::Email, &none));
        assert!(!polls(Provider::Telegram, &none));
        assert!(polls(
            Provider::Telegram,
            &serde_json::json!({"updates": "long_poll"})
        ));
        assert!(polls(Provider::Vk, &serde_json::json!({"long_poll": true})));
        assert!(!polls(
            Provider::Max,
            &serde_json::json!({"long_poll": "yes"})
        ));
        assert!(!polls(
            Provider::Whatsapp,
            &serde_json::json!({"long_poll": true})
        ));
        for provider in POLLED {
            assert!(is_messenger(provider) || provider == Provider::Email);
        }
    }

    #[test]
    fn mailboxes_on_the_servers_own_network_are_refused() {
        let endpoints = Endpoints::default();
        let credentials = serde_json::json!({"password": "p"});
        let mailbox = |host: &str| {
            serde_json::json!({
                "address": "shop@example.com", "imap_host": host, "smtp_host": "smtp.example.com",
            })
        };
        for host in [
            "127.0.0.1",
            "localhost",
            "10.1.2.3",
            "192.168.0.5",
            "169.254.169.254",
            "[::1]",
            "fd00::1",
            "0.0.0.0",
        ] {
            let refused = provider_channel(
                Provider::Email,
                Some(&credentials),
                &mailbox(host),
                &endpoints,
            );
            assert!(refused.is_err(), "{host} was accepted");
        }
        assert!(
            provider_channel(
                Provider::Email,
                Some(&credentials),
                &mailbox("imap.example.com"),
                &endpoints
            )
            .is_ok()
        );
        let allowed = Endpoints {
            private_mail_hosts: true,
            ..Endpoints::default()
        };
        assert!(
            provider_channel(
                Provider::Email,
                Some(&credentials),
                &mailbox("127.0.0.1"),
                &allowed
            )
            .is_ok()
        );
    }

    #[test]
    fn built_in_endpoints_parse() {
        let e = Endpoints::default();
        assert_eq!(e.vk.as_str(), "https://api.vk.com/");
        assert_eq!(e.max.host_str(), Some("platform-api2.max.ru"));
    }
}
