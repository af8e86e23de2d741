//! The product's front door: a user sends a file to the bot, the bot (the real core's
//! front-end) replies with a link, and that link downloads byte-exact through the edge.

use std::time::Duration;

use tgcdn_tests::{client, sha256_hex};
use tgemu::Content;

use crate::common::{MIB, stack};

#[test]
fn the_link_the_bot_replies_with_downloads_byte_exact() {
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let size = 2 * MIB + 7;
    let upload = stack
        .user_uploads(
            Content::pseudo(size),
            "holiday.mp4",
            "video/mp4",
            4,
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(
        upload
            .link
            .starts_with(&format!("{}/dl/", stack.edge_url())),
        "{}",
        upload.link
    );
    let response = client::get(&upload.link, &[]).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        sha256_hex(&response.body),
        sha256_hex(
            &stack
                .emulator()
                .content_slice(upload.doc.id, 0, size as usize)
        )
    );
}
