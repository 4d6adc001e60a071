//! Telegram's flood limits on sending: about 30 messages per second per bot overall and one
//! message per second per chat. Telegram tolerates short bursts and publishes no exact
//! figures, so the sandbox uses token buckets: each bucket refills at its rate and holds at
//! most `burst` messages, so a burst of that many passes at once and the long-run rate is the
//! documented one. A message must fit in both its chat's bucket and the bot's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The limits a sandbox enforces on each bot's sending methods.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    /// Messages per second a bot may send over all chats.
    pub per_bot: f64,
    /// Messages a bot may send at once over all chats.
    pub per_bot_burst: f64,
    /// Messages per second a bot may send into one chat.
    pub per_chat: f64,
    /// Messages a bot may send at once into one chat.
    pub per_chat_burst: f64,
}

impl RateLimits {
    /// Telegram's: 30 per second per bot (a burst of 30), one per second per chat with a
    /// burst of 3.
    pub const TELEGRAM: RateLimits = RateLimits {
        per_bot: 30.0,
        per_bot_burst: 30.0,
        per_chat: 1.0,
        per_chat_burst: 3.0,
    };
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::TELEGRAM
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
    }

    /// How long until one token is there (zero when one is).
    fn wait(&self, rate: f64) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / rate)
        }
    }
}

/// The buckets of one bot.
#[derive(Debug)]
pub(crate) struct FloodControl {
    limits: RateLimits,
    bot: Bucket,
    chats: HashMap<i64, Bucket>,
}

impl FloodControl {
    pub fn new(limits: RateLimits) -> FloodControl {
        FloodControl {
            limits,
            bot: Bucket::full(limits.per_bot_burst, Instant::now()),
            chats: HashMap::new(),
        }
    }

    /// Takes one message for `chat`, or tells how many whole seconds to wait (at least one,
    /// as Telegram's `retry_after` is).
    pub fn take(&mut self, chat: i64, now: Instant) -> Result<(), u64> {
        let limits = self.limits;
        self.bot.refill(limits.per_bot, limits.per_bot_burst, now);
        let chat_bucket = self
            .chats
            .entry(chat)
            .or_insert_with(|| Bucket::full(limits.per_chat_burst, now));
        chat_bucket.refill(limits.per_chat, limits.per_chat_burst, now);
        let wait = self
            .bot
            .wait(limits.per_bot)
            .max(chat_bucket.wait(limits.per_chat));
        if wait > Duration::ZERO {
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        chat_bucket.tokens -= 1.0;
        self.bot.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_gets_its_burst_then_one_per_second() {
        let mut flood = FloodControl::new(RateLimits::TELEGRAM);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(flood.take(1, start), Ok(()));
        }
        assert_eq!(flood.take(1, start), Err(1));
        // Another chat is not held up by the first.
        assert_eq!(flood.take(2, start), Ok(()));
        assert_eq!(flood.take(1, start + Duration::from_millis(1000)), Ok(()));
        assert_eq!(flood.take(1, start + Duration::from_millis(1100)), Err(1));
    }

    #[test]
    fn the_bot_gets_thirty_per_second_over_all_chats() {
        let mut flood = FloodControl::new(RateLimits::TELEGRAM);
        let start = Instant::now();
        for chat in 0..30 {
            assert_eq!(flood.take(chat, start), Ok(()), "chat {chat}");
        }
        assert_eq!(flood.take(100, start), Err(1));
        assert_eq!(flood.take(100, start + Duration::from_millis(40)), Ok(()));
    }
}
