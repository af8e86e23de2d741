//! What the sandbox prints on stdout once it runs: the bot's reply and its links, every
//! seeded file's links, ready-to-paste `curl` commands with the expected SHA-256, and how to
//! stop. Logs go to stderr, so stdout stays this text alone.
//!
//! Called by `main`. Pure formatting: [`render`] builds the text from [`Sandbox`] values.

use std::fmt::Write as _;

use crate::Sandbox;
use crate::seed::DemoFile;
use crate::tour::{Tour, rebase};

/// The whole banner.
pub fn render(sandbox: &Sandbox) -> String {
    let seeded = sandbox.seeded();
    let film = seeded.uploaded_file();
    let link = &seeded.bot_links.download;
    let mut text = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        text,
        "\ntgcdn sandbox is up in {:.1} s — emulated Telegram (DCs 1, 2, 4) → core → edges on {} and {}",
        sandbox.startup_time().as_secs_f64(),
        sandbox.public_base(),
        sandbox.remote().public_base()
    );
    let _ = writeln!(text, "core database: {}\n", sandbox.data_dir().display());
    let when = if seeded.reused {
        "In an earlier run on this --data-dir, the demo user"
    } else {
        "The demo user"
    };
    let _ = writeln!(
        text,
        "{when} sent {} to the bot, which stored a copy and replied:\n",
        film.name
    );
    for line in seeded.bot_reply.lines() {
        let _ = writeln!(text, "    │ {line}");
    }
    let _ = writeln!(text, "\nTry it:");
    let _ = writeln!(text, "    curl -r 0-99 '{link}' | od -A d -t x1 | head -3");
    if let Some(sha256) = &film.sha256 {
        let _ = writeln!(
            text,
            "    curl -s '{link}' | sha256sum     # expect {sha256}"
        );
    }
    let _ = writeln!(
        text,
        "    curl -sI -r {}- '{link}'   # a seek: 206 Partial Content",
        film.size / 2
    );
    if let Some(note) = seeded.files.iter().find(|f| f.name.ends_with(".txt")) {
        let _ = writeln!(text, "    curl '{}'", note.links.download);
    }
    if let Some(big) = seeded.files.iter().find(|f| f.sha256.is_none()) {
        let _ = writeln!(
            text,
            "    curl -so /dev/null -w '%{{speed_download}} bytes/s\\n' '{}'   # {} MiB, for throughput",
            big.links.download,
            big.size >> 20
        );
    }
    let _ = writeln!(
        text,
        "    open {} in a browser to watch",
        seeded.bot_links.watch
    );
    write_regions(&mut text, sandbox);
    let _ = writeln!(
        text,
        "\nStremio addon ({} demo releases in the catalogue channel; add it in Stremio → Addons):\n    {}/manifest.json",
        crate::seed::CATALOG_POSTS.len(),
        sandbox.public_base()
    );
    let _ = writeln!(text, "\nFiles in the storage channel:");
    for file in &seeded.files {
        write_file(&mut text, file);
    }
    let _ = writeln!(text, "\nPress Ctrl-C to stop.");
    text
}

/// Both edges, the film's links on the second one, and what the walk through both showed.
fn write_regions(text: &mut String, sandbox: &Sandbox) {
    let remote = sandbox.remote();
    let quic = sandbox
        .quic_addr()
        .map_or_else(|| "?".to_owned(), |addr| addr.to_string());
    let _ = writeln!(
        text,
        "\nTwo regions, one core, each edge with its own cache; a link works on every edge:"
    );
    let _ = writeln!(
        text,
        "    region a  {}  the core's own edge, in its process",
        sandbox.public_base()
    );
    let _ = writeln!(
        text,
        "    region b  {}  an edge talking to the core over QUIC at {quic} (certificate pinned)",
        remote.public_base()
    );
    let links = &sandbox.seeded().bot_links;
    for (what, link) in [("download", &links.download), ("watch", &links.watch)] {
        if let Some(moved) = rebase(link, sandbox.public_base(), remote.public_base()) {
            let _ = writeln!(text, "      {what:<9} {moved}");
        }
    }
    let _ = writeln!(
        text,
        "    {}",
        tour_line(sandbox.tour(), &sandbox.seeded().uploaded_file().name)
    );
}

/// One line: what the second edge's cache did on its two requests for the film.
pub fn tour_line(tour: &Tour, name: &str) -> String {
    let (cold, warm) = (
        &tour.second_region_cold.lookups,
        &tour.second_region_warm.lookups,
    );
    let warm_text = if warm.all_hits() {
        format!("{} of {} chunk(s) from its own cache", warm.hits, warm.hits)
    } else {
        format!(
            "{} chunk(s) from its cache, {} fetched",
            warm.hits,
            warm.misses + warm.coalesced
        )
    };
    format!(
        "{name}: region a fetched it from the core ({}); region b's 1st request fetched {} chunk(s) over QUIC, its 2nd served {warm_text}",
        tour.first_region.status,
        cold.misses + cold.coalesced,
    )
}

fn write_file(text: &mut String, file: &DemoFile) {
    let origin = file
        .source
        .as_ref()
        .map_or_else(|| "built in".to_owned(), |p| p.display().to_string());
    let sha256 = file
        .sha256
        .as_deref()
        .unwrap_or("(not computed: generated on demand)");
    let _ = writeln!(
        text,
        "  • {} ({} bytes, {origin})\n      download: {}\n      watch:    {}\n      sha256:   {sha256}",
        file.name, file.size, file.links.download, file.links.watch
    );
}
