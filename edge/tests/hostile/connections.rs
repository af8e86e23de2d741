//! Connections that never finish a request (HTTP/1 and HTTP/2), h2 peers that stop
//! answering pings, connection caps, and `/metrics` kept off the public port.

use super::*;

/// What a hostile connection sends before falling silent.
#[derive(Debug, Clone, Copy)]
enum Stall {
    Nothing,
    HalfHead,
    HalfPreface,
    PrefaceOnly,
    HalfHeadersFrame,
}

impl Stall {
    fn bytes(self) -> Vec<u8> {
        match self {
            Stall::Nothing => Vec::new(),
            Stall::HalfHead => b"GET /healthz HTTP/1.1\r\nHost: t\r\nRange: bytes=0-".to_vec(),
            Stall::HalfPreface => H2_PREFACE[..10].to_vec(),
            Stall::PrefaceOnly => [H2_PREFACE, H2_SETTINGS].concat(),
            // A HEADERS frame announcing 6 bytes of which only 2 arrive.
            Stall::HalfHeadersFrame => [
                H2_PREFACE,
                H2_SETTINGS,
                &[0, 0, 6, 1, 5, 0, 0, 0, 1, 0x82, 0x86],
            ]
            .concat(),
        }
    }
}

#[tokio::test]
async fn silent_and_half_request_connections_are_closed_while_a_viewer_is_served() {
    const EACH: usize = 500;
    let timeout = Duration::from_secs(1);
    let http = HttpSettings {
        header_read_timeout: timeout,
        idle_timeout: Duration::from_secs(60),
        max_connections: 4 * EACH,
        max_connections_per_ip: 4 * EACH,
        ..HttpSettings::default()
    };
    let edge = Arc::new(start_with(upstream(), http).await);
    // Half of them say nothing; the other half stall in each way a request can.
    let half = [
        Stall::HalfHead,
        Stall::HalfPreface,
        Stall::PrefaceOnly,
        Stall::HalfHeadersFrame,
    ];
    let stalls = (0..2 * EACH).map(|i| {
        if i < EACH {
            Stall::Nothing
        } else {
            half[i % half.len()]
        }
    });
    let opened = Instant::now();
    let mut hostile = Vec::new();
    for stall in stalls {
        let mut socket = TcpStream::connect(edge.addr).await.unwrap();
        socket.write_all(&stall.bytes()).await.unwrap();
        hostile.push(tokio::spawn(async move {
            (stall, time_until_closed(&mut socket, STEP).await)
        }));
    }
    let all_open = opened.elapsed();
    // A viewer keeps asking for bytes while the edge holds the hostile connections.
    let (done, mut finished) = oneshot::channel::<()>();
    let viewer = {
        let edge = edge.clone();
        tokio::spawn(async move {
            let path = format!("/dl/{}/film.mp4", token(FILM));
            let mut worst = Duration::ZERO;
            let mut served = 0;
            loop {
                let started = Instant::now();
                let reply = edge.get(&path, &[("range", "bytes=1000-200000")]).await;
                assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
                worst = worst.max(started.elapsed());
                served += 1;
                if finished.try_recv().is_ok() {
                    return (served, worst);
                }
            }
        })
    };
    let mut slowest = Duration::ZERO;
    for task in hostile {
        let (stall, closed) = task.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("a {stall:?} connection stayed open"));
        slowest = slowest.max(closed);
    }
    done.send(()).unwrap();
    let (served, worst) = tokio::time::timeout(STEP, viewer).await.unwrap().unwrap();
    println!(
        "{} hostile connections opened in {all_open:?}, all closed within {slowest:?} \
         (header timeout {timeout:?}); viewer: {served} requests, worst latency {worst:?}",
        2 * EACH
    );
    // Each was closed by its deadline, counted from its accept (plus scheduling slack on a
    // loaded machine), not by the 60 s idle timeout.
    assert!(slowest < timeout + Duration::from_secs(3), "{slowest:?}");
    assert!(served > 0);
    assert!(worst < Duration::from_secs(2), "viewer waited {worst:?}");
    // Only the viewer's keep-alive connection is left (the gauge falls just after a close).
    let open = &edge.state.metrics.connections_open;
    wait_for("hostile connections to leave the gauge", || open.get() <= 1).await;
}

#[tokio::test]
async fn h2_pings_close_a_connection_whose_peer_stopped_answering() {
    let http = HttpSettings {
        idle_timeout: Duration::from_secs(60),
        h2_keepalive_interval: Some(Duration::from_millis(200)),
        h2_keepalive_timeout: Duration::from_millis(200),
        ..HttpSettings::default()
    };
    let edge = start_with(upstream(), http).await;
    let mut socket = TcpStream::connect(edge.addr).await.unwrap();
    // One complete request (GET / with :authority t), then the peer answers nothing, not
    // even PINGs; it only reads.
    let headers = [
        0, 0, 6, 1, 5, 0, 0, 0, 1, 0x82, 0x86, 0x84, 0x41, 0x01, b't',
    ];
    socket
        .write_all(&[H2_PREFACE, H2_SETTINGS, &headers].concat())
        .await
        .unwrap();
    let closed = time_until_closed(&mut socket, STEP)
        .await
        .expect("a peer that answers no PING must be dropped long before the idle timeout");
    println!("unanswered PINGs closed the connection after {closed:?}");
    assert!(closed >= Duration::from_millis(200), "{closed:?}");
}

#[tokio::test]
async fn connections_beyond_the_caps_are_closed_at_once() {
    for (total, per_client) in [(100, 3), (3, 100)] {
        let http = HttpSettings {
            max_connections: total,
            max_connections_per_ip: per_client,
            ..HttpSettings::default()
        };
        let edge = start_with(upstream(), http).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(edge.addr).await.unwrap());
        }
        // The cap's worth of connections is accepted and waits for a request...
        for socket in &mut held {
            assert_eq!(
                time_until_closed(socket, Duration::from_millis(100)).await,
                None
            );
        }
        // ...the next one is closed without a request being read.
        let mut refused = TcpStream::connect(edge.addr).await.unwrap();
        let closed = time_until_closed(&mut refused, STEP).await;
        assert!(closed.is_some(), "total {total}, per client {per_client}");
        assert_eq!(edge.state.metrics.connections_refused.get(), 1);
        // A closed connection gives its place back.
        drop(held.pop());
        let deadline = Instant::now() + STEP;
        loop {
            let mut socket = TcpStream::connect(edge.addr).await.unwrap();
            socket
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut reply = Vec::new();
            let _ = tokio::time::timeout(STEP, socket.read_to_end(&mut reply)).await;
            if reply.starts_with(b"HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "the place never came back");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn metrics_are_served_only_on_their_own_listener() {
    let edge = start().await;
    let film = format!("/dl/{}/film.mp4", token(FILM));
    edge.get(&film, &[("range", "bytes=0-0")]).await;
    // The public port knows nothing of /metrics.
    let public = edge.get("/metrics", &[]).await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    assert!(!String::from_utf8_lossy(&public.body).contains("tgcdn_edge"));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics(listener, edge.state.clone(), async {
        let _ = stopped.await;
    }));
    let reply = raw_request(
        metrics,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("tgcdn_edge_http_requests_total{status=\"206\"} 1"),
        "{text}"
    );
    // A scrape is not a request of the public port.
    assert!(
        text.contains("tgcdn_edge_http_requests_in_flight 0\n"),
        "{text}"
    );
    let other = raw_request(
        metrics,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(other.starts_with(b"HTTP/1.1 404"));
    stop.send(()).unwrap();
    tokio::time::timeout(STEP, server).await.unwrap().unwrap();
}
