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
//! * **Promotion.** A read-ahead fill still waiting for a slot when a response comes to wait
//!   on it (its stream caught up, or another response joined it) waits as demand from then
//!   on ([`FetchSlots::promote`]), keeping its age.
//! * **Cost.** Each call is O(log n) in waiting fills and clients (an ordered index, see
//!   [`FairPolicy`]): 10 000 queued requests from a flooder do not make every grant scan them.
//!
//! Counters, no sleeps: a slot is released by `Drop` on every path, a waiting fetch that is
//! cancelled (its fill aborted) included. A client's entry lives while it has fetches
//! waiting or running, and [`ACTIVE_FOR`] after; entries are pruned on every call, so the
//! map is bounded by the fills in progress plus the clients of the last second.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::cache::ChunkKey;
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

#[derive(Debug, Default)]
struct ClientState {
    held: usize,
    /// Of `held`, demand fills.
    demand_held: usize,
    /// Waiting tickets by class; ids grow with age, so the first is the oldest.
    demand_waiting: BTreeSet<TicketId>,
    read_ahead_waiting: BTreeSet<TicketId>,
    last_grant: Option<Instant>,
}

impl ClientState {
    fn waiting(&self) -> usize {
        self.demand_waiting.len() + self.read_ahead_waiting.len()
    }

    fn waiting_in(&mut self, class: FillClass) -> &mut BTreeSet<TicketId> {
        match class {
            FillClass::Demand => &mut self.demand_waiting,
            FillClass::ReadAhead => &mut self.read_ahead_waiting,
        }
    }

    /// The tickets this client may be granted next, one per class, as index entries: its
    /// oldest demand fill unless it holds `fair_share` of them (many responses at once is a
    /// flood, or a crowd behind one address, not one stream), its oldest read-ahead fill
    /// unless its own demand fills wait (they go first).
    fn candidates(&self, key: IpAddr, fair_share: usize) -> [Option<Candidate>; 2] {
        let demand = self
            .demand_waiting
            .first()
            .filter(|_| self.demand_held < fair_share)
            .map(|&id| Candidate::new(FillClass::Demand, self.held, id, Some(key)));
        let read_ahead = self
            .read_ahead_waiting
            .first()
            .filter(|_| self.demand_waiting.is_empty())
            .map(|&id| Candidate::new(FillClass::ReadAhead, self.held, id, Some(key)));
        [demand, read_ahead]
    }
}

/// An entry of the grant index, ordered as grants go: demand first, then fewest slots
/// held, then oldest. Each client has at most one per class; a caller without a client
/// (in process) one per waiting ticket, holding none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    class: FillClass,
    held: usize,
    ticket: TicketId,
    client: Option<IpAddr>,
}

impl Candidate {
    fn new(class: FillClass, held: usize, ticket: TicketId, client: Option<IpAddr>) -> Self {
        Candidate {
            class,
            held,
            ticket,
            client,
        }
    }

    /// The first possible entry of `class`: where a range over that class starts.
    fn first_of(class: FillClass) -> Self {
        Candidate::new(class, 0, 0, None)
    }
}

/// The slot policy, pure: every call takes `now` and returns the tickets it granted.
///
/// Every call costs O(log n) in the waiting tickets and clients, however many wait: a
/// flood of 10 000 requests must not make each grant scan them all. What makes that
/// possible: every active client has the same limit (it depends only on how many are
/// active), so in an index sorted by (class, held, age) the first entry of a class is the
/// only one of that class worth looking at.
#[derive(Debug)]
pub struct FairPolicy {
    capacity: usize,
    per_client: usize,
    fair_share: usize,
    held: usize,
    waiting: usize,
    next_id: TicketId,
    tickets: HashMap<TicketId, Ticket>,
    clients: HashMap<IpAddr, ClientState>,
    /// The grantable tickets, best first (see [`Candidate`]).
    index: BTreeSet<Candidate>,
    /// When clients with nothing in progress stop counting as active: their entries are
    /// dropped then (a client that became busy again meanwhile is kept).
    idle_until: BinaryHeap<Reverse<(Instant, IpAddr)>>,
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
            waiting: 0,
            next_id: 0,
            tickets: HashMap::new(),
            clients: HashMap::new(),
            index: BTreeSet::new(),
            idle_until: BinaryHeap::new(),
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
        self.waiting += 1;
        match client {
            Some(key) => self.update_client(key, now, |state| {
                state.waiting_in(class).insert(id);
            }),
            None => {
                self.index.insert(Candidate::new(class, 0, id, None));
            }
        }
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
            self.waiting = self.waiting.saturating_sub(1);
        }
        match ticket.client {
            Some(key) => self.update_client(key, now, |state| {
                if ticket.holding {
                    state.held = state.held.saturating_sub(1);
                    if ticket.class == FillClass::Demand {
                        state.demand_held = state.demand_held.saturating_sub(1);
                    }
                } else {
                    state.waiting_in(ticket.class).remove(&id);
                }
            }),
            None if !ticket.holding => {
                self.index
                    .remove(&Candidate::new(ticket.class, 0, id, None));
            }
            None => {}
        }
        self.dispatch(now)
    }

    /// A waiting read-ahead fill became one a response waits on: it waits as a demand fill
    /// from now on (keeping its age). Returns the tickets granted by the change.
    pub fn promote(&mut self, id: TicketId, now: Instant) -> Vec<TicketId> {
        let Some(ticket) = self.tickets.get_mut(&id) else {
            return Vec::new();
        };
        if ticket.holding || ticket.class == FillClass::Demand {
            return Vec::new();
        }
        ticket.class = FillClass::Demand;
        match ticket.client {
            Some(key) => self.update_client(key, now, |state| {
                state.read_ahead_waiting.remove(&id);
                state.demand_waiting.insert(id);
            }),
            None => {
                self.index
                    .remove(&Candidate::new(FillClass::ReadAhead, 0, id, None));
                self.index
                    .insert(Candidate::new(FillClass::Demand, 0, id, None));
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

    /// Fetches waiting for a slot right now.
    pub fn waiting(&self) -> usize {
        self.waiting
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
        self.limit_among(others + 1)
    }

    /// The limit of each of `active` clients.
    fn limit_among(&self, active: usize) -> usize {
        if active <= 1 {
            self.per_client
        } else {
            (self.per_client / active).max(self.fair_share)
        }
    }

    /// Changes `key`'s state by `change`, keeping its index entries in step, and notes when
    /// it stops counting as active if that leaves it with nothing in progress.
    fn update_client(&mut self, key: IpAddr, now: Instant, change: impl FnOnce(&mut ClientState)) {
        let state = self.clients.entry(key).or_default();
        for old in state.candidates(key, self.fair_share).into_iter().flatten() {
            self.index.remove(&old);
        }
        change(state);
        for new in state.candidates(key, self.fair_share).into_iter().flatten() {
            self.index.insert(new);
        }
        if state.held == 0 && state.waiting() == 0 {
            // Never granted (only cancelled waits): inactive at once.
            let until = state.last_grant.map_or(now, |at| at + ACTIVE_FOR);
            self.idle_until.push(Reverse((until, key)));
        }
    }

    /// Grants free slots to the best eligible waiters; returns them.
    fn dispatch(&mut self, now: Instant) -> Vec<TicketId> {
        self.prune(now);
        let mut granted = Vec::new();
        while self.held < self.capacity {
            let Some(next) = self.best_candidate() else {
                break;
            };
            self.grant(next, now);
            granted.push(next.ticket);
        }
        granted
    }

    /// The next ticket to grant: the first demand entry, else the first read-ahead entry,
    /// if its client is under the limit. All active clients share one limit and entries
    /// are sorted by slots held, so if the first of a class is at the limit, all are.
    fn best_candidate(&self) -> Option<Candidate> {
        let limit = self.limit_among(self.clients.len());
        [FillClass::Demand, FillClass::ReadAhead]
            .into_iter()
            .filter_map(|class| {
                self.index
                    .range(Candidate::first_of(class)..)
                    .next()
                    .filter(|first| first.class == class)
            })
            .find(|first| first.client.is_none() || first.held < limit)
            .copied()
    }

    fn grant(&mut self, candidate: Candidate, now: Instant) {
        let id = candidate.ticket;
        let Some(ticket) = self.tickets.get_mut(&id) else {
            // An entry without its ticket cannot be granted; drop it rather than loop.
            self.index.remove(&candidate);
            return;
        };
        ticket.holding = true;
        let class = ticket.class;
        self.held += 1;
        self.waiting = self.waiting.saturating_sub(1);
        match candidate.client {
            Some(key) => self.update_client(key, now, |state| {
                state.waiting_in(class).remove(&id);
                state.held += 1;
                if class == FillClass::Demand {
                    state.demand_held += 1;
                }
                state.last_grant = Some(now);
            }),
            None => {
                self.index.remove(&candidate);
            }
        }
    }

    /// Drops the entries of clients with nothing in progress and no grant within
    /// [`ACTIVE_FOR`], in order of when they went idle.
    fn prune(&mut self, now: Instant) {
        while let Some(Reverse((until, key))) = self.idle_until.peek().copied() {
            if until > now {
                break;
            }
            self.idle_until.pop();
            if self
                .clients
                .get(&key)
                .is_some_and(|state| !is_active(state, now))
            {
                self.clients.remove(&key);
            }
        }
    }
}

fn is_active(state: &ClientState, now: Instant) -> bool {
    state.held > 0
        || state.waiting() > 0
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
    /// Read-ahead fills waiting for a slot, by chunk: the ones a response may come to wait
    /// on, to be promoted to demand then.
    queued_read_ahead: HashMap<ChunkKey, TicketId>,
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

    /// Forgets `fill` as a queued read-ahead fill if `id` is the ticket queued for it.
    fn unqueue(&mut self, fill: Option<ChunkKey>, id: TicketId) {
        if let Some(fill) = fill
            && self.queued_read_ahead.get(&fill) == Some(&id)
        {
            self.queued_read_ahead.remove(&fill);
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
    fill: Option<ChunkKey>,
    shared: Arc<Mutex<Shared>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut shared = lock(&self.shared);
        shared.wakers.remove(&self.id);
        shared.unqueue(self.fill, self.id);
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
                queued_read_ahead: HashMap::new(),
            })),
        }
    }

    /// Waits for a slot for a fill of `class` started for `client` (if known).
    pub async fn acquire(
        &self,
        client: Option<IpAddr>,
        class: FillClass,
    ) -> Result<Slot, SlotsClosed> {
        self.wait_for_slot(client, class, None).await
    }

    /// Like [`Self::acquire`], for the fill of chunk `fill`: while it waits as read-ahead,
    /// [`Self::promote`] of that chunk makes it a demand fill.
    pub async fn acquire_fill(
        &self,
        fill: ChunkKey,
        client: Option<IpAddr>,
        class: FillClass,
    ) -> Result<Slot, SlotsClosed> {
        self.wait_for_slot(client, class, Some(fill)).await
    }

    /// A response now waits for chunk `fill`: if its fill is queued as read-ahead, it
    /// waits as demand from now on (and may start at once).
    pub fn promote(&self, fill: ChunkKey) {
        let mut shared = lock(&self.shared);
        let Some(id) = shared.queued_read_ahead.remove(&fill) else {
            return;
        };
        let granted = shared.policy.promote(id, Instant::now());
        shared.wake(granted);
    }

    async fn wait_for_slot(
        &self,
        client: Option<IpAddr>,
        class: FillClass,
        fill: Option<ChunkKey>,
    ) -> Result<Slot, SlotsClosed> {
        let (slot, granted) = {
            let mut shared = lock(&self.shared);
            let (id, granted) =
                shared
                    .policy
                    .request(client.map(client_key), class, Instant::now());
            let slot = Slot {
                id,
                fill,
                shared: Arc::clone(&self.shared),
            };
            let mine = granted.contains(&id);
            shared.wake(granted);
            if mine {
                return Ok(slot);
            }
            let (waker, granted) = oneshot::channel();
            shared.wakers.insert(id, waker);
            if let (Some(fill), FillClass::ReadAhead) = (fill, class) {
                shared.queued_read_ahead.insert(fill, id);
            }
            (slot, granted)
        };
        // Dropping this future drops `slot`, which finishes the ticket: a cancelled wait
        // leaves no trace, a grant that raced the cancellation is released.
        granted.await.map_err(|_| SlotsClosed)?;
        lock(&self.shared).unqueue(fill, slot.id);
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
        lock(&self.shared).policy.waiting()
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

    #[test]
    fn a_read_ahead_fill_a_response_comes_to_wait_on_goes_before_other_read_ahead() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(1, 1, 1);
        let held = take(&mut policy, A, FillClass::Demand, now);
        let (b_ahead, _) = policy.request(Some(B), FillClass::ReadAhead, now);
        let (c_ahead, _) = policy.request(Some(C), FillClass::ReadAhead, now);
        assert!(policy.promote(c_ahead, now).is_empty(), "no slot is free");
        assert!(
            policy.promote(c_ahead, now).is_empty(),
            "promoting twice is harmless"
        );
        assert_eq!(policy.finish(held, now), vec![c_ahead]);
        assert_eq!(policy.finish(c_ahead, now), vec![b_ahead]);
        assert!(
            policy.promote(b_ahead, now).is_empty(),
            "a holder stays as it is"
        );
        assert_eq!(policy.finish(b_ahead, now), Vec::<TicketId>::new());
        assert_eq!(policy.free(), 1);
    }

    #[test]
    fn a_promoted_fill_of_a_client_at_its_demand_cap_waits_for_its_demand_fill() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(3, 3, 1);
        let demand = take(&mut policy, A, FillClass::Demand, now);
        let ahead = take(&mut policy, A, FillClass::ReadAhead, now);
        take(&mut policy, A, FillClass::ReadAhead, now);
        let (a_next, _) = policy.request(Some(A), FillClass::ReadAhead, now);
        assert!(policy.promote(a_next, now).is_empty());
        // A holds its one demand fill: a free slot is not for its second one yet.
        assert!(policy.finish(ahead, now).is_empty());
        assert_eq!(policy.finish(demand, now), vec![a_next]);
    }

    #[test]
    fn ten_thousand_waiting_fills_of_one_address_are_granted_in_order() {
        let now = Instant::now();
        let mut policy = FairPolicy::new(4, 16, 4);
        let held: Vec<TicketId> = (0..4)
            .map(|_| take(&mut policy, A, FillClass::Demand, now))
            .collect();
        let queued: Vec<TicketId> = (0..10_000)
            .map(|_| policy.request(Some(A), FillClass::Demand, now).0)
            .collect();
        let (b_demand, _) = policy.request(Some(B), FillClass::Demand, now);
        assert_eq!(policy.waiting(), 10_001);
        // The other client first (it holds none), then A's oldest, one per free slot.
        assert_eq!(policy.finish(held[0], now), vec![b_demand]);
        assert_eq!(policy.finish(held[1], now), vec![queued[0]]);
        let mut granted = vec![queued[0]];
        let mut holders = vec![held[2], held[3], queued[0], b_demand];
        while let Some(done) = holders.pop() {
            let next = policy.finish(done, now);
            granted.extend(&next);
            holders.extend(next);
        }
        assert_eq!(granted, queued);
        assert_eq!((policy.waiting(), policy.free()), (0, 4));
    }

    /// The policy as first written: one scan of every waiting ticket per grant. Slow with
    /// many waiters, plainly right; the index must grant exactly as it does.
    #[derive(Default)]
    struct Reference {
        capacity: usize,
        per_client: usize,
        fair_share: usize,
        /// (ticket, client, class, holding)
        tickets: Vec<(TicketId, Option<IpAddr>, FillClass, bool)>,
        last_grant: HashMap<IpAddr, Instant>,
    }

    impl Reference {
        fn held(&self, key: IpAddr, class: Option<FillClass>) -> usize {
            self.tickets
                .iter()
                .filter(|t| t.3 && t.1 == Some(key) && class.is_none_or(|c| c == t.2))
                .count()
        }

        fn active(&self, key: IpAddr, now: Instant) -> bool {
            self.tickets.iter().any(|t| t.1 == Some(key))
                || self
                    .last_grant
                    .get(&key)
                    .is_some_and(|at| now.saturating_duration_since(*at) < ACTIVE_FOR)
        }

        fn dispatch(&mut self, now: Instant) -> Vec<TicketId> {
            let mut granted = Vec::new();
            loop {
                let held_all = self.tickets.iter().filter(|t| t.3).count();
                if held_all >= self.capacity {
                    break;
                }
                let mut keys: Vec<IpAddr> = self.tickets.iter().filter_map(|t| t.1).collect();
                keys.extend(self.last_grant.keys().copied());
                keys.sort();
                keys.dedup();
                let active = keys.iter().filter(|k| self.active(**k, now)).count();
                let limit = if active <= 1 {
                    self.per_client
                } else {
                    (self.per_client / active).max(self.fair_share)
                };
                let mut best: Option<(usize, (FillClass, usize))> = None;
                for (position, t) in self.tickets.iter().enumerate().filter(|(_, t)| !t.3) {
                    let held = match t.1 {
                        Some(key) => {
                            let held = self.held(key, None);
                            let demand_waiting = self
                                .tickets
                                .iter()
                                .any(|o| !o.3 && o.1 == Some(key) && o.2 == FillClass::Demand);
                            let allowed = held < limit
                                && match t.2 {
                                    FillClass::Demand => {
                                        self.held(key, Some(FillClass::Demand)) < self.fair_share
                                    }
                                    FillClass::ReadAhead => !demand_waiting,
                                };
                            if !allowed {
                                continue;
                            }
                            held
                        }
                        None => 0,
                    };
                    let rank = (t.2, held);
                    if best.is_none_or(|(_, best_rank)| rank < best_rank) {
                        best = Some((position, rank));
                    }
                }
                let Some((position, _)) = best else { break };
                self.tickets[position].3 = true;
                if let Some(key) = self.tickets[position].1 {
                    self.last_grant.insert(key, now);
                }
                granted.push(self.tickets[position].0);
            }
            granted
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Request(Option<u8>, bool),
        Finish(usize),
        Promote(usize),
        Wait(u16),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (proptest::option::weighted(0.9, 0u8..5), any::<bool>())
                .prop_map(|(client, demand)| Op::Request(client, demand)),
            3 => any::<usize>().prop_map(Op::Finish),
            1 => any::<usize>().prop_map(Op::Promote),
            1 => (0u16..1500).prop_map(Op::Wait),
        ]
    }

    proptest::proptest! {
        #[test]
        fn the_index_grants_exactly_as_a_scan_of_every_waiter(
            (capacity, per_client, fair_share) in (1usize..6, 1usize..6, 1usize..6),
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let mut now = Instant::now();
            let mut policy = FairPolicy::new(capacity, per_client, fair_share);
            let mut reference = Reference {
                capacity: policy.capacity,
                per_client: policy.per_client,
                fair_share: policy.fair_share,
                ..Reference::default()
            };
            for op in ops {
                let (granted, expected) = match op {
                    Op::Request(client, demand) => {
                        let client = client.map(|n| IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)));
                        let class = if demand { FillClass::Demand } else { FillClass::ReadAhead };
                        let (id, granted) = policy.request(client, class, now);
                        reference.tickets.push((id, client, class, false));
                        (granted, reference.dispatch(now))
                    }
                    Op::Finish(pick) if !reference.tickets.is_empty() => {
                        let (id, ..) = reference.tickets.remove(pick % reference.tickets.len());
                        (policy.finish(id, now), reference.dispatch(now))
                    }
                    Op::Promote(pick) if !reference.tickets.is_empty() => {
                        let position = pick % reference.tickets.len();
                        let ticket = &mut reference.tickets[position];
                        if !ticket.3 {
                            ticket.2 = FillClass::Demand;
                        }
                        (policy.promote(ticket.0, now), reference.dispatch(now))
                    }
                    Op::Wait(millis) => {
                        now += Duration::from_millis(u64::from(millis));
                        continue;
                    }
                    _ => continue,
                };
                proptest::prop_assert_eq!(granted, expected);
                proptest::prop_assert_eq!(policy.free(), capacity.max(1) - reference.tickets.iter().filter(|t| t.3).count());
            }
        }
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
    async fn a_response_waiting_on_a_queued_read_ahead_fill_promotes_it() {
        let chunk = |index| ChunkKey {
            file: tgcdn_shared::FileRef {
                chat_id: -1_000_000_000_001,
                msg_id: 7,
            },
            index,
        };
        let slots = FetchSlots::with_fair_share(1, 1, 1);
        let held = within(slots.acquire(Some(A), FillClass::Demand))
            .await
            .unwrap();
        let wait = |key: ChunkKey, client: IpAddr| {
            let slots = slots.clone();
            tokio::spawn(async move {
                slots
                    .acquire_fill(key, Some(client), FillClass::ReadAhead)
                    .await
            })
        };
        let b_first = wait(chunk(1), B);
        within(async {
            while slots.waiting() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        let c_later = wait(chunk(2), C);
        within(async {
            while slots.waiting() != 2 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        slots.promote(chunk(2));
        drop(held);
        let c_slot = within(c_later).await.unwrap().unwrap();
        assert!(!b_first.is_finished(), "B's older read-ahead still waits");
        assert_eq!(lock(&slots.shared).queued_read_ahead.len(), 1);
        drop(c_slot);
        within(b_first).await.unwrap().unwrap();
        assert!(lock(&slots.shared).queued_read_ahead.is_empty());
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
