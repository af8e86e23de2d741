//! [`CorePool`]: the edge's upstream when it knows one or more cores — a pool in front of
//! one single-core link ([`super::quic::QuicUpstream`]) per core.
//!
//! Every core is independent (its own bots, database and QUIC listener) and can serve any
//! file of the storage channel, so the pool only decides where a request goes: a file's
//! metadata and chunks go to the first usable core of the file's rendezvous ranking
//! (`tgcdn_shared::rendezvous`, over the configured core names), so every edge sends a file
//! to the same core and that core's second-tier cache holds it once; addon requests go to the
//! first usable core in configuration order. A request that fails with a connection-level
//! error ([`UpstreamError::Unreachable`]) benches that core and moves on to the next one of
//! its ranking, each core tried at most once; so does a FLOOD_WAIT answer (every bot of that
//! core is flooded, the next core's bots are not), which also keeps the core out of the
//! rankings until its bots are free; the other typed answers of a core (not found,
//! revoked…) are final, as they were for one core. The decision itself is pure, in
//! [`super::failover`]. Each link keeps reconnecting with backoff on its own; readiness is
//! "some core is up". With one core the pool adds nothing but the bookkeeping.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use tgcdn_shared::FileRef;
use tgcdn_shared::rendezvous;
use tgcdn_shared::wire::{AddonRequest, ChunkClass, FileMeta, Push};

use super::failover::{self, Answer, Bench, Link};
use super::quic::{LoadReport, PushSink, QuicSettings, QuicSetupError, QuicUpstream};
use super::{AddonReply, LinkStatus, MetaChunk, Upstream, UpstreamError, UpstreamFuture};

/// Where the pool's pushes go: the core's index in the list, and what it pushed.
pub type PoolPushSink =
    Arc<dyn Fn(usize, Push) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// One core's link as the pool needs it: an [`Upstream`] that also says how many
/// connections it has made, so a failure is pinned to the connection it happened on.
pub trait PoolMember: Upstream {
    /// Connections made so far (0 before the first).
    fn connections(&self) -> u64;

    /// Whether the core's revocation list has arrived on this connection: until then the
    /// core is not used (another core's file it revoked must not slip through meanwhile).
    fn revocations_known(&self) -> bool {
        true
    }

    /// Up and usable: connected, and its revocations known.
    fn usable_link(&self) -> bool {
        self.ready() && self.revocations_known()
    }
}

impl PoolMember for QuicUpstream {
    fn connections(&self) -> u64 {
        QuicUpstream::connections(self)
    }

    fn revocations_known(&self) -> bool {
        QuicUpstream::revocations_known(self)
    }
}

struct Member {
    name: String,
    link: Arc<dyn PoolMember>,
    /// Requests sent to this core (each failover attempt counts).
    requests: AtomicU64,
    /// Of those, the ones that failed with a connection-level error and benched the core.
    failures: AtomicU64,
    /// Of those, the ones it answered FLOOD_WAIT and that moved on to the next core.
    floods: AtomicU64,
}

/// What keeps one core out of the rankings for a while.
#[derive(Debug, Clone, Copy, Default)]
struct Holds {
    bench: Option<Bench>,
    flooded_until: Option<Instant>,
}

/// See the module docs.
pub struct CorePool {
    members: Vec<Member>,
    names: Vec<String>,
    holds: Mutex<Vec<Holds>>,
    quic: Vec<Arc<QuicUpstream>>,
}

impl CorePool {
    /// A pool over already-started links, named (the names are the rendezvous inputs and
    /// the metrics labels).
    pub fn new(links: Vec<(String, Arc<dyn PoolMember>)>) -> Self {
        let names: Vec<String> = links.iter().map(|(name, _)| name.clone()).collect();
        let members = links
            .into_iter()
            .map(|(name, link)| Member {
                name,
                link,
                requests: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                floods: AtomicU64::new(0),
            })
            .collect::<Vec<_>>();
        CorePool {
            holds: Mutex::new(vec![Holds::default(); members.len()]),
            members,
            names,
            quic: Vec::new(),
        }
    }

    /// Starts one QUIC link per core (each connects in the background, as
    /// [`QuicUpstream::start`] does). With several cores a link makes one attempt per
    /// request, since the pool itself moves a failed request to the next core; a lone core
    /// keeps the link's own retries on its next connection.
    pub fn start(cores: Vec<(String, QuicSettings)>) -> Result<Self, QuicSetupError> {
        let several = cores.len() > 1;
        let mut quic = Vec::with_capacity(cores.len());
        let mut links: Vec<(String, Arc<dyn PoolMember>)> = Vec::with_capacity(cores.len());
        for (name, mut settings) in cores {
            if several {
                settings.max_attempts = 1;
            }
            let link = Arc::new(QuicUpstream::start(settings)?);
            quic.push(link.clone());
            links.push((name, link));
        }
        let mut pool = CorePool::new(links);
        pool.quic = quic;
        Ok(pool)
    }

    /// Sets what every link's heartbeats report.
    pub fn set_load_report(&self, report: LoadReport) {
        for link in &self.quic {
            link.set_load_report(report.clone());
        }
    }

    /// Sets where every core's pushes go, with the core's index in the list: a file one
    /// core revoked is revoked on this edge, whichever core it is served by.
    pub fn set_push_sink(&self, sink: PoolPushSink) {
        for (index, link) in self.quic.iter().enumerate() {
            let sink = sink.clone();
            let per_core: PushSink = Arc::new(move |push| sink(index, push));
            link.set_push_sink(per_core);
        }
    }

    /// The configured core names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn snapshot(&self) -> Vec<Link> {
        let holds = self.holds.lock().unwrap_or_else(PoisonError::into_inner);
        self.members
            .iter()
            .zip(holds.iter())
            .map(|(member, holds)| Link {
                up: member.link.usable_link(),
                generation: member.link.connections(),
                bench: holds.bench,
                flooded_until: holds.flooded_until,
            })
            .collect()
    }

    fn hold(&self, index: usize, change: impl FnOnce(&mut Holds)) {
        let mut holds = self.holds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = holds.get_mut(index) {
            change(slot);
        }
    }

    /// Runs `call` on the cores of `order`, as [`failover::choose`] picks them, until one
    /// answers anything but a connection-level failure or a flood wait.
    async fn run<T, F, Fut>(
        &self,
        what: &str,
        order: Vec<usize>,
        call: F,
    ) -> Result<T, UpstreamError>
    where
        F: Fn(Arc<dyn PoolMember>) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let mut tried = Vec::with_capacity(order.len());
        let mut last = UpstreamError::unreachable("no core configured");
        loop {
            let links = self.snapshot();
            let Some(index) = failover::choose(&order, &links, &tried, Instant::now()) else {
                return Err(last);
            };
            tried.push(index);
            let member = &self.members[index];
            member.requests.fetch_add(1, Ordering::Relaxed);
            let result = call(member.link.clone()).await;
            let now = Instant::now();
            match Answer::of(&result) {
                Answer::Final => return result,
                Answer::ConnectionLost => {
                    member.failures.fetch_add(1, Ordering::Relaxed);
                    let bench = Bench::after_failure(links[index].generation, now);
                    self.hold(index, |holds| holds.bench = Some(bench));
                }
                Answer::FloodWait { secs } => {
                    member.floods.fetch_add(1, Ordering::Relaxed);
                    let until = failover::flood_hold(secs, now);
                    self.hold(index, |holds| holds.flooded_until = Some(until));
                }
            }
            if let Err(error) = result {
                tracing::info!(what, core = %member.name, %error, "core cannot serve; trying the next in the ranking");
                last = failover::worse(last, error);
            }
        }
    }

    fn ranking(&self, file: FileRef) -> Vec<usize> {
        rendezvous::ranking(&self.names, file)
    }
}

impl Upstream for CorePool {
    fn meta(&self, file: FileRef) -> UpstreamFuture<'_, FileMeta> {
        Box::pin(
            self.run("meta", self.ranking(file), move |link| async move {
                link.meta(file).await
            }),
        )
    }

    fn chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, Bytes> {
        Box::pin(
            self.run("chunk", self.ranking(file), move |link| async move {
                link.chunk(file, index).await
            }),
        )
    }

    fn chunk_as(&self, file: FileRef, index: u64, class: ChunkClass) -> UpstreamFuture<'_, Bytes> {
        Box::pin(
            self.run("chunk", self.ranking(file), move |link| async move {
                link.chunk_as(file, index, class).await
            }),
        )
    }

    fn meta_chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, MetaChunk> {
        Box::pin(
            self.run("meta_chunk", self.ranking(file), move |link| async move {
                link.meta_chunk(file, index).await
            }),
        )
    }

    /// The largest figure a connected core advertised: each file goes to one core, and
    /// `TGCDN_READAHEAD_MAX` still caps the window.
    fn core_connections(&self) -> Option<u32> {
        self.members
            .iter()
            .filter(|member| member.link.ready())
            .filter_map(|member| member.link.core_connections())
            .max()
    }

    fn addon(&self, request: AddonRequest) -> UpstreamFuture<'_, AddonReply> {
        let order = (0..self.members.len()).collect();
        Box::pin(self.run("addon", order, move |link| {
            let request = request.clone();
            async move { link.addon(request).await }
        }))
    }

    /// Some core is up (and has said what it revoked).
    fn ready(&self) -> bool {
        self.members.iter().any(|member| member.link.usable_link())
    }

    fn links(&self) -> Vec<LinkStatus> {
        self.members
            .iter()
            .map(|member| LinkStatus {
                name: member.name.clone(),
                up: member.link.usable_link(),
                requests: member.requests.load(Ordering::Relaxed),
                failures: member.failures.load(Ordering::Relaxed),
                floods: member.floods.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32};

    use tgcdn_shared::wire::WireError;

    use super::*;
    use crate::testing::{MemoryUpstream, pattern, test_meta};

    /// A core whose link can be "up" or "down" and whose requests can be made to fail as a
    /// lost connection does; otherwise an in-memory upstream.
    struct FakeCore {
        data: Arc<MemoryUpstream>,
        up: AtomicBool,
        broken: AtomicBool,
        /// Non-zero: every request is answered FLOOD_WAIT for this many seconds.
        flood_secs: AtomicU32,
        connections: AtomicU64,
        served: AtomicU64,
    }

    impl FakeCore {
        fn new(data: Arc<MemoryUpstream>) -> Arc<Self> {
            Arc::new(FakeCore {
                data,
                up: AtomicBool::new(true),
                broken: AtomicBool::new(false),
                flood_secs: AtomicU32::new(0),
                connections: AtomicU64::new(1),
                served: AtomicU64::new(0),
            })
        }

        fn check(&self) -> Result<(), UpstreamError> {
            if self.broken.load(Ordering::SeqCst) || !self.up.load(Ordering::SeqCst) {
                return Err(UpstreamError::unreachable("connection lost"));
            }
            let secs = self.flood_secs.load(Ordering::SeqCst);
            if secs > 0 {
                return Err(UpstreamError::Core(WireError::FloodWait { secs }));
            }
            self.served.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl Upstream for FakeCore {
        fn meta(&self, file: FileRef) -> UpstreamFuture<'_, FileMeta> {
            Box::pin(async move {
                self.check()?;
                self.data.meta(file).await
            })
        }
        fn chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, Bytes> {
            Box::pin(async move {
                self.check()?;
                self.data.chunk(file, index).await
            })
        }
        fn addon(&self, request: AddonRequest) -> UpstreamFuture<'_, AddonReply> {
            Box::pin(async move {
                self.check()?;
                self.data.addon(request).await
            })
        }
        fn ready(&self) -> bool {
            self.up.load(Ordering::SeqCst)
        }
    }

    impl PoolMember for FakeCore {
        fn connections(&self) -> u64 {
            self.connections.load(Ordering::SeqCst)
        }
    }

    const NAMES: [&str; 3] = ["core-a", "core-b", "core-c"];

    fn pool(data: &Arc<MemoryUpstream>) -> (CorePool, Vec<Arc<FakeCore>>) {
        let cores: Vec<Arc<FakeCore>> = NAMES.iter().map(|_| FakeCore::new(data.clone())).collect();
        let links = NAMES
            .iter()
            .zip(&cores)
            .map(|(name, core)| (name.to_string(), core.clone() as Arc<dyn PoolMember>))
            .collect();
        (CorePool::new(links), cores)
    }

    /// `count` files of 3 MiB every core serves alike.
    fn data(count: i32) -> (Arc<MemoryUpstream>, Vec<FileRef>) {
        let files: Vec<FileRef> = (1..=count)
            .map(|msg_id| FileRef {
                chat_id: -100_777,
                msg_id,
            })
            .collect();
        let data = files.iter().fold(MemoryUpstream::new(), |data, &file| {
            data.with_file(
                file,
                test_meta(3 << 20, "f.bin", "application/octet-stream"),
            )
        });
        (Arc::new(data), files)
    }

    fn owner(file: FileRef) -> usize {
        rendezvous::ranking(&NAMES, file)[0]
    }

    #[tokio::test]
    async fn each_file_goes_to_its_first_ranked_core_for_meta_and_chunks() {
        let (data, files) = data(30);
        let (pool, cores) = pool(&data);
        for file in files {
            let before: Vec<u64> = cores
                .iter()
                .map(|c| c.served.load(Ordering::SeqCst))
                .collect();
            pool.meta(file).await.unwrap();
            pool.chunk(file, 1).await.unwrap();
            for (index, core) in cores.iter().enumerate() {
                let served = core.served.load(Ordering::SeqCst) - before[index];
                assert_eq!(served, if index == owner(file) { 2 } else { 0 });
            }
        }
        let links = pool.links();
        assert!(
            links
                .iter()
                .all(|link| link.up && link.requests > 0 && link.failures == 0)
        );
        assert_eq!(links.iter().map(|l| l.requests).sum::<u64>(), 60);
    }

    #[tokio::test]
    async fn a_lost_core_hands_over_only_its_files_and_takes_them_back() {
        let (data, files) = data(60);
        let (pool, cores) = pool(&data);
        let lost = 1;
        cores[lost].broken.store(true, Ordering::SeqCst);
        for &file in &files {
            let bytes = pool.chunk(file, 0).await.unwrap();
            assert_eq!(bytes, pattern(0, 1 << 20));
        }
        let owned = files.iter().filter(|&&f| owner(f) == lost).count() as u64;
        assert!(owned > 0);
        // A failure benches it, so its other files go straight to their next core (once per
        // bench hold, which the loop above normally finishes well within).
        let link = &pool.links()[lost];
        assert!(
            link.failures >= 1 && link.requests == link.failures,
            "{link:?}"
        );
        assert!(link.requests < owned, "{link:?} for {owned} files");
        assert_eq!(cores[lost].served.load(Ordering::SeqCst), 0);

        // It comes back on a new connection: its own files return to it, and only those.
        cores[lost].broken.store(false, Ordering::SeqCst);
        cores[lost].connections.store(2, Ordering::SeqCst);
        let before: Vec<u64> = cores
            .iter()
            .map(|c| c.served.load(Ordering::SeqCst))
            .collect();
        for &file in &files {
            pool.chunk(file, 2).await.unwrap();
        }
        assert_eq!(cores[lost].served.load(Ordering::SeqCst), owned);
        let others: u64 = cores
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != lost)
            .map(|(index, core)| core.served.load(Ordering::SeqCst) - before[index])
            .sum();
        assert_eq!(others, files.len() as u64 - owned);
    }

    #[tokio::test]
    async fn a_link_that_is_down_is_skipped_without_a_request_and_readiness_needs_one_up() {
        let (data, files) = data(20);
        let (pool, cores) = pool(&data);
        cores[0].up.store(false, Ordering::SeqCst);
        cores[2].up.store(false, Ordering::SeqCst);
        assert!(pool.ready());
        for &file in &files {
            pool.meta(file).await.unwrap();
        }
        assert_eq!(pool.links()[0].requests, 0);
        assert_eq!(pool.links()[2].requests, 0);
        cores[1].up.store(false, Ordering::SeqCst);
        assert!(!pool.ready());
        assert!(pool.links().iter().all(|link| !link.up));
    }

    #[tokio::test]
    async fn with_every_core_failing_the_request_fails_after_one_try_each() {
        let (data, files) = data(1);
        let (pool, cores) = pool(&data);
        let file = files[0];
        for core in &cores {
            core.broken.store(true, Ordering::SeqCst);
        }
        let error = pool.chunk(file, 0).await.unwrap_err();
        assert!(
            matches!(error, UpstreamError::Unreachable { .. }),
            "{error}"
        );
        assert!(
            pool.links()
                .iter()
                .all(|link| link.requests == 1 && link.failures == 1)
        );
    }

    #[tokio::test]
    async fn a_typed_answer_of_the_core_is_final() {
        let (data, _) = data(1);
        let (pool, _cores) = pool(&data);
        let missing = FileRef {
            chat_id: -100_777,
            msg_id: 999,
        };
        let error = pool.meta(missing).await.unwrap_err();
        assert_eq!(error, UpstreamError::Core(WireError::NotFound));
        let links = pool.links();
        assert_eq!(links.iter().map(|l| l.requests).sum::<u64>(), 1);
        assert_eq!(links[owner(missing)].requests, 1);
    }

    #[tokio::test]
    async fn a_flooded_core_hands_its_files_to_the_next_and_is_skipped_while_flooded() {
        let (data, files) = data(40);
        let (pool, cores) = pool(&data);
        let flooded = 2;
        cores[flooded].flood_secs.store(60, Ordering::SeqCst);
        for &file in &files {
            pool.meta(file).await.unwrap();
            let bytes = pool.chunk(file, 0).await.unwrap();
            assert_eq!(bytes, pattern(0, 1 << 20));
        }
        let owned = files.iter().filter(|&&f| owner(f) == flooded).count() as u64;
        assert!(owned > 1);
        // Only the first request found out; the others went straight to the next core.
        let link = &pool.links()[flooded];
        assert_eq!((link.requests, link.floods, link.failures), (1, 1, 0));
        assert_eq!(cores[flooded].served.load(Ordering::SeqCst), 0);
        assert_eq!(
            pool.links().iter().map(|l| l.requests).sum::<u64>(),
            files.len() as u64 * 2 + 1
        );
    }

    #[tokio::test]
    async fn with_every_core_flooded_the_soonest_flood_wait_is_the_answer() {
        let (data, files) = data(1);
        let (pool, cores) = pool(&data);
        for (core, secs) in cores.iter().zip([40, 7, 90]) {
            core.flood_secs.store(secs, Ordering::SeqCst);
        }
        cores[0].broken.store(true, Ordering::SeqCst);
        let error = pool.chunk(files[0], 0).await.unwrap_err();
        assert_eq!(error, UpstreamError::Core(WireError::FloodWait { secs: 7 }));
        assert!(pool.links().iter().all(|link| link.requests == 1));
    }
}
