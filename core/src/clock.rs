//! Wall-clock seconds since the Unix epoch, for records that outlive the process (edge
//! registry rows, cached answers on disk). Everything that only measures time uses
//! `Instant`; this is the one place the core reads `SystemTime`, and a leaf.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 on a clock before 1970, saturated far in the future.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
