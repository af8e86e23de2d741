//! Small statistics for bench output: percentiles of latencies and MiB/s.
//!
//! Pure functions, no I/O. Called by the bench binaries.

use std::time::Duration;

/// The `q`-quantile (0..=1) of `samples` by nearest rank; zero for no samples.
pub fn percentile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Milliseconds with two decimals, for tables.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// MiB per second moved in `elapsed`.
pub fn mib_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / crate::MIB as f64 / elapsed.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.5), Duration::from_millis(5));
        assert_eq!(percentile(&samples, 0.9), Duration::from_millis(9));
        assert_eq!(percentile(&samples, 1.0), Duration::from_millis(10));
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn throughput() {
        assert_eq!(mib_per_sec(crate::MIB * 10, Duration::from_secs(2)), 5.0);
    }
}
