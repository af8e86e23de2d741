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
//!
//! A core that answers FLOOD_WAIT has no bot free for that long: every bot it has is under
//! Telegram's limit, which says nothing about the other cores' bots. So that answer, unlike
//! the core's other typed answers, moves the request on to the next core of its ranking, and
//! keeps the core out of every ranking until its bots are free ([`flood_hold`]). A request
//! that found every core flooded or unreachable fails with the most useful error it met
//! ([`worse`]): the soonest flood wait, so the viewer's `Retry-After` is the shortest true
//! one.

use std::time::{Duration, Instant};

use tgcdn_shared::wire::WireError;

use super::UpstreamError;

/// How long a connection-level failure keeps a core out of the rankings while its link
/// still looks up: long enough for its supervisor to notice a dead connection, short enough
/// that a passing stream reset (a core draining for a restart) costs little.
pub const BENCH_HOLD: Duration = Duration::from_secs(5);

/// The longest a core's FLOOD_WAIT answer keeps it out of the rankings: a core claiming
/// hours would otherwise lose its files for hours on one (possibly wrong) answer.
pub const MAX_FLOOD_HOLD: Duration = Duration::from_secs(300);

/// What the pool knows of one core's link right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    /// The link is connected and authenticated.
    pub up: bool,
    /// Connections made so far (the supervisor's count).
    pub generation: u64,
    /// The last connection-level failure, if any.
    pub bench: Option<Bench>,
    /// Every bot of the core is in FLOOD_WAIT until then (its last FLOOD_WAIT answer).
    pub flooded_until: Option<Instant>,
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

/// Until when a core that answered FLOOD_WAIT for `secs` at `now` stays out of the
/// rankings: those seconds (they are its soonest free bot's), at most [`MAX_FLOOD_HOLD`].
/// A reconnection does not end it: the flood wait is Telegram's, on the core's bots.
pub fn flood_hold(secs: u32, now: Instant) -> Instant {
    now + Duration::from_secs(secs.into()).min(MAX_FLOOD_HOLD)
}

/// How a core's answer to one attempt bears on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Served, or a typed answer that holds whichever core is asked (not found, revoked,
    /// bad request…): the request ends with it.
    Final,
    /// The connection failed under the request: bench the core, try the next.
    ConnectionLost,
    /// Every bot of the core is in FLOOD_WAIT for `secs`: hold the core, try the next.
    FloodWait { secs: u32 },
}

impl Answer {
    /// What `result` says, for the failover.
    pub fn of<T>(result: &Result<T, UpstreamError>) -> Self {
        match result {
            Err(UpstreamError::Unreachable { .. }) => Answer::ConnectionLost,
            Err(UpstreamError::Core(WireError::FloodWait { secs })) => {
                Answer::FloodWait { secs: *secs }
            }
            _ => Answer::Final,
        }
    }
}

/// Of two failures that each moved a request on, the one to report if no core serves it:
/// a flood wait over a lost connection (the viewer gets 503 with `Retry-After`), and of two
/// flood waits the sooner.
pub fn worse(kept: UpstreamError, new: UpstreamError) -> UpstreamError {
    match (&kept, &new) {
        (
            UpstreamError::Core(WireError::FloodWait { secs: kept_secs }),
            UpstreamError::Core(WireError::FloodWait { secs: new_secs }),
        ) if new_secs >= kept_secs => kept,
        (UpstreamError::Core(WireError::FloodWait { .. }), UpstreamError::Unreachable { .. }) => {
            kept
        }
        _ => new,
    }
}

impl Link {
    /// Whether a request may go to this core at `now`.
    pub fn usable(&self, now: Instant) -> bool {
        let benched = self
            .bench
            .is_some_and(|bench| bench.generation >= self.generation && now < bench.until);
        let flooded = self.flooded_until.is_some_and(|until| now < until);
        self.up && !benched && !flooded
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
            flooded_until: None,
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

    #[test]
    fn a_flooded_core_is_skipped_until_its_bots_are_free_reconnection_or_not() {
        let now = Instant::now();
        let mut links = [up(1), up(1)];
        links[0].flooded_until = Some(flood_hold(30, now));
        let soon = now + Duration::from_secs(29);
        assert_eq!(choose(&[0, 1], &links, &[], soon), Some(1));
        // A new connection to the same core does not free its bots.
        links[0].generation = 2;
        assert_eq!(choose(&[0, 1], &links, &[], soon), Some(1));
        assert_eq!(
            choose(&[0, 1], &links, &[], now + Duration::from_secs(30)),
            Some(0)
        );
        // With every core flooded, the best-ranked untried one still gets the request.
        links[1].flooded_until = Some(flood_hold(30, now));
        assert_eq!(choose(&[1, 0], &links, &[], soon), Some(1));
        assert_eq!(choose(&[1, 0], &links, &[1], soon), Some(0));
    }

    #[test]
    fn a_flood_hold_is_the_cores_seconds_capped() {
        let now = Instant::now();
        assert_eq!(flood_hold(7, now), now + Duration::from_secs(7));
        assert_eq!(flood_hold(u32::MAX, now), now + MAX_FLOOD_HOLD);
    }

    #[test]
    fn only_lost_connections_and_flood_waits_move_a_request_on() {
        let flood = UpstreamError::Core(WireError::FloodWait { secs: 9 });
        assert_eq!(Answer::of::<()>(&Err(flood)), Answer::FloodWait { secs: 9 });
        assert_eq!(
            Answer::of::<()>(&Err(UpstreamError::unreachable("cut"))),
            Answer::ConnectionLost
        );
        for last in [
            Err(UpstreamError::Core(WireError::NotFound)),
            Err(UpstreamError::Core(WireError::Revoked)),
            Err(UpstreamError::Core(WireError::Unavailable)),
            Err(UpstreamError::Timeout),
            Ok(()),
        ] {
            assert_eq!(Answer::of(&last), Answer::Final, "{last:?}");
        }
    }

    #[test]
    fn the_soonest_flood_wait_is_what_a_request_fails_with() {
        let flood = |secs| UpstreamError::Core(WireError::FloodWait { secs });
        let cut = UpstreamError::unreachable("cut");
        assert_eq!(worse(flood(30), flood(5)), flood(5));
        assert_eq!(worse(flood(5), flood(30)), flood(5));
        assert_eq!(worse(flood(5), cut.clone()), flood(5));
        assert_eq!(worse(cut.clone(), flood(5)), flood(5));
        assert_eq!(worse(cut.clone(), cut.clone()), cut);
    }
}
