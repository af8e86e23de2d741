//! How many messages one user may send the bot: a token bucket per user, pure, with `now`
//! passed in.
//!
//! The front-end asks [`RateLimiter::check`] before handling a message. Within the budget the
//! answer is [`Verdict::Allow`]; the first message over it gets [`Verdict::SlowDown`] (the
//! front-end answers politely, once), and further ones [`Verdict::Ignore`] until the bucket
//! refills, so a flooding user costs neither Telegram calls nor replies. The table of users
//! is bounded: when full, idle users (whose bucket is full again) are dropped first, and if
//! none is idle the newcomer is refused rather than the table growing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Budget of one user: `burst` messages at once, refilled at one per `refill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    pub burst: u32,
    pub refill: Duration,
    /// Users tracked at most.
    pub max_users: usize,
}

impl Default for RateConfig {
    /// Ten files in a row, then one every six seconds: a person uploading a season goes
    /// through; a script sending hundreds is slowed to ten a minute.
    fn default() -> Self {
        Self {
            burst: 10,
            refill: Duration::from_secs(6),
            max_users: 10_000,
        }
    }
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Over the budget: answer once that the user should slow down (and when to retry).
    SlowDown {
        retry_after_secs: u64,
    },
    /// Over the budget and already told: drop silently.
    Ignore,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    warned: bool,
}

/// Per-user buckets.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateConfig,
    users: HashMap<i64, Bucket>,
}

impl RateLimiter {
    pub fn new(config: RateConfig) -> Self {
        Self {
            config,
            users: HashMap::new(),
        }
    }

    /// Counts a message of `user` at `now` and says what to do with it.
    pub fn check(&mut self, user: i64, now: Instant) -> Verdict {
        if !self.users.contains_key(&user) && self.users.len() >= self.config.max_users {
            self.forget_idle(now);
            if self.users.len() >= self.config.max_users {
                return Verdict::Ignore;
            }
        }
        let config = self.config;
        let burst = f64::from(config.burst.max(1));
        let bucket = self.users.entry(user).or_insert(Bucket {
            tokens: burst,
            updated: now,
            warned: false,
        });
        refill(bucket, &config, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.warned = false;
            return Verdict::Allow;
        }
        if bucket.warned {
            return Verdict::Ignore;
        }
        bucket.warned = true;
        let missing = 1.0 - bucket.tokens;
        let wait = config.refill.as_secs_f64() * missing;
        Verdict::SlowDown {
            retry_after_secs: wait.ceil().max(1.0) as u64,
        }
    }

    fn forget_idle(&mut self, now: Instant) {
        let config = self.config;
        let burst = f64::from(config.burst.max(1));
        self.users.retain(|_, bucket| {
            refill(bucket, &config, now);
            bucket.tokens < burst
        });
    }
}

fn refill(bucket: &mut Bucket, config: &RateConfig, now: Instant) {
    let burst = f64::from(config.burst.max(1));
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    let per_token = config.refill.as_secs_f64().max(f64::EPSILON);
    bucket.tokens = (bucket.tokens + elapsed / per_token).min(burst);
    bucket.updated = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RateConfig {
        RateConfig {
            burst: 3,
            refill: Duration::from_secs(6),
            max_users: 2,
        }
    }

    #[test]
    fn a_burst_passes_then_one_polite_answer_then_silence_until_refilled() {
        let mut limiter = RateLimiter::new(config());
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(1, now), Verdict::Allow);
        }
        assert_eq!(
            limiter.check(1, now),
            Verdict::SlowDown {
                retry_after_secs: 6
            }
        );
        assert_eq!(limiter.check(1, now), Verdict::Ignore);
        // Another user is not affected.
        assert_eq!(limiter.check(2, now), Verdict::Allow);
        let later = now + Duration::from_secs(6);
        assert_eq!(limiter.check(1, later), Verdict::Allow);
        assert!(matches!(limiter.check(1, later), Verdict::SlowDown { .. }));
    }

    #[test]
    fn the_table_is_bounded_and_idle_users_make_room() {
        let mut limiter = RateLimiter::new(config());
        let now = Instant::now();
        assert_eq!(limiter.check(1, now), Verdict::Allow);
        assert_eq!(limiter.check(2, now), Verdict::Allow);
        // Both busy: a third user is refused, the table does not grow.
        assert_eq!(limiter.check(3, now), Verdict::Ignore);
        assert_eq!(limiter.users.len(), 2);
        // Once they are idle (buckets full again), the newcomer gets in.
        let later = now + Duration::from_secs(6);
        assert_eq!(limiter.check(3, later), Verdict::Allow);
        assert!(limiter.users.len() <= 2);
    }
}
