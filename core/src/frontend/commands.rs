//! What a user's message asks for, who may ask it, and the text of every reply.
//!
//! Pure: no I/O, no Telegram, no clock (the caller passes what it observed). The update loop
//! in `frontend/mod.rs` parses each private message into an [`Intent`], asks [`Access`]
//! whether the user may have it, and sends the text these functions format.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::bots::BotReport;
use crate::bots::select::Health;
use crate::telegram::chat::MediaKind;

/// What a private message asks the bot to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Start,
    Help,
    /// Admin statistics: bots, DCs, and whatever extra lines the core adds.
    Stats,
    /// Admin: walk the catalogue channels (or one, `/reindex -100…`) again.
    Reindex,
    /// Admin: revoke the file a link points at (`/revoke <link>`), at every edge.
    Revoke,
    /// The message carries a file: store it and answer with links.
    Upload,
    /// Text that is not a known command (or a command for another bot).
    Unknown,
}

/// Reads a message: a file wins over any caption; otherwise a leading `/command`, optionally
/// addressed as `/command@bot_username` (to another bot → [`Intent::Unknown`]).
pub fn parse(text: &str, has_file: bool, bot_username: Option<&str>) -> Intent {
    if has_file {
        return Intent::Upload;
    }
    let Some(command) = text.trim_start().strip_prefix('/') else {
        return Intent::Unknown;
    };
    let word = command.split_whitespace().next().unwrap_or("");
    let (name, addressee) = match word.split_once('@') {
        Some((name, addressee)) => (name, Some(addressee)),
        None => (word, None),
    };
    if let (Some(addressee), Some(me)) = (addressee, bot_username)
        && !addressee.eq_ignore_ascii_case(me.trim_start_matches('@'))
    {
        return Intent::Unknown;
    }
    match name.to_ascii_lowercase().as_str() {
        "start" => Intent::Start,
        "help" => Intent::Help,
        "stats" => Intent::Stats,
        "reindex" => Intent::Reindex,
        "revoke" => Intent::Revoke,
        _ => Intent::Unknown,
    }
}

/// Who may use the bot, and who may see its statistics.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `None`: everyone. Admins are always allowed.
    pub allowed_users: Option<HashSet<i64>>,
    pub admins: HashSet<i64>,
}

/// [`Access::decide`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The user is not on the allow-list.
    NotAllowed,
    /// The command is for admins only.
    AdminOnly,
}

impl Access {
    pub fn decide(&self, user_id: i64, intent: Intent) -> Decision {
        let admin = self.admins.contains(&user_id);
        let allowed = admin
            || self
                .allowed_users
                .as_ref()
                .is_none_or(|users| users.contains(&user_id));
        if !allowed {
            Decision::NotAllowed
        } else if matches!(intent, Intent::Stats | Intent::Reindex | Intent::Revoke) && !admin {
            Decision::AdminOnly
        } else {
            Decision::Allow
        }
    }
}

pub fn start_text() -> String {
    "Hi! Send me any file — a document, video, audio or photo — and I will answer with a \
     download link and a link to watch it in the browser. Links support seeking, so players \
     can jump anywhere.\n\nSee /help for details."
        .to_owned()
}

pub fn help_text() -> String {
    "How it works:\n\
     • Send or forward a file to me (up to 2 GiB; 4 GiB if the uploader allowed it).\n\
     • I keep a copy and reply with two links: /dl/… downloads the file (resumable, \
     seekable), /watch/… plays it in the browser.\n\
     • Links keep working for as long as the file is stored, unless the server gives \
     them an expiry or its operator revokes the file.\n\n\
     Commands: /start, /help."
        .to_owned()
}

/// The one answer to a user over their message budget.
pub fn slow_down_text(retry_after_secs: u64) -> String {
    format!(
        "You're sending messages faster than I can take them. Please wait {retry_after_secs} s \
         and send the rest again; I'll skip what arrives until then."
    )
}

pub fn not_allowed_text() -> String {
    "Sorry, this bot is private and only serves its owner's users. If you think you should \
     have access, please ask the person who runs it."
        .to_owned()
}

pub fn admin_only_text() -> String {
    "Sorry, /stats, /reindex and /revoke are only available to the bot's administrators.".to_owned()
}

pub fn unknown_text() -> String {
    "Send me a file and I will reply with a link. /help explains more.".to_owned()
}

pub fn upload_failed_text() -> String {
    "Sorry, I could not store that file just now. Please try again in a minute.".to_owned()
}

/// The answer to an upload the core could not serve, or `None` when it can. Documents
/// (files, videos, audio) and photos are served; media without a file (a poll, a location,
/// a contact…) would get a link that answers 404, so it is refused saying what works.
pub fn unservable_upload_text(kind: MediaKind) -> Option<String> {
    match kind {
        MediaKind::Other => Some(
            "Sorry, I can only make links for files, videos, audio and photos — not for \
             polls, locations, contacts or games. Send me a file and I'll answer with a link."
                .to_owned(),
        ),
        MediaKind::Document | MediaKind::Video | MediaKind::Audio | MediaKind::Photo => None,
    }
}

/// The answer to an upload: what was stored and its two links.
pub fn link_reply(file_name: &str, size: Option<u64>, download: &str, watch: &str) -> String {
    let mut text = format!("📁 {file_name}");
    if let Some(size) = size {
        let _ = write!(text, " ({})", human_size(size));
    }
    let _ = write!(text, "\n\n⬇️ Download: {download}\n▶️ Watch: {watch}");
    text
}

/// `1536` → `1.5 KiB`; binary units, one decimal above bytes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Display only: f64 rounding of a u64 is fine here.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The channel `/reindex` names, if any: `/reindex` = every catalogue channel,
/// `/reindex -1001234567890` = that one.
pub fn reindex_channel(text: &str) -> Result<Option<i64>, String> {
    match text.split_whitespace().nth(1) {
        None => Ok(None),
        Some(word) => word
            .parse()
            .map(Some)
            .map_err(|_| format!("{word:?} is not a channel id; use /reindex or /reindex -100…")),
    }
}

/// The link `/revoke` names, or the usage line when it names none.
pub fn revoke_argument(text: &str) -> Result<&str, String> {
    text.split_whitespace()
        .nth(1)
        .ok_or_else(|| "Usage: /revoke <link> — revokes the file: every link to it stops working at every edge.".to_owned())
}

/// The answer to `/revoke`: what was revoked, or why not.
pub fn revoke_text(result: &Result<crate::revoke::LinkInfo, String>) -> String {
    match result {
        Ok(info) => format!(
            "Revoked: message {} of {}. Every link to this file now answers 410 Gone at every edge.",
            info.msg_id, info.chat_id
        ),
        Err(why) => format!("Not revoked: {why}"),
    }
}

pub fn reindex_off_text() -> String {
    "The catalogue is not set up on this server (no catalogue channels are configured), so      there is nothing to re-index."
        .to_owned()
}

/// The answer to `/reindex`: what was queued (or why not) and every channel's progress.
pub fn reindex_text(
    queued: &Result<Vec<i64>, String>,
    progress: &std::collections::BTreeMap<i64, crate::catalog::index::BackfillProgress>,
) -> String {
    let mut text = match queued {
        Ok(channels) => format!(
            "Re-indexing {} channel(s); posts are walked from the newest down. Progress so far:\n",
            channels.len()
        ),
        Err(why) => format!("Sorry, I could not start a re-index: {why}.\nProgress so far:\n"),
    };
    if progress.is_empty() {
        text.push_str("(no channel has been walked yet)\n");
    }
    for (channel, p) in progress {
        let _ = writeln!(
            text,
            "• {channel}: {}, {} ids left, {} posts found, {} batches",
            p.status, p.remaining, p.posts, p.batches
        );
    }
    text.trim_end().to_owned()
}

/// What `/stats` shows.
#[derive(Debug, Clone, Default)]
pub struct StatsView {
    pub bots: Vec<BotReport>,
    /// The main bot's home DC and the media DCs it is authorised in, if known.
    pub home_dc: Option<i32>,
    pub media_dcs: Vec<i32>,
    /// Extra lines from the rest of the core (edges, caches…), shown as given.
    pub extra: Vec<String>,
}

pub fn stats_text(view: &StatsView) -> String {
    let mut text = format!("Bots: {}\n", view.bots.len());
    for bot in &view.bots {
        let health = match (&bot.health, &bot.sickness) {
            (Health::Healthy, _) => "healthy".to_owned(),
            (Health::Unhealthy { reason }, Some(s)) => format!(
                "UNHEALTHY ({reason}; for {} s, next probe in {} s)",
                s.since_secs, s.next_probe_secs
            ),
            (Health::Unhealthy { reason }, None) => format!("UNHEALTHY ({reason})"),
        };
        let _ = write!(
            text,
            "• {}: {health}, {} in flight {:?}, {} requests",
            bot.id, bot.load.in_flight, bot.load.per_connection, bot.load.started
        );
        if let Some(secs) = bot.flood_wait_secs {
            let _ = write!(text, ", flood wait {secs} s");
        }
        for (channel, s) in &bot.denied_channels {
            let _ = write!(
                text,
                "; cannot read {channel} ({}; for {} s, next probe in {} s)",
                s.reason, s.since_secs, s.next_probe_secs
            );
        }
        text.push('\n');
    }
    match view.home_dc {
        Some(home) => {
            let _ = writeln!(
                text,
                "DCs: home {home}, media authorised {:?}",
                view.media_dcs
            );
        }
        None => text.push_str("DCs: unknown\n"),
    }
    for line in &view.extra {
        text.push_str(line);
        text.push('\n');
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_without_a_file_is_refused_and_files_and_photos_are_not() {
        let refusal = unservable_upload_text(MediaKind::Other).unwrap();
        assert!(refusal.contains("not for polls"), "{refusal}");
        for kind in [
            MediaKind::Document,
            MediaKind::Video,
            MediaKind::Audio,
            MediaKind::Photo,
        ] {
            assert_eq!(unservable_upload_text(kind), None);
        }
    }
    use crate::bots::load::LoadSnapshot;

    #[test]
    fn files_win_over_captions_and_commands_are_recognised() {
        assert_eq!(parse("/help", true, None), Intent::Upload);
        assert_eq!(parse("", true, None), Intent::Upload);
        assert_eq!(parse("/start", false, None), Intent::Start);
        assert_eq!(parse("  /START payload", false, None), Intent::Start);
        assert_eq!(parse("/help@cdn_bot", false, Some("cdn_bot")), Intent::Help);
        assert_eq!(
            parse("/help@CDN_Bot", false, Some("@cdn_bot")),
            Intent::Help
        );
        assert_eq!(
            parse("/help@other_bot", false, Some("cdn_bot")),
            Intent::Unknown
        );
        assert_eq!(parse("/stats", false, None), Intent::Stats);
        assert_eq!(parse("/reindex -1001", false, None), Intent::Reindex);
        assert_eq!(
            parse("/revoke https://x/dl/a/b", false, None),
            Intent::Revoke
        );
        assert_eq!(
            revoke_argument("/revoke  https://x/dl/a/b "),
            Ok("https://x/dl/a/b")
        );
        assert!(
            revoke_argument("/revoke")
                .unwrap_err()
                .starts_with("Usage: /revoke")
        );
        assert_eq!(parse("/nope", false, None), Intent::Unknown);
        assert_eq!(parse("hello", false, None), Intent::Unknown);
        assert_eq!(parse("/", false, None), Intent::Unknown);
        assert_eq!(parse("", false, None), Intent::Unknown);
    }

    #[test]
    fn access_follows_allow_list_and_admins() {
        let open = Access {
            allowed_users: None,
            admins: [1].into(),
        };
        assert_eq!(open.decide(5, Intent::Upload), Decision::Allow);
        assert_eq!(open.decide(5, Intent::Stats), Decision::AdminOnly);
        assert_eq!(open.decide(1, Intent::Stats), Decision::Allow);
        assert_eq!(open.decide(5, Intent::Reindex), Decision::AdminOnly);
        assert_eq!(open.decide(1, Intent::Reindex), Decision::Allow);
        assert_eq!(open.decide(5, Intent::Revoke), Decision::AdminOnly);
        assert_eq!(open.decide(1, Intent::Revoke), Decision::Allow);

        let closed = Access {
            allowed_users: Some([2].into()),
            admins: [1].into(),
        };
        assert_eq!(closed.decide(2, Intent::Upload), Decision::Allow);
        assert_eq!(closed.decide(3, Intent::Start), Decision::NotAllowed);
        assert_eq!(closed.decide(3, Intent::Stats), Decision::NotAllowed);
        assert_eq!(closed.decide(1, Intent::Upload), Decision::Allow, "admin");
        assert_eq!(closed.decide(2, Intent::Stats), Decision::AdminOnly);
    }

    #[test]
    fn link_replies_carry_both_links_and_a_size() {
        let text = link_reply(
            "f.mkv",
            Some(3 << 20),
            "https://x/dl/t/f.mkv",
            "https://x/watch/t",
        );
        assert!(text.contains("f.mkv (3.0 MiB)"), "{text}");
        assert!(text.contains("https://x/dl/t/f.mkv"));
        assert!(text.contains("https://x/watch/t"));
        assert!(!link_reply("f", None, "d", "w").contains('('));
    }

    #[test]
    fn reindex_names_a_channel_or_all_and_reports_progress() {
        assert_eq!(reindex_channel("/reindex"), Ok(None));
        assert_eq!(reindex_channel("/reindex -1001234"), Ok(Some(-1001234)));
        assert!(
            reindex_channel("/reindex films")
                .unwrap_err()
                .contains("films")
        );
        let progress = [(
            -1001,
            crate::catalog::index::BackfillProgress {
                next_id: 40,
                remaining: 40,
                batches: 3,
                posts: 12,
                flood_waits: 0,
                status: "running".into(),
            },
        )]
        .into();
        let text = reindex_text(&Ok(vec![-1001]), &progress);
        assert!(text.starts_with("Re-indexing 1 channel(s)"), "{text}");
        assert!(text.contains("-1001: running, 40 ids left, 12 posts found, 3 batches"));
        let refused = reindex_text(&Err("busy".into()), &Default::default());
        assert!(
            refused.contains("could not start a re-index: busy"),
            "{refused}"
        );
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3_758_096_384), "3.5 GiB");
        assert_eq!(human_size(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn stats_list_bots_dcs_and_extra_lines() {
        let bot = |id, health, flood| BotReport {
            id,
            health,
            sickness: None,
            denied_channels: Vec::new(),
            flood_wait_secs: flood,
            load: LoadSnapshot {
                in_flight: 2,
                per_connection: vec![1, 1],
                started: 10,
            },
            bytes: 0,
            flood_waits: 0,
        };
        let view = StatsView {
            bots: vec![
                bot(11, Health::Healthy, Some(30)),
                bot(
                    12,
                    Health::Unhealthy {
                        reason: "not in channel".into(),
                    },
                    None,
                ),
            ],
            home_dc: Some(2),
            media_dcs: vec![4],
            extra: vec!["Edges: 3".into()],
        };
        let text = stats_text(&view);
        assert!(text.starts_with("Bots: 2"), "{text}");
        assert!(text.contains("11: healthy, 2 in flight [1, 1], 10 requests, flood wait 30 s"));
        assert!(text.contains("12: UNHEALTHY (not in channel)"));
        assert!(text.contains("DCs: home 2, media authorised [4]"));
        assert!(text.ends_with("Edges: 3"));
    }
}
