//! In-flight chunk requests per bot and per connection, counted by an RAII guard.
//!
//! A [`LoadGuard`] is taken when a request is handed to a connection and gives its count back
//! when dropped — on success, error, timeout, cancellation or panic alike. (An older bot kept
//! the decrement in its body generator, which HEAD requests never ran: its counters drifted
//! upwards forever and skewed every later choice.) The fetch path holds the guard for exactly
//! as long as the Telegram call is outstanding; [`super::select`] reads the counters.
//!
//! Lock-free: plain atomics, relaxed ordering (the numbers steer a heuristic, they don't
//! guard memory).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One bot's counters: a total and one per download connection.
#[derive(Debug)]
pub struct LoadCounters {
    in_flight: AtomicUsize,
    per_connection: Box<[AtomicUsize]>,
    started: AtomicU64,
}

/// A point-in-time copy of a bot's counters, for selection, metrics and the admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSnapshot {
    pub in_flight: usize,
    pub per_connection: Vec<usize>,
    /// Requests started since the process began (a rate when sampled twice).
    pub started: u64,
}

impl LoadCounters {
    /// Counters for a bot with `connections` download connections (at least one is kept).
    pub fn new(connections: usize) -> Arc<Self> {
        let per_connection = (0..connections.max(1))
            .map(|_| AtomicUsize::new(0))
            .collect();
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            per_connection,
            started: AtomicU64::new(0),
        })
    }

    pub fn connections(&self) -> usize {
        self.per_connection.len()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn connection_in_flight(&self, connection: usize) -> Option<usize> {
        self.per_connection
            .get(connection)
            .map(|c| c.load(Ordering::Relaxed))
    }

    pub fn snapshot(&self) -> LoadSnapshot {
        LoadSnapshot {
            in_flight: self.in_flight(),
            per_connection: self
                .per_connection
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            started: self.started.load(Ordering::Relaxed),
        }
    }

    /// Counts one request on `connection` until the returned guard drops; `None` if the bot
    /// has no such connection.
    pub fn acquire(self: &Arc<Self>, connection: usize) -> Option<LoadGuard> {
        let slot = self.per_connection.get(connection)?;
        slot.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        Some(LoadGuard {
            counters: Arc::clone(self),
            connection,
        })
    }
}

/// Holds one unit of load on a bot and one of its connections; gives it back on drop.
#[derive(Debug)]
#[must_use = "the load is released as soon as the guard is dropped"]
pub struct LoadGuard {
    counters: Arc<LoadCounters>,
    connection: usize,
}

impl LoadGuard {
    pub fn connection(&self) -> usize {
        self.connection
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        // The index was checked in `acquire`, so the slot exists.
        if let Some(slot) = self.counters.per_connection.get(self.connection) {
            slot.fetch_sub(1, Ordering::Relaxed);
        }
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn guard_counts_until_dropped() {
        let counters = LoadCounters::new(3);
        let a = counters.acquire(0).unwrap();
        let b = counters.acquire(2).unwrap();
        let c = counters.acquire(2).unwrap();
        assert_eq!(counters.in_flight(), 3);
        assert_eq!(counters.snapshot().per_connection, vec![1, 0, 2]);
        drop(b);
        assert_eq!(counters.snapshot().per_connection, vec![1, 0, 1]);
        drop((a, c));
        assert_eq!(counters.in_flight(), 0);
        assert_eq!(counters.snapshot().started, 3);
    }

    #[test]
    fn unknown_connection_is_refused_without_counting() {
        let counters = LoadCounters::new(2);
        assert!(counters.acquire(2).is_none());
        assert_eq!(counters.in_flight(), 0);
        assert_eq!(counters.connection_in_flight(2), None);
    }

    #[test]
    fn zero_connections_still_has_one() {
        assert_eq!(LoadCounters::new(0).connections(), 1);
    }

    #[tokio::test]
    async fn guard_is_released_when_the_task_is_cancelled_or_panics() {
        let counters = LoadCounters::new(1);
        let held = Arc::clone(&counters);
        let task = tokio::spawn(async move {
            let _guard = held.acquire(0);
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        while counters.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        task.abort();
        let _ = task.await;
        assert_eq!(counters.in_flight(), 0);

        let held = Arc::clone(&counters);
        let panicking = tokio::spawn(async move {
            let _guard = held.acquire(0);
            panic!("request failed hard");
        });
        assert!(panicking.await.is_err());
        assert_eq!(counters.in_flight(), 0);
    }

    proptest! {
        #[test]
        fn any_interleaving_of_guards_returns_to_zero(
            ops in proptest::collection::vec((0usize..4, any::<bool>()), 0..200)
        ) {
            let counters = LoadCounters::new(4);
            let mut held: Vec<LoadGuard> = Vec::new();
            for (connection, release) in ops {
                if release && !held.is_empty() {
                    drop(held.swap_remove(connection % held.len()));
                } else {
                    held.push(counters.acquire(connection).unwrap());
                }
                let snapshot = counters.snapshot();
                prop_assert_eq!(snapshot.in_flight, held.len());
                prop_assert_eq!(snapshot.per_connection.iter().sum::<usize>(), held.len());
            }
            drop(held);
            prop_assert_eq!(counters.snapshot().per_connection, vec![0; 4]);
            prop_assert_eq!(counters.in_flight(), 0);
        }
    }
}
