//! Which bot, and which of its connections, gets the next chunk request: a pure function of
//! the bots' states and `now`.
//!
//! Eligible bots are healthy, able to read the request's channel, not in FLOOD_WAIT at
//! `now`, and not already tried for this request. Among them the one with the fewest requests in flight wins; ties go to the first
//! at or after a rotating cursor (the caller advances it per call), so equal bots share the
//! work instead of the first one taking it all. Within the bot, the least-loaded connection
//! wins, with the same rotation for ties.
//!
//! A chunk's `getFile` parts are placed one by one ([`choose_parts`], [`spread_parts`]): each
//! on the bot's least-busy connection counting the parts already placed, never above a
//! per-connection in-flight cap, so the two halves of a chunk use two connections when that
//! spreads the load and no connection takes more than its share. A bot that is not
//! [`BotState::ready`] for the file (it must look its location up first, one more round
//! trip) counts as if one more part were in flight on each of its connections, so an idle
//! pool serves a file's chunk from the bot that already holds its location instead of
//! whichever bot the rotation names.
//!
//! When nobody is eligible the error says why: every healthy bot waits (so the caller can
//! answer `FloodWait { secs }` with the soonest end), every healthy bot was already tried, or
//! there is no healthy bot at all. No I/O, no clock, no grammers.

use std::time::{Duration, Instant};

/// A bot's health as the pool last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Out of rotation until an operator or a health check says otherwise.
    Unhealthy {
        reason: String,
    },
}

/// What selection needs to know about one bot.
#[derive(Debug, Clone)]
pub struct BotState<'a> {
    pub health: &'a Health,
    /// FLOOD_WAIT: the bot must not call before this instant.
    pub flood_wait_until: Option<Instant>,
    /// Requests in flight on the bot.
    pub in_flight: usize,
    /// Requests in flight on each of its download connections.
    pub connections: &'a [usize],
    /// This request already failed on this bot; try the others first.
    pub already_tried: bool,
    /// The bot cannot read the request's channel: as good as unhealthy for this request.
    pub denied: bool,
    /// The bot can start this request at once; `false` when it must first look something
    /// up (a file's location: a `channels.getMessages` round trip).
    pub ready: bool,
}

impl BotState<'_> {
    fn is_healthy(&self) -> bool {
        matches!(self.health, Health::Healthy) && !self.denied && !self.connections.is_empty()
    }

    fn waits_at(&self, now: Instant) -> Option<Instant> {
        self.flood_wait_until.filter(|until| *until > now)
    }
}

/// The chosen bot (index into the slice passed in) and connection (index into its
/// `connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub bot: usize,
    pub connection: usize,
}

/// Why no bot can take the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("every healthy bot is in flood wait; the first is free in {secs} s")]
    FloodWait { secs: u64, until: Instant },
    #[error("every healthy bot already failed this request")]
    AllTried,
    #[error("no healthy bot")]
    NoHealthyBot,
    /// Eligible bots exist but every one has its connections at the in-flight cap: wait for
    /// a part to finish (the window slides) and ask again.
    #[error("every eligible bot's connections are at their in-flight cap")]
    Saturated,
}

/// The chosen bot and, for each part of the request, the connection it goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsChoice {
    pub bot: usize,
    pub connections: Vec<usize>,
}

/// Places `parts` requests on one bot's connections (`loads` = parts in flight on each):
/// each part on the connection with the fewest in flight, counting the parts placed before
/// it, so a chunk's two halves go to two connections when one is busier (or both idle), and
/// stay together when the other connection is busier still. No connection goes above `cap`.
/// `None` when the parts do not fit.
pub fn spread_parts(
    loads: &[usize],
    parts: usize,
    cap: usize,
    rotation: usize,
) -> Option<Vec<usize>> {
    let mut loads = loads.to_vec();
    let mut placed = Vec::with_capacity(parts);
    for _ in 0..parts {
        let open: Vec<Option<usize>> = loads
            .iter()
            .map(|&load| (load < cap).then_some(load))
            .collect();
        let connection = least_loaded(&open, rotation)?;
        loads[connection] += 1;
        placed.push(connection);
    }
    Some(placed)
}

/// Like [`choose`] for a request of `parts` parts: the least-loaded eligible bot whose
/// connections can take every part under `cap`, and where each part goes.
pub fn choose_parts(
    bots: &[BotState<'_>],
    now: Instant,
    rotation: usize,
    parts: usize,
    cap: usize,
) -> Result<PartsChoice, SelectError> {
    let eligible =
        |bot: &BotState<'_>| bot.is_healthy() && bot.waits_at(now).is_none() && !bot.already_tried;
    let placements: Vec<Option<Vec<usize>>> = bots
        .iter()
        .map(|bot| {
            eligible(bot)
                .then(|| spread_parts(bot.connections, parts, cap, rotation))
                .flatten()
        })
        .collect();
    let loads: Vec<Option<usize>> = bots
        .iter()
        .zip(&placements)
        .map(|(bot, placed)| placed.as_ref().map(|_| parts_load(bot)))
        .collect();
    if let Some(bot) = least_loaded(&loads, rotation) {
        let connections = placements[bot].clone().unwrap_or_default();
        return Ok(PartsChoice { bot, connections });
    }
    if bots.iter().any(eligible) {
        return Err(SelectError::Saturated);
    }
    Err(why_none(bots, now))
}

/// A bot's load as [`choose_parts`] compares it: its parts in flight, plus one per
/// connection when it is not ready. The lookup a cold bot needs first costs a round trip,
/// about what one more part queued on each of its connections costs, so a warm bot wins
/// ties and small differences while a busy warm bot still hands work to an idle cold one.
fn parts_load(bot: &BotState<'_>) -> usize {
    let penalty = if bot.ready { 0 } else { bot.connections.len() };
    bot.in_flight + penalty
}

/// Picks the least-loaded eligible bot and its least-loaded connection.
pub fn choose(bots: &[BotState<'_>], now: Instant, rotation: usize) -> Result<Choice, SelectError> {
    let eligible =
        |bot: &BotState<'_>| bot.is_healthy() && bot.waits_at(now).is_none() && !bot.already_tried;
    let loads: Vec<Option<usize>> = bots
        .iter()
        .map(|bot| eligible(bot).then_some(bot.in_flight))
        .collect();
    if let Some(bot) = least_loaded(&loads, rotation) {
        let connection_loads: Vec<Option<usize>> =
            bots[bot].connections.iter().map(|&n| Some(n)).collect();
        // `is_healthy` guarantees at least one connection, so this always finds one.
        let connection = least_loaded(&connection_loads, rotation).unwrap_or(0);
        return Ok(Choice { bot, connection });
    }
    Err(why_none(bots, now))
}

fn why_none(bots: &[BotState<'_>], now: Instant) -> SelectError {
    let untried_healthy = bots
        .iter()
        .filter(|bot| bot.is_healthy() && !bot.already_tried);
    if let Some(until) = untried_healthy.filter_map(|bot| bot.waits_at(now)).min() {
        return SelectError::FloodWait {
            secs: ceil_secs(until.saturating_duration_since(now)),
            until,
        };
    }
    if bots.iter().any(BotState::is_healthy) {
        SelectError::AllTried
    } else {
        SelectError::NoHealthyBot
    }
}

/// Index of the smallest `Some`, ties broken by the first at or after `rotation % len`.
fn least_loaded(loads: &[Option<usize>], rotation: usize) -> Option<usize> {
    let len = loads.len();
    if len == 0 {
        return None;
    }
    let start = rotation % len;
    (0..len)
        .map(|offset| (start + offset) % len)
        .filter_map(|index| loads[index].map(|load| (load, index)))
        // min_by_key keeps the first of equal keys, i.e. the earliest in rotation order.
        .min_by_key(|&(load, _)| load)
        .map(|(_, index)| index)
}

fn ceil_secs(duration: Duration) -> u64 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEALTHY: Health = Health::Healthy;

    fn bot(in_flight: usize, connections: &[usize]) -> BotState<'_> {
        BotState {
            health: &HEALTHY,
            flood_wait_until: None,
            in_flight,
            connections,
            already_tried: false,
            denied: false,
            ready: true,
        }
    }

    #[test]
    fn halves_split_when_one_connection_is_busier_and_stay_together_otherwise() {
        // Idle: one half on each connection, so both download at once.
        assert_eq!(spread_parts(&[0, 0], 2, 8, 0), Some(vec![0, 1]));
        // Connection 0 busier: both halves avoid it until the loads meet.
        assert_eq!(spread_parts(&[3, 1], 2, 8, 0), Some(vec![1, 1]));
        assert_eq!(spread_parts(&[2, 1], 2, 8, 0), Some(vec![1, 0]));
        // One connection only: both halves on it.
        assert_eq!(spread_parts(&[0], 2, 8, 0), Some(vec![0, 0]));
    }

    #[test]
    fn the_cap_bounds_every_connection() {
        assert_eq!(spread_parts(&[7, 8], 2, 8, 0), None);
        assert_eq!(spread_parts(&[6, 8], 2, 8, 0), Some(vec![0, 0]));
        let now = Instant::now();
        let full = [bot(16, &[8, 8]), bot(15, &[8, 7])];
        assert_eq!(
            choose_parts(&full, now, 0, 2, 8),
            Err(SelectError::Saturated)
        );
        // A busier bot with room wins over a full one.
        let bots = [bot(16, &[8, 8]), bot(20, &[4, 6])];
        assert_eq!(
            choose_parts(&bots, now, 0, 2, 8),
            Ok(PartsChoice {
                bot: 1,
                connections: vec![0, 0]
            })
        );
    }

    #[test]
    fn a_bot_holding_the_location_wins_unless_much_busier() {
        let now = Instant::now();
        let cold = |in_flight, connections| BotState {
            ready: false,
            ..bot(in_flight, connections)
        };
        // Idle pool: whatever the rotation, the warm bot serves (no lookup round trip).
        for rotation in 0..4 {
            let idle = [cold(0, &[0, 0]), bot(0, &[0, 0])];
            let picked = choose_parts(&idle, now, rotation, 2, 8).map(|c| c.bot);
            assert_eq!(picked, Ok(1), "rotation {rotation}");
        }
        // The warm bot busier by less than one part per connection of the cold one: warm.
        let near = [cold(0, &[0, 0]), bot(1, &[1, 0])];
        assert_eq!(choose_parts(&near, now, 0, 2, 8).map(|c| c.bot), Ok(1));
        // Busier by more: the cold bot takes it and looks the location up.
        let far = [cold(0, &[0, 0]), bot(4, &[2, 2])];
        assert_eq!(choose_parts(&far, now, 0, 2, 8).map(|c| c.bot), Ok(0));
        // Two cold bots still rotate.
        let both = [cold(0, &[0, 0]), cold(0, &[0, 0])];
        assert_eq!(choose_parts(&both, now, 1, 2, 8).map(|c| c.bot), Ok(1));
    }

    #[test]
    fn choose_parts_reports_why_nobody_is_eligible() {
        let now = Instant::now();
        let mut waiting = bot(0, &[0]);
        waiting.flood_wait_until = Some(now + Duration::from_secs(5));
        assert!(matches!(
            choose_parts(&[waiting], now, 0, 2, 8),
            Err(SelectError::FloodWait { secs: 5, .. })
        ));
        let mut tried = bot(0, &[0]);
        tried.already_tried = true;
        assert_eq!(
            choose_parts(&[tried], now, 0, 2, 8),
            Err(SelectError::AllTried)
        );
    }

    proptest! {
        #[test]
        fn spread_never_exceeds_the_cap_and_places_every_part(
            loads in proptest::collection::vec(0usize..10, 1..6),
            parts in 1usize..5,
            cap in 1usize..12,
            rotation in 0usize..10,
        ) {
            match spread_parts(&loads, parts, cap, rotation) {
                Some(placed) => {
                    prop_assert_eq!(placed.len(), parts);
                    let mut after = loads.clone();
                    for c in placed { after[c] += 1; }
                    for (before, now) in loads.iter().zip(&after) {
                        prop_assert!(*now <= cap.max(*before));
                    }
                }
                None => {
                    let room: usize = loads.iter().map(|&l| cap.saturating_sub(l)).sum();
                    prop_assert!(room < parts);
                }
            }
        }
    }

    #[test]
    fn least_loaded_bot_and_connection_win() {
        let now = Instant::now();
        let bots = [bot(5, &[3, 2]), bot(2, &[1, 0, 1]), bot(4, &[4])];
        assert_eq!(
            choose(&bots, now, 0),
            Ok(Choice {
                bot: 1,
                connection: 1
            })
        );
    }

    #[test]
    fn ties_rotate() {
        let now = Instant::now();
        let bots = [bot(1, &[0, 0]), bot(1, &[0, 0]), bot(1, &[0, 0])];
        let picked: Vec<usize> = (0..6).map(|r| choose(&bots, now, r).unwrap().bot).collect();
        assert_eq!(picked, vec![0, 1, 2, 0, 1, 2]);
        let connections: Vec<usize> = (0..4)
            .map(|r| choose(&bots, now, r).unwrap().connection)
            .collect();
        assert_eq!(connections, vec![0, 1, 0, 1]);
    }

    #[test]
    fn flood_waiting_and_unhealthy_bots_are_skipped() {
        let now = Instant::now();
        let sick = Health::Unhealthy {
            reason: "token revoked".into(),
        };
        let mut waiting = bot(0, &[0]);
        waiting.flood_wait_until = Some(now + Duration::from_secs(30));
        let mut unhealthy = bot(0, &[0]);
        unhealthy.health = &sick;
        let bots = [waiting, unhealthy, bot(9, &[9])];
        assert_eq!(choose(&bots, now, 0).unwrap().bot, 2);
    }

    #[test]
    fn an_expired_flood_wait_no_longer_counts() {
        let now = Instant::now();
        let mut waited = bot(0, &[0]);
        waited.flood_wait_until = Some(now);
        assert_eq!(choose(&[waited], now, 0).unwrap().bot, 0);
    }

    #[test]
    fn all_waiting_reports_the_soonest_deadline_rounded_up() {
        let now = Instant::now();
        let mut a = bot(0, &[0]);
        a.flood_wait_until = Some(now + Duration::from_millis(30_500));
        let mut b = bot(0, &[0]);
        b.flood_wait_until = Some(now + Duration::from_secs(12));
        let sick = Health::Unhealthy { reason: "x".into() };
        let mut c = bot(0, &[0]);
        c.health = &sick;
        c.flood_wait_until = Some(now + Duration::from_secs(1));
        assert_eq!(
            choose(&[a.clone(), b, c], now, 0),
            Err(SelectError::FloodWait {
                secs: 12,
                until: now + Duration::from_secs(12)
            })
        );
        assert!(matches!(
            choose(&[a], now, 0),
            Err(SelectError::FloodWait { secs: 31, .. })
        ));
    }

    #[test]
    fn tried_bots_are_left_out() {
        let now = Instant::now();
        let mut tried = bot(0, &[0]);
        tried.already_tried = true;
        assert_eq!(
            choose(&[tried.clone(), bot(7, &[7])], now, 0).unwrap().bot,
            1
        );
        assert_eq!(choose(&[tried], now, 0), Err(SelectError::AllTried));
    }

    #[test]
    fn a_bot_that_cannot_read_the_channel_is_skipped_like_an_unhealthy_one() {
        let now = Instant::now();
        let mut denied = bot(0, &[0]);
        denied.denied = true;
        assert_eq!(
            choose(&[denied.clone(), bot(5, &[5])], now, 0).unwrap().bot,
            1
        );
        assert_eq!(choose(&[denied], now, 0), Err(SelectError::NoHealthyBot));
    }

    #[test]
    fn nothing_healthy() {
        let now = Instant::now();
        let sick = Health::Unhealthy { reason: "x".into() };
        let mut a = bot(0, &[0]);
        a.health = &sick;
        assert_eq!(choose(&[a], now, 0), Err(SelectError::NoHealthyBot));
        assert_eq!(choose(&[], now, 0), Err(SelectError::NoHealthyBot));
        // A bot without connections cannot serve either.
        assert_eq!(
            choose(&[bot(0, &[])], now, 0),
            Err(SelectError::NoHealthyBot)
        );
    }

    #[derive(Debug, Clone)]
    struct Generated {
        healthy: bool,
        wait_ms: Option<u64>,
        in_flight: usize,
        connections: Vec<usize>,
        tried: bool,
    }

    fn generated() -> impl Strategy<Value = Generated> {
        (
            any::<bool>(),
            proptest::option::of(0u64..100_000),
            0usize..20,
            proptest::collection::vec(0usize..10, 0..5),
            proptest::bool::weighted(0.2),
        )
            .prop_map(
                |(healthy, wait_ms, in_flight, connections, tried)| Generated {
                    healthy,
                    wait_ms,
                    in_flight,
                    connections,
                    tried,
                },
            )
    }

    proptest! {
        #[test]
        fn never_picks_an_ineligible_bot_while_an_eligible_one_exists(
            generated in proptest::collection::vec(generated(), 0..8),
            rotation in any::<usize>(),
        ) {
            let now = Instant::now();
            let sick = Health::Unhealthy { reason: "generated".into() };
            let bots: Vec<BotState<'_>> = generated
                .iter()
                .map(|g| BotState {
                    health: if g.healthy { &HEALTHY } else { &sick },
                    flood_wait_until: g.wait_ms.map(|ms| now + Duration::from_millis(ms)),
                    in_flight: g.in_flight,
                    connections: &g.connections,
                    already_tried: g.tried,
                    denied: false,
                    ready: true,
                })
                .collect();
            let eligible: Vec<usize> = (0..bots.len())
                .filter(|&i| {
                    let g = &generated[i];
                    g.healthy && !g.connections.is_empty() && !g.tried
                        && g.wait_ms.is_none_or(|ms| ms == 0)
                })
                .collect();
            match choose(&bots, now, rotation) {
                Ok(choice) => {
                    prop_assert!(eligible.contains(&choice.bot));
                    let min = eligible.iter().map(|&i| generated[i].in_flight).min();
                    prop_assert_eq!(Some(generated[choice.bot].in_flight), min);
                    let connections = &generated[choice.bot].connections;
                    prop_assert_eq!(
                        Some(connections[choice.connection]),
                        connections.iter().copied().min()
                    );
                }
                Err(SelectError::FloodWait { secs, until }) => {
                    prop_assert!(eligible.is_empty());
                    prop_assert!(secs >= 1);
                    prop_assert!(until > now);
                }
                Err(SelectError::AllTried | SelectError::NoHealthyBot) => {
                    prop_assert!(eligible.is_empty());
                }
                Err(SelectError::Saturated) => prop_assert!(false, "choose has no cap"),
            }
        }
    }
}
