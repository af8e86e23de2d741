//! How fast one emulated DC serves `upload.getFile` (512 KiB parts) to one grammers 0.11
//! connection on loopback, with 1, 2 and 8 requests in flight, and what it costs: the
//! emulator runs alone on its own single-threaded runtime and thread, the client on the
//! main thread, and each thread's CPU time is read with CLOCK_THREAD_CPUTIME_ID.
//!
//! Run: `cargo bench -p tgcdn-tgemu --bench getfile` (env TGEMU_BENCH_MIB sets the MiB
//! downloaded per setting, default 512).

use std::sync::Arc;
use std::time::{Duration, Instant};

use grammers_client::Client;
use grammers_client::sender::{ConnectionParams, NoRetries, SenderPool};
use grammers_client::tl;
use tgemu::{Content, Emulator};
use tokio::sync::{mpsc, oneshot};

const PART: i32 = 512 * 1024;
const DOC_SIZE: u64 = 1 << 30;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct EmuSide {
    session: Arc<grammers_session::storages::MemorySession>,
    token: String,
    channel: tgemu::ChannelInfo,
    post_id: i32,
    faults: tgemu::Faults,
    cpu: mpsc::UnboundedSender<oneshot::Sender<Duration>>,
}

/// Starts the emulator on its own thread and runtime; answers CPU-time queries.
fn spawn_emulator() -> EmuSide {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let emu = Emulator::builder()
                .dcs(&[2])
                .home_dc(2)
                .start()
                .await
                .expect("emulator");
            let world = emu.world();
            let bot = world.register_bot("1:bench", "bench_bot");
            let channel = world.create_channel("bench");
            world.add_channel_member(channel.channel_id, bot.user_id, true);
            let doc = world.add_document(
                Content::pseudo(DOC_SIZE),
                "b.bin",
                "application/octet-stream",
                2,
            );
            let post_id = world.post_document(channel.channel_id, doc.id, "");
            let key = emu.provision_auth_key();
            let (cpu_tx, mut cpu_rx) = mpsc::unbounded_channel::<oneshot::Sender<Duration>>();
            let side = EmuSide {
                session: Arc::new(emu.session_for(key, 2)),
                token: bot.token,
                channel,
                post_id,
                faults: emu.faults(),
                cpu: cpu_tx,
            };
            ready_tx.send(side).ok();
            while let Some(reply) = cpu_rx.recv().await {
                reply.send(thread_cpu()).ok();
            }
            drop(emu);
        });
    });
    ready_rx.recv().expect("emulator thread started")
}

async fn emulator_cpu(side: &EmuSide) -> Duration {
    let (tx, rx) = oneshot::channel();
    side.cpu.send(tx).ok();
    rx.await.unwrap_or_default()
}

fn location_of(msg: tl::enums::messages::Messages) -> tl::types::InputDocumentFileLocation {
    let tl::enums::messages::Messages::ChannelMessages(m) = msg else {
        panic!("unexpected answer")
    };
    let Some(tl::enums::Message::Message(m)) = m.messages.into_iter().next() else {
        panic!("no message")
    };
    let Some(tl::enums::MessageMedia::Document(media)) = m.media else {
        panic!("no media")
    };
    let Some(tl::enums::Document::Document(d)) = media.document else {
        panic!("no document")
    };
    tl::types::InputDocumentFileLocation {
        id: d.id,
        access_hash: d.access_hash,
        file_reference: d.file_reference,
        thumb_size: String::new(),
    }
}

async fn download(
    client: &Client,
    location: &tl::types::InputDocumentFileLocation,
    parts: u64,
    in_flight: usize,
) -> u64 {
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0u64;
    let mut bytes = 0u64;
    let parts_per_doc = DOC_SIZE / PART as u64;
    loop {
        while set.len() < in_flight && next < parts {
            let req = tl::functions::upload::GetFile {
                precise: false,
                cdn_supported: false,
                location: tl::enums::InputFileLocation::InputDocumentFileLocation(location.clone()),
                offset: ((next % parts_per_doc) * PART as u64) as i64,
                limit: PART,
            };
            let client = client.clone();
            set.spawn(async move { client.invoke(&req).await });
            next += 1;
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        match done.expect("task").expect("getFile") {
            tl::enums::upload::File::File(f) => bytes += f.bytes.len() as u64,
            other => panic!("unexpected {other:?}"),
        }
    }
    bytes
}

fn main() {
    let mib: u64 = std::env::var("TGEMU_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let side = spawn_emulator();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let params = ConnectionParams { retry_policy: Box::new(NoRetries), ..Default::default() };
        let SenderPool { runner, handle, updates } = SenderPool::with_configuration(side.session.clone(), 1, params);
        drop(updates);
        let client = Client::new(handle);
        let runner = tokio::spawn(runner.run());
        client.bot_sign_in(&side.token, "hash").await.expect("sign in");
        let req = tl::functions::channels::GetMessages {
            channel: tl::enums::InputChannel::Channel(tl::types::InputChannel {
                channel_id: side.channel.channel_id,
                access_hash: side.channel.access_hash,
            }),
            id: vec![tl::enums::InputMessage::Id(tl::types::InputMessageId { id: side.post_id })],
        };
        let location = location_of(client.invoke(&req).await.expect("getMessages"));
        // Warm up the connection and the page cache of both sides.
        download(&client, &location, 32, 2).await;

        println!("getFile 512 KiB parts, one grammers connection, one emulator thread, {mib} MiB per row");
        println!("{:>9} {:>10} {:>18} {:>18} {:>16}", "in flight", "MiB/s", "emulator CPU s/GiB", "client CPU s/GiB", "emulator/client");
        let parts = mib * 2;
        let mut first_rate = None;
        for in_flight in [1usize, 2, 8] {
            let (emu0, cli0, t0) = (emulator_cpu(&side).await, thread_cpu(), Instant::now());
            let bytes = download(&client, &location, parts, in_flight).await;
            let wall = t0.elapsed();
            let (emu1, cli1) = (emulator_cpu(&side).await, thread_cpu());
            let gib = bytes as f64 / (1u64 << 30) as f64;
            let rate = bytes as f64 / (1 << 20) as f64 / wall.as_secs_f64();
            let emu_per_gib = (emu1 - emu0).as_secs_f64() / gib;
            let cli_per_gib = (cli1 - cli0).as_secs_f64() / gib;
            let base = *first_rate.get_or_insert(rate);
            println!(
                "{in_flight:>9} {rate:>10.1} {emu_per_gib:>18.3} {cli_per_gib:>18.3} {:>16.2}   ({:.2}x the 1-in-flight rate)",
                emu_per_gib / cli_per_gib,
                rate / base
            );
        }

        // Pacing: the cap must really be reached despite the 1 ms timer (a naive pacer
        // lost 12 %), also with 50 ms of latency per answer and answers out of order.
        let cap = 20u64 << 20;
        println!("\npaced at {} MiB/s per connection, 512 KiB parts", cap >> 20);
        println!("{:>9} {:>12} {:>10} {:>14}", "in flight", "latency ms", "MiB/s", "achieved/cap");
        for (in_flight, latency_ms) in [(4usize, 0u64), (4, 50), (8, 50)] {
            side.faults.clear();
            side.faults.set_bandwidth(tgemu::Scope::Dc(2), cap);
            if latency_ms > 0 {
                side.faults.set_latency(
                    tgemu::Scope::Dc(2),
                    tgemu::Latency::Fixed(Duration::from_millis(latency_ms)),
                );
            }
            let t0 = Instant::now();
            let bytes = download(&client, &location, 128, in_flight).await;
            let rate = bytes as f64 / (1 << 20) as f64 / t0.elapsed().as_secs_f64();
            println!("{in_flight:>9} {latency_ms:>12} {rate:>10.2} {:>14.3}", rate / (cap >> 20) as f64);
        }
        side.faults.clear();
        runner.abort();
    });
}
