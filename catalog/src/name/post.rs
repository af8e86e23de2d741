//! A channel post's name: the file name when it says something, else the caption's most
//! informative line, with the gaps filled from the other lines and the file name.
//!
//! Captions are free text (emoji, hashtags, "Title: …" labels, promo lines), so each line is
//! parsed on its own and scored; nothing here reads more than a bounded number of lines.

use super::{MAX_NAME_BYTES, ParsedName, parse, rules, token, truncate, vocab};

/// Caption bytes and lines looked at; the rest of a long caption is ignored. Telegram
/// captions are at most 4096 characters, but this function does not rely on that.
const MAX_CAPTION_BYTES: usize = 16 * 1024;
const MAX_CAPTION_LINES: usize = 64;

/// Parses a post from its file name, falling back to its caption when the file name is
/// missing or generic (`video.mp4`, `VID_20240101_123456.mp4`).
pub fn parse_post(file_name: Option<&str>, caption: Option<&str>) -> ParsedName {
    let file = file_name.map(parse);
    let need = file.as_ref().map_or(Need::AnyTitle, need_from_caption);
    if need == Need::Nothing {
        return file.unwrap_or_default();
    }
    let from_caption = caption.and_then(parse_caption).filter(|c| match need {
        Need::AnyTitle => true,
        Need::Stronger => c.year.is_some() || c.is_series(),
        Need::Nothing => false,
    });
    match (from_caption, file) {
        (Some(mut c), Some(f)) => {
            fill_missing(&mut c, &f, true);
            c.container = f.container;
            c
        }
        (Some(c), None) => c,
        (None, Some(f)) => f,
        (None, None) => ParsedName::default(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// The file name is enough.
    Nothing,
    /// The file name's title is only a number ("1917"): a caption wins if it has more.
    Stronger,
    /// No usable title in the file name: any caption title wins.
    AnyTitle,
}

fn need_from_caption(f: &ParsedName) -> Need {
    let words: Vec<&str> = f
        .title
        .split([' ', '-', '_'])
        .filter(|w| !w.is_empty())
        .collect();
    let generic = words
        .iter()
        .any(|w| vocab::generic_name_word(&w.to_ascii_lowercase()));
    let lettered = words.iter().any(|w| {
        !vocab::generic_name_word(&w.to_ascii_lowercase()) && w.chars().any(char::is_alphabetic)
    });
    if lettered {
        Need::Nothing
    } else if words.is_empty() || generic {
        Need::AnyTitle
    } else if f.year.is_some() || f.is_series() {
        Need::Nothing
    } else {
        Need::Stronger
    }
}

/// The most informative caption line, completed by the others; `None` without a title.
fn parse_caption(caption: &str) -> Option<ParsedName> {
    let lines: Vec<ParsedName> = truncate(caption, MAX_CAPTION_BYTES)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(MAX_CAPTION_LINES)
        .map(parse_line)
        .collect();
    let best = (0..lines.len()).rev().max_by_key(|&i| score(&lines[i]))?;
    let mut out = lines[best].clone();
    if out.title.is_empty() {
        return None;
    }
    for (i, line) in lines.iter().enumerate() {
        if i != best {
            fill_missing(&mut out, line, line.title.is_empty());
        }
    }
    Some(out)
}

fn parse_line(line: &str) -> ParsedName {
    let (stem, container) = token::split_extension(truncate(line, MAX_NAME_BYTES));
    let lower = stem.to_ascii_lowercase();
    let mut parsed = rules::parse_tokens(&token::tokenize(stem, &lower), true);
    parsed.container = container;
    parsed
}

/// How much a caption line says about the video; lines without a title never win over one
/// with, and promo lines ("Join our channel …") lose to anything naming a film.
fn score(p: &ParsedName) -> i32 {
    if p.title.is_empty() {
        return -100;
    }
    let words = p.title.split(' ').count();
    let lower = p.title.to_lowercase();
    let promo = [
        "join",
        "subscribe",
        "channel",
        "download",
        "follow",
        "share",
        "support",
        "request",
    ]
    .iter()
    .any(|w| lower.split(' ').any(|t| t == *w));
    let mut s = 10;
    s += if p.year.is_some() { 6 } else { 0 };
    s += if p.is_series() { 6 } else { 0 };
    s += [
        p.quality.is_some(),
        p.source.is_some(),
        p.codec.is_some(),
        !p.audio.is_empty(),
    ]
    .iter()
    .map(|&b| i32::from(b) * 2)
    .sum::<i32>();
    s -= if words > 8 { 6 } else { 0 };
    s -= if promo { 12 } else { 0 };
    s
}

/// Fills the fields `dst` lacks from `src`; the year and season/episode only when
/// `identity` (they name the video, so they come only from a line without a title of its
/// own, or from the file name).
fn fill_missing(dst: &mut ParsedName, src: &ParsedName, identity: bool) {
    if identity {
        if dst.year.is_none() {
            dst.year = src.year;
        }
        fill_season_episode(dst, src);
    }
    dst.quality = dst.quality.or(src.quality);
    dst.source = dst.source.or(src.source);
    dst.codec = dst.codec.or(src.codec);
    if dst.hdr.is_empty() {
        dst.hdr.clone_from(&src.hdr);
    }
    if dst.audio.is_empty() {
        dst.audio.clone_from(&src.audio);
    }
    if dst.channels.is_none() {
        dst.channels.clone_from(&src.channels);
    }
    if dst.languages.is_empty() {
        dst.languages.clone_from(&src.languages);
    }
    if dst.group.is_none() {
        dst.group.clone_from(&src.group);
    }
    dst.container = dst.container.or(src.container);
}

/// Season and episode from another source: all of them when `dst` has none, or the episodes
/// of the same (or an unnamed) season when `dst` names only the season ("Season 1" /
/// "Episode 5" on two caption lines).
fn fill_season_episode(dst: &mut ParsedName, src: &ParsedName) {
    if !dst.is_series() {
        dst.seasons.clone_from(&src.seasons);
        dst.episodes.clone_from(&src.episodes);
        dst.complete = src.complete;
    } else if dst.episodes.is_empty()
        && !src.episodes.is_empty()
        && (src.seasons.is_empty() || src.seasons == dst.seasons)
    {
        dst.episodes.clone_from(&src.episodes);
    }
}
