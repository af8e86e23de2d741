//! Multi-connection download managers: aria2c splitting one file over 8 connections with
//! 1 MiB pieces, which makes the edge serve many concurrent, unaligned-end ranges.

use std::process::Command;
use std::time::Duration;

use tgemu::Content;

use crate::common::{MIB, check, expected_sha, file_sha, have_tool, run, stack};

#[test]
fn aria2c_with_eight_connections_gets_every_byte() {
    if !have_tool("aria2c") {
        return;
    }
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let posted = stack.post_file(
        Content::pseudo(6 * MIB + 4321),
        "aria film.mkv",
        "video/x-matroska",
        2,
    );
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        Command::new("aria2c").args([
            "-x",
            "8",
            "-s",
            "8",
            "-k",
            "1M",
            "--quiet=true",
            "--file-allocation=none",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
            "--max-tries=3",
            "--timeout=30",
            "-d",
            dir.path().to_str().unwrap(),
            "-o",
            "film.mkv",
            &posted.url,
        ]),
        Duration::from_secs(120),
    );
    check(&output, "aria2c");
    assert_eq!(
        file_sha(&dir.path().join("film.mkv")),
        expected_sha(stack, &posted)
    );
}
