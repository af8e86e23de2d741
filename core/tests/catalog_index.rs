//! The catalogue indexer against the DC emulator and the real grammers client, through a
//! whole `Running` core: posts made before the core started are back-filled with
//! `channels.getMessages` in batches, new posts, edits and deletions arrive as updates (live,
//! and caught up through `getChannelDifference` after a restart), an interrupted back-fill
//! resumes without asking for a finished batch again, a worker bot that cannot read the
//! catalogue channel stays in service for the storage channel, and the admin endpoint, the
//! `tgcdn-core reindex` command and the bot's `/reindex` answer. Every wait is bounded.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Deployment, MIB, http_get};
use tgcdn_core::bots::select::Health;
use tgcdn_core::catalog::index::ChannelPost;
use tgcdn_core::runtime::Running;
use tgemu::{ChannelInfo, Content, World};

const WAIT: Duration = Duration::from_secs(30);

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("catalogue test took too long")
}

/// Polls `check` until it returns `Some`, failing with `what` after [`WAIT`].
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn posts(core: &Running) -> BTreeMap<i32, ChannelPost> {
    core.catalog_posts()
        .expect("the catalogue is on")
        .all()
        .expect("posts readable")
        .into_iter()
        .map(|post| (post.file.msg_id, post))
        .collect()
}

fn post_film(world: &World, channel: ChannelInfo, name: &str, caption: &str) -> i32 {
    let doc = world.add_document(Content::pseudo(MIB / 4), name, "video/x-matroska", 2);
    world.post_document(channel.channel_id, doc.id, caption)
}

async fn start(deployment: &Deployment, dir: &Path, extra: &[(&str, &str)]) -> Running {
    let config = deployment.config(dir, extra);
    bounded(Running::start(&config)).await.expect("core starts")
}

#[tokio::test]
async fn posts_are_indexed_from_updates_and_a_resumable_back_fill() {
    bounded(async {
        let deployment = Deployment::start().await;
        let world = deployment.emu.world();
        // The worker reads the storage channel but is not in the catalogue channel.
        let films = world.create_channel("films");
        world.add_channel_member(films.channel_id, deployment.main_bot.user_id, true);
        let channel = films.bot_api_id();
        let operator = world.register_user("operator");
        let stranger = world.register_user("stranger");

        // Before tgcdn: 13 films and one announcement (message 7).
        for id in 1..=14 {
            let posted = if id == 7 {
                world.post_text(films.channel_id, "Welcome to the films channel")
            } else {
                post_film(
                    &world,
                    films,
                    &format!("Film.{id}.2019.1080p.WEB-DL.mkv"),
                    &format!("Film {id}"),
                )
            };
            assert_eq!(posted, id);
        }

        let dir = tempfile::tempdir().unwrap();
        deployment.provision(dir.path()).await;
        let channel_setting = channel.to_string();
        let admins = operator.user_id.to_string();
        let extra = [
            ("TGCDN_CATALOG_CHANNELS", channel_setting.as_str()),
            ("TGCDN_CATALOG_BACKFILL_BATCH", "2"),
            ("TGCDN_CATALOG_BACKFILL_PAUSE", "400ms"),
            ("TGCDN_ADMINS", admins.as_str()),
            ("TGCDN_QUIC_ENABLED", "false"),
            // Hashing resolves each file through getMessages too: off, so the counters
            // below see the back-fill's batches alone.
            ("TGCDN_CATALOG_VIDEO_HASHES", "false"),
        ];

        // First run: live posts, an edit and a deletion arrive as updates while the
        // back-fill walks down from message 14; the core stops after two batches.
        let core = start(&deployment, dir.path(), &extra).await;
        let live: Vec<i32> = (15..=19)
            .map(|n| post_film(&world, films, &format!("Show.S01E{n:02}.720p.mkv"), ""))
            .collect();
        assert_eq!(live, [15, 16, 17, 18, 19]);
        assert!(world.edit_post(films.channel_id, 1, "Film 1 (edited live)"));
        assert_eq!(world.delete_posts(films.channel_id, &[16]), 1);
        wait_for("the live posts, edit and deletion", || {
            let posts = posts(&core);
            let edited =
                posts.get(&1).and_then(|p| p.caption.as_deref()) == Some("Film 1 (edited live)");
            let live_in = [15, 17, 18, 19].iter().all(|id| posts.contains_key(id));
            (edited && live_in && !posts.contains_key(&16)).then_some(())
        })
        .await;
        wait_for("two back-fill batches", || {
            (deployment
                .emu
                .counters()
                .get_messages_in(films.channel_id)
                .len()
                >= 2)
                .then_some(())
        })
        .await;
        bounded(core.shutdown()).await.expect("clean shutdown");
        let first_calls = deployment
            .emu
            .counters()
            .get_messages_in(films.channel_id)
            .len();
        assert!(
            (2..7).contains(&first_calls),
            "the back-fill was meant to be cut short (7 batches of 2), made {first_calls} calls"
        );

        // While the core is down: a new post, a deletion and an edit of back-filled posts.
        assert_eq!(
            post_film(&world, films, "Late.Film.2021.2160p.mkv", "late"),
            20
        );
        assert_eq!(world.delete_posts(films.channel_id, &[3]), 1);
        assert!(world.edit_post(films.channel_id, 5, "Film 5 (edited while down)"));

        let core = start(&deployment, dir.path(), &extra).await;
        let expected: BTreeSet<i32> = (1..=20).filter(|id| ![3, 7, 16].contains(id)).collect();
        let posts = wait_for("the back-fill and the catch-up", || {
            let done = core
                .backfill()
                .and_then(|b| b.progress().get(&channel).cloned())
                .is_some_and(|p| p.status == "done");
            let posts = posts(&core);
            let caught_up = posts.get(&5).and_then(|p| p.caption.as_deref())
                == Some("Film 5 (edited while down)");
            let ids: BTreeSet<i32> = posts.keys().copied().collect();
            (done && caught_up && ids == expected).then_some(posts)
        })
        .await;
        assert_eq!(posts.len(), 17, "10+ posts: back-filled and from updates");
        let film = &posts[&12];
        assert_eq!(film.file.chat_id, channel);
        assert_eq!(
            film.file_name.as_deref(),
            Some("Film.12.2019.1080p.WEB-DL.mkv")
        );
        assert_eq!(film.caption.as_deref(), Some("Film 12"));
        assert_eq!(
            (film.size, film.mime.as_str()),
            (MIB / 4, "video/x-matroska")
        );
        assert_eq!(posts[&1].caption.as_deref(), Some("Film 1 (edited live)"));
        assert_eq!(posts[&15].caption, None);

        // No batch was asked twice: every id in at most one call, ids 1..=14 all walked.
        let counters = deployment.emu.counters();
        let calls = counters.get_messages_in(films.channel_id);
        let mut seen = BTreeSet::new();
        for call in &calls {
            assert!(call.ids.len() <= 2, "batch size: {:?}", call.ids);
            assert_eq!(
                call.user, deployment.main_bot.user_id,
                "only the member bot reads it"
            );
            for id in &call.ids {
                assert!(seen.insert(*id), "message {id} fetched twice: {calls:?}");
            }
        }
        assert!((1..=14).all(|id| seen.contains(&id)), "{seen:?}");
        let calls_before = calls.len();

        // The worker that cannot read the catalogue channel is still in service.
        let report = core.pool().report(Instant::now());
        assert_eq!(report.len(), 2);
        assert!(
            report.iter().all(|bot| bot.health == Health::Healthy),
            "{report:?}"
        );

        // /metrics shows the catalogue.
        let admin = core.admin_addr();
        let metrics = http_get(admin, "/metrics", &[]).await;
        let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
        assert!(metrics.contains("tgcdn_core_catalog_posts 17"), "{metrics}");
        let done = format!("tgcdn_core_catalog_backfill_done{{channel=\"{channel}\"}} 1");
        assert!(metrics.contains(&done), "{metrics}");
        assert!(metrics.contains(&format!(
            "tgcdn_core_catalog_backfill_remaining{{channel=\"{channel}\"}} 0"
        )));
        let report = tgcdn_core::admin::fetch_report(&format!("http://{admin}"))
            .await
            .expect("report");
        let catalog = report.catalog.expect("catalogue in the report");
        assert_eq!(catalog.posts_stored, 17);
        assert!(catalog.backfill_batches >= 7);

        // The bot's /reindex: admins only, a wrong channel is explained.
        world.user_sends_text(stranger.user_id, deployment.main_bot.user_id, "/reindex");
        world.user_sends_text(
            operator.user_id,
            deployment.main_bot.user_id,
            "/reindex -100999",
        );
        let replies = |user: i64| {
            world
                .sent_by(deployment.main_bot.user_id)
                .into_iter()
                .filter(move |m| m.peer == tgemu::Peer::User(user))
                .map(|m| m.text)
                .collect::<Vec<_>>()
        };
        let stranger_reply =
            wait_for("the stranger's reply", || replies(stranger.user_id).pop()).await;
        assert!(
            stranger_reply.contains("only available to the bot's administrators"),
            "{stranger_reply}"
        );
        let operator_reply =
            wait_for("the operator's reply", || replies(operator.user_id).pop()).await;
        assert!(
            operator_reply.contains("-100999 is not a catalogue channel"),
            "{operator_reply}"
        );
        assert!(
            operator_reply.contains(&format!("{channel}: done, 0 ids left")),
            "{operator_reply}"
        );

        // `tgcdn-core reindex` goes through the admin endpoint.
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tgcdn-core"))
            .args([
                "reindex",
                "--admin",
                &format!("http://{admin}"),
                "--channel",
                &channel_setting,
            ])
            .env_clear()
            .output();
        let output = bounded(output).await.expect("reindex runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{output:?}");
        assert!(
            stdout.contains("re-index queued for 1 channel(s)"),
            "{stdout}"
        );
        let refused =
            tgcdn_core::admin::request_reindex(&format!("http://{admin}"), Some(-100999)).await;
        assert!(
            matches!(
                refused,
                Err(tgcdn_core::admin::AdminClientError::Refused { .. })
            ),
            "{refused:?}"
        );
        wait_for("the re-index to start", || {
            let calls = deployment
                .emu
                .counters()
                .get_messages_in(films.channel_id)
                .len();
            (calls > calls_before).then_some(())
        })
        .await;
        bounded(core.shutdown()).await.expect("clean shutdown");
    })
    .await;
}
