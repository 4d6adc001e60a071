//! The restart policy every supervisor in the tree applies to its children: exponential
//! back-off between restarts, and giving up on a child that keeps failing. It is a pure value
//! (no actors, no clock of its own) so that it is tested on its own and reused unchanged by the
//! root, the per-client supervisors and whatever comes later.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What a supervisor does after a child went down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start the child again once this much time has passed.
    RestartAfter(Duration),
    /// The child failed too often: leave it down and report it as failed.
    GiveUp,
}

/// Back-off and give-up rules for one child. Each child owns its own copy, because the
/// failure history is per child: one crash-looping child must not slow down its siblings.
#[derive(Clone, Debug)]
pub struct RestartPolicy {
    initial_backoff: Duration,
    max_backoff: Duration,
    max_restarts: u32,
    window: Duration,
    /// When recent failures happened, oldest first; only those inside `window` are kept.
    failures: VecDeque<Instant>,
}

impl Default for RestartPolicy {
    /// 100 ms doubling up to 30 s; more than 5 restarts within 60 s gives up.
    fn default() -> Self {
        RestartPolicy::new(
            Duration::from_millis(100),
            Duration::from_secs(30),
            5,
            Duration::from_secs(60),
        )
    }
}

impl RestartPolicy {
    /// A child is restarted at most `max_restarts` times within any `window`; the first
    /// restart waits `initial_backoff`, each further one inside the window twice as long,
    /// capped at `max_backoff`.
    pub fn new(
        initial_backoff: Duration,
        max_backoff: Duration,
        max_restarts: u32,
        window: Duration,
    ) -> Self {
        RestartPolicy {
            initial_backoff,
            // A cap below the start would make the back-off shrink; treat it as "no growth".
            max_backoff: max_backoff.max(initial_backoff),
            max_restarts,
            window,
            failures: VecDeque::new(),
        }
    }

    /// Records a failure at `now` and decides what to do about it.
    ///
    /// The back-off grows with the number of failures inside the window, so a child that ran
    /// quietly for longer than the window starts again from `initial_backoff`.
    pub fn on_failure(&mut self, now: Instant) -> Decision {
        while let Some(&oldest) = self.failures.front() {
            if now.saturating_duration_since(oldest) >= self.window {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        self.failures.push_back(now);
        // This failure asks for restart number `recent` within the window.
        let recent = u32::try_from(self.failures.len()).unwrap_or(u32::MAX);
        if recent > self.max_restarts {
            return Decision::GiveUp;
        }
        let doublings = recent.saturating_sub(1).min(31);
        let backoff = self
            .initial_backoff
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        Decision::RestartAfter(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backs_off_exponentially_then_gives_up() {
        let mut p = RestartPolicy::default();
        let t = Instant::now();
        let got: Vec<_> = (0..6).map(|i| p.on_failure(t + ms(i))).collect();
        assert_eq!(
            got,
            vec![
                Decision::RestartAfter(ms(100)),
                Decision::RestartAfter(ms(200)),
                Decision::RestartAfter(ms(400)),
                Decision::RestartAfter(ms(800)),
                Decision::RestartAfter(ms(1600)),
                Decision::GiveUp,
            ]
        );
    }

    #[test]
    fn backoff_is_capped() {
        let mut p = RestartPolicy::new(
            ms(100),
            Duration::from_secs(30),
            100,
            Duration::from_secs(3600),
        );
        let t = Instant::now();
        let last = (0..40).map(|_| p.on_failure(t)).last();
        assert_eq!(last, Some(Decision::RestartAfter(Duration::from_secs(30))));
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let mut p =
            RestartPolicy::new(ms(100), Duration::from_secs(30), 2, Duration::from_secs(60));
        let t = Instant::now();
        assert_eq!(p.on_failure(t), Decision::RestartAfter(ms(100)));
        assert_eq!(p.on_failure(t + ms(10)), Decision::RestartAfter(ms(200)));
        // A third failure inside the minute gives up...
        assert_eq!(p.clone().on_failure(t + ms(20)), Decision::GiveUp);
        // ...but once the earlier ones are a minute old, the child starts over.
        assert_eq!(
            p.on_failure(t + Duration::from_secs(61)),
            Decision::RestartAfter(ms(100))
        );
    }

    #[test]
    fn zero_restarts_gives_up_at_once() {
        let mut p = RestartPolicy::new(ms(1), ms(1), 0, Duration::from_secs(1));
        assert_eq!(p.on_failure(Instant::now()), Decision::GiveUp);
    }

    #[test]
    fn cap_below_start_does_not_shrink() {
        let mut p = RestartPolicy::new(ms(500), ms(100), 3, Duration::from_secs(60));
        let t = Instant::now();
        assert_eq!(p.on_failure(t), Decision::RestartAfter(ms(500)));
        assert_eq!(p.on_failure(t), Decision::RestartAfter(ms(500)));
    }
}
