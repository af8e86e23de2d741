//! The one cross-bot retry policy of the request path, as a pure state machine: the caller
//! feeds it `now` and the last outcome ([`Event`]), it answers the next [`Action`] — try
//! the same bot again, try the next bot, sleep until an instant, or give up with a reason
//! ([`GiveUp`]).
//!
//! Both Telegram loops of the core drive it: the chunk fetch (`fetch`, parts on the bot's
//! connections) and the message lookup (`resolve`, `channels.getMessages`). What differs
//! between them is only their [`RetryPolicy`] numbers. The driver owns the I/O: it asks the
//! pool for a bot outside [`Retry::excluded`], runs the attempt, applies the failure's
//! penalty to the pool, and reports back.
//!
//! Rules, in order: a deadline passed or attempts used up gives up as `Unavailable` with the
//! last failure (lost connections and flood waits use no attempt: they say nothing about the
//! request, and the deadline and the pauses between rounds bound them instead); "not found"
//! and "retrying cannot help" give up at once; a stale file reference retries the same bot
//! once with a refresh; every other failure moves to another bot; when every bot has failed
//! once a new round starts (up to `max_rounds`) after a pause that doubles each round, so a
//! cut connection has time to come back. The bots left untried all being
//! in flood wait is not the end while another bot only failed in passing: that bot gets the
//! next round. When nothing but flood wait is left, the request sleeps until the first bot
//! is free if that is before its deadline — a flood wait of a few seconds costs the viewer
//! those seconds, not the stream — and gives up as `FloodWait` with the soonest end
//! otherwise. Saturated connections sleep a poll interval. No I/O, no clock, no grammers.

use std::time::{Duration, Instant};

use crate::bots::select::SelectError;
use crate::ports::{RetryClass, TelegramError};

/// Why a request was given up. Cloneable: every waiter of a shared download or lookup
/// gets it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GiveUp {
    #[error("no such file or chunk")]
    NotFound,
    #[error("every bot is in flood wait for at least {secs} s")]
    FloodWait { secs: u64 },
    #[error("telegram unavailable: {0}")]
    Unavailable(String),
    /// Retrying cannot help: a request built wrongly, a failure nobody classified.
    #[error("giving up: {0}")]
    Rejected(String),
}

impl GiveUp {
    /// The reason as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            GiveUp::NotFound => "not_found",
            GiveUp::FloodWait { .. } => "flood_wait",
            GiveUp::Unavailable(_) => "unavailable",
            GiveUp::Rejected(_) => "rejected",
        }
    }
}

/// How often the pause between rounds doubles at most: 100 ms grows to 1.6 s.
pub const MAX_PAUSE_DOUBLINGS: u32 = 4;

/// The numbers that tell the fetch and the lookup loops apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts (failed calls) before giving up; lost connections and flood waits do not
    /// count ([`TelegramError::uses_an_attempt`]).
    pub max_attempts: u32,
    /// Rounds over the bots (a round ends when every eligible bot failed once).
    pub max_rounds: u32,
    /// How long to wait when every eligible connection is at its in-flight cap: the next
    /// finished part frees a slot; polling costs less than a wake-up list at these rates.
    pub saturated_poll: Duration,
    /// How long to wait before the second round, once every eligible bot has failed: a bot
    /// whose connection was just cut reconnects meanwhile instead of failing again at once.
    /// Each further round waits twice as long (at most [`MAX_PAUSE_DOUBLINGS`] times), so
    /// the attempts spread over a burst of faults instead of all landing inside it.
    pub round_pause: Duration,
}

/// What happened since the last action.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The pool had no bot for the last action's choice.
    NoBot(SelectError),
    /// The attempt on `bot` failed.
    Failed {
        bot: usize,
        error: &'a TelegramError,
    },
    /// The sleep of the last [`Action::SleepUntil`] is over.
    Woke,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Attempt on the least busy bot outside [`Retry::excluded`].
    NextBot,
    /// Attempt on `bot` again ([`Retry::excluded`] leaves only it), re-fetching its file
    /// reference first when `refresh`.
    SameBot {
        bot: usize,
        refresh: bool,
    },
    /// Nothing can be picked now; sleep until then and report [`Event::Woke`].
    SleepUntil(Instant),
    GiveUp(GiveUp),
}

/// The retry state of one request.
#[derive(Debug, Clone)]
pub struct Retry {
    policy: RetryPolicy,
    deadline: Instant,
    tried: Vec<bool>,
    refreshed: Vec<bool>,
    /// The bot the next attempt must use (a refresh on the bot that saw the stale
    /// reference), if any.
    pinned: Option<usize>,
    attempts: u32,
    rounds: u32,
    last_error: Option<String>,
}

impl Retry {
    /// A request over `bots` bots that must be done by `deadline`.
    pub fn new(bots: usize, policy: RetryPolicy, deadline: Instant) -> Self {
        Self {
            policy,
            deadline,
            tried: vec![false; bots],
            refreshed: vec![false; bots],
            pinned: None,
            attempts: 0,
            rounds: 1,
            last_error: None,
        }
    }

    /// The first action.
    pub fn start(&mut self, now: Instant) -> Action {
        self.resume(now)
    }

    /// The bots the next pick must not choose: those tried this round, or every bot but
    /// the pinned one.
    pub fn excluded(&self) -> Vec<bool> {
        match self.pinned {
            Some(pinned) => (0..self.tried.len()).map(|bot| bot != pinned).collect(),
            None => self.tried.clone(),
        }
    }

    /// Failed attempts so far, lost connections and flood waits left out.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The next action after `event` at `now`.
    pub fn on(&mut self, now: Instant, event: Event<'_>) -> Action {
        match event {
            Event::Woke => self.resume(now),
            Event::NoBot(error) => self.on_no_bot(now, error),
            Event::Failed { bot, error } => self.on_failure(now, bot, error),
        }
    }

    fn on_no_bot(&mut self, now: Instant, error: SelectError) -> Action {
        if let Some(pinned) = self.pinned.take() {
            // The bot to refresh on cannot take it now: any other bot will do.
            self.mark_tried(pinned);
            return self.resume(now);
        }
        match error {
            SelectError::FloodWait { secs, until } => self.on_flood_wait(now, secs, until),
            SelectError::NoHealthyBot => {
                Action::GiveUp(GiveUp::Unavailable("no healthy bot".into()))
            }
            SelectError::Saturated => {
                self.last_error
                    .get_or_insert_with(|| "every download connection stayed at its cap".into());
                self.sleep(now, now + self.policy.saturated_poll)
            }
            SelectError::AllTried if self.rounds < self.policy.max_rounds => self.new_round(now),
            SelectError::AllTried => self.unavailable(),
        }
    }

    /// Every bot left untried is in flood wait, the first free at `until`.
    fn on_flood_wait(&mut self, now: Instant, secs: u64, until: Instant) -> Action {
        // A bot that failed in passing (a cut connection, INTERNAL) is a better bet than
        // waiting: it gets another round.
        if self.tried.contains(&true) && self.rounds < self.policy.max_rounds {
            return self.new_round(now);
        }
        if until <= self.deadline {
            self.last_error
                .get_or_insert_with(|| format!("every bot was in flood wait for {secs} s"));
            return self.sleep(now, until);
        }
        Action::GiveUp(GiveUp::FloodWait { secs })
    }

    /// Forgets which bots were tried and pauses before the next pick, longer each round.
    fn new_round(&mut self, now: Instant) -> Action {
        self.rounds += 1;
        self.tried.iter_mut().for_each(|tried| *tried = false);
        if self.policy.round_pause.is_zero() {
            return self.resume(now);
        }
        // The first new round is round 2: it waits the plain pause.
        let doublings = self.rounds.saturating_sub(2).min(MAX_PAUSE_DOUBLINGS);
        self.sleep(now, now + self.policy.round_pause * (1 << doublings))
    }

    /// Sleep until `until` (never past the deadline), unless time or attempts ran out.
    fn sleep(&self, now: Instant, until: Instant) -> Action {
        match self.expired(now) {
            Some(give_up) => give_up,
            None => Action::SleepUntil(until.min(self.deadline)),
        }
    }

    fn on_failure(&mut self, now: Instant, bot: usize, error: &TelegramError) -> Action {
        // Under a burst of cuts every call in flight fails together, and a bot whose flood
        // wait ran out may answer another one: counting those gave chunks up while a bot
        // was free a second later.
        if error.uses_an_attempt() {
            self.attempts += 1;
        }
        self.last_error = Some(error.to_string());
        self.pinned = None;
        match error.retry_class() {
            RetryClass::NotFound => return Action::GiveUp(GiveUp::NotFound),
            RetryClass::GiveUp => return Action::GiveUp(GiveUp::Rejected(error.to_string())),
            RetryClass::RefreshAndRetry if !self.refreshed.get(bot).copied().unwrap_or(true) => {
                self.refreshed[bot] = true;
                self.pinned = Some(bot);
            }
            RetryClass::RefreshAndRetry
            | RetryClass::MigrateAndRetry
            | RetryClass::RetryOtherBot => self.mark_tried(bot),
        }
        self.resume(now)
    }

    /// The action that repeats the last choice, unless time or attempts ran out.
    fn resume(&self, now: Instant) -> Action {
        if let Some(give_up) = self.expired(now) {
            return give_up;
        }
        match self.pinned {
            Some(bot) => Action::SameBot { bot, refresh: true },
            None => Action::NextBot,
        }
    }

    fn expired(&self, now: Instant) -> Option<Action> {
        (now >= self.deadline || self.attempts >= self.policy.max_attempts)
            .then(|| self.unavailable())
    }

    fn unavailable(&self) -> Action {
        let why = self.last_error.as_deref().unwrap_or("no attempt made");
        Action::GiveUp(GiveUp::Unavailable(why.to_owned()))
    }

    fn mark_tried(&mut self, bot: usize) {
        if let Some(tried) = self.tried.get_mut(bot) {
            *tried = true;
        }
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
