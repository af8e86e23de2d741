//! Fetch slots under floods: aborted range requests from one address, demand fills of
//! other clients first.

use super::*;

/// Opens a connection from `source` (any 127/8 address is loopback) and sends `head`.
async fn send_from(source: &str, edge: SocketAddr, head: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = tokio::time::timeout(STEP, socket.connect(edge))
        .await
        .expect("connect timed out")
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn aborted_range_flood_from_one_address_neither_starves_nor_costs_another_viewer() {
    const ATTACKER: &str = "127.0.0.1";
    const VIEWER: &str = "127.0.0.2";
    const FLOOD: FileRef = FileRef {
        chat_id: -1_001_234,
        msg_id: 46,
    };
    const FLOOD_CHUNKS: u64 = 600;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let upstream = upstream()
        .with_file(
            FLOOD,
            test_meta(FLOOD_CHUNKS * CHUNK_SIZE, "flood.mkv", "video/x-matroska"),
        )
        .with_gate(gate.clone());
    let edge = start_with(upstream, HttpSettings::default()).await;
    let (chunks, slots) = (&edge.state.chunks, edge.state.chunks.slots());
    let attacker: std::net::IpAddr = ATTACKER.parse().unwrap();
    let viewer: std::net::IpAddr = VIEWER.parse().unwrap();
    let flood_head = |index: u64| {
        format!(
            "GET /dl/{}/flood.mkv HTTP/1.1\r\nHost: edge\r\nRange: bytes={}-\r\n\r\n",
            token(FLOOD),
            index * CHUNK_SIZE
        )
    };

    // As many requests as the address may have open, each reading from its own chunk.
    let mut open = Vec::new();
    for index in 0..64 {
        open.push(send_from(ATTACKER, edge.addr, &flood_head(index)).await);
    }
    wait_for("the attacker to fill its share of slots", || {
        slots.held_by(attacker) == slots.per_client()
    })
    .await;
    assert!(slots.per_client() < slots.capacity());

    // A viewer from elsewhere reaches the core at once, not behind the attacker's queue.
    let film = format!(
        "GET /dl/{}/film.mp4 HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n",
        token(FILM)
    );
    let mut watcher = send_from(VIEWER, edge.addr, &film).await;
    wait_for("the viewer's fetch to reach the core", || {
        slots.held_by(viewer) >= 1
    })
    .await;
    assert_eq!(slots.held_by(attacker), slots.per_client());
    assert_eq!(
        edge.upstream.chunks_in_flight(),
        slots.per_client() + slots.held_by(viewer)
    );

    // The attacker hangs up, and sends 436 more requests it abandons at once.
    drop(open);
    for index in 64..500 {
        drop(send_from(ATTACKER, edge.addr, &flood_head(index)).await);
    }
    wait_for("every abandoned fill to be cancelled", || {
        slots.held_by(attacker) == 0 && chunks.cache().fills_in_progress().0 <= 3
    })
    .await;
    let calls_when_attacker_left = edge.upstream.chunk_calls();
    let cancelled = chunks.cache().counters().cancelled.get();
    assert!(
        cancelled >= slots.per_client() as u64,
        "{cancelled} cancelled"
    );

    // The viewer's film arrives whole, and no abandoned chunk is fetched afterwards.
    gate.add_permits(1_000);
    let mut reply = Vec::new();
    tokio::time::timeout(STEP, watcher.read_to_end(&mut reply))
        .await
        .expect("the viewer was never served")
        .unwrap();
    let body_at = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert!(reply.starts_with(b"HTTP/1.1 200"));
    assert_eq!(
        &reply[body_at..],
        &tgcdn_edge::testing::pattern(0, FILM_SIZE)[..]
    );
    let after = edge.upstream.chunk_calls() - calls_when_attacker_left;
    assert!(after <= 3, "{after} chunk calls after the attacker left");
    println!(
        "aborted flood: 500 requests from one address, {cancelled} fills cancelled, \
         {calls_when_attacker_left} chunk calls reached the core (fetch slots {} per client of {})",
        slots.per_client(),
        slots.capacity()
    );
}

/// One client holds every fetch slot (nobody else waits, so it may); a second client's
/// read-ahead queues, then a third client's demand fill: the next free slots go to the
/// demand fills in order, the first client (over its fair share) gets none, and read-ahead
/// waits. A plain FIFO of slots gave the second slot to the queued read-ahead.
#[tokio::test]
async fn a_demand_fill_of_another_client_takes_the_next_free_slot() {
    const HOG: &str = "127.0.0.1";
    const READER: &str = "127.0.0.3";
    const VIEWER: &str = "127.0.0.2";
    const FLOOD: FileRef = FileRef {
        chat_id: -1_001_234,
        msg_id: 47,
    };
    const BIG: FileRef = FileRef {
        chat_id: -1_001_234,
        msg_id: 48,
    };
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let upstream = Arc::new(
        upstream()
            .with_file(
                FLOOD,
                test_meta(64 * CHUNK_SIZE, "flood.mkv", "video/x-matroska"),
            )
            .with_file(
                BIG,
                test_meta(8 * CHUNK_SIZE, "big.mkv", "video/x-matroska"),
            )
            .with_gate(gate.clone()),
    );
    let options = EdgeOptions {
        cache_bytes: 64 << 20,
        fetch_cap: 8,
        fetch_per_client: 8,
        fetch_fair_share: 4,
        ..EdgeOptions::default()
    };
    let state = build_state(upstream.clone(), TokenVerifier::new(keyring()), options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    let slots = state.chunks.slots();
    let ip = |text: &str| -> std::net::IpAddr { text.parse().unwrap() };
    let head = |file: FileRef, name: &str, from: u64| {
        format!(
            "GET /dl/{}/{name} HTTP/1.1\r\nHost: edge\r\nRange: bytes={}-\r\n\r\n",
            token(file),
            from * CHUNK_SIZE
        )
    };

    // The hog alone: its requests' fills take every slot, the rest wait.
    let mut hog = Vec::new();
    for index in [0, 16, 32, 48] {
        hog.push(send_from(HOG, addr, &head(FLOOD, "flood.mkv", index)).await);
    }
    wait_for("the hog to hold every slot and queue more", || {
        slots.held_by(ip(HOG)) == 8 && slots.waiting() >= 8
    })
    .await;
    let hog_waiting = slots.waiting();

    // A reader's demand fill and its read-ahead queue, then a viewer's demand fill.
    let reader = send_from(READER, addr, &head(BIG, "big.mkv", 0)).await;
    wait_for("the reader's fills to queue", || {
        slots.waiting() == hog_waiting + 4
    })
    .await;
    let viewer = send_from(VIEWER, addr, &head(FILM, "film.mp4", 0)).await;
    wait_for("the viewer's fills to queue", || {
        slots.waiting() == hog_waiting + 4 + 3
    })
    .await;

    // One hog fill ends: the reader's demand fill (the older of the two) takes its slot.
    gate.add_permits(1);
    wait_for("the reader's demand fill to start", || {
        slots.held_by(ip(READER)) == 1
    })
    .await;
    // Another ends: the viewer's demand fill goes before the reader's read-ahead.
    gate.add_permits(1);
    wait_for("the viewer's demand fill to start", || {
        slots.held_by(ip(VIEWER)) == 1
    })
    .await;
    assert_eq!((slots.held_by(ip(HOG)), slots.held_by(ip(READER))), (6, 1));

    // Everyone hangs up; every slot comes back.
    drop((hog, reader, viewer));
    gate.add_permits(1_000);
    wait_for("every slot to come back", || slots.free() == 8).await;
}
