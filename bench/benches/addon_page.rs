//! A Stremio catalogue page answered from the edge's answer cache, against the same page
//! built by the core for every request (edge → QUIC → the core's catalogue → back).
//!
//! One core process-side catalogue ([`Library`], sled-backed, `BENCH_TITLES` films, default
//! 5 000) behind two QUIC servers: one hands its answers out with the catalogue's own cache
//! lifetimes, the other with a lifetime of zero, so its edge must ask the core every time.
//! Each edge then answers the same pages to the same client: a catalogue's first page (100
//! titles) and a search. Prints the median and p99 of one request on a keep-alive
//! connection, and requests per second with `BENCH_CLIENTS` (default 16) connections, for
//! both edges and their ratio.
//!
//! `cargo bench -p tgcdn-bench --bench addon_page` (env BENCH_SAMPLES, default 2 000).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tgcdn_bench::chain::{CLUSTER_SECRET, LINK_SECRET, parse_fingerprint};
use tgcdn_bench::client;
use tgcdn_bench::env_or;
use tgcdn_bench::stats::{ms, percentile};
use tgcdn_catalog::addon::AddonInfo;
use tgcdn_core::addon::{AddonAnswer, AddonError, AddonService};
use tgcdn_core::bots::BotPool;
use tgcdn_core::catalog::index::{CatalogSink, ChannelPost};
use tgcdn_core::catalog::library::Library;
use tgcdn_core::catalog::posts::PostStore;
use tgcdn_core::fetch::{FetchConfig, Fetcher};
use tgcdn_core::quic::handler::Handler;
use tgcdn_core::quic::{EdgeRegistry, QuicConfig, QuicServer, tls};
use tgcdn_core::resolve::{ResolveConfig, Resolver};
use tgcdn_core::store::Store;
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::addon::AddonSettings;
use tgcdn_edge::http::serve;
use tgcdn_edge::upstream::quic::{QuicSettings, QuicUpstream};
use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tgcdn_shared::wire::AddonRequest;
use tokio::net::{TcpListener, TcpStream};

const CHANNEL: i64 = -1_000_000_000_777;
const EDGE_URL: &str = "http://edge.bench.example";
const WORDS: [&str; 16] = [
    "Red", "Silent", "Iron", "Golden", "Last", "Lost", "Dark", "Winter", "Blue", "River", "Night",
    "Glass", "Empire", "Storm", "Paper", "Shadow",
];
const PAGES: [(&str, &str); 2] = [
    (
        "first catalogue page (100 films)",
        "/catalog/movie/tgcdn-movie.json",
    ),
    (
        "search \"golden river\"",
        "/catalog/movie/tgcdn-movie/search=golden%20river.json",
    ),
];

fn main() {
    tgcdn_bench::run_bench(|| async {
        if let Err(error) = run().await {
            eprintln!("addon_page bench failed: {error:#}");
            std::process::exit(1);
        }
    });
}

/// The core's answers with the cache lifetime taken away: the edge in front of it keeps
/// nothing, so every request is a core round trip that builds the page.
struct Uncacheable(Arc<Library>);

impl AddonService for Uncacheable {
    fn handle(&self, request: &AddonRequest) -> Result<AddonAnswer, AddonError> {
        let mut answer = self.0.handle(request)?;
        answer.cache.max_age_secs = 0;
        answer.cache.stale_revalidate_secs = 0;
        Ok(answer)
    }
}

fn title_of(index: usize) -> String {
    let word = |shift: usize| WORDS[(index >> shift) % WORDS.len()];
    format!("{} {} {}", word(0), word(4), word(8))
}

/// `titles` films, each one post named as release groups name them.
fn library(store: &Store, titles: usize) -> Result<Arc<Library>> {
    let keyring = Keyring::new(LinkKey::new(1, LINK_SECRET)?, Vec::new())?;
    let library = Library::open(
        store,
        PostStore::open(store)?,
        keyring,
        AddonInfo::default(),
    )?;
    for index in 0..titles {
        let year = 1950 + index % 75;
        let name = format!(
            "{}.{year}.1080p.WEB-DL.DDP5.1.x264-GRP{index}.mkv",
            title_of(index).replace(' ', ".")
        );
        let post = ChannelPost {
            file: FileRef {
                chat_id: CHANNEL,
                msg_id: i32::try_from(index + 1)?,
            },
            file_name: Some(name),
            caption: None,
            size: 1 << 30,
            mime: "video/x-matroska".into(),
            date: 1_700_000_000 + index as u64,
        };
        library
            .upsert(post)
            .map_err(|error| anyhow!("indexing post {index}: {error}"))?;
    }
    Ok(Arc::new(library))
}

/// A QUIC server whose only service is `addon`, and the address of an HTTP edge in front
/// of it (serving until the runtime stops; the server must outlive the measurements).
async fn core_and_edge(
    store: &Store,
    addon: Arc<dyn AddonService>,
) -> Result<(QuicServer, SocketAddr)> {
    let pool = Arc::new(BotPool::new(&[(1, 1)]));
    let resolver = Resolver::new(
        store.clone(),
        Arc::clone(&pool),
        Vec::new(),
        ResolveConfig::default(),
    );
    let fetcher = Fetcher::new(pool, Vec::new(), FetchConfig::default());
    let handler = Handler::with_addon(
        resolver,
        fetcher,
        EdgeRegistry::new(store.clone()),
        CLUSTER_SECRET.to_vec(),
        15,
        Some(addon),
    );
    let identity = tls::load_or_generate(store, None).await?;
    let quic = QuicConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..QuicConfig::default()
    };
    let server = QuicServer::bind(quic, identity, handler)?;
    let mut settings = QuicSettings::new(
        server.local_addr().to_string(),
        parse_fingerprint(server.fingerprint())?,
        CLUSTER_SECRET.to_vec(),
    );
    settings.public_base_url = EDGE_URL.to_owned();
    let upstream = Arc::new(QuicUpstream::start(settings)?);
    if !upstream.wait_ready(Duration::from_secs(10)).await {
        return Err(anyhow!("the core did not welcome the edge within 10 s"));
    }
    let mut options = EdgeOptions {
        addon: AddonSettings {
            base_url: Some(EDGE_URL.to_owned()),
            ..AddonSettings::default()
        },
        ..EdgeOptions::default()
    };
    // Every bench client is 127.0.0.1.
    options.http.per_ip_limit = 4096;
    options.http.max_connections_per_ip = 4096;
    let keyring = Keyring::new(LinkKey::new(1, LINK_SECRET)?, Vec::new())?;
    let state = build_state(upstream, TokenVerifier::new(keyring), options);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, state, std::future::pending()));
    Ok((server, addr))
}

async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let socket = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    socket.set_nodelay(true)?;
    Ok(socket)
}

/// One request at a time on one keep-alive connection: every request's total time.
async fn latencies(addr: SocketAddr, path: &str, samples: usize) -> Result<Vec<Duration>> {
    let mut socket = connect(addr).await?;
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let fetched = client::get_on(&mut socket, path, None).await?;
        if fetched.body_bytes == 0 {
            return Err(anyhow!("{path}: empty answer"));
        }
        out.push(fetched.total);
    }
    Ok(out)
}

/// Requests per second with `clients` keep-alive connections asking `each` times.
async fn throughput(addr: SocketAddr, path: &str, clients: usize, each: usize) -> Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut socket = connect(addr).await?;
            for _ in 0..each {
                client::get_on(&mut socket, &path, None).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((clients * each) as f64 / started.elapsed().as_secs_f64())
}

async fn run() -> Result<()> {
    let titles = env_or("BENCH_TITLES", 5_000) as usize;
    let samples = env_or("BENCH_SAMPLES", 2_000) as usize;
    let clients = env_or("BENCH_CLIENTS", 16) as usize;
    let store = Store::temporary()?;
    let indexing = Instant::now();
    let library = library(&store, titles)?;
    println!(
        "catalogue of {} titles indexed in {:.1} s",
        library.len(),
        indexing.elapsed().as_secs_f64()
    );
    let (_cached_core, cached) = core_and_edge(&store, library.clone()).await?;
    let (_uncached_core, through) = core_and_edge(&store, Arc::new(Uncacheable(library))).await?;
    println!(
        "one request at a time on a keep-alive connection (n={samples}); {clients} connections for req/s"
    );
    for (name, path) in PAGES {
        // Warm the cached edge (and both sides' connections) before measuring.
        latencies(cached, path, 10).await?;
        latencies(through, path, 10).await?;
        let hit = latencies(cached, path, samples).await?;
        let core = latencies(through, path, samples).await?;
        let each = (samples / clients).max(1);
        let hit_rps = throughput(cached, path, clients, each).await?;
        let core_rps = throughput(through, path, clients, each).await?;
        let (hit_p50, hit_p99) = (ms(percentile(&hit, 0.5)), ms(percentile(&hit, 0.99)));
        let (core_p50, core_p99) = (ms(percentile(&core, 0.5)), ms(percentile(&core, 0.99)));
        println!("{name}:");
        println!(
            "  edge cache        median {hit_p50:7.3} ms  p99 {hit_p99:7.3} ms  {hit_rps:8.0} req/s"
        );
        println!(
            "  through the core  median {core_p50:7.3} ms  p99 {core_p99:7.3} ms  {core_rps:8.0} req/s"
        );
        println!(
            "RESULT addon_page {path}: edge cache vs through the core {:.1}x faster (median), \
             {:.1}x the requests per second",
            core_p50 / hit_p50,
            hit_rps / core_rps
        );
    }
    Ok(())
}
