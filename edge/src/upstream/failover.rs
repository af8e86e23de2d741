//! Which core of a pool a request goes to: the pure half of [`super::pool`].
//!
//! Each file has a ranking of the cores (`tgcdn_shared::rendezvous`), the same on every edge.
//! A request goes to the first core of its ranking that is *usable*: its link is up, and no
//! request failed on that connection with a connection-level error in the last
//! [`BENCH_HOLD`]. A failure benches the core until it reconnects (a new connection voids
//! the bench at once) or the hold passes, so its files move to the next core in their
//! rankings and come back when it does — only its own files move either way. Within one
//! request every core is tried at most once; when none is usable the best-ranked core not
//! yet tried gets the request anyway, so its own bounded wait for a connection applies (what
//! a one-core edge always did). No I/O and no clock: the caller passes `now`, like
//! `core/src/bots/select.rs`.

use std::time::{Duration, Instant};

/// How long a connection-level failure keeps a core out of the rankings while its link
/// still looks up: long enough for its supervisor to notice a dead connection, short enough
/// that a passing stream reset (a core draining for a restart) costs little.
pub const BENCH_HOLD: Duration = Duration::from_secs(5);

/// What the pool knows of one core's link right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    /// The link is connected and authenticated.
    pub up: bool,
    /// Connections made so far (the supervisor's count).
    pub generation: u64,
    /// The last connection-level failure, if any.
    pub bench: Option<Bench>,
}

/// A connection-level failure on connection `generation`, holding the core out until
/// `until` unless it reconnects first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bench {
    pub generation: u64,
    pub until: Instant,
}

impl Bench {
    /// The bench for a request sent on connection `generation` that failed at `now`.
    pub fn after_failure(generation: u64, now: Instant) -> Self {
        Bench {
            generation,
            until: now + BENCH_HOLD,
        }
    }
}

impl Link {
    /// Whether a request may go to this core at `now`.
    pub fn usable(&self, now: Instant) -> bool {
        self.up
            && !self
                .bench
                .is_some_and(|bench| bench.generation >= self.generation && now < bench.until)
    }
}

/// The core to try next for a request whose ranking is `order` (indices into `links`),
/// having tried `tried` already: the first usable one, else the first not tried, else `None`
/// (every core tried: the request fails with the last error).
pub fn choose(order: &[usize], links: &[Link], tried: &[usize], now: Instant) -> Option<usize> {
    let untried = || order.iter().copied().filter(|index| !tried.contains(index));
    untried()
        .find(|&index| links.get(index).is_some_and(|link| link.usable(now)))
        .or_else(|| untried().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(generation: u64) -> Link {
        Link {
            up: true,
            generation,
            bench: None,
        }
    }

    fn down(generation: u64) -> Link {
        Link {
            up: false,
            ..up(generation)
        }
    }

    #[test]
    fn the_first_usable_core_of_the_ranking_serves() {
        let now = Instant::now();
        let links = [up(1), up(1), up(1)];
        assert_eq!(choose(&[2, 0, 1], &links, &[], now), Some(2));
        assert_eq!(choose(&[1, 2, 0], &links, &[], now), Some(1));
    }

    #[test]
    fn a_core_whose_link_is_down_is_skipped_and_takes_its_files_back_when_up() {
        let now = Instant::now();
        let mut links = [up(1), down(1), up(1)];
        assert_eq!(choose(&[1, 2, 0], &links, &[], now), Some(2));
        // A file ranked elsewhere first does not move.
        assert_eq!(choose(&[0, 1, 2], &links, &[], now), Some(0));
        links[1] = up(2);
        assert_eq!(choose(&[1, 2, 0], &links, &[], now), Some(1));
    }

    #[test]
    fn a_failure_benches_the_core_until_it_reconnects() {
        let now = Instant::now();
        let mut links = [up(3), up(1)];
        links[0].bench = Some(Bench::after_failure(3, now));
        let soon = now + Duration::from_millis(10);
        assert!(!links[0].usable(soon));
        assert_eq!(choose(&[0, 1], &links, &[], soon), Some(1));
        // Reconnected: the bench was about the old connection.
        links[0].generation = 4;
        assert!(links[0].usable(soon));
        assert_eq!(choose(&[0, 1], &links, &[], soon), Some(0));
    }

    #[test]
    fn a_bench_ends_after_the_hold_even_without_a_reconnection() {
        let now = Instant::now();
        let mut link = up(2);
        link.bench = Some(Bench::after_failure(2, now));
        assert!(!link.usable(now + BENCH_HOLD - Duration::from_millis(1)));
        assert!(link.usable(now + BENCH_HOLD));
    }

    #[test]
    fn a_request_tries_each_core_once_then_gives_up() {
        let now = Instant::now();
        let links = [up(1), up(1), up(1)];
        assert_eq!(choose(&[1, 0, 2], &links, &[1], now), Some(0));
        assert_eq!(choose(&[1, 0, 2], &links, &[1, 0], now), Some(2));
        assert_eq!(choose(&[1, 0, 2], &links, &[1, 0, 2], now), None);
    }

    #[test]
    fn with_nothing_usable_the_best_ranked_untried_core_gets_the_request() {
        let now = Instant::now();
        let links = [down(0), down(5), down(1)];
        assert_eq!(choose(&[2, 1, 0], &links, &[], now), Some(2));
        assert_eq!(choose(&[2, 1, 0], &links, &[2], now), Some(1));
        // A usable core further down still wins over an unusable better-ranked one.
        let links = [down(0), down(5), up(1)];
        assert_eq!(choose(&[0, 1, 2], &links, &[], now), Some(2));
    }

    #[test]
    fn indices_outside_the_pool_are_never_usable() {
        let now = Instant::now();
        assert_eq!(choose(&[7, 0], &[up(1)], &[], now), Some(0));
        assert_eq!(choose(&[], &[up(1)], &[], now), None);
    }
}
