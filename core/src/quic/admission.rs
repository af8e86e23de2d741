//! Who may start a QUIC handshake with the core, and how often the refusals are logged.
//! Pure: counts and a clock passed in, no sockets.
//!
//! Used by the accept loop in [`super`]. Before its Hello proof a peer is anonymous: it
//! costs a TLS handshake (the expensive part) and a task. So the number of connections
//! waiting for their Hello is capped, handshakes draw on a token bucket, and under load
//! (bucket low or half the cap in use) a peer must first prove its address with a QUIC
//! Retry, so spoofed sources cannot make the core do handshakes.

use std::time::{Duration, Instant};

/// What to do with one incoming connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Start the handshake.
    Accept,
    /// Answer with a Retry: the peer comes back with a token proving its address.
    Retry,
    /// Refuse at once (a stateless CONNECTION_CLOSE).
    Refuse,
}

/// Limits on peers that have not said Hello yet.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    /// Connections between accept and a judged Hello, at most.
    pub max_unauthenticated: usize,
    /// Handshakes started per second, sustained.
    pub handshakes_per_sec: u32,
    /// Handshakes that may start back to back (the bucket's size).
    pub handshake_burst: u32,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_unauthenticated: 64,
            handshakes_per_sec: 50,
            handshake_burst: 100,
        }
    }
}

/// The admission state: a token bucket of handshakes.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    tokens: f64,
    refilled: Instant,
}

impl Admission {
    pub fn new(limits: AdmissionLimits, now: Instant) -> Self {
        Admission {
            limits,
            tokens: f64::from(limits.handshake_burst.max(1)),
            refilled: now,
        }
    }

    /// The decision for a peer, given how many connections await their Hello now and
    /// whether this peer's address is validated (it came back after a Retry). Takes a
    /// handshake token when it accepts.
    pub fn decide(
        &mut self,
        unauthenticated: usize,
        address_validated: bool,
        now: Instant,
    ) -> Admit {
        self.refill(now);
        let cap = self.limits.max_unauthenticated.max(1);
        let low = self.tokens < f64::from(self.limits.handshake_burst.max(1)) / 2.0;
        let under_load = low || unauthenticated >= cap.div_ceil(2);
        if under_load && !address_validated {
            return Admit::Retry;
        }
        if unauthenticated >= cap || self.tokens < 1.0 {
            return Admit::Refuse;
        }
        self.tokens -= 1.0;
        Admit::Accept
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        let burst = f64::from(self.limits.handshake_burst.max(1));
        let rate = f64::from(self.limits.handshakes_per_sec);
        self.tokens = (self.tokens + elapsed * rate).min(burst);
    }
}

/// Lets a noisy log line through at most `max` times per `window`, and says how many were
/// held back when the next one is let through.
#[derive(Debug)]
pub struct LogLimiter {
    max: u32,
    window: Duration,
    window_start: Option<Instant>,
    in_window: u32,
    suppressed: u64,
}

impl LogLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        LogLimiter {
            max,
            window,
            window_start: None,
            in_window: 0,
            suppressed: 0,
        }
    }

    /// `Some(held back since the last one let through)` if this line may be logged.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= self.window);
        if fresh {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window >= self.max {
            self.suppressed += 1;
            return None;
        }
        self.in_window += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_unauthenticated: 10,
            handshakes_per_sec: 10,
            handshake_burst: 4,
        }
    }

    #[test]
    fn accepts_while_quiet_then_asks_for_retry_then_refuses() {
        let t0 = Instant::now();
        let mut admission = Admission::new(limits(), t0);
        for pending in 0..3 {
            assert_eq!(admission.decide(pending, false, t0), Admit::Accept);
        }
        // Under half the bucket left: unvalidated peers must prove their address first.
        assert_eq!(admission.decide(3, false, t0), Admit::Retry);
        assert_eq!(admission.decide(3, true, t0), Admit::Accept);
        // Bucket empty: even validated peers wait for it to refill.
        assert_eq!(admission.decide(4, true, t0), Admit::Refuse);
        let later = t0 + Duration::from_millis(200);
        assert_eq!(admission.decide(4, true, later), Admit::Accept);
        // Refilled in full after long enough, never beyond the burst.
        let much_later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(admission.decide(0, false, much_later), Admit::Accept);
        }
        assert_eq!(admission.decide(0, false, much_later), Admit::Retry);
    }

    #[test]
    fn the_unauthenticated_cap_holds_whatever_the_bucket() {
        let t0 = Instant::now();
        let limits = AdmissionLimits {
            handshake_burst: 1000,
            ..limits()
        };
        let mut admission = Admission::new(limits, t0);
        assert_eq!(admission.decide(4, false, t0), Admit::Accept);
        assert_eq!(admission.decide(5, false, t0), Admit::Retry);
        assert_eq!(admission.decide(9, true, t0), Admit::Accept);
        assert_eq!(admission.decide(10, true, t0), Admit::Refuse);
        assert_eq!(admission.decide(500, true, t0), Admit::Refuse);
    }

    #[test]
    fn log_limiter_lets_a_few_through_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::new(2, Duration::from_secs(10));
        assert_eq!(limiter.allow(t0), Some(0));
        assert_eq!(limiter.allow(t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(limiter.allow(t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(limiter.allow(t0 + Duration::from_secs(10)), Some(1000));
        assert_eq!(limiter.allow(t0 + Duration::from_secs(11)), Some(0));
        assert_eq!(limiter.allow(t0 + Duration::from_secs(12)), None);
    }
}
