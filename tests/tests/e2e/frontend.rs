//! The product's front door: a user sends a file (or a photo) to the bot, the bot (the real
//! core's front-end) replies with a link, and that link downloads byte-exact through the
//! edge.

use std::time::Duration;

use tgcdn_tests::{client, sha256_hex};
use tgemu::{Content, PhotoSizeSpec};

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

/// A photo (not a file) gets a link too: the edge serves its largest size byte-exact as
/// `image/jpeg` with `nosniff`, whole and by range.
#[test]
fn a_photo_sent_to_the_bot_downloads_as_a_jpeg() {
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let large = MIB + 123_456;
    let sent = stack
        .user_sends_photo(
            vec![
                PhotoSizeSpec::new("s", 90, 67, Content::pseudo(1_500)),
                PhotoSizeSpec::new("m", 320, 240, Content::pseudo(25_000)),
                PhotoSizeSpec::new("y", 1280, 960, Content::pseudo(large)),
            ],
            4,
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(sent.link.ends_with(".jpg"), "{}", sent.link);
    let largest = sent.photo.largest().expect("sizes").clone();
    let expected = stack
        .emulator()
        .content_slice(largest.content_id, 0, large as usize);
    let whole = client::get(&sent.link, &[]).unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.header("content-type"), Some("image/jpeg"));
    assert_eq!(whole.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(sha256_hex(&whole.body), sha256_hex(&expected));

    let (start, end) = (MIB - 10, MIB + 9);
    let range = format!("bytes={start}-{end}");
    let part = client::get(&sent.link, &[("Range", range.as_str())]).unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes {start}-{end}/{large}").as_str())
    );
    assert!(part.body == expected[start as usize..=end as usize]);
}
