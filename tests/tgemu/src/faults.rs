//! Fault injection knobs set by tests, and the pure pacing maths behind the bandwidth cap.
//!
//! Rules are scoped to all traffic, one DC or one bot; the most specific rule wins
//! (bot, then DC, then all). The connection driver asks [`Faults`] per request and per
//! write; nothing here does I/O. Flood waits are timed on the emulator's [`Clock`], which
//! tests can move forward.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::clock::Clock;

/// What a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Dc(i32),
    Bot(i64),
}

/// Added latency per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    Fixed(Duration),
    Jitter { min: Duration, max: Duration },
}

impl Latency {
    /// A concrete delay; `unit` in [0, 1) picks a point of a jitter range.
    pub fn sample(self, unit: f64) -> Duration {
        match self {
            Latency::Fixed(d) => d,
            Latency::Jitter { min, max } if max > min => min + (max - min).mul_f64(unit),
            Latency::Jitter { min, .. } => min,
        }
    }
}

#[derive(Default)]
struct Rules {
    latency: Vec<(Scope, Latency)>,
    bandwidth: Vec<(Scope, u64)>,
    internal_error_rate: Vec<(Scope, f64)>,
    drop_after: Vec<(Scope, i64)>,
    flood_until: HashMap<i64, Instant>,
    file_reference_ttl: Option<Duration>,
}

/// Shared, cheaply cloned handle to the injection rules.
#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Rules>>,
    clock: Clock,
}

/// The most specific matching rule.
fn pick<T: Copy>(rules: &[(Scope, T)], dc: i32, bot: Option<i64>) -> Option<T> {
    let find = |want: Scope| {
        rules
            .iter()
            .rev()
            .find(|(s, _)| *s == want)
            .map(|(_, v)| *v)
    };
    bot.and_then(|b| find(Scope::Bot(b)))
        .or_else(|| find(Scope::Dc(dc)))
        .or_else(|| find(Scope::All))
}

fn set<T>(rules: &mut Vec<(Scope, T)>, scope: Scope, value: T) {
    rules.retain(|(s, _)| *s != scope);
    rules.push((scope, value));
}

impl Faults {
    pub(crate) fn with_clock(clock: Clock) -> Self {
        Self {
            rules: Arc::default(),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rules> {
        // A poisoned lock only means a test thread panicked mid-update; the rules are
        // plain data and stay usable.
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `latency` before every answer in `scope`.
    pub fn set_latency(&self, scope: Scope, latency: Latency) {
        set(&mut self.lock().latency, scope, latency);
    }

    /// Caps each connection in `scope` at `bytes_per_sec` (0 removes the cap).
    pub fn set_bandwidth(&self, scope: Scope, bytes_per_sec: u64) {
        set(&mut self.lock().bandwidth, scope, bytes_per_sec);
    }

    /// Answers every request of this bot with `FLOOD_WAIT_X` (420) for `secs` seconds.
    pub fn flood_wait(&self, bot_user_id: i64, secs: u32) {
        let until = self.clock.now() + Duration::from_secs(secs.into());
        self.lock().flood_until.insert(bot_user_id, until);
    }

    /// File references older than `ttl` answer `FILE_REFERENCE_EXPIRED`.
    pub fn file_reference_ttl(&self, ttl: Duration) {
        self.lock().file_reference_ttl = Some(ttl);
    }

    /// One-shot: once `n` more bytes have been written to connections in `scope`, the
    /// connection that crosses the mark is cut mid-packet. New connections are unaffected.
    pub fn drop_connection_after_bytes(&self, scope: Scope, n: u64) {
        set(
            &mut self.lock().drop_after,
            scope,
            n.min(i64::MAX as u64) as i64,
        );
    }

    /// Answers this fraction (0..=1) of requests in `scope` with 500 `INTERNAL`.
    pub fn internal_error_rate(&self, scope: Scope, rate: f64) {
        set(
            &mut self.lock().internal_error_rate,
            scope,
            rate.clamp(0.0, 1.0),
        );
    }

    /// Removes every rule.
    pub fn clear(&self) {
        *self.lock() = Rules::default();
    }

    pub(crate) fn latency(&self, dc: i32, bot: Option<i64>) -> Option<Latency> {
        pick(&self.lock().latency, dc, bot)
    }

    pub(crate) fn bandwidth(&self, dc: i32, bot: Option<i64>) -> Option<u64> {
        pick(&self.lock().bandwidth, dc, bot).filter(|&b| b > 0)
    }

    pub(crate) fn internal_error(&self, dc: i32, bot: Option<i64>, unit: f64) -> bool {
        pick(&self.lock().internal_error_rate, dc, bot).is_some_and(|rate| unit < rate)
    }

    /// The emulator's present, to time flood waits by.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Seconds of FLOOD_WAIT left for this bot, rounded up.
    pub(crate) fn flood_wait_left(&self, bot: i64, now: Instant) -> Option<u32> {
        let until = *self.lock().flood_until.get(&bot)?;
        let left = until.checked_duration_since(now).filter(|d| !d.is_zero())?;
        Some(left.as_secs_f64().ceil() as u32)
    }

    pub(crate) fn file_reference_ttl_value(&self) -> Option<Duration> {
        self.lock().file_reference_ttl
    }

    /// Accounts `n` bytes about to be written; returns how many of them may go out before
    /// the connection must be cut, if a drop rule fires.
    pub(crate) fn bytes_before_drop(&self, dc: i32, bot: Option<i64>, n: usize) -> Option<usize> {
        let mut rules = self.lock();
        let scope = [bot.map(Scope::Bot), Some(Scope::Dc(dc)), Some(Scope::All)]
            .into_iter()
            .flatten()
            .find(|want| rules.drop_after.iter().any(|(s, _)| s == want))?;
        let slot = rules.drop_after.iter_mut().find(|(s, _)| *s == scope)?;
        slot.1 -= n as i64;
        if slot.1 > 0 {
            return None;
        }
        let allowed = (n as i64 + slot.1).max(0) as usize;
        rules.drop_after.retain(|(s, _)| *s != scope);
        Some(allowed)
    }
}

/// Credit a rested connection may spend at once, as time at the capped rate: enough to
/// absorb timer lateness (tokio sleeps overshoot by about a millisecond).
const BURST_SECONDS: f64 = 0.05;
/// Floor of the credit, so very low caps still let one small packet through unpaced.
const MIN_BURST_BYTES: f64 = 16.0 * 1024.0;
/// Ceiling of the credit, well below one `getFile` part (128–512 KiB): with 50 ms at
/// 20 MiB/s (1 MiB) a connection that rested for 50 ms sent a whole chunk unpaced, so a
/// client rotating one request over idle connections never saw the cap at all.
const MAX_BURST_BYTES: f64 = 64.0 * 1024.0;

/// A token bucket that carries debt and credit across sleeps, so timer granularity
/// (tokio sleeps ≥ 1 ms) does not lower the achieved rate: oversleeping earns credit
/// that the next writes spend. `now` is passed in.
#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    tokens: f64,
    burst: f64,
    last: Duration,
}

impl Pacer {
    pub fn new(bytes_per_sec: u64, now: Duration) -> Self {
        let rate = bytes_per_sec.max(1) as f64;
        let burst = (rate * BURST_SECONDS).clamp(MIN_BURST_BYTES, MAX_BURST_BYTES);
        Self {
            rate,
            tokens: 0.0,
            burst,
            last: now,
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate as u64
    }

    /// Takes `n` bytes from the bucket; returns how long to wait before writing them.
    pub fn take(&mut self, n: usize, now: Duration) -> Duration {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_rule_wins() {
        let f = Faults::default();
        f.set_bandwidth(Scope::All, 10);
        f.set_bandwidth(Scope::Dc(4), 20);
        f.set_bandwidth(Scope::Bot(7), 30);
        assert_eq!(f.bandwidth(2, None), Some(10));
        assert_eq!(f.bandwidth(4, Some(8)), Some(20));
        assert_eq!(f.bandwidth(4, Some(7)), Some(30));
        f.clear();
        assert_eq!(f.bandwidth(4, Some(7)), None);
    }

    #[test]
    fn pacer_reaches_its_rate_despite_late_timers() {
        // 1 MiB/s, 64 KiB writes, and every sleep overshoots by 1.3 ms.
        let rate = 1024 * 1024;
        let mut now = Duration::ZERO;
        let mut pacer = Pacer::new(rate, now);
        let writes = 400;
        for _ in 0..writes {
            let wait = pacer.take(64 * 1024, now);
            if !wait.is_zero() {
                now += wait + Duration::from_micros(1300);
            }
        }
        let achieved = (writes * 64 * 1024) as f64 / now.as_secs_f64();
        let ratio = achieved / rate as f64;
        assert!(
            (0.99..=1.01).contains(&ratio),
            "achieved {ratio:.4} of the cap"
        );
    }

    #[test]
    fn pacer_reaches_its_rate_with_part_sized_packets() {
        // The emulator's getFile answers: 512 KiB packets at 20 MiB/s, sleeps 1.3 ms late.
        let rate = 20 * 1024 * 1024;
        let packet = 512 * 1024;
        let mut now = Duration::ZERO;
        let mut pacer = Pacer::new(rate, now);
        let writes = 200;
        for _ in 0..writes {
            let wait = pacer.take(packet, now);
            if !wait.is_zero() {
                now += wait + Duration::from_micros(1300);
            }
        }
        let achieved = (writes * packet) as f64 / now.as_secs_f64();
        let ratio = achieved / rate as f64;
        assert!(
            (0.99..=1.01).contains(&ratio),
            "achieved {ratio:.4} of the cap"
        );
    }

    #[test]
    fn rested_connection_cannot_send_a_chunk_unpaced() {
        let rate = 20 * 1024 * 1024;
        let mut pacer = Pacer::new(rate, Duration::ZERO);
        // Idle for a second, then a whole 1 MiB chunk as two 512 KiB parts.
        let rested = Duration::from_secs(1);
        let first = pacer.take(512 * 1024, rested);
        let second = pacer.take(512 * 1024, rested + first);
        let total = first + second;
        // Only the burst (≤ 64 KiB) may skip the queue: 1 MiB − 64 KiB at 20 MiB/s.
        let floor = Duration::from_secs_f64((1024.0 - 64.0) * 1024.0 / rate as f64);
        assert!(
            total >= floor,
            "1 MiB went out in {total:?}, floor {floor:?}"
        );
        assert!(total <= Duration::from_millis(50), "{total:?}");
    }

    #[test]
    fn pacer_idles_without_banking_unbounded_credit() {
        let mut pacer = Pacer::new(1000, Duration::ZERO);
        // After an hour idle, only the burst is free.
        assert_eq!(
            pacer.take(16 * 1024, Duration::from_secs(3600)),
            Duration::ZERO
        );
        assert!(pacer.take(10_000, Duration::from_secs(3600)) >= Duration::from_secs(9));
    }

    #[test]
    fn drop_rule_fires_once_at_the_mark() {
        let f = Faults::default();
        f.drop_connection_after_bytes(Scope::Dc(2), 1000);
        assert_eq!(f.bytes_before_drop(2, None, 600), None);
        assert_eq!(f.bytes_before_drop(4, None, 600), None);
        assert_eq!(f.bytes_before_drop(2, None, 600), Some(400));
        assert_eq!(f.bytes_before_drop(2, None, 600), None);
    }

    #[test]
    fn flood_wait_rounds_up() {
        let f = Faults::default();
        f.flood_wait(1, 30);
        let left = f.flood_wait_left(1, Instant::now());
        assert_eq!(left, Some(30));
        assert_eq!(f.flood_wait_left(2, Instant::now()), None);
        assert_eq!(
            Latency::Jitter {
                min: Duration::from_millis(10),
                max: Duration::from_millis(20)
            }
            .sample(0.5),
            Duration::from_millis(15)
        );
    }
}
