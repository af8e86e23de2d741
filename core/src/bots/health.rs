//! When a bot that is out of service (for everything, or for one channel) is tried again: a
//! pure schedule of re-probes with exponential backoff, `now` passed in.
//!
//! [`super::BotPool`] keeps one [`Sickness`] per bot-wide problem (revoked token, lost
//! authorisation) and one per (bot, channel) the bot cannot read; the prober
//! (`crate::health`) asks for the [`Sickness::is_due`] ones, runs the check and reports
//! back with [`Sickness::failed_again`] or clears the entry. No I/O, no clock.

use std::time::{Duration, Instant};

/// Re-probe delays: `first` after the failure, doubling after each failed probe, never more
/// than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 30 s doubling to 10 min: a short Telegram glitch costs half a minute, a bot removed
    /// for good costs one call per ten minutes.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(30),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The wait before probe number `failures + 1` (`failures` ≥ 1 failed checks so far).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// What is wrong, since when, and when it is checked next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sickness {
    pub reason: String,
    pub since: Instant,
    /// Failed checks so far, the first failure included.
    pub failures: u32,
    pub next_probe: Instant,
}

impl Sickness {
    /// A first failure seen at `now`.
    pub fn new(reason: impl Into<String>, now: Instant, backoff: &Backoff) -> Self {
        Self {
            reason: reason.into(),
            since: now,
            failures: 1,
            next_probe: now + backoff.delay(1),
        }
    }

    pub fn is_due(&self, now: Instant) -> bool {
        self.next_probe <= now
    }

    /// The probe at `now` failed (with `reason`): wait twice as long before the next.
    pub fn failed_again(&mut self, reason: impl Into<String>, now: Instant, backoff: &Backoff) {
        self.reason = reason.into();
        self.failures = self.failures.saturating_add(1);
        self.next_probe = now + backoff.delay(self.failures);
    }
}

/// What one probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeTarget {
    /// The bot itself: its token and home-DC authorisation.
    Bot,
    /// Whether the bot can read this channel (Bot API id, `-100…`).
    Channel(i64),
}

/// A probe to run now: `target` of pool bot `bot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub bot: usize,
    pub target: ProbeTarget,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_first_up_to_the_max() {
        let backoff = Backoff::default();
        let secs: Vec<u64> = (1..=8).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 480, 600, 600, 600]);
        assert_eq!(backoff.delay(u32::MAX), backoff.max);
        assert_eq!(backoff.delay(0), backoff.first);
    }

    #[test]
    fn a_schedule_driven_by_time_probes_only_when_due() {
        let backoff = Backoff::default();
        let start = Instant::now();
        let mut sick = Sickness::new("cannot read the channel", start, &backoff);
        assert!(!sick.is_due(start + Duration::from_secs(29)));
        let first = start + Duration::from_secs(30);
        assert!(sick.is_due(first));
        sick.failed_again("still private", first, &backoff);
        assert_eq!(sick.failures, 2);
        assert_eq!(sick.since, start);
        assert_eq!(sick.reason, "still private");
        assert!(!sick.is_due(first + Duration::from_secs(59)));
        assert!(sick.is_due(first + Duration::from_secs(60)));
    }
}
