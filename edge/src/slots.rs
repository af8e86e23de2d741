//! Fetch slots: at most `total` chunk fetches towards the core at once, edge-wide, and at
//! most `per_client` of them started for any one client (an IPv4 address or an IPv6 /64,
//! see [`crate::client::client_key`]).
//!
//! Used by [`crate::fetch::ChunkSource`] around every upstream chunk call. A plain FIFO of
//! `total` slots lets one address that opens many requests (or many `Range: bytes=N-` and
//! hangs up) fill the queue, so every other viewer waits behind it. Here a fetch first takes
//! one of its client's slots — waiting, FIFO, behind that client's own fetches only — then
//! one of the edge's. With `per_client < total`, one client never holds every slot, so
//! another client's first fetch finds a free one. A fill started for no known client (an
//! in-process caller) takes an edge slot only.
//!
//! Counters, no sleeps: a slot is released by `Drop` on every path, a waiting fetch that is
//! cancelled (its fill aborted) included; a client's entry lives only while it has fetches
//! waiting or running, so the map is bounded by the fills in progress.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client::client_key;

/// The edge's fetch slots. Cheap to clone; clones share the same slots.
#[derive(Debug, Clone)]
pub struct FetchSlots {
    total: Arc<Semaphore>,
    capacity: usize,
    per_client: usize,
    clients: Arc<Mutex<HashMap<IpAddr, ClientSlots>>>,
}

#[derive(Debug)]
struct ClientSlots {
    slots: Arc<Semaphore>,
    /// Fetches of this client waiting for or holding a slot.
    users: usize,
}

/// The slots were closed (never happens: no code closes them); a typed error beats a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fetch slots closed")]
pub struct SlotsClosed;

/// One fetch's slots; released on drop.
#[derive(Debug)]
pub struct Slot {
    _total: OwnedSemaphorePermit,
    _client: Option<ClientSlot>,
}

#[derive(Debug)]
struct ClientSlot {
    _permit: OwnedSemaphorePermit,
    _user: ClientUser,
}

/// A fetch counted in its client's entry from before it waits until it ends.
#[derive(Debug)]
struct ClientUser {
    key: IpAddr,
    clients: Arc<Mutex<HashMap<IpAddr, ClientSlots>>>,
}

impl Drop for ClientUser {
    fn drop(&mut self) {
        let mut clients = lock(&self.clients);
        if let Some(entry) = clients.get_mut(&self.key) {
            entry.users = entry.users.saturating_sub(1);
            if entry.users == 0 {
                clients.remove(&self.key);
            }
        }
    }
}

fn lock(
    clients: &Mutex<HashMap<IpAddr, ClientSlots>>,
) -> MutexGuard<'_, HashMap<IpAddr, ClientSlots>> {
    // Short, non-async sections only; a poisoned map is still consistent.
    clients.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FetchSlots {
    /// `total` slots edge-wide, `per_client` per client (both at least 1).
    pub fn new(total: usize, per_client: usize) -> Self {
        let capacity = total.clamp(1, Semaphore::MAX_PERMITS);
        FetchSlots {
            total: Arc::new(Semaphore::new(capacity)),
            capacity,
            per_client: per_client.clamp(1, capacity),
            clients: Arc::default(),
        }
    }

    /// Waits for a slot of `client` (if known), then for an edge slot.
    pub async fn acquire(&self, client: Option<IpAddr>) -> Result<Slot, SlotsClosed> {
        let client = match client {
            Some(ip) => Some(self.client_slot(client_key(ip)).await?),
            None => None,
        };
        let total = Arc::clone(&self.total)
            .acquire_owned()
            .await
            .map_err(|_| SlotsClosed)?;
        Ok(Slot {
            _total: total,
            _client: client,
        })
    }

    async fn client_slot(&self, key: IpAddr) -> Result<ClientSlot, SlotsClosed> {
        let slots = {
            let mut clients = lock(&self.clients);
            let entry = clients.entry(key).or_insert_with(|| ClientSlots {
                slots: Arc::new(Semaphore::new(self.per_client)),
                users: 0,
            });
            entry.users += 1;
            Arc::clone(&entry.slots)
        };
        // Counted before the wait, so a cancelled wait uncounts itself too.
        let user = ClientUser {
            key,
            clients: Arc::clone(&self.clients),
        };
        let permit = slots.acquire_owned().await.map_err(|_| SlotsClosed)?;
        Ok(ClientSlot {
            _permit: permit,
            _user: user,
        })
    }

    /// Edge slots free right now.
    pub fn free(&self) -> usize {
        self.total.available_permits()
    }

    /// Edge-wide slots in all.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots one client may hold.
    pub fn per_client(&self) -> usize {
        self.per_client
    }

    /// Slots `ip`'s client holds right now (its fetches past their client slot).
    pub fn held_by(&self, ip: IpAddr) -> usize {
        lock(&self.clients)
            .get(&client_key(ip))
            .map_or(0, |entry| self.per_client - entry.slots.available_permits())
    }

    /// Clients with fetches waiting or running (bounded by the fills in progress).
    pub fn clients(&self) -> usize {
        lock(&self.clients).len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    async fn within<T>(fut: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .expect("test step timed out")
    }

    #[tokio::test]
    async fn one_client_never_holds_every_slot() {
        let slots = FetchSlots::new(4, 2);
        let held: Vec<Slot> = vec![
            within(slots.acquire(Some(A))).await.unwrap(),
            within(slots.acquire(Some(A))).await.unwrap(),
        ];
        // A third fetch of A waits for A's own slots, not in the edge's queue.
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Some(A)).await }
        });
        within(async {
            while lock(&slots.clients).get(&A).map(|e| e.users) != Some(3) {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert_eq!((slots.held_by(A), slots.free()), (2, 2));
        // B is served at once.
        let b = within(slots.acquire(Some(B))).await.unwrap();
        assert_eq!(slots.held_by(B), 1);
        drop(held);
        let third = within(waiting).await.unwrap().unwrap();
        assert_eq!(slots.held_by(A), 1);
        drop((third, b));
        assert_eq!((slots.free(), slots.clients()), (4, 0));
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_no_trace() {
        let slots = FetchSlots::new(2, 1);
        let held = within(slots.acquire(Some(A))).await.unwrap();
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Some(A)).await }
        });
        within(async {
            while lock(&slots.clients).get(&A).map(|e| e.users) != Some(2) {
                tokio::task::yield_now().await;
            }
        })
        .await;
        waiting.abort();
        assert!(within(waiting).await.unwrap_err().is_cancelled());
        drop(held);
        assert_eq!((slots.free(), slots.clients()), (2, 0));
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_64() {
        let slots = FetchSlots::new(8, 1);
        let one = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1));
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        let _held = within(slots.acquire(Some(one))).await.unwrap();
        assert_eq!(slots.held_by(other), 1);
        let unknown = within(slots.acquire(None)).await.unwrap();
        assert_eq!(slots.free(), 6);
        drop(unknown);
    }
}
