//! The bot pool: each bot's health (for everything and per channel), FLOOD_WAIT deadline and
//! load counters, and the choice of bot and connection for the next request.
//!
//! [`select`] is the pure choice, [`load`] the counters and [`health`] the re-probe schedule;
//! [`BotPool`] holds the live state and glues them under one short lock-free-ish step
//! (`pick`). A bot that cannot read one channel is skipped for that channel only; every
//! problem is re-probed (by `crate::health`) on the [`health::Backoff`] schedule and
//! cleared when the probe passes. The pool knows bots by index and id only — what a bot
//! downloads with is the fetch layer's business — so it holds no grammers type and does no
//! I/O.

pub mod health;
pub mod load;
pub mod select;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use health::{Backoff, Probe, ProbeTarget, Sickness};
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
    /// The schedule of the bot-wide problem, while `health` is unhealthy.
    sickness: Option<Sickness>,
    /// Channels (Bot API id) this bot cannot read, each with its own schedule.
    denied: HashMap<i64, Sickness>,
    flood_wait_until: Option<Instant>,
}

/// What a failed Telegram call means for the bot that made it (the telegram layer maps its
/// errors to this; the pool applies it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// Keep requests away for this long.
    FloodWait { secs: u32 },
    /// Out of rotation for everything until a probe passes.
    Bot { reason: &'static str },
    /// Out of rotation for the request's channel only, until a probe passes.
    Channel { reason: &'static str },
}

/// A problem as the views show it: why, for how long already, and when it is checked next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SicknessReport {
    pub reason: String,
    pub since_secs: u64,
    /// Seconds until the next probe (0: due now or running).
    pub next_probe_secs: u64,
}

impl SicknessReport {
    fn of(sickness: &Sickness, now: Instant) -> Self {
        Self {
            reason: sickness.reason.clone(),
            since_secs: now.saturating_duration_since(sickness.since).as_secs(),
            next_probe_secs: ceil_secs(sickness.next_probe.saturating_duration_since(now)),
        }
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// What the admin command and metrics show for one bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotReport {
    pub id: i64,
    pub health: Health,
    /// The bot-wide problem's schedule, while unhealthy.
    pub sickness: Option<SicknessReport>,
    /// Channels (Bot API id) this bot cannot read, sorted by id.
    pub denied_channels: Vec<(i64, SicknessReport)>,
    /// Seconds of FLOOD_WAIT left at the time of the report, if any.
    pub flood_wait_secs: Option<u64>,
    pub load: LoadSnapshot,
    /// Bytes downloaded since start.
    pub bytes: u64,
    /// FLOOD_WAIT answers since start.
    pub flood_waits: u64,
}

impl BotReport {
    /// Whether the bot can serve files of `channel` (its FLOOD_WAIT aside, which ends by
    /// itself): healthy, and not denied that channel. Denials of other channels do not
    /// count.
    pub fn serves(&self, channel: i64) -> bool {
        self.health == Health::Healthy
            && !self
                .denied_channels
                .iter()
                .any(|(denied, _)| *denied == channel)
    }
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
    backoff: Mutex<Backoff>,
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
                        sickness: None,
                        denied: HashMap::new(),
                        flood_wait_until: None,
                    }),
                    bytes: AtomicU64::new(0),
                    flood_waits: AtomicU64::new(0),
                })
                .collect(),
            rotation: AtomicUsize::new(0),
            backoff: Mutex::new(Backoff::default()),
        }
    }

    /// Replaces the re-probe schedule (tests use short delays).
    pub fn set_probe_backoff(&self, backoff: Backoff) {
        *lock(&self.backoff) = backoff;
    }

    pub fn probe_backoff(&self) -> Backoff {
        *lock(&self.backoff)
    }

    pub fn len(&self) -> usize {
        self.bots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bots.is_empty()
    }

    /// Download connections across all bots (each bot's connections to its files' DCs).
    pub fn connections(&self) -> usize {
        self.bots.iter().map(|b| b.load.connections()).sum()
    }

    pub fn bot_id(&self, bot: usize) -> Option<i64> {
        self.bots.get(bot).map(|b| b.id)
    }

    /// Chooses a bot for a request of `parts` parts in channel `channel` (Bot API id) and the
    /// connection of each part (none above `cap` parts in flight), and counts them; bots with
    /// `already_tried[i]` set or that cannot read the channel are skipped, and bots with
    /// `ready[i]` false (they must look the file's location up first) count as busier
    /// (see [`select`]); a missing entry means ready.
    /// [`SelectError::Saturated`] means: wait for a part to finish, then ask again.
    pub fn pick_parts(
        &self,
        channel: i64,
        now: Instant,
        already_tried: &[bool],
        ready: &[bool],
        parts: usize,
        cap: usize,
    ) -> Result<PickedParts, SelectError> {
        let statuses: Vec<Status> = self.bots.iter().map(|b| b.status()).collect();
        let snapshots: Vec<LoadSnapshot> = self.bots.iter().map(|b| b.load.snapshot()).collect();
        let mut states = states(&statuses, &snapshots, already_tried, Some(channel));
        for (state, &ready) in states.iter_mut().zip(ready) {
            state.ready = ready;
        }
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
    /// `already_tried[i]` set, and with `channel` given those that cannot read it, are
    /// skipped.
    pub fn pick(
        &self,
        channel: Option<i64>,
        now: Instant,
        already_tried: &[bool],
    ) -> Result<Picked, SelectError> {
        let statuses: Vec<Status> = self.bots.iter().map(|b| b.status()).collect();
        let snapshots: Vec<LoadSnapshot> = self.bots.iter().map(|b| b.load.snapshot()).collect();
        let states = states(&statuses, &snapshots, already_tried, channel);
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

    /// Sets the bot-wide health by hand: unhealthy from `now` with a probe scheduled, or
    /// healthy again (the schedule dropped).
    pub fn set_health(&self, bot: usize, health: Health, now: Instant) {
        let backoff = self.probe_backoff();
        if let Some(entry) = self.bots.get(bot) {
            let mut status = entry.status_mut();
            match &health {
                Health::Unhealthy { reason } => {
                    tracing::warn!(bot_id = entry.id, reason, "bot taken out of rotation");
                    // A bot already out keeps its schedule: a burst of failures is one.
                    if status.sickness.is_none() {
                        status.sickness = Some(Sickness::new(reason.clone(), now, &backoff));
                    }
                }
                Health::Healthy => status.sickness = None,
            }
            status.health = health;
        }
    }

    /// Applies what a failed call of `bot` on a file of `channel` means for the bot.
    pub fn penalise(&self, bot: usize, channel: i64, penalty: Penalty, now: Instant) {
        match penalty {
            Penalty::FloodWait { secs } => self.mark_flood_wait(bot, now, secs),
            Penalty::Bot { reason } => self.set_health(
                bot,
                Health::Unhealthy {
                    reason: reason.into(),
                },
                now,
            ),
            Penalty::Channel { reason } => self.deny_channel(bot, channel, reason, now),
        }
    }

    /// `bot` cannot read `channel`: skip it for that channel until a probe passes.
    pub fn deny_channel(&self, bot: usize, channel: i64, reason: &str, now: Instant) {
        let backoff = self.probe_backoff();
        if let Some(entry) = self.bots.get(bot) {
            let mut status = entry.status_mut();
            // A channel already denied keeps its schedule: a burst of failures is one.
            if let std::collections::hash_map::Entry::Vacant(slot) = status.denied.entry(channel) {
                tracing::warn!(
                    bot_id = entry.id,
                    channel,
                    reason,
                    "bot cannot read a channel"
                );
                slot.insert(Sickness::new(reason, now, &backoff));
            }
        }
    }

    /// The probes due at `now`. Each is pushed one probe timeout (`running_for`) into the
    /// future, so a probe still running is not started twice.
    pub fn due_probes(&self, now: Instant, running_for: Duration) -> Vec<Probe> {
        let mut due = Vec::new();
        for (bot, entry) in self.bots.iter().enumerate() {
            let mut status = entry.status_mut();
            if let Some(sickness) = status.sickness.as_mut().filter(|s| s.is_due(now)) {
                sickness.next_probe = now + running_for;
                due.push(Probe {
                    bot,
                    target: ProbeTarget::Bot,
                });
            }
            for (channel, sickness) in status.denied.iter_mut() {
                if sickness.is_due(now) {
                    sickness.next_probe = now + running_for;
                    due.push(Probe {
                        bot,
                        target: ProbeTarget::Channel(*channel),
                    });
                }
            }
        }
        due
    }

    /// The result of a probe: passed (the problem is cleared) or failed with `reason` (the
    /// next probe waits longer).
    pub fn probe_done(&self, probe: Probe, result: Result<(), String>, now: Instant) {
        let backoff = self.probe_backoff();
        let Some(entry) = self.bots.get(probe.bot) else {
            return;
        };
        let mut status = entry.status_mut();
        let slot = match probe.target {
            ProbeTarget::Bot => status.sickness.as_mut(),
            ProbeTarget::Channel(channel) => status.denied.get_mut(&channel),
        };
        let Some(sickness) = slot else { return };
        match result {
            Err(reason) => sickness.failed_again(reason, now, &backoff),
            Ok(()) => {
                tracing::info!(bot_id = entry.id, ?probe.target, "probe passed: back in rotation");
                match probe.target {
                    ProbeTarget::Bot => {
                        status.sickness = None;
                        status.health = Health::Healthy;
                    }
                    ProbeTarget::Channel(channel) => {
                        status.denied.remove(&channel);
                    }
                }
            }
        }
    }

    /// When the next probe is due, if any problem is known.
    pub fn next_probe_at(&self) -> Option<Instant> {
        self.bots
            .iter()
            .flat_map(|entry| {
                let status = entry.status();
                status
                    .sickness
                    .iter()
                    .chain(status.denied.values())
                    .map(|s| s.next_probe)
                    .collect::<Vec<_>>()
            })
            .min()
    }

    /// Every bot's state, for metrics and the admin command.
    pub fn report(&self, now: Instant) -> Vec<BotReport> {
        self.bots
            .iter()
            .map(|entry| {
                let status = entry.status();
                let mut denied_channels: Vec<(i64, SicknessReport)> = status
                    .denied
                    .iter()
                    .map(|(channel, s)| (*channel, SicknessReport::of(s, now)))
                    .collect();
                denied_channels.sort_by_key(|(channel, _)| *channel);
                BotReport {
                    id: entry.id,
                    sickness: status.sickness.as_ref().map(|s| SicknessReport::of(s, now)),
                    denied_channels,
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
    channel: Option<i64>,
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
            denied: channel.is_some_and(|channel| status.denied.contains_key(&channel)),
            ready: true,
        })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every lock here guards plain assignments, so a poisoned one still holds valid data.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl BotEntry {
    fn status(&self) -> Status {
        self.status_mut().clone()
    }

    fn status_mut(&self) -> std::sync::MutexGuard<'_, Status> {
        lock(&self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_counts_until_the_guard_drops_and_spreads_load() {
        let pool = BotPool::new(&[(1, 2), (2, 2)]);
        let now = Instant::now();
        let first = pool.pick(None, now, &[]).unwrap();
        let second = pool.pick(None, now, &[]).unwrap();
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
            assert_eq!(pool.pick(None, now, &[]).unwrap().bot, 1);
        }
        pool.mark_flood_wait(1, now, 10);
        assert!(matches!(
            pool.pick(None, now, &[]),
            Err(SelectError::FloodWait { secs: 10, .. })
        ));
        assert_eq!(pool.report(now)[0].flood_wait_secs, Some(30));
        let later = now + Duration::from_secs(11);
        assert_eq!(pool.pick(None, later, &[]).unwrap().bot, 1);
    }

    #[test]
    fn unhealthy_bots_are_skipped_and_reported() {
        let pool = BotPool::new(&[(1, 1), (2, 1)]);
        let now = Instant::now();
        let sick = Health::Unhealthy {
            reason: "token revoked".into(),
        };
        pool.set_health(1, sick.clone(), now);
        for _ in 0..3 {
            assert_eq!(pool.pick(None, now, &[]).unwrap().bot, 0);
        }
        assert_eq!(pool.report(now)[1].health, sick);
        assert!(matches!(
            pool.pick(None, now, &[true, false]),
            Err(SelectError::AllTried)
        ));
    }

    const STORAGE: i64 = -1_001;
    const OTHER: i64 = -1_002;

    #[test]
    fn a_denied_channel_takes_the_bot_out_for_that_channel_only() {
        let pool = BotPool::new(&[(1, 1), (2, 1)]);
        let now = Instant::now();
        for bot in 0..2 {
            pool.penalise(bot, OTHER, Penalty::Channel { reason: "private" }, now);
        }
        assert!(matches!(
            pool.pick(Some(OTHER), now, &[]),
            Err(SelectError::NoHealthyBot)
        ));
        let picked: Vec<usize> = (0..4)
            .map(|_| pool.pick(Some(STORAGE), now, &[]).unwrap().bot)
            .collect();
        assert!(picked.contains(&0) && picked.contains(&1), "{picked:?}");
        let report = pool.report(now);
        assert!(report.iter().all(|bot| bot.health == Health::Healthy));
        assert_eq!(report[0].denied_channels[0].0, OTHER);
        assert_eq!(report[0].denied_channels[0].1.next_probe_secs, 30);
        // Readiness asks about the storage channel: an unrelated denial does not count.
        assert!(report.iter().all(|bot| bot.serves(STORAGE)));
        assert!(!report.iter().any(|bot| bot.serves(OTHER)));
    }

    #[test]
    fn probes_run_when_due_back_off_and_clear_on_success() {
        let pool = BotPool::new(&[(1, 1)]);
        let start = Instant::now();
        let running = Duration::from_secs(10);
        pool.penalise(0, OTHER, Penalty::Channel { reason: "private" }, start);
        pool.penalise(0, STORAGE, Penalty::Bot { reason: "revoked" }, start);
        assert!(pool.due_probes(start, running).is_empty());
        let first = start + Duration::from_secs(30);
        let due = pool.due_probes(first, running);
        assert_eq!(due.len(), 2);
        // A probe in flight is not handed out twice.
        assert!(pool.due_probes(first, running).is_empty());
        let channel = Probe {
            bot: 0,
            target: ProbeTarget::Channel(OTHER),
        };
        let bot = Probe {
            bot: 0,
            target: ProbeTarget::Bot,
        };
        pool.probe_done(channel, Err("still private".into()), first);
        pool.probe_done(bot, Ok(()), first);
        let report = &pool.report(first)[0];
        assert_eq!(report.health, Health::Healthy);
        assert_eq!(report.sickness, None);
        assert_eq!(report.denied_channels[0].1.reason, "still private");
        assert_eq!(report.denied_channels[0].1.since_secs, 30);
        assert_eq!(report.denied_channels[0].1.next_probe_secs, 60);
        assert_eq!(pool.next_probe_at(), Some(first + Duration::from_secs(60)));
        let second = first + Duration::from_secs(60);
        assert_eq!(pool.due_probes(second, running), vec![channel]);
        pool.probe_done(channel, Ok(()), second);
        assert!(pool.report(second)[0].denied_channels.is_empty());
        assert_eq!(pool.next_probe_at(), None);
        assert_eq!(pool.pick(Some(OTHER), second, &[]).unwrap().bot, 0);
    }
}
