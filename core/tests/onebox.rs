//! One-box mode against the emulator: `run_one_box` serves viewers over HTTP from the
//! in-process core — whole files byte-exact, Range answers 206 with the right slice, a
//! FLOOD_WAIT on one bot never reaches the viewer, a forged link is refused without
//! Telegram — and the QUIC server for other edges keeps running beside it. The admin
//! endpoint's report and `/metrics` show the same traffic.

mod support;

use support::{Deployment, MIB, bounded, http_get, keyring};
use tgcdn_core::config::OneBoxEdge;
use tgcdn_core::runtime::run_one_box;
use tgemu::Content;

#[tokio::test]
async fn a_one_box_core_serves_files_ranges_and_hides_flood_waits() {
    bounded(async {
        let deployment = Deployment::start().await;
        let world = deployment.emu.world();
        let size = 2 * MIB + 4321;
        let film = world.add_document(Content::pseudo(size), "film.mkv", "video/x-matroska", 4);
        let film_msg = world.post_document(deployment.channel.channel_id, film.id, "");
        let other = world.add_document(Content::pseudo(MIB + 17), "other.mp4", "video/mp4", 2);
        let other_msg = world.post_document(deployment.channel.channel_id, other.id, "");

        let dir = tempfile::tempdir().unwrap();
        deployment.provision(dir.path()).await;
        let config = deployment.config(dir.path(), &[]);
        let edge = OneBoxEdge::on("127.0.0.1:0".parse().unwrap());
        let core = run_one_box(config, edge)
            .await
            .expect("one-box core starts");
        let addr = core.edge_addr().expect("the edge listens");
        assert!(core.quic_addr().is_some(), "QUIC stays on for other edges");

        let keys = keyring();
        let token = keys.sign(deployment.file(film_msg), None);
        let whole = http_get(addr, &format!("/dl/{token}/film.mkv"), &[]).await;
        assert_eq!(whole.status, 200, "{:?}", whole.headers);
        assert_eq!(whole.body.len() as u64, size);
        assert!(whole.body == deployment.emu.content_slice(film.id, 0, size as usize));

        // A range across the first chunk boundary.
        let (start, end) = (MIB - 100, MIB + 99);
        let range = format!("bytes={start}-{end}");
        let part = http_get(
            addr,
            &format!("/dl/{token}/film.mkv"),
            &[("Range", range.as_str())],
        )
        .await;
        assert_eq!(part.status, 206);
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {start}-{end}/{size}").as_str())
        );
        assert!(part.body == deployment.emu.content_slice(film.id, start, 200));

        // The main bot floods; the worker serves the viewer without a visible error.
        deployment
            .emu
            .faults()
            .flood_wait(deployment.main_bot.user_id, 30);
        let token = keys.sign(deployment.file(other_msg), None);
        let other_body = http_get(addr, &format!("/dl/{token}/other.mp4"), &[]).await;
        assert_eq!(other_body.status, 200, "{:?}", other_body.headers);
        assert!(
            other_body.body
                == deployment
                    .emu
                    .content_slice(other.id, 0, (MIB + 17) as usize)
        );
        let flooded = core
            .pool()
            .report(std::time::Instant::now())
            .iter()
            .filter(|bot| bot.flood_wait_secs.is_some())
            .count();
        assert_eq!(
            flooded, 1,
            "the main bot was asked, answered FLOOD_WAIT and was routed around"
        );

        let getfiles = deployment.emu.counters().requests_for("upload.getFile");
        let forged = http_get(addr, "/dl/AAAAAAAAAAAAAAAAAAAAAAAA/x.mp4", &[]).await;
        assert!((400..500).contains(&forged.status), "{}", forged.status);
        assert_eq!(
            deployment.emu.counters().requests_for("upload.getFile"),
            getfiles
        );

        // The admin endpoint tells the same story: bytes per bot, the flood wait, per-DC
        // requests, and Prometheus text with the same numbers.
        let report = tgcdn_core::admin::fetch_report(&format!("http://{}", core.admin_addr()))
            .await
            .expect("admin report");
        let served: u64 = report.bots.iter().map(|bot| bot.bytes).sum();
        assert!(served >= size + MIB + 17, "{report:?}");
        assert_eq!(
            report.bots.iter().map(|bot| bot.flood_waits).sum::<u64>(),
            1
        );
        assert!(
            report
                .dcs
                .iter()
                .any(|row| row.dc == 4 && row.requests >= 3),
            "{report:?}"
        );
        let metrics = http_get(core.admin_addr(), "/metrics", &[]).await;
        assert_eq!(metrics.status, 200);
        let text = String::from_utf8(metrics.body).unwrap();
        assert!(
            text.contains("tgcdn_core_bot_flood_waits_total{bot=\"123456\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tgcdn_core_dc_requests_total{dc=\"4\"}"),
            "{text}"
        );
        // The one FLOOD_WAIT was a failed attempt the retry policy answered, on whichever
        // loop met it (the lookup of the new file or its chunk download), and nothing was
        // given up.
        let flood_retries: f64 = ["fetch", "lookup"]
            .iter()
            .map(|path| {
                sample(
                    &text,
                    &format!("tgcdn_core_retries_total{{path=\"{path}\",class=\"flood_wait\"}}"),
                )
            })
            .sum();
        assert_eq!(flood_retries, 1.0, "{text}");
        assert!(!text.contains("tgcdn_core_give_ups_total{"), "{text}");
        let reported = report
            .retries
            .fetch
            .failures
            .get("flood_wait")
            .copied()
            .unwrap_or(0)
            + report
                .retries
                .lookup
                .failures
                .get("flood_wait")
                .copied()
                .unwrap_or(0);
        assert_eq!(reported, 1, "{:?}", report.retries);
        let bots = http_get(core.admin_addr(), "/admin/bots", &[]).await;
        assert_eq!(bots.status, 200);

        core.shutdown().await.expect("clean shutdown");
    })
    .await;
}

/// The value of one Prometheus sample (`name{labels}`) in `text`; 0 when absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `TGCDN_QUIC_ENABLED=false` with `TGCDN_WITH_EDGE=true`: a core nobody else joins serves
/// viewers without opening a QUIC endpoint.
#[tokio::test]
async fn a_one_box_core_can_run_without_quic() {
    bounded(async {
        let deployment = Deployment::start().await;
        let world = deployment.emu.world();
        let doc = world.add_document(Content::pseudo(MIB / 2), "clip.mp4", "video/mp4", 2);
        let msg = world.post_document(deployment.channel.channel_id, doc.id, "");
        let dir = tempfile::tempdir().unwrap();
        deployment.provision(dir.path()).await;
        let config = deployment.config(
            dir.path(),
            &[("TGCDN_WITH_EDGE", "true"), ("TGCDN_QUIC_ENABLED", "false")],
        );
        let core = tgcdn_core::runtime::Running::start(&config)
            .await
            .expect("starts");
        assert_eq!(core.quic_addr(), None);
        let addr = core.edge_addr().expect("TGCDN_WITH_EDGE starts the edge");
        let token = keyring().sign(deployment.file(msg), None);
        let response = http_get(addr, &format!("/dl/{token}/clip.mp4"), &[]).await;
        assert_eq!(response.status, 200);
        assert!(response.body == deployment.emu.content_slice(doc.id, 0, (MIB / 2) as usize));
        core.shutdown().await.expect("clean shutdown");
    })
    .await;
}

/// Sends `GET path` with the given `Host` to the admin endpoint; returns the status.
async fn admin_status_with_host(addr: std::net::SocketAddr, path: &str, host: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A revocation made through the admin endpoint reaches the embedded edge in-process: the
/// file it had cached answers 410 at once, without a Telegram call. The admin endpoint
/// refuses a request naming a non-loopback host (DNS rebinding).
#[tokio::test]
async fn a_one_box_core_honours_revocation_and_refuses_foreign_hosts() {
    bounded(async {
        let deployment = Deployment::start().await;
        let world = deployment.emu.world();
        let size = MIB + 99;
        let doc = world.add_document(Content::pseudo(size), "clip.mp4", "video/mp4", 2);
        let msg = world.post_document(deployment.channel.channel_id, doc.id, "");
        let dir = tempfile::tempdir().unwrap();
        deployment.provision(dir.path()).await;
        let config = deployment.config(dir.path(), &[]);
        let edge = OneBoxEdge::on("127.0.0.1:0".parse().unwrap());
        let core = run_one_box(config, edge)
            .await
            .expect("one-box core starts");
        let addr = core.edge_addr().expect("the edge listens");
        let admin = core.admin_addr();

        let foreign = "evil.example:9180";
        assert_eq!(
            admin_status_with_host(admin, "/admin/report", foreign).await,
            403
        );
        assert_eq!(
            admin_status_with_host(admin, "/admin/report", "localhost").await,
            200
        );
        // Probes and scrapers reach /metrics by any name: it holds counters only.
        assert_eq!(
            admin_status_with_host(admin, "/metrics", foreign).await,
            200
        );

        let path = format!(
            "/dl/{}/clip.mp4",
            keyring().sign(deployment.file(msg), None)
        );
        assert_eq!(http_get(addr, &path, &[]).await.status, 200);
        let getfiles = deployment.emu.counters().requests_for("upload.getFile");
        let client = tgcdn_core::admin::AdminClient::new(format!("http://{admin}"), None);
        let revoked = client
            .link_action(
                "revoke",
                &tgcdn_core::admin::links::LinkRequest {
                    link: format!("http://{addr}{path}"),
                    reason: None,
                },
            )
            .await
            .expect("revoked");
        assert_eq!(revoked.state(), "revoked (410)");
        // Applied by a task in the same process: await it under the test's deadline.
        loop {
            let status = http_get(addr, &path, &[]).await.status;
            if status == 410 {
                break;
            }
            assert_eq!(status, 200);
            tokio::task::yield_now().await;
        }
        assert_eq!(
            deployment.emu.counters().requests_for("upload.getFile"),
            getfiles
        );
        core.shutdown().await.expect("clean shutdown");
    })
    .await;
}
