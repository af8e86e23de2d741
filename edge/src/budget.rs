//! The in-flight budget: bytes of chunks that response bodies hold outside the chunk cache,
//! edge-wide, bounded by `TGCDN_INFLIGHT_MAX`.
//!
//! Used by [`crate::body`] (through [`crate::fetch::ChunkSource::budget`]). The cache bounds
//! what it keeps; this bounds what responses keep besides it — read-ahead being fetched and a
//! chunk handed to hyper, which may outlive its eviction while a slow client drains it. A
//! [`Lease`] is taken in bytes before such a chunk is held and released by `Drop` when the
//! last holder lets go, so the count is exact on every path (a client hanging up included).
//! Nothing here waits: a body that finds the budget spent reads ahead less, or sends small
//! copies instead of holding a chunk (see [`crate::body`]).

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default `TGCDN_INFLIGHT_MAX`: bytes of chunks held by responses outside the cache.
pub const DEFAULT_INFLIGHT_MAX: u64 = 128 << 20;

/// The edge-wide budget. Cheap to clone; clones share the same bytes.
#[derive(Debug, Clone)]
pub struct InflightBudget {
    bytes: Arc<Semaphore>,
    capacity: u64,
    counters: BudgetCounters,
}

/// What the budget reports; registered with Prometheus by [`crate::metrics`].
#[derive(Debug, Clone, Default)]
pub struct BudgetCounters {
    /// Bytes leased right now.
    pub held: Gauge,
    /// Leases refused because the budget was spent.
    pub refused: Counter,
}

impl InflightBudget {
    /// A budget of `capacity` bytes (at least one byte; at most what a semaphore counts).
    pub fn new(capacity: u64) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS as u64);
        InflightBudget {
            bytes: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            counters: BudgetCounters::default(),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes leased right now.
    pub fn held(&self) -> u64 {
        self.capacity
            .saturating_sub(self.bytes.available_permits() as u64)
    }

    pub fn counters(&self) -> &BudgetCounters {
        &self.counters
    }

    /// A lease of `bytes` if the budget has them now. A request above the whole budget is
    /// refused rather than clamped: it could never be covered honestly.
    pub fn try_lease(&self, bytes: u64) -> Option<Lease> {
        let Ok(wanted) = u32::try_from(bytes) else {
            self.counters.refused.inc();
            return None;
        };
        match Arc::clone(&self.bytes).try_acquire_many_owned(wanted) {
            Ok(permit) => {
                self.counters.held.inc_by(i64::from(wanted));
                Some(Lease {
                    _permit: permit,
                    bytes: wanted,
                    held: self.counters.held.clone(),
                })
            }
            Err(_) => {
                self.counters.refused.inc();
                None
            }
        }
    }
}

/// Bytes of the budget held until dropped.
#[derive(Debug)]
pub struct Lease {
    _permit: OwnedSemaphorePermit,
    bytes: u32,
    held: Gauge,
}

impl Lease {
    pub fn bytes(&self) -> u64 {
        u64::from(self.bytes)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.held.dec_by(i64::from(self.bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_counted_exactly_and_released_on_drop() {
        let budget = InflightBudget::new(100);
        let a = budget.try_lease(60).unwrap();
        assert_eq!(budget.held(), 60);
        assert!(budget.try_lease(41).is_none());
        let b = budget.try_lease(40).unwrap();
        assert_eq!((budget.held(), budget.counters().held.get()), (100, 100));
        drop(a);
        assert_eq!((budget.held(), budget.counters().held.get()), (40, 40));
        drop(b);
        assert_eq!((budget.held(), budget.counters().held.get()), (0, 0));
        assert_eq!(budget.counters().refused.get(), 1);
    }

    #[test]
    fn more_than_the_whole_budget_is_refused() {
        let budget = InflightBudget::new(10);
        assert!(budget.try_lease(11).is_none());
        assert!(budget.try_lease(u64::MAX).is_none());
        assert_eq!(budget.held(), 0);
    }
}
