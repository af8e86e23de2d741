//! Revocation as an operator uses it: `tgcdn-core link mint|inspect|revoke` against the
//! running core's admin endpoint, and the revocation reaching the separate edge process
//! over QUIC within a second — its next request is 410 without a single upstream chunk
//! call, although the file's metadata and chunks were cached there.

use std::time::{Duration, Instant};

use tgcdn_tests::{Stack, client, sha256_hex};
use tgemu::Content;

use crate::common::{MIB, expected_sha, run, stack};

/// Runs `tgcdn-core link …` against the stack's core; returns its stdout, asserting success.
fn link_command(stack: &Stack, args: &[&str]) -> String {
    let admin = stack.core_admin_url().unwrap();
    let mut command = stack.core_command(&["link"]);
    command.args(args).args(["--admin", &admin]);
    let output = run(&mut command, Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tgcdn-core link {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The value of an unlabelled counter in the edge's `/metrics`.
fn edge_counter(stack: &Stack, name: &str) -> u64 {
    let text = stack.edge_metrics().unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn a_revoke_reaches_the_edge_within_a_second_and_costs_no_upstream_chunk() {
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let size = 2 * MIB + 12_345;
    let posted = stack.post_file(
        Content::pseudo(size),
        "revoked.bin",
        "application/octet-stream",
        2,
    );

    // Minted by the operator through the running core: a second link to the same file.
    let minted = link_command(
        stack,
        &[
            "mint",
            "--chat",
            &posted.file.chat_id.to_string(),
            "--msg",
            &posted.file.msg_id.to_string(),
            "--expires",
            "7d",
            "--name",
            "minted.bin",
        ],
    );
    assert!(minted.contains("state: valid"), "{minted}");
    let minted_url = minted
        .lines()
        .find_map(|line| line.strip_prefix("link: "))
        .unwrap_or_else(|| panic!("no link in {minted}"))
        .to_owned();
    assert!(
        minted_url.starts_with(&format!("{}/dl/", stack.edge_url())),
        "{minted_url}"
    );
    assert!(!minted.contains("expires: never"), "{minted}");

    // Both links serve, and the edge now holds the file's meta and every chunk.
    let expected = expected_sha(stack, &posted);
    for url in [&posted.url, &minted_url] {
        let response = client::get(url, &[]).unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(sha256_hex(&response.body), expected);
    }
    let pushes_before = edge_counter(stack, "tgcdn_edge_pushes_received_total");
    let misses_before = edge_counter(stack, "tgcdn_edge_cache_misses_total");
    let get_files_before = stack.emulator().counters().requests_for("upload.getFile");

    let revoked = link_command(stack, &["revoke", &posted.url, "--reason", "e2e test"]);
    let revoked_at = Instant::now();
    assert!(revoked.contains("state: revoked (410)"), "{revoked}");
    assert!(revoked.contains("reason: e2e test"), "{revoked}");

    // The edge applies the push within a second (polled, not slept).
    while edge_counter(stack, "tgcdn_edge_pushes_received_total") <= pushes_before {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "the edge did not hear of the revocation within 1 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Every link to the file is gone, at once, with a short body.
    for url in [&posted.url, &minted_url] {
        let response = client::get(url, &[]).unwrap();
        assert_eq!(response.status(), 410, "{url}");
        assert!(response.body.len() < 200, "{}", response.body.len());
    }
    assert_eq!(
        edge_counter(stack, "tgcdn_edge_cache_misses_total"),
        misses_before
    );
    assert_eq!(
        stack.emulator().counters().requests_for("upload.getFile"),
        get_files_before
    );

    let inspected = link_command(stack, &["inspect", &minted_url]);
    assert!(inspected.contains("state: revoked (410)"), "{inspected}");
    assert!(
        inspected.contains(&format!("message {}", posted.file.msg_id)),
        "{inspected}"
    );
}

#[test]
fn link_commands_refuse_a_forged_link_with_a_reason() {
    let stack = stack();
    let admin = stack.core_admin_url().unwrap();
    let mut command = stack.core_command(&["link", "revoke", "https://x.example/dl/3zZz9/f"]);
    command.args(["--admin", &admin]);
    let output = run(&mut command, Duration::from_secs(20));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a link this core signed"), "{stderr}");
}

#[test]
fn minting_a_link_to_a_message_without_a_file_is_refused() {
    let stack = stack();
    let admin = stack.core_admin_url().unwrap();
    let channel = stack.channel();
    let msg_id = stack.world().post_text(channel.channel_id, "no file here");
    let mut command = stack.core_command(&[
        "link",
        "mint",
        "--chat",
        &channel.bot_api_id().to_string(),
        "--msg",
        &msg_id.to_string(),
    ]);
    command.args(["--admin", &admin]);
    let output = run(&mut command, Duration::from_secs(20));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("carries no file: no link minted"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("/dl/"),
        "a link was printed"
    );
}
