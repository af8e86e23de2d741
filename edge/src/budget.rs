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
//!
//! A chunk a response sends is also, most of the time, still in the cache: the same
//! allocation counted twice, once by the cache's weigher and once here. [`Holdings`] makes
//! the sum exact: responses holding the same allocation share one [`Hold`] (one lease), and
//! the bytes of holds whose allocation the cache still keeps are reported apart, so the
//! edge's chunk memory is cache bytes + in-flight bytes − cached in-flight bytes.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::Bytes;
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

/// What a chunk is keyed by: the cache's key, generic so this module needs nothing above it.
pub trait ChunkId: Hash + Eq + Copy {}

impl<K: Hash + Eq + Copy> ChunkId for K {}

/// Which allocation a hold covers: the chunk's key and the address of its bytes. The key
/// keeps two files' chunks apart; the address tells a chunk fetched again after an eviction
/// (a second allocation, really in memory twice) from the one still held.
type Allocation<K> = (K, usize);

fn allocation<K>(key: K, chunk: &Bytes) -> Allocation<K> {
    (key, chunk.as_ptr() as usize)
}

/// The chunk allocations responses hold, each once, and how many of their bytes the cache
/// holds too. Cheap to clone; clones share the same table. Owned by the cache
/// ([`crate::cache::ChunkCache::hold`]), whose eviction listener calls [`Self::uncached`].
pub struct Holdings<K: ChunkId> {
    inner: Arc<HoldingsInner<K>>,
}

impl<K: ChunkId> Clone for Holdings<K> {
    fn clone(&self) -> Self {
        Holdings {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: ChunkId> std::fmt::Debug for Holdings<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holdings")
            .field("cached_bytes", &self.inner.cached_bytes.get())
            .finish_non_exhaustive()
    }
}

struct HoldingsInner<K: ChunkId> {
    slots: Mutex<Slots<K>>,
    /// Bytes of live holds: chunks that exist and responses hold. The rest of the leased
    /// bytes are reserved for read-ahead still being fetched (no bytes yet, or part).
    held_bytes: Gauge,
    /// Bytes of live holds whose allocation is also in the cache.
    cached_bytes: Gauge,
}

struct Slots<K: ChunkId> {
    by_allocation: HashMap<Allocation<K>, Slot<K>>,
    next_id: u64,
}

/// One held allocation. `id` tells this hold from a later one of a reused address, so a
/// hold being dropped never clears a slot it no longer owns.
struct Slot<K: ChunkId> {
    hold: Weak<HoldInner<K>>,
    id: u64,
    bytes: u64,
    cached: bool,
}

impl<K: ChunkId> Default for Holdings<K> {
    fn default() -> Self {
        Holdings {
            inner: Arc::new(HoldingsInner {
                slots: Mutex::new(Slots {
                    by_allocation: HashMap::new(),
                    next_id: 0,
                }),
                held_bytes: Gauge::default(),
                cached_bytes: Gauge::default(),
            }),
        }
    }
}

impl<K: ChunkId> Holdings<K> {
    /// The gauge of held bytes the cache also holds (`tgcdn_edge_inflight_cached_bytes`).
    pub fn cached_bytes(&self) -> &Gauge {
        &self.inner.cached_bytes
    }

    /// The gauge of bytes held, each allocation once (`tgcdn_edge_inflight_held_bytes`).
    pub fn held_bytes(&self) -> &Gauge {
        &self.inner.held_bytes
    }

    /// Allocations held right now (tests).
    pub fn held(&self) -> usize {
        self.slots().by_allocation.len()
    }

    /// A hold on `chunk` (chunk `key`, whole): shared with whoever holds this allocation
    /// already — `lease`, if given, is then returned to the budget —, otherwise covered by
    /// `lease` or a new lease of `chunk.len()` bytes from `budget`; `None` when the budget
    /// is spent. `in_cache` says whether the cache holds this very allocation; it is asked
    /// after the hold is registered as cached, so an eviction racing with this call is
    /// never missed (the listener or this check clears it, and clearing twice is harmless).
    pub fn hold(
        &self,
        key: K,
        chunk: &Bytes,
        lease: Option<Lease>,
        budget: &InflightBudget,
        in_cache: impl FnOnce() -> bool,
    ) -> Option<Hold<K>> {
        let at = allocation(key, chunk);
        let mut slots = self.slots();
        if let Some(shared) = slots.by_allocation.get(&at).and_then(|s| s.hold.upgrade()) {
            return Some(Hold(shared));
        }
        let lease = lease.or_else(|| budget.try_lease(chunk.len() as u64))?;
        let bytes = lease.bytes();
        let id = slots.next_id;
        slots.next_id += 1;
        let hold = Arc::new(HoldInner {
            at,
            id,
            lease,
            holdings: Arc::downgrade(&self.inner),
        });
        let slot = Slot {
            hold: Arc::downgrade(&hold),
            id,
            bytes,
            cached: true,
        };
        self.inner.cached_bytes.inc_by(gauge_bytes(bytes));
        self.inner.held_bytes.inc_by(gauge_bytes(bytes));
        // A dead hold of the same address whose drop has not run yet: its drop will find
        // another id and leave the slot alone, so uncount it here.
        if let Some(dead) = slots.by_allocation.insert(at, slot) {
            self.inner.forget(&dead);
        }
        drop(slots);
        if !in_cache() {
            self.uncached(key, chunk);
        }
        Some(Hold(hold))
    }

    /// The cache no longer holds this allocation of chunk `key` (evicted, invalidated or
    /// replaced): its holders' bytes are in memory once, as in-flight bytes only.
    pub fn uncached(&self, key: K, chunk: &Bytes) {
        let mut slots = self.slots();
        if let Some(slot) = slots.by_allocation.get_mut(&allocation(key, chunk))
            && std::mem::take(&mut slot.cached)
        {
            self.inner.cached_bytes.dec_by(gauge_bytes(slot.bytes));
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots<K>> {
        lock(&self.inner.slots)
    }
}

impl<K: ChunkId> HoldingsInner<K> {
    /// Uncounts a slot leaving the table.
    fn forget(&self, slot: &Slot<K>) {
        self.held_bytes.dec_by(gauge_bytes(slot.bytes));
        if slot.cached {
            self.cached_bytes.dec_by(gauge_bytes(slot.bytes));
        }
    }
}

/// The table is only touched in short, non-async sections that leave it consistent, so a
/// poisoned lock (a panic elsewhere) is taken over rather than spread.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lease sizes are `u32`, so they always fit a gauge.
fn gauge_bytes(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// One allocation held by responses, with the lease covering it; released when the last
/// response holding it lets go. Cheap to clone (clones are the same hold).
pub struct Hold<K: ChunkId>(Arc<HoldInner<K>>);

impl<K: ChunkId> Clone for Hold<K> {
    fn clone(&self) -> Self {
        Hold(Arc::clone(&self.0))
    }
}

impl<K: ChunkId> std::fmt::Debug for Hold<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl<K: ChunkId> Hold<K> {
    /// Bytes of budget this hold covers (once, however many responses share it).
    pub fn bytes(&self) -> u64 {
        self.0.lease.bytes()
    }
}

struct HoldInner<K: ChunkId> {
    at: Allocation<K>,
    id: u64,
    lease: Lease,
    /// Weak, so a hold outliving its table (a test dropping the cache first) is harmless.
    holdings: Weak<HoldingsInner<K>>,
}

impl<K: ChunkId> Drop for HoldInner<K> {
    fn drop(&mut self) {
        let Some(holdings) = self.holdings.upgrade() else {
            return;
        };
        let mut slots = lock(&holdings.slots);
        let ours = slots
            .by_allocation
            .get(&self.at)
            .is_some_and(|slot| slot.id == self.id);
        if ours && let Some(slot) = slots.by_allocation.remove(&self.at) {
            holdings.forget(&slot);
        }
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

    fn chunk(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    /// (in-flight bytes, of them also cached, allocations held); the held bytes must be
    /// the in-flight ones, as no lease in these tests is a bare reservation.
    fn counts(budget: &InflightBudget, holdings: &Holdings<u64>) -> (u64, i64, usize) {
        assert_eq!(holdings.held_bytes().get(), budget.held() as i64);
        (
            budget.held(),
            holdings.cached_bytes().get(),
            holdings.held(),
        )
    }

    #[test]
    fn a_cached_chunk_held_then_evicted_is_counted_once_throughout() {
        let budget = InflightBudget::new(1000);
        let holdings = Holdings::default();
        let bytes = chunk(100);
        let hold = holdings.hold(1, &bytes, None, &budget, || true).unwrap();
        // In the cache and held: cache + in-flight − cached = one copy.
        assert_eq!(counts(&budget, &holdings), (100, 100, 1));
        holdings.uncached(1, &bytes);
        // Evicted while still held: in-flight only.
        assert_eq!(counts(&budget, &holdings), (100, 0, 1));
        holdings.uncached(1, &bytes);
        assert_eq!(counts(&budget, &holdings), (100, 0, 1), "evicting twice");
        drop(hold);
        assert_eq!(counts(&budget, &holdings), (0, 0, 0));
    }

    #[test]
    fn a_hold_dropped_before_its_eviction_leaves_nothing_behind() {
        let budget = InflightBudget::new(1000);
        let holdings = Holdings::default();
        let bytes = chunk(100);
        let hold = holdings.hold(1, &bytes, None, &budget, || true).unwrap();
        drop(hold);
        assert_eq!(counts(&budget, &holdings), (0, 0, 0));
        // The cache evicts it later: nothing held, nothing to uncount.
        holdings.uncached(1, &bytes);
        assert_eq!(counts(&budget, &holdings), (0, 0, 0));
    }

    #[test]
    fn two_responses_holding_one_chunk_share_one_lease() {
        let budget = InflightBudget::new(1000);
        let holdings = Holdings::default();
        let bytes = chunk(100);
        let first = holdings.hold(1, &bytes, None, &budget, || true).unwrap();
        // The second came with a read-ahead lease of its own: returned, not kept.
        let lease = budget.try_lease(100);
        let second = holdings
            .hold(1, &bytes.clone(), lease, &budget, || true)
            .unwrap();
        assert_eq!(counts(&budget, &holdings), (100, 100, 1));
        assert_eq!(second.bytes(), 100);
        holdings.uncached(1, &bytes);
        drop(first);
        assert_eq!(counts(&budget, &holdings), (100, 0, 1));
        drop(second);
        assert_eq!(counts(&budget, &holdings), (0, 0, 0));
    }

    #[test]
    fn a_chunk_fetched_again_after_eviction_is_a_second_allocation() {
        let budget = InflightBudget::new(1000);
        let holdings = Holdings::default();
        let (old, new) = (chunk(100), chunk(100));
        let old_hold = holdings.hold(1, &old, None, &budget, || true).unwrap();
        holdings.uncached(1, &old);
        let new_hold = holdings.hold(1, &new, None, &budget, || true).unwrap();
        // Two copies in memory: both leased, only the new one in the cache.
        assert_eq!(counts(&budget, &holdings), (200, 100, 2));
        drop(old_hold);
        assert_eq!(counts(&budget, &holdings), (100, 100, 1));
        drop(new_hold);
        assert_eq!(counts(&budget, &holdings), (0, 0, 0));
    }

    #[test]
    fn a_chunk_the_cache_no_longer_has_is_never_counted_as_cached() {
        let budget = InflightBudget::new(1000);
        let holdings = Holdings::default();
        let bytes = chunk(100);
        // Evicted between the body's lookup and the hold (or never cached).
        let hold = holdings.hold(1, &bytes, None, &budget, || false).unwrap();
        assert_eq!(counts(&budget, &holdings), (100, 0, 1));
        drop(hold);
        assert_eq!(counts(&budget, &holdings), (0, 0, 0));
    }

    #[test]
    fn a_spent_budget_refuses_new_holds_but_shares_existing_ones() {
        let budget = InflightBudget::new(150);
        let holdings = Holdings::default();
        let (a, b) = (chunk(100), chunk(100));
        let held = holdings.hold(1, &a, None, &budget, || true).unwrap();
        assert!(holdings.hold(2, &b, None, &budget, || true).is_none());
        let shared = holdings.hold(1, &a, None, &budget, || true).unwrap();
        assert_eq!(counts(&budget, &holdings), (100, 100, 1));
        drop((held, shared));
        assert_eq!(counts(&budget, &holdings), (0, 0, 0));
        assert_eq!(budget.counters().refused.get(), 1);
    }
}
