//! The emulator's clock: real monotonic time plus an offset that tests push forward with
//! [`crate::EmulatorHandle::advance_clock`], so that anything the emulator ages (file
//! references, flood waits) can expire at once instead of after a real wait.
//!
//! Shared by [`crate::World`] and [`crate::Faults`]; every clone reads the same offset.
//! Message dates (Unix seconds) follow the wall clock and are not affected.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Cheaply cloned handle to one emulator's time.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    origin: Instant,
    skew_ms: Arc<AtomicU64>,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            skew_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Clock {
    fn skew(&self) -> Duration {
        Duration::from_millis(self.skew_ms.load(Ordering::Acquire))
    }

    /// The emulator's present, as an instant on the real monotonic clock's scale.
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + self.skew()
    }

    /// Milliseconds since this clock was made, as the emulator sees them.
    pub(crate) fn elapsed_ms(&self) -> u64 {
        (self.origin.elapsed() + self.skew()).as_millis() as u64
    }

    /// Moves the emulator's time forward by `by` (millisecond resolution).
    pub(crate) fn advance(&self, by: Duration) {
        let ms = by.as_millis().min(u128::from(u64::MAX)) as u64;
        self.skew_ms.fetch_add(ms, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::default();
        let other = clock.clone();
        let before = other.elapsed_ms();
        let instant = other.now();
        clock.advance(Duration::from_secs(3600));
        assert!(other.elapsed_ms() >= before + 3_600_000);
        assert!(other.now() >= instant + Duration::from_secs(3600));
    }
}
