//! Suite `channels`: a mass of outbound messages to one Telegram bot through omnihub's
//! channel-account actor, against the sandbox's fake Bot API, which enforces Telegram's limits
//! (30 messages a second per bot, 1 a second per chat, each with a small burst) by answering 429
//! as Telegram does. The messages are replies committed through the hub, as operators send
//! them, spread round-robin over fewer chats than the overall limit would allow, so both limits
//! bind: the per-chat one caps the rate at one message per chat per second.
//!
//! The baseline is the provider's own limit (the rate the fake allows), not another server: the
//! figures say whether omnihub keeps under it while still using it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use omnihub::AppState;
use omnihub_core::model::{ChannelKind, Provider};
use omnihub_sandbox::telegram::{Customer, TelegramSandbox};
use omnihub_store::{InboundEvent, Ingest, NewChannel};
use serde_json::json;

use crate::api::{ScratchDir, open_store, seed};
use crate::report::{Figure, Goal};

pub const OPTIONS_HELP: &str = "  --messages N   outbound messages (default 1000)\n  \
     --chats N      chats they are spread over (default 25)\n";

const TOKEN: &str = "7000000002:AAH-omnihub_bench_bot";
/// Telegram's documented limits, which the fake enforces.
const BOT_RATE: f64 = 30.0;
const CHAT_RATE: f64 = 1.0;

#[derive(Clone, Debug)]
pub struct Options {
    pub messages: usize,
    pub chats: usize,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            messages: 1000,
            chats: 25,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .parse::<usize>()
                .map_err(|e| format!("{flag}: {e}"))?;
            match flag.as_str() {
                "--messages" => o.messages = value.max(1),
                "--chats" => o.chats = value.max(1),
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(o)
    }
}

pub fn run(options: &Options) -> anyhow::Result<Vec<Figure>> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(options))
}

async fn measure(o: &Options) -> anyhow::Result<Vec<Figure>> {
    let sandbox = TelegramSandbox::start().await?;
    let bot = sandbox.add_bot(TOKEN);
    // Telegram only delivers to chats whose customer wrote first.
    let chats: Vec<i64> = (1..=o.chats as i64).map(|i| 90_000 + i).collect();
    for chat in &chats {
        bot.customer_says(*chat, &Customer::new(*chat, "Bench"), "hi")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    let dir = ScratchDir::create()?;
    let (mut config, store) = open_store(dir.path()).await?;
    config.providers.telegram_api = sandbox.base_url().to_string();
    let seeded = seed(&store).await?;
    let channel = store
        .create_channel(&NewChannel {
            client_id: seeded.client_id,
            kind: ChannelKind::Messaging,
            provider: Provider::Telegram,
            name: "Benchmark bot".into(),
            settings: json!({}),
            credentials: Some(json!({ "bot_token": TOKEN })),
        })
        .await?;
    let state = AppState::build(Arc::new(config), store).await?;

    let mut conversations = Vec::new();
    for chat in &chats {
        let ingest = state
            .hub
            .ingest(InboundEvent {
                attachments: Vec::new(),
                client_id: seeded.client_id,
                channel_id: channel.id,
                external_conversation_id: chat.to_string(),
                external_user_id: chat.to_string(),
                contact_name: format!("Customer {chat}"),
                provider_event_id: format!("open-{chat}"),
                text: "hi".into(),
            })
            .await?;
        let Ingest::New { conversation, .. } = ingest else {
            bail!("chat {chat} was already open");
        };
        conversations.push(conversation.id);
    }

    eprintln!(
        "channels: {} replies over {} chats to one Telegram bot",
        o.messages, o.chats
    );
    let started = Instant::now();
    for i in 0..o.messages {
        state
            .hub
            .send_reply(
                seeded.client_id,
                conversations[i % conversations.len()],
                seeded.owner_id,
                format!("bench reply {i}"),
                format!("bench-{i}"),
            )
            .await
            .context("committing a reply")?;
    }
    let committed = started.elapsed();

    // Wait until the fake has them all; it stamps each one as it accepts it.
    let deadline = started
        + Duration::from_secs_f64(o.messages as f64 / (o.chats as f64 * CHAT_RATE).min(BOT_RATE))
            * 3
        + Duration::from_secs(30);
    let sent = loop {
        let sent = bot.sent_messages();
        if sent.len() >= o.messages || Instant::now() > deadline {
            break sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut seen_at: Vec<Instant> = sent.iter().map(|m| m.accepted_at).collect();
    seen_at.sort();
    let mut by_chat: HashMap<i64, Vec<Instant>> = HashMap::new();
    for message in &sent {
        by_chat
            .entry(message.chat_id)
            .or_default()
            .push(message.accepted_at);
    }
    for times in by_chat.values_mut() {
        times.sort();
    }
    let delivered = seen_at.len();
    let span = seen_at
        .last()
        .map_or(Duration::ZERO, |last| last.duration_since(started));
    let rate = delivered as f64 / span.as_secs_f64().max(1e-9);
    let busiest_second = busiest_window(&seen_at);
    let busiest_chat_second = by_chat
        .values()
        .map(|times| busiest_window(times))
        .max()
        .unwrap_or(0);
    let refused = sandbox.too_many_requests_sent();
    let violations = sandbox.violations().len();
    eprintln!(
        "channels: committed in {:.2} s; {delivered} delivered in {:.1} s = {rate:.1}/s; \
         busiest second {busiest_second}, busiest chat-second {busiest_chat_second}; \
         429s {refused}; contract violations {violations}",
        committed.as_secs_f64(),
        span.as_secs_f64()
    );
    let sound = delivered == o.messages && violations == 0;
    let expected = (o.chats as f64 * CHAT_RATE).min(BOT_RATE);
    Ok(vec![
        Figure::new(
            "channels_telegram_rate",
            "msg/s",
            rate,
            expected,
            Goal::AtLeast,
            0.8,
            sound,
        ),
        Figure::new(
            "channels_telegram_busiest_second",
            "msg",
            busiest_second as f64,
            BOT_RATE,
            Goal::ValueAtMost,
            BOT_RATE,
            sound,
        ),
        Figure::new(
            "channels_telegram_busiest_chat_second",
            "msg",
            busiest_chat_second as f64,
            CHAT_RATE,
            Goal::ValueAtMost,
            CHAT_RATE,
            sound,
        ),
        Figure::new(
            "channels_telegram_429",
            "responses",
            refused as f64,
            0.0,
            Goal::ValueAtMost,
            0.0,
            sound,
        ),
    ])
}

/// The most arrivals within any one second (a sliding window over sorted times).
fn busiest_window(times: &[Instant]) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}
