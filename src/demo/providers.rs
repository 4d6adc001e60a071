//! The demo's messengers: the sandbox's fake of each provider runs in this process, the seeded
//! client has one channel connected to each (its webhook registered the provider's way, as
//! connecting a real account does), and customers write in Russian and English at a gentle
//! pace, so the inbox is alive within seconds of the start.
//!
//! The fakes stand where the real providers would; omnihub talks to them through the same
//! connectors and webhooks as in production (`[providers]` points at them).
//!
//! Telephony too: a fake Asterisk (ARI) answers the client's "call me back" requests, so the
//! widget offers the call-back and each attempt's outcome shows in the conversation. The fake
//! PBX listens on 127.0.0.1, which the demo allows (`allow_private_pbx_hosts`).
//!
//! And e-mail: the client's sales mailbox lives on the sandbox's fake IMAP server, read by the
//! mailbox connector in IDLE, and its replies go out through the capturing SMTP sandbox. Both
//! listen on 127.0.0.1, which the demo allows (`allow_private_mail_hosts`). Customers' letters
//! are delivered straight into the mailbox, as a mail server's local delivery does, some of
//! them follow-ups in the same thread (`In-Reply-To`, `References`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{FixedOffset, Utc};
use omnihub_connectors::email::cursor_from_first_message;
use omnihub_connectors::registry::{self, Endpoints};
use omnihub_core::ClientId;
use omnihub_core::model::{Channel, ChannelKind, Provider};
use omnihub_sandbox::graph::{GraphConfig, GraphSandbox};
use omnihub_sandbox::imap::letter::Letter;
use omnihub_sandbox::imap::{ImapSandbox, MailStore};
use omnihub_sandbox::max::{MaxConfig, MaxSandbox};
use omnihub_sandbox::ok::{OkConfig, OkSandbox};
use omnihub_sandbox::smtp::SmtpSandbox;
use omnihub_sandbox::telegram::{Customer as TelegramCustomer, FakeBot, TelegramSandbox};
use omnihub_sandbox::telephony::ari::{AriConfig, AriSandbox};
use omnihub_sandbox::viber::{ViberConfig, ViberCustomer, ViberCustomerMessage, ViberSandbox};
use omnihub_sandbox::vk::{VkConfig, VkSandbox};
use omnihub_sandbox::whatsapp::{
    Customer as WhatsappCustomer, CustomerMessage, WhatsappConfig, WhatsappSandbox,
};
use omnihub_sandbox::x::{XConfig, XSandbox};
use omnihub_sandbox::youtube::{YoutubeConfig, YoutubeSandbox};
use omnihub_store::{ChannelPatch, DynStore, NewChannel};
use rand::Rng as _;
use serde_json::{Value, json};

use crate::config::{ProvidersConfig, Secret, SocialConfig};

const TELEGRAM_TOKEN: &str = "7000000001:AAH-omnihub_demo_bot";
/// The secrets omnihub gives providers that send one back with every webhook.
const TELEGRAM_SECRET: &str = "demo-telegram-secret";
const VK_SECRET: &str = "demo-vk-secret";
const MAX_SECRET: &str = "demo-max-secret";
/// The verify token set beside the Meta application's callback (in Meta's dashboard).
pub(super) const META_VERIFY_TOKEN: &str = "demo-meta-verify-token";

/// The demo's mailbox: its address is also its IMAP and SMTP login.
const MAILBOX_ADDRESS: &str = "sales@romashka.test";
const MAILBOX_PASSWORD: &str = "demo-mailbox-password";
const MAILBOX_FOLDER: &str = "INBOX";

/// The demo's messenger channels and its mailbox (one per fake), written to in turn.
const CHANNELS: usize = 6;
/// The first round of customers, one per channel, this far apart; then one every few seconds.
const FIRST_ROUND_GAP: Duration = Duration::from_millis(300);
const PACE_SECS: std::ops::RangeInclusive<u64> = 3..=8;

/// The running fakes; dropping it stops them.
pub struct DemoProviders {
    telegram: TelegramSandbox,
    bot: FakeBot,
    whatsapp: WhatsappSandbox,
    vk: VkSandbox,
    viber: ViberSandbox,
    max: MaxSandbox,
    pbx: AriSandbox,
    /// The OK group of the demo's social profiles.
    ok: OkSandbox,
    /// The Facebook Page and its Instagram business account (Meta's Graph API).
    graph: GraphSandbox,
    /// The X account.
    x: XSandbox,
    /// The YouTube channel.
    youtube: YoutubeSandbox,
    /// The sales mailbox (IMAP) and the mail server that takes its replies (SMTP).
    mail: ImapSandbox,
    smtp: SmtpSandbox,
}

impl DemoProviders {
    pub async fn start() -> anyhow::Result<DemoProviders> {
        let telegram = TelegramSandbox::start().await.context("telegram sandbox")?;
        let bot = telegram.add_bot(TELEGRAM_TOKEN);
        let mail_store = MailStore::new();
        mail_store.add_account(MAILBOX_ADDRESS, MAILBOX_PASSWORD);
        Ok(DemoProviders {
            telegram,
            bot,
            whatsapp: WhatsappSandbox::start(WhatsappConfig::default())
                .await
                .context("whatsapp sandbox")?,
            vk: VkSandbox::start(VkConfig::default())
                .await
                .context("vk sandbox")?,
            viber: ViberSandbox::start(ViberConfig::default())
                .await
                .context("viber sandbox")?,
            max: MaxSandbox::start(MaxConfig::default())
                .await
                .context("max sandbox")?,
            pbx: AriSandbox::start(AriConfig::default())
                .await
                .context("asterisk sandbox")?,
            ok: OkSandbox::start(OkConfig::default())
                .await
                .context("ok sandbox")?,
            graph: GraphSandbox::start(GraphConfig::default())
                .await
                .context("graph sandbox")?,
            x: XSandbox::start(XConfig::default())
                .await
                .context("x sandbox")?,
            youtube: YoutubeSandbox::start(YoutubeConfig::default())
                .await
                .context("youtube sandbox")?,
            mail: ImapSandbox::start(mail_store)
                .await
                .context("imap sandbox")?,
            smtp: SmtpSandbox::start().await.context("smtp sandbox")?,
        })
    }

    /// `[providers]` pointing at the fakes.
    pub fn config(&self) -> ProvidersConfig {
        ProvidersConfig {
            telegram_api: self.telegram.base_url().to_string(),
            whatsapp_api: self.whatsapp.base_url(),
            vk_api: self.vk.base_url(),
            vk_oauth_authorize: self.vk.oauth_authorize_url(),
            vk_oauth_token: self.vk.oauth_token_url(),
            ok_api: self.ok.base_url(),
            ok_oauth_authorize: self.ok.authorize_url(),
            ok_oauth_token: self.ok.token_url(),
            viber_api: self.viber.base_url(),
            max_api: self.max.base_url(),
            graph_api: self.graph.base_url(),
            meta_oauth_authorize: self.graph.authorize_url(),
            meta_oauth_token: self.graph.token_url(),
            x_api: self.x.base_url(),
            x_oauth_authorize: self.x.authorize_url(),
            x_oauth_token: self.x.token_url(),
            youtube_api: self.youtube.base_url(),
            google_oauth_authorize: self.youtube.authorize_url(),
            google_oauth_token: self.youtube.token_url(),
            // The demo's mail servers are the local fakes.
            allow_private_mail_hosts: true,
            // The demo's PBX is the local fake.
            allow_private_pbx_hosts: true,
            ..ProvidersConfig::default()
        }
    }

    /// The VK fake (the messages channel's community is also the demo's wall).
    pub fn vk_sandbox(&self) -> &VkSandbox {
        &self.vk
    }

    /// The OK fake: the demo's OK group.
    pub fn ok_sandbox(&self) -> &OkSandbox {
        &self.ok
    }

    /// The Graph fake: the demo's Facebook Page and Instagram account.
    pub fn graph_sandbox(&self) -> &GraphSandbox {
        &self.graph
    }

    /// The X fake: the demo's X account.
    pub fn x_sandbox(&self) -> &XSandbox {
        &self.x
    }

    /// The YouTube fake: the demo's channel.
    pub fn youtube_sandbox(&self) -> &YoutubeSandbox {
        &self.youtube
    }

    /// `[social]`: the server's applications registered with the fakes, so "Connect with …"
    /// goes through each fake's authorization page.
    pub fn social_config(&self) -> SocialConfig {
        let ok = self.ok.config();
        SocialConfig {
            vk_client_id: self.vk.config().client_id.clone(),
            ok_client_id: ok.application_id.clone(),
            ok_client_secret: Secret::new(ok.secret_key.clone()),
            ok_public_key: ok.application_key.clone(),
            meta_app_id: self.graph.config().app_id.clone(),
            meta_app_secret: Secret::new(self.graph.config().app_secret.clone()),
            meta_verify_token: Secret::new(META_VERIFY_TOKEN),
            x_client_id: self.x.config().client_id.clone(),
            x_client_secret: Secret::new(self.x.config().client_secret.clone()),
            google_client_id: self.youtube.config().client_id.clone(),
            google_client_secret: Secret::new(self.youtube.config().client_secret.clone()),
            // New comments on OK and YouTube (which have no comment webhooks) show within
            // seconds.
            comments_poll_secs: 10,
            ..SocialConfig::default()
        }
    }

    /// Each provider's channel: name, settings and credentials matching its fake.
    fn channels(&self) -> Vec<(Provider, &'static str, Value, Value)> {
        let vk = self.vk.config();
        vec![
            (
                Provider::Telegram,
                "Telegram-бот",
                json!({}),
                json!({ "bot_token": TELEGRAM_TOKEN, "webhook_secret": TELEGRAM_SECRET }),
            ),
            (
                Provider::Whatsapp,
                "WhatsApp",
                json!({}),
                self.whatsapp.credentials(),
            ),
            (
                Provider::Vk,
                "Сообщество VK",
                json!({}),
                json!({
                    "access_token": vk.access_token,
                    "group_id": vk.group_id,
                    "confirmation_code": vk.confirmation_code,
                    "secret": VK_SECRET,
                }),
            ),
            (
                Provider::Viber,
                "Viber",
                json!({ "sender_name": "Ромашка" }),
                json!({ "auth_token": ViberConfig::default().auth_token }),
            ),
            (
                Provider::Max,
                "MAX",
                json!({}),
                json!({ "token": MaxConfig::default().token, "webhook_secret": MAX_SECRET }),
            ),
        ]
    }

    /// The telephony channel's settings: the fake PBX's address (new every start), the
    /// operator's extension it rings first, and Russian numbers written without `+`.
    fn pbx_settings(&self) -> Value {
        json!({
            "ari_url": self.pbx.base_url(),
            "first": { "extension": "100" },
            "default_region": "RU",
        })
    }

    /// Makes sure the client has a telephony channel on the fake PBX (created once; its
    /// address is brought up to date every start).
    async fn connect_pbx(&self, store: &DynStore, client: ClientId) -> anyhow::Result<()> {
        let existing = store.list_channels(client).await?;
        match existing
            .iter()
            .find(|c| c.provider == Provider::AsteriskAri)
        {
            Some(c) => {
                store
                    .update_channel(
                        client,
                        c.id,
                        &ChannelPatch {
                            name: None,
                            settings: Some(self.pbx_settings()),
                            credentials: None,
                        },
                    )
                    .await?;
            }
            None => {
                let ari = AriConfig::default();
                store
                    .create_channel(&NewChannel {
                        client_id: client,
                        kind: ChannelKind::Messaging,
                        provider: Provider::AsteriskAri,
                        name: "Телефония (Asterisk)".into(),
                        settings: self.pbx_settings(),
                        credentials: Some(
                            json!({ "username": ari.username, "password": ari.password }),
                        ),
                    })
                    .await?;
            }
        }
        Ok(())
    }

    /// The mailbox channel's settings: the fake servers' addresses (new every start), in plain
    /// text, which the connector allows on loopback only.
    fn mailbox_settings(&self) -> Value {
        json!({
            "address": MAILBOX_ADDRESS,
            "display_name": "Ромашка, отдел продаж",
            "imap_host": "127.0.0.1",
            "imap_port": self.mail.addr().port(),
            "imap_security": "plain",
            "smtp_host": "127.0.0.1",
            "smtp_port": self.smtp.addr().port(),
            "smtp_security": "plain",
            "folder": MAILBOX_FOLDER,
        })
    }

    /// Makes sure the client has the sales mailbox (created once; its servers' addresses are
    /// brought up to date every start). The fake's mailbox is new at every start, so the
    /// channel reads it from its first message: a letter delivered before the first poll is
    /// not skipped. Called before the server starts, so its pollers find the mailbox at once.
    pub async fn connect_mailbox(&self, store: &DynStore, client: ClientId) -> anyhow::Result<()> {
        let credentials = json!({ "password": MAILBOX_PASSWORD });
        let existing = store.list_channels(client).await?;
        let id = match existing
            .iter()
            .find(|c| c.provider == Provider::Email && c.kind == ChannelKind::Messaging)
        {
            Some(c) => {
                store
                    .update_channel(
                        client,
                        c.id,
                        &ChannelPatch {
                            name: None,
                            settings: Some(self.mailbox_settings()),
                            credentials: Some(credentials),
                        },
                    )
                    .await?;
                c.id
            }
            None => {
                store
                    .create_channel(&NewChannel {
                        client_id: client,
                        kind: ChannelKind::Messaging,
                        provider: Provider::Email,
                        name: "Почта отдела продаж".into(),
                        settings: self.mailbox_settings(),
                        credentials: Some(credentials),
                    })
                    .await?
                    .id
            }
        };
        let uid_validity = self
            .mail
            .store()
            .uid_validity_of(MAILBOX_ADDRESS, MAILBOX_FOLDER)?;
        store
            .set_poll_cursor(client, id, &cursor_from_first_message(uid_validity))
            .await?;
        Ok(())
    }

    /// Makes sure the client has a channel per provider (created once, kept across restarts)
    /// and registers each one's webhook with its fake, whose address changes every start.
    pub async fn connect(
        &self,
        store: &DynStore,
        client: ClientId,
        public_url: &str,
        endpoints: &Endpoints,
    ) -> anyhow::Result<()> {
        self.connect_pbx(store, client)
            .await
            .context("connecting the demo's telephony")?;
        let existing = store.list_channels(client).await?;
        for (provider, name, settings, credentials) in self.channels() {
            let channel = match existing
                .iter()
                .find(|c| c.provider == provider && c.kind == ChannelKind::Messaging)
            {
                Some(c) => c.clone(),
                None => {
                    store
                        .create_channel(&NewChannel {
                            client_id: client,
                            kind: ChannelKind::Messaging,
                            provider,
                            name: name.to_string(),
                            settings: settings.clone(),
                            credentials: Some(credentials.clone()),
                        })
                        .await?
                }
            };
            self.register_webhook(&channel, &credentials, public_url, endpoints)
                .await
                .with_context(|| format!("connecting the demo's {} channel", provider.as_str()))?;
        }
        Ok(())
    }

    async fn register_webhook(
        &self,
        channel: &Channel,
        credentials: &Value,
        public_url: &str,
        endpoints: &Endpoints,
    ) -> anyhow::Result<()> {
        let url = format!(
            "{}/hooks/{}/{}",
            public_url.trim_end_matches('/'),
            channel.provider.as_str(),
            channel.id
        );
        if channel.provider == Provider::Whatsapp {
            // The Cloud API's webhook is set in Meta's dashboard, which verifies it first.
            return self
                .whatsapp
                .configure_callback(&url)
                .await
                .map_err(anyhow::Error::msg);
        }
        let connector = registry::provider_channel(
            channel.provider,
            Some(credentials),
            &channel.settings,
            endpoints,
        )?;
        connector.set_webhook(Some(&url)).await?;
        Ok(())
    }

    /// Customers writing now and then, on a random channel, until the process ends.
    pub fn start_traffic(self: Arc<Self>) {
        tokio::spawn(async move {
            // One customer on every channel first, so each shows up within seconds.
            for n in 0..CHANNELS {
                self.one_message(n).await;
                tokio::time::sleep(FIRST_ROUND_GAP).await;
            }
            let mut n = CHANNELS;
            loop {
                let pause = rand::rng().random_range(PACE_SECS);
                tokio::time::sleep(Duration::from_secs(pause)).await;
                self.one_message(n).await;
                n += 1;
            }
        });
    }

    async fn one_message(&self, n: usize) {
        let (name, text) = LINES[n % LINES.len()];
        let who = (n % 3) as i64;
        let outcome = match n % CHANNELS {
            // The first customer sends a photo, so the inbox shows a picture from the start.
            0 if n == 0 => self
                .bot
                .customer_sends_photo(
                    70_001,
                    &TelegramCustomer::new(70_001, name),
                    omnihub_sandbox::SAMPLE_PHOTO,
                    Some(text),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            0 => self
                .bot
                .customer_says(
                    70_001 + who,
                    &TelegramCustomer::new(70_001 + who, name),
                    text,
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            1 => {
                let customer = WhatsappCustomer::new(format!("7999000{:04}", who), name);
                let delivery = self
                    .whatsapp
                    .customer_sends(&customer, CustomerMessage::Text(text.into()))
                    .await;
                delivered(delivery.status, &delivery.answer)
            }
            2 => {
                let delivery = self.vk.customer_writes(80_001 + who, text).await;
                answered(delivery.answers.iter().map(|a| a.status))
            }
            3 => {
                let customer = ViberCustomer::new(format!("viber-user-{who}"), name);
                let delivery = self
                    .viber
                    .customer_sends(&customer, ViberCustomerMessage::Text(text.into()))
                    .await;
                delivered(delivery.status, &delivery.answer)
            }
            4 => {
                let delivery = self.max.customer_writes(90_001 + who, text).await;
                answered(delivery.answers.iter().map(|a| a.status))
            }
            _ => self.customer_mails(n / CHANNELS),
        };
        if let Err(err) = outcome {
            tracing::warn!(error = %err, "a demo customer's message was not delivered");
        }
    }
}

impl DemoProviders {
    /// The `visit`-th letter of the e-mail customers: even visits open a thread of
    /// [`MAIL_THREADS`] in turn, odd ones follow up in the thread just opened.
    fn customer_mails(&self, visit: usize) -> Result<(), String> {
        let thread = &MAIL_THREADS[(visit / 2) % MAIL_THREADS.len()];
        // Unique per start (the mailbox's UIDVALIDITY is), so a restart never repeats an id.
        let run = self
            .mail
            .store()
            .uid_validity_of(MAILBOX_ADDRESS, MAILBOX_FOLDER)
            .map_err(|e| e.to_string())?;
        let domain = thread.address.rsplit_once('@').map_or("", |(_, d)| d);
        let id = |visit: usize| format!("demo.{run}.{visit}@{domain}");
        let (subject, text, parent) = if visit.is_multiple_of(2) {
            (thread.subject.to_owned(), thread.first, None)
        } else {
            (
                format!("Re: {}", thread.subject),
                thread.follow_up,
                Some(id(visit - 1)),
            )
        };
        let letter = Letter {
            from_name: thread.name.into(),
            from: thread.address.into(),
            to: MAILBOX_ADDRESS.into(),
            subject,
            text: text.into(),
            message_id: id(visit),
            references: parent.iter().cloned().collect(),
            in_reply_to: parent,
            date: moscow_now(),
        };
        self.deliver(&letter)
    }

    fn deliver(&self, letter: &Letter) -> Result<(), String> {
        self.mail
            .store()
            .deliver(MAILBOX_ADDRESS, letter.to_bytes())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// A letter from the sandbox page's customer: an answer to the business's latest reply to
    /// them, else a follow-up to their own latest letter, else a new thread titled with the
    /// start of the text.
    fn page_letter(&self, customer: &SandboxCustomer, text: &str) -> Letter {
        let replies: Vec<Vec<u8>> = self
            .smtp
            .messages()
            .into_iter()
            .filter(|m| {
                m.to.iter()
                    .any(|to| to.eq_ignore_ascii_case(&customer.email))
            })
            .map(|m| m.data.into_bytes())
            .collect();
        let own: Vec<Vec<u8>> = self
            .mail
            .store()
            .messages(MAILBOX_ADDRESS, MAILBOX_FOLDER)
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.raw.to_vec())
            .filter(|raw| sender_of(raw).is_some_and(|from| from == customer.email))
            .collect();
        let parent = replies
            .last()
            .or(own.last())
            .and_then(|raw| MailParent::read(raw));
        let (subject, in_reply_to, references) = match parent {
            Some(parent) => {
                let mut references = parent.references;
                if !references.contains(&parent.message_id) {
                    references.push(parent.message_id.clone());
                }
                (
                    format!("Re: {}", strip_re(&parent.subject)),
                    Some(parent.message_id),
                    references,
                )
            }
            None => {
                let first_line = text.lines().next().unwrap_or_default();
                let subject: String = first_line.chars().take(60).collect();
                (subject, None, Vec::new())
            }
        };
        let domain = customer.email.rsplit_once('@').map_or("", |(_, d)| d);
        Letter {
            from_name: customer.name.clone(),
            from: customer.email.clone(),
            to: MAILBOX_ADDRESS.into(),
            subject,
            text: text.into(),
            message_id: format!("sandbox.{}@{domain}", uuid::Uuid::new_v4().simple()),
            in_reply_to,
            references,
            date: moscow_now(),
        }
    }
}

/// What a letter answering a message needs of it.
struct MailParent {
    message_id: String,
    /// Its `References`, else its `In-Reply-To`.
    references: Vec<String>,
    subject: String,
}

impl MailParent {
    fn read(raw: &[u8]) -> Option<MailParent> {
        let message = mail_parser::MessageParser::default().parse(raw)?;
        let ids = |value: &mail_parser::HeaderValue<'_>| -> Vec<String> {
            value
                .as_text_list()
                .map(|ids| ids.iter().map(|id| id.to_string()).collect())
                .unwrap_or_default()
        };
        let mut references = ids(message.references());
        if references.is_empty() {
            references = ids(message.in_reply_to());
        }
        Some(MailParent {
            message_id: message.message_id()?.to_owned(),
            references,
            subject: message.subject().unwrap_or_default().to_owned(),
        })
    }
}

/// The first `From` address of a raw message, lower case.
fn sender_of(raw: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let address = message.from()?.first()?.address()?.to_ascii_lowercase();
    Some(address)
}

/// The text a mail client shows of a message: its first `text/plain` body.
fn mail_text(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse(raw)
        .and_then(|message| message.body_text(0).map(|text| text.trim_end().to_owned()))
        .unwrap_or_default()
}

fn strip_re(subject: &str) -> &str {
    let mut subject = subject.trim();
    while subject
        .get(..3)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("re:"))
    {
        subject = subject[3..].trim_start();
    }
    subject
}

/// Now, on the shop's clock (Moscow, UTC+3).
fn moscow_now() -> chrono::DateTime<FixedOffset> {
    let now = Utc::now();
    FixedOffset::east_opt(3 * 3600)
        .map_or_else(|| now.fixed_offset(), |moscow| now.with_timezone(&moscow))
}

/// A customer of the sandbox page: a name, and the ids each provider knows them by (stable
/// for the name, so the same name is the same customer on every visit).
pub struct SandboxCustomer {
    pub name: String,
    /// A Telegram chat, VK peer or MAX user id.
    numeric: i64,
    /// A WhatsApp phone number.
    phone: String,
    /// A Viber user id.
    viber: String,
    /// An e-mail address.
    email: String,
}

impl SandboxCustomer {
    pub fn new(name: &str) -> SandboxCustomer {
        // FNV-1a: stable across runs and builds, unlike the standard library's hasher.
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        SandboxCustomer {
            name: name.to_string(),
            numeric: 100_000 + i64::try_from(hash % 800_000).unwrap_or_default(),
            phone: format!("7998{:07}", hash % 10_000_000),
            viber: format!("sandbox-{hash:016x}"),
            email: format!("customer-{:08x}@example.com", hash >> 32),
        }
    }
}

/// Providers the sandbox page lets the user write on.
pub const SANDBOX_PROVIDERS: [Provider; 6] = [
    Provider::Telegram,
    Provider::Whatsapp,
    Provider::Vk,
    Provider::Viber,
    Provider::Max,
    Provider::Email,
];

impl DemoProviders {
    /// The customer writes to the business on `provider`, through its fake exactly as a real
    /// customer's message arrives (the signed webhook the fake delivers; for e-mail, a letter
    /// delivered into the mailbox the channel reads).
    pub async fn customer_writes(
        &self,
        provider: Provider,
        customer: &SandboxCustomer,
        text: &str,
    ) -> Result<(), String> {
        match provider {
            Provider::Telegram => self
                .bot
                .customer_says(
                    customer.numeric,
                    &TelegramCustomer::new(customer.numeric, customer.name.clone()),
                    text,
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Provider::Whatsapp => {
                let delivery = self
                    .whatsapp
                    .customer_sends(
                        &WhatsappCustomer::new(customer.phone.clone(), customer.name.clone()),
                        CustomerMessage::Text(text.into()),
                    )
                    .await;
                delivered(delivery.status, &delivery.answer)
            }
            Provider::Vk => {
                let delivery = self.vk.customer_writes(customer.numeric, text).await;
                answered(delivery.answers.iter().map(|a| a.status))
            }
            Provider::Viber => {
                let delivery = self
                    .viber
                    .customer_sends(
                        &ViberCustomer::new(customer.viber.clone(), customer.name.clone()),
                        ViberCustomerMessage::Text(text.into()),
                    )
                    .await;
                delivered(delivery.status, &delivery.answer)
            }
            Provider::Max => {
                let delivery = self.max.customer_writes(customer.numeric, text).await;
                answered(delivery.answers.iter().map(|a| a.status))
            }
            Provider::Email => self.deliver(&self.page_letter(customer, text)),
            other => Err(format!("the demo has no {} channel", other.as_str())),
        }
    }

    /// What the business sent this customer on `provider`, oldest first, as the provider
    /// received it (the text of each message).
    pub fn replies_to(&self, provider: Provider, customer: &SandboxCustomer) -> Vec<String> {
        let text_of = |body: &Value, path: &[&str]| {
            path.iter()
                .try_fold(body, |v, key| v.get(*key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match provider {
            Provider::Telegram => self
                .bot
                .sent_messages()
                .into_iter()
                .filter(|m| m.chat_id == customer.numeric)
                .map(|m| m.text.unwrap_or_default())
                .collect(),
            Provider::Whatsapp => self
                .whatsapp
                .sent()
                .into_iter()
                .filter(|m| m.to == customer.phone)
                .map(|m| text_of(&m.body, &["text", "body"]))
                .collect(),
            Provider::Vk => self
                .vk
                .sent()
                .into_iter()
                .filter(|m| m.peer_id == customer.numeric)
                .map(|m| m.text)
                .collect(),
            Provider::Viber => self
                .viber
                .sent()
                .into_iter()
                .filter(|m| m.body.get("receiver").and_then(Value::as_str) == Some(&customer.viber))
                .map(|m| text_of(&m.body, &["text"]))
                .collect(),
            Provider::Max => self
                .max
                .sent()
                .into_iter()
                .filter(|m| {
                    m.user_id == Some(customer.numeric)
                        || m.chat_id == Some(omnihub_sandbox::max::dialog_chat_id(customer.numeric))
                })
                .map(|m| text_of(&m.body, &["text"]))
                .collect(),
            Provider::Email => self
                .smtp
                .messages()
                .into_iter()
                .filter(|m| {
                    m.to.iter()
                        .any(|to| to.eq_ignore_ascii_case(&customer.email))
                })
                .map(|m| mail_text(m.data.as_bytes()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn delivered(status: Option<u16>, answer: &str) -> Result<(), String> {
    match status {
        Some(200..=299) => Ok(()),
        other => Err(format!("webhook answered {other:?}: {answer}")),
    }
}

/// Every webhook that got the event answered 2xx (and there was one).
fn answered(statuses: impl Iterator<Item = u16>) -> Result<(), String> {
    let statuses: Vec<u16> = statuses.collect();
    if !statuses.is_empty() && statuses.iter().all(|s| (200..300).contains(s)) {
        Ok(())
    } else {
        Err(format!("webhooks answered {statuses:?}"))
    }
}

/// One e-mail customer of the demo: who, about what, and what they add in the same thread.
struct MailThread {
    name: &'static str,
    address: &'static str,
    subject: &'static str,
    first: &'static str,
    follow_up: &'static str,
}

/// What demo customers write by e-mail, in both languages, each followed up once.
const MAIL_THREADS: [MailThread; 4] = [
    MailThread {
        name: "Мария Петрова",
        address: "maria.petrova@example.ru",
        subject: "Доставка в Казань",
        first: "Здравствуйте!\n\nПодскажите, пожалуйста, доставляете ли вы в Казань и сколько \
                это займёт дней?\n\nС уважением,\nМария Петрова",
        follow_up: "Дополню: удобнее курьером до двери, после 18:00.\n\nМария",
    },
    MailThread {
        name: "John Carter",
        address: "john.carter@example.com",
        subject: "Invoice for order #4815",
        first: "Hello,\n\nCould you send me an invoice for order #4815? Our accounting needs \
                it by Friday.\n\nBest regards,\nJohn Carter",
        follow_up: "Sorry, I forgot: the invoice should be made out to Carter & Sons Ltd.\n\nJohn",
    },
    MailThread {
        name: "Ирина Соколова",
        address: "irina.sokolova@example.ru",
        subject: "Возврат платья",
        first: "Добрый день!\n\nКупила у вас платье, не подошёл размер. Как оформить \
                возврат?\n\nИрина",
        follow_up: "Чек сохранился, бирки на месте.\n\nИрина",
    },
    MailThread {
        name: "Emma Schmidt",
        address: "emma.schmidt@example.de",
        subject: "Wholesale prices",
        first: "Hi,\n\nWe run a small shop in Berlin. Do you offer wholesale prices for \
                orders of 50 items or more?\n\nKind regards,\nEmma Schmidt",
        follow_up: "And do you ship to Germany by DHL?\n\nEmma",
    },
];

/// What demo customers say: a name and a line, in both languages.
const LINES: [(&str, &str); 10] = [
    (
        "Мария",
        "Здравствуйте! Подскажите, доставка в Казань возможна?",
    ),
    ("John", "Hi, is the blue jacket still available in size M?"),
    ("Алексей", "Добрый день, мой заказ №4815 ещё не пришёл"),
    ("Emma", "Can I change the delivery address for my order?"),
    ("Ирина", "Спасибо за быстрый ответ!"),
    ("Олег", "А есть скидки для постоянных покупателей?"),
    ("Lucas", "Do you ship to Germany? How long does it take?"),
    ("Светлана", "Хочу вернуть товар, как это сделать?"),
    ("Дмитрий", "Можно оплатить при получении?"),
    ("Sophie", "Thanks, the package arrived today."),
];
