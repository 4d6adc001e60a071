//! Sign-in throttling per client IP (GCRA). Per-account lockout lives in the store, so it holds
//! across nodes; this limiter only slows a single source down.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct LoginThrottle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl LoginThrottle {
    pub fn per_minute(attempts: u32) -> Self {
        let n = NonZeroU32::new(attempts.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(seconds)` to wait when this IP has used up its attempts.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()).as_secs().max(1))
    }

    /// Forgets idle IPs so the table does not grow without bound.
    pub fn prune(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_is_stopped_after_its_quota_and_others_are_not() {
        let t = LoginThrottle::per_minute(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(t.check(a).is_ok());
        }
        assert!(t.check(a).unwrap_err() >= 1);
        assert!(t.check(b).is_ok());
    }
}
