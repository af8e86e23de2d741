//! The background prober: re-checks every bot that is out of service (bot-wide or for one
//! channel) when the pool's schedule says so, and puts it back in rotation when the check
//! passes — no restart needed.
//!
//! The schedule (what is due, backoff, clearing) is the pool's pure part
//! ([`crate::bots::health`]); this module is only the driver: one loop that asks the pool
//! for the due probes, runs them through a [`Prober`] per bot under a deadline, and reports
//! the results back. The checks themselves live with the Telegram client
//! (`telegram::download`), so this module holds no grammers type.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::bots::BotPool;
use crate::bots::health::Probe;
use crate::ports::BoxFuture;
pub use crate::ports::Prober;

/// Deadline of one probe; also how long a running probe is kept from being started again.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest the loop sleeps without looking at the pool, so a problem noted meanwhile is
/// probed at most this late.
const MAX_TICK: Duration = Duration::from_secs(1);

/// Runs the probes of `pool` (`probers[i]` checks bot `i`) until `stop` turns true.
pub async fn run(
    pool: Arc<BotPool>,
    probers: Vec<Arc<dyn Prober>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = Instant::now();
        let mut running = JoinSet::new();
        for probe in pool.due_probes(now, PROBE_TIMEOUT) {
            let Some(prober) = probers.get(probe.bot) else {
                continue;
            };
            let span = tracing::info_span!("probe", bot = probe.bot, target = ?probe.target);
            let call = Arc::clone(prober).probe(probe.target, now + PROBE_TIMEOUT);
            let pool = Arc::clone(&pool);
            running.spawn(async move { finish(&pool, probe, call).await }.instrument(span));
        }
        // Probes are few and bounded by their deadline; waiting for them keeps one round at
        // a time.
        while running.join_next().await.is_some() {}
        let now = Instant::now();
        let tick = pool.probe_backoff().first.min(MAX_TICK);
        let wake = pool
            .next_probe_at()
            .map_or(now + tick, |at| at.min(now + tick));
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

async fn finish(pool: &BotPool, probe: Probe, call: BoxFuture<'static, Result<(), String>>) {
    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
    let result = tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| Err("the probe timed out".into()));
    if let Err(reason) = &result {
        tracing::info!(reason, "probe failed: still out of rotation");
    }
    pool.probe_done(probe, result, Instant::now());
}
