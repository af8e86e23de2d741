//! The bot pool: each bot's health, FLOOD_WAIT deadline and load counters, and the choice of
//! bot and connection for the next chunk request.
//!
//! [`select`] is the pure choice and [`load`] the counters; [`BotPool`] holds the live state
//! and glues the two under one short lock-free-ish step (`pick`). The pool knows bots by
//! index and id only — what a bot downloads with is the fetch layer's business — so it holds
//! no grammers type and does no I/O.

pub mod load;
pub mod select;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use load::{LoadCounters, LoadGuard, LoadSnapshot};
use select::{BotState, Choice, Health, PartsChoice, SelectError};

struct BotEntry {
    id: i64,
    load: Arc<LoadCounters>,
    status: Mutex<Status>,
    /// Bytes downloaded by this bot.
    bytes: AtomicU64,
    /// FLOOD_WAIT answers this bot got.
    flood_waits: AtomicU64,
}

#[derive(Clone)]
struct Status {
    health: Health,
    flood_wait_until: Option<Instant>,
}

/// What the admin command and metrics show for one bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotReport {
    pub id: i64,
    pub health: Health,
    /// Seconds of FLOOD_WAIT left at the time of the report, if any.
    pub flood_wait_secs: Option<u64>,
    pub load: LoadSnapshot,
    /// Bytes downloaded since start.
    pub bytes: u64,
    /// FLOOD_WAIT answers since start.
    pub flood_waits: u64,
}

/// A choice made by [`BotPool::pick`]: which bot, which connection, and the guard that counts
/// the request on both until dropped.
#[derive(Debug)]
pub struct Picked {
    pub bot: usize,
    pub connection: usize,
    pub guard: LoadGuard,
}

/// A choice made by [`BotPool::pick_parts`]: the bot, the connection of each part, and one
/// guard per part counting it on its connection until dropped.
#[derive(Debug)]
pub struct PickedParts {
    pub bot: usize,
    pub connections: Vec<usize>,
    pub guards: Vec<LoadGuard>,
}

/// The live state of every bot.
pub struct BotPool {
    bots: Vec<BotEntry>,
    rotation: AtomicUsize,
}

impl BotPool {
    /// A pool of bots given as `(bot id, download connections)`, all healthy.
    pub fn new(bots: &[(i64, usize)]) -> Self {
        Self {
            bots: bots
                .iter()
                .map(|&(id, connections)| BotEntry {
                    id,
                    load: LoadCounters::new(connections),
                    status: Mutex::new(Status {
                        health: Health::Healthy,
                        flood_wait_until: None,
                    }),
                    bytes: AtomicU64::new(0),
                    flood_waits: AtomicU64::new(0),
                })
                .collect(),
            rotation: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.bots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bots.is_empty()
    }

    pub fn bot_id(&self, bot: usize) -> Option<i64> {
        self.bots.get(bot).map(|b| b.id)
    }

    /// Chooses a bot for a request of `parts` parts and the connection of each part (none
    /// above `cap` parts in flight), and counts them; bots with `already_tried[i]` set are
    /// skipped. [`SelectError::Saturated`] means: wait for a part to finish, then ask again.
    pub fn pick_parts(
        &self,
        now: Instant,
        already_tried: &[bool],
        parts: usize,
        cap: usize,
    ) -> Result<PickedParts, SelectError> {
        let statuses: Vec<Status> = self.bots.iter().map(|b| b.status()).collect();
        let snapshots: Vec<LoadSnapshot> = self.bots.iter().map(|b| b.load.snapshot()).collect();
        let states = states(&statuses, &snapshots, already_tried);
        let rotation = self.rotation.fetch_add(1, Ordering::Relaxed);
        let PartsChoice { bot, connections } =
            select::choose_parts(&states, now, rotation, parts, cap)?;
        // `choose_parts` only returns indices of the slices it was given. Two picks racing
        // may both see room and overshoot the cap by a part: the cap is a share, not a lock.
        let guards = connections
            .iter()
            .map(|&connection| self.bots[bot].load.acquire(connection))
            .collect::<Option<Vec<_>>>()
            .ok_or(SelectError::NoHealthyBot)?;
        Ok(PickedParts {
            bot,
            connections,
            guards,
        })
    }

    /// Chooses a bot and connection for one request and counts it; bots with
    /// `already_tried[i]` set are skipped.
    pub fn pick(&self, now: Instant, already_tried: &[bool]) -> Result<Picked, SelectError> {
        let statuses: Vec<Status> = self.bots.iter().map(|b| b.status()).collect();
        let snapshots: Vec<LoadSnapshot> = self.bots.iter().map(|b| b.load.snapshot()).collect();
        let states = states(&statuses, &snapshots, already_tried);
        let rotation = self.rotation.fetch_add(1, Ordering::Relaxed);
        let Choice { bot, connection } = select::choose(&states, now, rotation)?;
        // `choose` only returns indices of the slices it was given.
        let guard = self.bots[bot]
            .load
            .acquire(connection)
            .ok_or(SelectError::NoHealthyBot)?;
        Ok(Picked {
            bot,
            connection,
            guard,
        })
    }

    /// The bot answered FLOOD_WAIT: keep requests away from it for `secs` from `now`.
    pub fn mark_flood_wait(&self, bot: usize, now: Instant, secs: u32) {
        if let Some(entry) = self.bots.get(bot) {
            entry.flood_waits.fetch_add(1, Ordering::Relaxed);
            let until = now + Duration::from_secs(u64::from(secs));
            let mut status = entry.status_mut();
            status.flood_wait_until = Some(status.flood_wait_until.map_or(until, |u| u.max(until)));
        }
    }

    /// `bot` delivered `bytes` of file content.
    pub fn record_bytes(&self, bot: usize, bytes: usize) {
        if let Some(entry) = self.bots.get(bot) {
            entry.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    pub fn set_health(&self, bot: usize, health: Health) {
        if let Some(entry) = self.bots.get(bot) {
            if let Health::Unhealthy { reason } = &health {
                tracing::warn!(bot_id = entry.id, reason, "bot taken out of rotation");
            }
            entry.status_mut().health = health;
        }
    }

    /// Every bot's state, for metrics and the admin command.
    pub fn report(&self, now: Instant) -> Vec<BotReport> {
        self.bots
            .iter()
            .map(|entry| {
                let status = entry.status();
                BotReport {
                    id: entry.id,
                    health: status.health,
                    flood_wait_secs: status
                        .flood_wait_until
                        .filter(|until| *until > now)
                        .map(|until| until.duration_since(now).as_secs().max(1)),
                    load: entry.load.snapshot(),
                    bytes: entry.bytes.load(Ordering::Relaxed),
                    flood_waits: entry.flood_waits.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

fn states<'a>(
    statuses: &'a [Status],
    snapshots: &'a [LoadSnapshot],
    already_tried: &[bool],
) -> Vec<BotState<'a>> {
    statuses
        .iter()
        .zip(snapshots)
        .enumerate()
        .map(|(i, (status, load))| BotState {
            health: &status.health,
            flood_wait_until: status.flood_wait_until,
            in_flight: load.in_flight,
            connections: &load.per_connection,
            already_tried: already_tried.get(i).copied().unwrap_or(false),
        })
        .collect()
}

impl BotEntry {
    fn status(&self) -> Status {
        self.status_mut().clone()
    }

    fn status_mut(&self) -> std::sync::MutexGuard<'_, Status> {
        // The lock only guards plain assignments, so a poisoned one still holds valid data.
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_counts_until_the_guard_drops_and_spreads_load() {
        let pool = BotPool::new(&[(1, 2), (2, 2)]);
        let now = Instant::now();
        let first = pool.pick(now, &[]).unwrap();
        let second = pool.pick(now, &[]).unwrap();
        assert_ne!(first.bot, second.bot);
        let report = pool.report(now);
        assert_eq!(report[0].load.in_flight + report[1].load.in_flight, 2);
        drop((first, second));
        assert!(pool.report(now).iter().all(|r| r.load.in_flight == 0));
    }

    #[test]
    fn flood_wait_moves_requests_away_until_it_ends() {
        let pool = BotPool::new(&[(1, 1), (2, 1)]);
        let now = Instant::now();
        pool.mark_flood_wait(0, now, 30);
        for _ in 0..4 {
            assert_eq!(pool.pick(now, &[]).unwrap().bot, 1);
        }
        pool.mark_flood_wait(1, now, 10);
        assert!(matches!(
            pool.pick(now, &[]),
            Err(SelectError::FloodWait { secs: 10, .. })
        ));
        assert_eq!(pool.report(now)[0].flood_wait_secs, Some(30));
        let later = now + Duration::from_secs(11);
        assert_eq!(pool.pick(later, &[]).unwrap().bot, 1);
    }

    #[test]
    fn unhealthy_bots_are_skipped_and_reported() {
        let pool = BotPool::new(&[(1, 1), (2, 1)]);
        let now = Instant::now();
        let sick = Health::Unhealthy {
            reason: "token revoked".into(),
        };
        pool.set_health(1, sick.clone());
        for _ in 0..3 {
            assert_eq!(pool.pick(now, &[]).unwrap().bot, 0);
        }
        assert_eq!(pool.report(now)[1].health, sick);
        assert!(matches!(
            pool.pick(now, &[true, false]),
            Err(SelectError::AllTried)
        ));
    }
}
