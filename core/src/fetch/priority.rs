//! Who may take a freed download slot first: demand chunks before read-ahead.
//!
//! Owned by [`super::Fetcher`], which registers a chunk fetch here while it waits for a
//! connection slot (every connection's window full) and asks [`Queue::may_pick`] before each
//! try. Pure: no I/O, no clock (`now` is passed in), like [`crate::bots::select`].
//!
//! The rule: while a *demand* fetch (a viewer's response is blocked on it) waits, no
//! read-ahead fetch may take a slot, so the next part to finish frees a slot for the demand
//! chunk instead of for a chunk nobody reads yet — a seek no longer queues behind every
//! other client's read-ahead. A read-ahead fetch that has waited `promote_after` counts as
//! demand (its reader has most likely caught up with it), so sustained demand cannot starve
//! read-ahead for ever. With the policy off every fetch may always try, as before.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tgcdn_shared::wire::ChunkClass;

/// A waiting fetch's place in the [`Queue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

#[derive(Debug, Clone, Copy)]
struct Waiting {
    class: ChunkClass,
    since: Instant,
}

/// The fetches waiting for a slot, by class and arrival.
#[derive(Debug)]
pub struct Queue {
    enabled: bool,
    promote_after: Duration,
    waiting: HashMap<Ticket, Waiting>,
    next: u64,
}

impl Queue {
    /// A queue ordering demand first when `enabled`; a read-ahead fetch waiting
    /// `promote_after` counts as demand.
    pub fn new(enabled: bool, promote_after: Duration) -> Self {
        Queue {
            enabled,
            promote_after,
            waiting: HashMap::new(),
            next: 0,
        }
    }

    /// Registers a fetch of `class` that starts waiting at `now`.
    pub fn wait(&mut self, class: ChunkClass, now: Instant) -> Ticket {
        let ticket = Ticket(self.next);
        self.next += 1;
        self.waiting.insert(ticket, Waiting { class, since: now });
        ticket
    }

    /// The fetch got its slot or gave up: it waits no more.
    pub fn leave(&mut self, ticket: Ticket) {
        self.waiting.remove(&ticket);
    }

    /// Whether a fetch of `class` (waiting as `ticket`, if it waits already) may try to take
    /// a slot at `now`: demand always may; read-ahead only while no demand waits.
    pub fn may_pick(&self, class: ChunkClass, ticket: Option<Ticket>, now: Instant) -> bool {
        if !self.enabled {
            return true;
        }
        let mine = ticket.and_then(|t| self.waiting.get(&t).copied());
        let own = mine.unwrap_or(Waiting { class, since: now });
        if self.is_demand(own, now) {
            return true;
        }
        !self
            .waiting
            .iter()
            .any(|(t, w)| Some(*t) != ticket && self.is_demand(*w, now))
    }

    /// Fetches waiting now, demand (promoted read-ahead included) and read-ahead.
    pub fn counts(&self, now: Instant) -> (usize, usize) {
        let demand = self
            .waiting
            .values()
            .filter(|w| self.is_demand(**w, now))
            .count();
        (demand, self.waiting.len() - demand)
    }

    fn is_demand(&self, waiting: Waiting, now: Instant) -> bool {
        waiting.class == ChunkClass::Demand
            || now.saturating_duration_since(waiting.since) >= self.promote_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PROMOTE: Duration = Duration::from_secs(2);

    #[test]
    fn read_ahead_waits_while_demand_waits() {
        let now = Instant::now();
        let mut queue = Queue::new(true, PROMOTE);
        let ahead = queue.wait(ChunkClass::ReadAhead, now);
        assert!(queue.may_pick(ChunkClass::ReadAhead, Some(ahead), now));
        let demand = queue.wait(ChunkClass::Demand, now);
        assert!(!queue.may_pick(ChunkClass::ReadAhead, Some(ahead), now));
        // A read-ahead fetch that has not queued yet is held back too.
        assert!(!queue.may_pick(ChunkClass::ReadAhead, None, now));
        assert!(queue.may_pick(ChunkClass::Demand, Some(demand), now));
        assert!(queue.may_pick(ChunkClass::Demand, None, now));
        assert_eq!(queue.counts(now), (1, 1));
        queue.leave(demand);
        assert!(queue.may_pick(ChunkClass::ReadAhead, Some(ahead), now));
    }

    #[test]
    fn read_ahead_waiting_long_counts_as_demand() {
        let now = Instant::now();
        let mut queue = Queue::new(true, PROMOTE);
        let old = queue.wait(ChunkClass::ReadAhead, now);
        let later = now + PROMOTE;
        let young = queue.wait(ChunkClass::ReadAhead, later);
        queue.wait(ChunkClass::Demand, later);
        assert!(queue.may_pick(ChunkClass::ReadAhead, Some(old), later));
        assert!(!queue.may_pick(ChunkClass::ReadAhead, Some(young), later));
        assert_eq!(queue.counts(later), (2, 1));
    }

    #[test]
    fn a_promoted_read_ahead_holds_back_younger_read_ahead() {
        let now = Instant::now();
        let mut queue = Queue::new(true, PROMOTE);
        queue.wait(ChunkClass::ReadAhead, now);
        let later = now + PROMOTE + Duration::from_millis(1);
        assert!(!queue.may_pick(ChunkClass::ReadAhead, None, later));
    }

    #[test]
    fn disabled_lets_everyone_try() {
        let now = Instant::now();
        let mut queue = Queue::new(false, PROMOTE);
        queue.wait(ChunkClass::Demand, now);
        assert!(queue.may_pick(ChunkClass::ReadAhead, None, now));
    }

    proptest! {
        /// Demand is never held back, and read-ahead is held back exactly when some other
        /// waiter counts as demand.
        #[test]
        fn demand_always_may_and_read_ahead_only_without_demand(
            waits in proptest::collection::vec((any::<bool>(), 0u64..5_000), 0..20),
            probe_ms in 0u64..10_000,
        ) {
            let start = Instant::now();
            let mut queue = Queue::new(true, PROMOTE);
            let tickets: Vec<(Ticket, bool, u64)> = waits
                .iter()
                .map(|&(demand, at)| {
                    let class = if demand { ChunkClass::Demand } else { ChunkClass::ReadAhead };
                    (queue.wait(class, start + Duration::from_millis(at)), demand, at)
                })
                .collect();
            let now = start + Duration::from_millis(probe_ms);
            let counts_as_demand =
                |demand: bool, at: u64| demand || probe_ms.saturating_sub(at) >= 2_000;
            prop_assert!(queue.may_pick(ChunkClass::Demand, None, now));
            for (i, &(ticket, demand, at)) in tickets.iter().enumerate() {
                let class = if demand { ChunkClass::Demand } else { ChunkClass::ReadAhead };
                let others = tickets
                    .iter()
                    .enumerate()
                    .any(|(j, &(_, d, a))| j != i && counts_as_demand(d, a));
                let expected = counts_as_demand(demand, at) || !others;
                prop_assert_eq!(queue.may_pick(class, Some(ticket), now), expected);
            }
        }
    }
}
