//! Fetch slots: at most `capacity` chunk fetches towards the core at once, edge-wide, shared
//! fairly between clients (an IPv4 address or an IPv6 /64, see
//! [`crate::client::client_key`]), demand before read-ahead.
//!
//! Used by [`crate::fetch::ChunkSource`] around every upstream chunk call. The decisions are
//! made by [`FairPolicy`], pure (`now` passed in) and unit-tested on its own; [`FetchSlots`]
//! is the glue: a lock around the policy and one `oneshot` per waiting fetch. Two rules:
//!
//! * **Fair share.** A client alone may hold up to `per_client` slots (about what the core
//!   serves at once: one viewer's read-ahead needs that many). While another client is
//!   active (holds or waits for a slot, or got one within [`ACTIVE_FOR`]), each client is
//!   held to its share, `per_client / active clients` but at least `fair_share`: a client
//!   over it gets no new slot until it is under it. Fills already running are not stopped;
//!   the flooder shrinks as they finish, so the core's Telegram connections serve the other
//!   viewer too (#17: a fixed cap of 4 did that, but cost one cold viewer 40 % of its speed).
//! * **Order.** A free slot goes to a waiting *demand* fill (the chunk a response is blocked
//!   on) before any *read-ahead* fill; within a class, to the client holding fewest slots
//!   (max-min fairness), then to the oldest waiter.
//! * **Streams, not floods.** One stream has one demand fill at a time and reads ahead with
//!   the rest of its allowance. A client holds at most `fair_share` demand fills (more is
//!   many responses at once: a flood of `Range: bytes=N-`, or a crowd behind one address),
//!   and its read-ahead waits while its own demand fills wait, so a flooder with hundreds of
//!   requests holds `fair_share` slots, not `per_client`, even before anyone else shows up.
//!
//! Counters, no sleeps: a slot is released by `Drop` on every path, a waiting fetch that is
//! cancelled (its fill aborted) included. A client's entry lives while it has fetches
//! waiting or running, and [`ACTIVE_FOR`] after; entries are pruned on every call, so the
//! map is bounded by the fills in progress plus the clients of the last second.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::client::client_key;

/// How long a client still counts as active (sharing the slots) after its last grant: a
/// viewer between two chunks is still watching.
pub const ACTIVE_FOR: Duration = Duration::from_secs(1);

/// Why a fill wants a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FillClass {
    /// A response waits for this chunk right now.
    Demand,
    /// Speculative: a response will want this chunk later.
    ReadAhead,
}

/// A ticket of [`FairPolicy`]: one fetch, waiting or holding a slot.
pub type TicketId = u64;

#[derive(Debug, Clone, Copy)]
struct Ticket {
    client: Option<IpAddr>,
    class: FillClass,
    holding: bool,
}

#[derive(Debug, Clone, Copy)]
struct ClientState {
    held: usize,
    /// Of `held`, demand fills.
    demand_held: usize,
    waiting: usize,
    /// Of `waiting`, demand fills.
    demand_waiting: usize,
    last_grant: Option<Instant>,
}

/// The slot policy, pure: every call takes `now` and returns the tickets it granted.
#[derive(Debug)]
pub struct FairPolicy {
    capacity: usize,
    per_client: usize,
    fair_share: usize,
    held: usize,
    next_id: TicketId,
    tickets: HashMap<TicketId, Ticket>,
    /// Waiting tickets, oldest first.
    waiting: VecDeque<TicketId>,
    clients: HashMap<IpAddr, ClientState>,
}

impl FairPolicy {
    /// `capacity` slots edge-wide, `per_client` for a client alone, at least `fair_share`
    /// for each client when several are active (all clamped to 1..=capacity).
    pub fn new(capacity: usize, per_client: usize, fair_share: usize) -> Self {
        let capacity = capacity.max(1);
        let per_client = per_client.clamp(1, capacity);
        FairPolicy {
            capacity,
            per_client,
            fair_share: fair_share.clamp(1, per_client),
            held: 0,
            next_id: 0,
            tickets: HashMap::new(),
            waiting: VecDeque::new(),
            clients: HashMap::new(),
        }
    }

    /// A fetch of `client` (already a [`client_key`], or none: an in-process caller) asks for
    /// a slot. Returns its ticket and every ticket granted by this call (its own included
    /// when it may start at once).
    pub fn request(
        &mut self,
        client: Option<IpAddr>,
        class: FillClass,
        now: Instant,
    ) -> (TicketId, Vec<TicketId>) {
        let id = self.next_id;
        self.next_id += 1;
        self.tickets.insert(
            id,
            Ticket {
                client,
                class,
                holding: false,
            },
        );
        if let Some(key) = client {
            let state = self.clients.entry(key).or_insert(ClientState {
                held: 0,
                demand_held: 0,
                waiting: 0,
                demand_waiting: 0,
                last_grant: None,
            });
            state.waiting += 1;
            if class == FillClass::Demand {
                state.demand_waiting += 1;
            }
        }
        self.waiting.push_back(id);
        (id, self.dispatch(now))
    }

    /// Ticket `id` is done: its fetch ended (slot released) or its wait was cancelled.
    /// Returns the tickets granted in its place.
    pub fn finish(&mut self, id: TicketId, now: Instant) -> Vec<TicketId> {
        let Some(ticket) = self.tickets.remove(&id) else {
            return Vec::new();
        };
        if ticket.holding {
            self.held = self.held.saturating_sub(1);
        } else {
            self.waiting.retain(|&waiting| waiting != id);
        }
        if let Some(state) = ticket.client.and_then(|key| self.clients.get_mut(&key)) {
            let demand = usize::from(ticket.class == FillClass::Demand);
            if ticket.holding {
                state.held = state.held.saturating_sub(1);
                state.demand_held = state.demand_held.saturating_sub(demand);
            } else {
                state.waiting = state.waiting.saturating_sub(1);
                state.demand_waiting = state.demand_waiting.saturating_sub(demand);
            }
        }
        self.dispatch(now)
    }

    /// Whether `id` holds a slot.
    pub fn holds(&self, id: TicketId) -> bool {
        self.tickets.get(&id).is_some_and(|ticket| ticket.holding)
    }

    /// Slots free right now.
    pub fn free(&self) -> usize {
        self.capacity - self.held
    }

    /// Slots the client `key` holds.
    pub fn held_by(&self, key: IpAddr) -> usize {
        self.clients.get(&key).map_or(0, |state| state.held)
    }

    /// Clients with an entry (fetches in progress or active within [`ACTIVE_FOR`]).
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// The most slots `key` may hold now, given the clients active at `now`.
    pub fn limit(&self, key: IpAddr, now: Instant) -> usize {
        let others = self
            .clients
            .iter()
            .filter(|(other, state)| **other != key && is_active(state, now))
            .count();
        if others == 0 {
            self.per_client
        } else {
            (self.per_client / (others + 1)).max(self.fair_share)
        }
    }

    /// Grants free slots to the best eligible waiters; returns them.
    fn dispatch(&mut self, now: Instant) -> Vec<TicketId> {
        self.prune(now);
        let mut granted = Vec::new();
        while self.held < self.capacity {
            let Some(position) = self.best_waiter(now) else {
                break;
            };
            let Some(id) = self.waiting.remove(position) else {
                break;
            };
            let Some(ticket) = self.tickets.get_mut(&id) else {
                continue;
            };
            ticket.holding = true;
            self.held += 1;
            if let Some(state) = ticket.client.and_then(|key| self.clients.get_mut(&key)) {
                let demand = usize::from(ticket.class == FillClass::Demand);
                state.waiting = state.waiting.saturating_sub(1);
                state.demand_waiting = state.demand_waiting.saturating_sub(demand);
                state.held += 1;
                state.demand_held += demand;
                state.last_grant = Some(now);
            }
            granted.push(id);
        }
        granted
    }

    /// The position in `waiting` of the next ticket to grant: demand first, then the client
    /// holding fewest slots, then the oldest. Skipped: a client at its limit, a demand fill
    /// of a client holding `fair_share` of them, a read-ahead fill of a client whose demand
    /// fills wait.
    fn best_waiter(&self, now: Instant) -> Option<usize> {
        let mut limits: HashMap<IpAddr, usize> = HashMap::new();
        let mut best: Option<(usize, (FillClass, usize))> = None;
        for (position, id) in self.waiting.iter().enumerate() {
            let Some(ticket) = self.tickets.get(id) else {
                continue;
            };
            let held = match ticket
                .client
                .and_then(|key| Some((key, self.clients.get(&key)?)))
            {
                Some((key, state)) => {
                    let limit = *limits.entry(key).or_insert_with(|| self.limit(key, now));
                    let allowed = state.held < limit
                        && match ticket.class {
                            // Many responses at once is a flood (or a crowd behind one
                            // address), not one stream: its demand fills are capped.
                            FillClass::Demand => state.demand_held < self.fair_share,
                            // A client's own waiting demand goes first.
                            FillClass::ReadAhead => state.demand_waiting == 0,
                        };
                    if !allowed {
                        continue;
                    }
                    state.held
                }
                None => 0,
            };
            let rank = (ticket.class, held);
            // Strictly better only: among equals the oldest (first seen) wins.
            if best.is_none_or(|(_, best_rank)| rank < best_rank) {
                best = Some((position, rank));
            }
        }
        best.map(|(position, _)| position)
    }

    /// Drops the entries of clients with nothing in progress and no grant within
    /// [`ACTIVE_FOR`].
    fn prune(&mut self, now: Instant) {
        self.clients.retain(|_, state| is_active(state, now));
    }
}

fn is_active(state: &ClientState, now: Instant) -> bool {
    state.held > 0
        || state.waiting > 0
        || state
            .last_grant
            .is_some_and(|at| now.saturating_duration_since(at) < ACTIVE_FOR)
}

/// The edge's fetch slots. Cheap to clone; clones share the same slots.
#[derive(Debug, Clone)]
pub struct FetchSlots {
    shared: Arc<Mutex<Shared>>,
    capacity: usize,
    per_client: usize,
}

#[derive(Debug)]
struct Shared {
    policy: FairPolicy,
    wakers: HashMap<TicketId, oneshot::Sender<()>>,
}

impl Shared {
    fn wake(&mut self, granted: Vec<TicketId>) {
        for id in granted {
            if let Some(waker) = self.wakers.remove(&id) {
                // A waiter gone meanwhile finishes its ticket on drop, releasing the slot.
                let _ = waker.send(());
            }
        }
    }
}

/// The slots were closed (never happens: no code closes them); a typed error beats a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fetch slots closed")]
pub struct SlotsClosed;

/// One fetch's ticket, waiting or holding; finished (slot released, or wait cancelled) on
/// drop.
#[derive(Debug)]
pub struct Slot {
    id: TicketId,
    shared: Arc<Mutex<Shared>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut shared = lock(&self.shared);
        shared.wakers.remove(&self.id);
        let granted = shared.policy.finish(self.id, Instant::now());
        shared.wake(granted);
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Short, non-async sections only; a poisoned policy is still consistent.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FetchSlots {
    /// `total` slots edge-wide, `per_client` for a client alone (both at least 1); when
    /// several clients are active, a share of at least 4 each (see [`Self::with_fair_share`]).
    pub fn new(total: usize, per_client: usize) -> Self {
        FetchSlots::with_fair_share(total, per_client, DEFAULT_FAIR_SHARE)
    }

    /// Like [`Self::new`], a client keeping at least `fair_share` slots while others are
    /// active.
    pub fn with_fair_share(total: usize, per_client: usize, fair_share: usize) -> Self {
        let policy = FairPolicy::new(total, per_client, fair_share);
        FetchSlots {
            capacity: policy.capacity,
            per_client: policy.per_client,
            shared: Arc::new(Mutex::new(Shared {
                policy,
                wakers: HashMap::new(),
            })),
        }
    }

    /// Waits for a slot for a fill of `class` started for `client` (if known).
    pub async fn acquire(
        &self,
        client: Option<IpAddr>,
        class: FillClass,
    ) -> Result<Slot, SlotsClosed> {
        let (slot, granted) = {
            let mut shared = lock(&self.shared);
            let (id, granted) =
                shared
                    .policy
                    .request(client.map(client_key), class, Instant::now());
            let slot = Slot {
                id,
                shared: Arc::clone(&self.shared),
            };
            let mine = granted.contains(&id);
            shared.wake(granted);
            if mine {
                return Ok(slot);
            }
            let (waker, granted) = oneshot::channel();
            shared.wakers.insert(id, waker);
            (slot, granted)
        };
        // Dropping this future drops `slot`, which finishes the ticket: a cancelled wait
        // leaves no trace, a grant that raced the cancellation is released.
        granted.await.map_err(|_| SlotsClosed)?;
        Ok(slot)
    }

    /// Edge slots free right now.
    pub fn free(&self) -> usize {
        lock(&self.shared).policy.free()
    }

    /// Edge-wide slots in all.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots a client alone may hold.
    pub fn per_client(&self) -> usize {
        self.per_client
    }

    /// Slots `ip`'s client holds right now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        lock(&self.shared).policy.held_by(client_key(ip))
    }

    /// Fetches waiting for a slot right now.
    pub fn waiting(&self) -> usize {
        lock(&self.shared).policy.waiting.len()
    }

    /// Clients with fetches in progress or active within [`ACTIVE_FOR`].
    pub fn clients(&self) -> usize {
        lock(&self.shared).policy.clients()
    }
}

/// The default least share of a client while others are active: with 4 flooder fills in
/// flight the core still answered another viewer within 1.5× its idle time (#17).
pub const DEFAULT_FAIR_SHARE: usize = 4;

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const C: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3));

    fn take(policy: &mut FairPolicy, client: IpAddr, class: FillClass, now: Instant) -> TicketId {
        let (id, granted) = policy.request(Some(client), class, now);
        assert_eq!(granted, vec![id], "{client} should start at once");
        id
    }

    #[test]
    fn a_client_alone_uses_its_whole_allowance() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(64, 16, 4);
        for _ in 0..16 {
            take(&mut policy, A, FillClass::ReadAhead, now);
        }
        let (_, granted) = policy.request(Some(A), FillClass::Demand, now);
        assert!(granted.is_empty());
        assert_eq!((policy.held_by(A), policy.free()), (16, 48));
    }

    #[test]
    fn another_client_is_served_at_once_and_caps_the_first_to_its_share() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(64, 16, 4);
        // One stream: the chunk it sends next, and read-ahead.
        let held: Vec<TicketId> = (0..16)
            .map(|i| {
                let class = if i == 0 {
                    FillClass::Demand
                } else {
                    FillClass::ReadAhead
                };
                take(&mut policy, A, class, now)
            })
            .collect();
        let (a_waits, granted) = policy.request(Some(A), FillClass::ReadAhead, now);
        assert!(granted.is_empty());
        take(&mut policy, B, FillClass::Demand, now);
        assert_eq!(policy.limit(A, now), 8);
        // A finishes fills; it gets no new slot until it is under its share of 8.
        for (done, id) in held.iter().take(8).enumerate() {
            assert!(policy.finish(*id, now).is_empty(), "after {done} finished");
        }
        assert_eq!(policy.finish(held[8], now), vec![a_waits]);
    }

    #[test]
    fn many_responses_of_one_client_hold_at_most_the_fair_share_of_demand_fills() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(64, 16, 4);
        let demands: Vec<TicketId> = (0..4)
            .map(|_| take(&mut policy, A, FillClass::Demand, now))
            .collect();
        let (fifth, granted) = policy.request(Some(A), FillClass::Demand, now);
        assert!(granted.is_empty());
        let (sixth, _) = policy.request(Some(A), FillClass::Demand, now);
        // Its read-ahead waits behind its own waiting demand fills.
        let (ahead, granted) = policy.request(Some(A), FillClass::ReadAhead, now);
        assert!(granted.is_empty());
        assert_eq!(policy.held_by(A), 4);
        assert_eq!(policy.finish(demands[0], now), vec![fifth]);
        // No demand waits once the sixth starts: the read-ahead starts with it.
        assert_eq!(policy.finish(demands[1], now), vec![sixth, ahead]);
    }

    #[test]
    fn the_share_never_falls_under_the_floor() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(64, 16, 4);
        take(&mut policy, B, FillClass::Demand, now);
        take(&mut policy, C, FillClass::Demand, now);
        assert_eq!(policy.limit(A, now), 5);
        let mut policy = FairPolicy::new(64, 16, 8);
        take(&mut policy, B, FillClass::Demand, now);
        take(&mut policy, C, FillClass::Demand, now);
        assert_eq!(policy.limit(A, now), 8);
    }

    #[test]
    fn a_client_stays_active_for_a_while_after_its_last_grant() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(64, 16, 4);
        let b = take(&mut policy, B, FillClass::Demand, now);
        policy.finish(b, now);
        assert_eq!(policy.limit(A, now + ACTIVE_FOR / 2), 8);
        assert_eq!(policy.limit(A, now + ACTIVE_FOR), 16);
        // A later call forgets B.
        take(&mut policy, A, FillClass::Demand, now + ACTIVE_FOR);
        assert_eq!(policy.clients(), 1);
    }

    #[test]
    fn demand_goes_before_read_ahead_then_fewest_held_then_oldest() {
        let now = Instant::now();
        // A share of 4 of 4: no client is held back, only the order is tested.
        let mut policy = FairPolicy::new(4, 4, 4);
        let first = take(&mut policy, A, FillClass::Demand, now);
        take(&mut policy, A, FillClass::Demand, now);
        take(&mut policy, B, FillClass::Demand, now);
        let last = take(&mut policy, C, FillClass::Demand, now);
        // Full. Queue: A read-ahead, B read-ahead, A demand, C demand.
        let (a_ahead, _) = policy.request(Some(A), FillClass::ReadAhead, now);
        let (b_ahead, _) = policy.request(Some(B), FillClass::ReadAhead, now);
        let (a_demand, _) = policy.request(Some(A), FillClass::Demand, now);
        let (c_demand, _) = policy.request(Some(C), FillClass::Demand, now);
        // C holds 1 and A 2: C's demand first, then A's (A at 1 by then), then the
        // read-ahead of B (1 held) before A's (2 held).
        assert_eq!(policy.finish(last, now), vec![c_demand]);
        assert_eq!(policy.finish(first, now), vec![a_demand]);
        assert_eq!(policy.finish(c_demand, now), vec![b_ahead]);
        assert_eq!(policy.finish(b_ahead, now), vec![a_ahead]);
    }

    #[test]
    fn a_cancelled_wait_releases_nothing_and_a_cancelled_holder_its_slot() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(1, 1, 1);
        let held = take(&mut policy, A, FillClass::Demand, now);
        let (waiting, _) = policy.request(Some(A), FillClass::Demand, now);
        assert!(policy.finish(waiting, now).is_empty());
        assert_eq!(policy.free(), 0);
        assert!(policy.finish(held, now).is_empty());
        assert_eq!(policy.free(), 1);
        assert_eq!(policy.clients(), 1, "active for a while after its grant");
        assert!(
            policy.finish(held, now).is_empty(),
            "finishing twice is harmless"
        );
        assert_eq!(policy.free(), 1);
    }

    #[test]
    fn an_unknown_caller_has_no_client_limit() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(3, 1, 1);
        for _ in 0..3 {
            let (id, granted) = policy.request(None, FillClass::ReadAhead, now);
            assert_eq!(granted, vec![id]);
        }
        assert_eq!((policy.free(), policy.clients()), (0, 0));
    }

    async fn within<T>(fut: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .expect("test step timed out")
    }

    #[tokio::test]
    async fn a_waiting_fetch_is_woken_when_a_slot_frees() {
        let slots = FetchSlots::with_fair_share(2, 1, 1);
        let held = within(slots.acquire(Some(A), FillClass::Demand))
            .await
            .unwrap();
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Some(A), FillClass::Demand).await }
        });
        within(async {
            while slots.waiting() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        // B is served at once.
        let b = within(slots.acquire(Some(B), FillClass::Demand))
            .await
            .unwrap();
        drop(held);
        let second = within(waiting).await.unwrap().unwrap();
        assert_eq!(slots.held_by(A), 1);
        drop((second, b));
        assert_eq!(slots.free(), 2);
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_no_trace() {
        let slots = FetchSlots::with_fair_share(2, 1, 1);
        let held = within(slots.acquire(Some(A), FillClass::Demand))
            .await
            .unwrap();
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(Some(A), FillClass::Demand).await }
        });
        within(async {
            while slots.waiting() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        waiting.abort();
        assert!(within(waiting).await.unwrap_err().is_cancelled());
        assert_eq!(slots.waiting(), 0);
        drop(held);
        assert_eq!(slots.free(), 2);
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_64() {
        let slots = FetchSlots::with_fair_share(8, 1, 1);
        let one = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1));
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        let _held = within(slots.acquire(Some(one), FillClass::Demand))
            .await
            .unwrap();
        assert_eq!(slots.held_by(other), 1);
        let unknown = within(slots.acquire(None, FillClass::Demand))
            .await
            .unwrap();
        assert_eq!(slots.free(), 6);
        drop(unknown);
    }
}
