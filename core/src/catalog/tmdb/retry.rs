//! When to call TMDB again: a pure policy (attempt number, outcome and `now` in; the next
//! action out), so the client's loop holds no decisions and the rules are unit-tested.
//!
//! TMDB answers 429 when a key goes over its rate and 5xx when it is unwell; both are worth
//! another try after a pause, honouring `Retry-After` when the server sends one. A pause
//! longer than [`RetryPolicy::max_delay`] is not waited out inside one call: the caller gets
//! [`Next::GiveUp`] with the server's hint and schedules the work for later instead.

use std::time::{Duration, SystemTime};

/// What one attempt ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer that was not a success, with its `Retry-After` header if any.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// No answer: connection refused or reset, or the deadline passed.
    Transport,
}

/// The policy's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then send the same request again.
    RetryAfter(Duration),
    /// Stop; `hint` is how long the server asked us to stay away, when it said.
    GiveUp { hint: Option<Duration> },
}

/// Exponential backoff bounded in attempts and in the longest single pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Pause after the first failure; doubled after each further one.
    pub base_delay: Duration,
    /// The longest pause waited out inside one call.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The action after attempt number `attempt` (1-based) ended with `outcome`.
    pub fn next(&self, attempt: u32, outcome: &Outcome, now: SystemTime) -> Next {
        let (retryable, hint) = match outcome {
            Outcome::Transport => (true, None),
            Outcome::Status {
                status,
                retry_after,
            } => (
                is_retryable_status(*status),
                retry_after
                    .as_deref()
                    .and_then(|value| parse_retry_after(value, now)),
            ),
        };
        if !retryable || attempt >= self.max_attempts {
            return Next::GiveUp { hint };
        }
        let delay = hint.unwrap_or_else(|| self.backoff(attempt));
        if delay > self.max_delay {
            return Next::GiveUp { hint: Some(delay) };
        }
        Next::RetryAfter(delay)
    }

    /// `base · 2^(attempt-1)`, saturating.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor)
    }
}

/// 429 (rate limited) and the 5xx family are transient; every other status is an answer.
pub fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in the
/// past means "now". Anything else is ignored rather than trusted.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: SystemTime = SystemTime::UNIX_EPOCH;

    fn status(status: u16, retry_after: Option<&str>) -> Outcome {
        Outcome::Status {
            status,
            retry_after: retry_after.map(str::to_owned),
        }
    }

    #[test]
    fn server_errors_and_rate_limits_back_off_exponentially() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.next(1, &status(503, None), NOW),
            Next::RetryAfter(Duration::from_millis(500))
        );
        assert_eq!(
            policy.next(2, &status(429, None), NOW),
            Next::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            policy.next(3, &Outcome::Transport, NOW),
            Next::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            policy.next(4, &Outcome::Transport, NOW),
            Next::GiveUp { hint: None }
        );
    }

    #[test]
    fn client_errors_are_answers_not_retried() {
        let policy = RetryPolicy::default();
        for code in [400, 401, 403, 404, 422] {
            assert_eq!(
                policy.next(1, &status(code, None), NOW),
                Next::GiveUp { hint: None },
                "{code}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_is_honoured() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.next(1, &status(429, Some("3")), NOW),
            Next::RetryAfter(Duration::from_secs(3))
        );
    }

    #[test]
    fn retry_after_as_http_date_is_relative_to_now() {
        let policy = RetryPolicy::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777: seven seconds after `now`.
        assert_eq!(
            policy.next(1, &status(503, Some("Sun, 06 Nov 1994 08:49:37 GMT")), now),
            Next::RetryAfter(Duration::from_secs(7))
        );
        let later = now + Duration::from_secs(60);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_pause_longer_than_the_cap_gives_up_with_the_hint() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.next(1, &status(429, Some("120")), NOW),
            Next::GiveUp {
                hint: Some(Duration::from_secs(120))
            }
        );
    }

    #[test]
    fn garbage_retry_after_falls_back_to_backoff() {
        let policy = RetryPolicy::default();
        for value in ["soon", "-1", "1.5", ""] {
            assert_eq!(
                policy.next(1, &status(503, Some(value)), NOW),
                Next::RetryAfter(Duration::from_millis(500)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn huge_attempt_numbers_saturate_instead_of_overflowing() {
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::MAX,
        };
        assert!(matches!(
            policy.next(200, &Outcome::Transport, NOW),
            Next::RetryAfter(_)
        ));
    }
}
