//! Where the scheduler gets the time: the system clock in production, a [`ManualClock`] in
//! tests, which moves only when told and wakes whoever waits on it, so a test of "ten thousand
//! tasks due in the same minute" or "three days of downtime" sleeps on nothing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// The time and a way to wait for it.
#[async_trait]
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Returns once [`Clock::now`] has reached `at`.
    async fn sleep_until(&self, at: DateTime<Utc>);
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        if let Ok(wait) = (at - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A clock that stands still until [`ManualClock::advance`] or [`ManualClock::set`] moves it.
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: watch::Sender::new(start),
        })
    }

    /// Moves the time on by `by`, waking every waiter whose time has come.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        self.now.send_modify(|now| *now += by);
    }

    /// Sets the time (never backwards: an earlier time is ignored).
    pub fn set(&self, to: DateTime<Utc>) {
        self.now.send_if_modified(|now| {
            let later = to > *now;
            if later {
                *now = to;
            }
            later
        });
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock")
            .field(&*self.now.borrow())
            .finish()
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let mut now = self.now.subscribe();
        // The sender lives as long as `self`, so `wait_for` ends only when the time comes.
        let _ = now.wait_for(|now| *now >= at).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_moved_past_their_time() {
        let start = DateTime::<Utc>::from_timestamp(1_000, 0).unwrap();
        let clock = ManualClock::new(start);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move {
                clock
                    .sleep_until(start + chrono::Duration::minutes(1))
                    .await
            })
        };
        clock.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.set(start); // backwards: ignored
        assert_eq!(clock.now(), start + chrono::Duration::seconds(59));
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        // A time already reached returns at once.
        clock.sleep_until(start).await;
    }
}
