//! Rules of the release-name parser: from the tokens of one name (see `token`) to a
//! [`ParsedName`], using the word lists of `vocab`.
//!
//! The order of a release name is "[group] title [year] [season/episode] tags -GROUP", so the
//! rules tag every token that is a technical field, then take the title as the words before
//! the first tag (or before the year: the last year-like number before the tags, so
//! "Blade Runner 2049 (2017)" keeps 2049 in its title), then the group from the ends.

use super::token::{Sep, Token};
use super::vocab;
use super::{Audio, Codec, Hdr, ParsedName, Quality, Source};

/// Longest episode or season range expanded into single numbers; wider ranges keep only
/// their ends, so a hostile `E1-E9999` costs two entries, not ten thousand.
const MAX_RANGE: u16 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// Not (yet) known to be anything but a title word.
    Word,
    /// A 1900–2099 number: the year or part of a title.
    Year(u16),
    Tech,
}

/// What the tags of one name say, filled as they are found; the first value found wins
/// except where noted.
#[derive(Debug, Default)]
struct Fields {
    se_found: bool,
    seasons: Vec<u16>,
    episodes: Vec<u16>,
    complete: bool,
    quality: Option<Quality>,
    source: Option<Source>,
    codec: Option<Codec>,
    hdr: Vec<Hdr>,
    audio: Vec<Audio>,
    channels: Option<&'static str>,
    languages: Vec<&'static str>,
}

impl Fields {
    fn set_source(&mut self, s: Source) {
        // A remux is also "BluRay"; the remux is what a viewer cares about.
        if self.source.is_none() || s == Source::Remux {
            self.source = Some(s);
        }
    }

    fn add_audio(&mut self, a: Audio) {
        if !self.audio.contains(&a) {
            self.audio.push(a);
        }
    }

    fn add_hdr(&mut self, h: Hdr) {
        if !self.hdr.contains(&h) {
            self.hdr.push(h);
        }
    }
}

/// Parses the tokens of one name (extension already removed). `label_line` lets a caption
/// line start with a label: "Title:" is dropped, "Size:"-like labels leave no title.
pub(super) fn parse_tokens(toks: &[Token<'_>], label_line: bool) -> ParsedName {
    let n = toks.len();
    let (mut title_start, mut group) = leading_group(toks);
    let mut info_line = false;
    if label_line && title_start < n && toks[title_start].text.ends_with(':') {
        if toks[title_start].entry.title_label() {
            title_start += 1;
        } else if toks[title_start].entry.info_label() {
            info_line = true;
        }
    }
    let mut tags = vec![Tag::Word; n];
    let mut f = Fields::default();
    tag_tokens(toks, title_start, &mut tags, &mut f);
    tag_languages(toks, title_start, &mut tags, &mut f);
    if !f.se_found {
        dash_episode(toks, title_start, &mut tags, &mut f);
    }
    let first_tag = (title_start..n)
        .find(|&i| tags[i] == Tag::Tech)
        .unwrap_or(n);
    let year_at = pick_year(&tags, title_start, first_tag);
    let year = year_at.and_then(|i| match tags[i] {
        Tag::Year(y) => Some(y),
        _ => None,
    });
    let mut title_end = first_tag.min(year_at.unwrap_or(n));
    if let Some(b) = (title_start + 1..title_end)
        .find(|&i| toks[i].bracket != 0 && toks[i].bracket != toks[title_start].bracket)
    {
        title_end = b;
    }
    if group.is_none() {
        group = trailing_group(toks, &tags, title_end.max(title_start + 1));
    }
    let title = if info_line {
        String::new()
    } else {
        // "Movie-Name-2019-1080p": hyphens are the name's only separator, so words.
        let hyphens_only = n > 2 && toks[1..].iter().all(|t| t.sep == Sep::Hyphen);
        join_title(
            &toks[title_start.min(n)..title_end.max(title_start).min(n)],
            hyphens_only,
        )
    };
    ParsedName {
        title,
        year,
        seasons: f.seasons,
        episodes: f.episodes,
        complete: f.complete,
        quality: f.quality,
        source: f.source,
        codec: f.codec,
        hdr: f.hdr,
        audio: f.audio,
        channels: f.channels.map(str::to_owned),
        languages: f.languages.into_iter().map(str::to_owned).collect(),
        group,
        container: None,
    }
}

/// Anime-style `[Group] Title …`: a bracket at the start holding no tag is the group.
fn leading_group(toks: &[Token<'_>]) -> (usize, Option<String>) {
    let Some(first) = toks.first().filter(|t| t.bracket != 0) else {
        return (0, None);
    };
    let end = toks
        .iter()
        .position(|t| t.bracket != first.bracket)
        .unwrap_or(toks.len());
    let plain = toks[..end]
        .iter()
        .all(|t| !is_tag(t) && year_of(t).is_none());
    if end == toks.len() || !plain {
        return (0, None);
    }
    (end, Some(span_text(&toks[..end])))
}

/// Whether a token is, on its own, some technical tag (used to tell a group in brackets
/// from a bracketed tag like `[1080p]`).
fn is_tag(t: &Token<'_>) -> bool {
    t.entry.is_tag() || vocab::audio(t.lower).is_some() || parse_sxe(t.lower).is_some()
}

fn year_of(t: &Token<'_>) -> Option<u16> {
    let y = t.number().filter(|_| t.lower.len() == 4)?;
    (1900..=2099).contains(&y).then_some(y)
}

/// First pass: every token that is a tag on its own or with its neighbours.
fn tag_tokens(toks: &[Token<'_>], title_start: usize, tags: &mut [Tag], f: &mut Fields) {
    let mut i = title_start;
    let (mut seen_tag, mut seen_year) = (false, false);
    while i < toks.len() {
        let ctx = Ctx {
            first: i == title_start,
            seen_tag,
            seen_year,
        };
        if let Some(len) = match_tag(toks, i, ctx, f) {
            let len = len.clamp(1, toks.len() - i);
            tags[i..i + len].fill(Tag::Tech);
            seen_tag = true;
            i += len;
            continue;
        }
        if let Some(y) = year_of(&toks[i]) {
            tags[i] = Tag::Year(y);
            seen_year |= i > title_start;
        }
        i += 1;
    }
}

#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// The first word of the title: only unambiguous tags (S01E01, 1080p) count there.
    first: bool,
    seen_tag: bool,
    /// A year-like number came before (not as the title's first word).
    seen_year: bool,
}

/// The tag starting at token `i`, recorded in `f`; returns how many tokens it spans.
fn match_tag(toks: &[Token<'_>], i: usize, ctx: Ctx, f: &mut Fields) -> Option<usize> {
    let t = toks[i].lower;
    let next = toks.get(i + 1);
    if let Some(len) = season_episode(toks, i, ctx, f) {
        return Some(len);
    }
    let e = toks[i].entry;
    if let Some(q) = e.quality
        && (!e.ambiguous() || confirmed(toks, i, ctx))
    {
        f.quality.get_or_insert(q);
        return Some(1);
    }
    if ctx.first {
        return None;
    }
    if let Some(nx) = next.filter(|n| n.sep != Sep::Start && t.len() <= 6 && n.lower.len() <= 6) {
        let mut buf = [0u8; 12];
        let g = vocab::lookup(glue(&mut buf, t, nx.lower));
        if let Some(s) = g.source {
            f.set_source(s);
            return Some(2);
        }
        if let Some(c) = g.codec {
            f.codec.get_or_insert(c);
            return Some(2);
        }
        if let Some(h) = g.hdr {
            f.add_hdr(h);
            return Some(2);
        }
    }
    if e.ambiguous() && !confirmed(toks, i, ctx) {
        return None;
    }
    if let Some(s) = e.source {
        f.set_source(s);
        return Some(1);
    }
    if let Some(c) = e.codec {
        f.codec.get_or_insert(c);
        return Some(1);
    }
    if let Some(h) = e.hdr {
        f.add_hdr(h);
        return Some(1);
    }
    if let Some(len) = audio_tag(toks, i, f) {
        return Some(len);
    }
    if let Some(len) = channels_tag(toks, i, ctx, f) {
        return Some(len);
    }
    if e.other() {
        return Some(1);
    }
    edition_tag(toks, i)
}

/// An ambiguous word counts as a tag after other tags or a year, or before a sure tag.
fn confirmed(toks: &[Token<'_>], i: usize, ctx: Ctx) -> bool {
    ctx.seen_tag
        || ctx.seen_year
        || toks.get(i + 1).is_some_and(|n| {
            let e = n.entry;
            !e.ambiguous()
                && (e.quality.is_some()
                    || e.source.is_some()
                    || e.codec.is_some()
                    || e.other()
                    || vocab::audio(n.lower).is_some())
        })
}

fn audio_tag(toks: &[Token<'_>], i: usize, f: &mut Fields) -> Option<usize> {
    let t = toks[i].lower;
    let at = |k: usize| {
        toks.get(i + k)
            .filter(|n| n.sep == Sep::Hyphen)
            .map(|n| n.lower)
    };
    let after = |k: usize| toks.get(i + k).map(|n| n.lower);
    let multi = match (t, at(1), at(2)) {
        ("dts", Some("hd"), Some("ma")) => Some((Audio::DtsHdMa, 3)),
        ("dts", Some("hd"), _) if after(2) == Some("ma") => Some((Audio::DtsHdMa, 3)),
        ("dts", Some("hd" | "x" | "es"), _) => Some((Audio::Dts, 2)),
        ("dts", Some("ma" | "hdma"), _) => Some((Audio::DtsHdMa, 2)),
        ("e", Some("ac"), Some("3")) => Some((Audio::Eac3, 3)),
        ("ac", Some("3"), _) => Some((Audio::Ac3, 2)),
        ("dolby", _, _) => match (after(1), after(2)) {
            (Some("atmos"), _) => Some((Audio::Atmos, 2)),
            (Some("digital"), Some("plus")) => Some((Audio::Eac3, 3)),
            (Some("digital"), _) => Some((Audio::Ac3, 2)),
            _ => None,
        },
        _ => None,
    };
    if let Some((a, len)) = multi {
        f.add_audio(a);
        return Some(len);
    }
    let (a, rest) = vocab::audio(t)?;
    f.add_audio(a);
    let mut b = rest.bytes();
    let layout = match (b.next(), b.next()) {
        (Some(m), Some(l)) => {
            vocab::channels_pair(&(m as char).to_string(), &(l as char).to_string())
        }
        (Some(m), None) => {
            let main = (m as char).to_string();
            if let Some(l) = toks
                .get(i + 1)
                .filter(|n| n.sep == Sep::Dot && n.lower.len() == 1)
                && let Some(c) = vocab::channels_pair(&main, l.lower)
            {
                f.channels.get_or_insert(c);
                return Some(2);
            }
            vocab::channels_pair(&main, "0")
        }
        _ => None,
    };
    if let Some(c) = layout {
        f.channels.get_or_insert(c);
    }
    Some(1)
}

/// `5.1` / `7.1` / `2.0` after other tags, or `6ch`.
fn channels_tag(toks: &[Token<'_>], i: usize, ctx: Ctx, f: &mut Fields) -> Option<usize> {
    if let Some(c) = toks[i].entry.channels {
        f.channels.get_or_insert(c);
        return Some(1);
    }
    let next = toks
        .get(i + 1)
        .filter(|n| matches!(n.sep, Sep::Dot | Sep::Space))?;
    if !ctx.seen_tag || toks[i].lower.len() != 1 || next.lower.len() != 1 {
        return None;
    }
    let c = vocab::channels_pair(toks[i].lower, next.lower)?;
    f.channels.get_or_insert(c);
    Some(2)
}

/// `EXTENDED`, `Extended Cut`, `Director's Cut`, `Unrated Edition`.
fn edition_tag(toks: &[Token<'_>], i: usize) -> Option<usize> {
    let t = &toks[i];
    if !t.entry.edition() {
        return None;
    }
    let next = toks.get(i + 1);
    if matches!(next.map(|n| n.lower), Some("cut" | "edition" | "version")) {
        return Some(2);
    }
    let capitals = t.text.len() > 2 && !t.text.bytes().any(|b| b.is_ascii_lowercase());
    let before_tag = next.is_some_and(|n| is_tag(n) || year_of(n).is_some());
    (capitals || before_tag).then_some(1)
}

/// Season and episode forms starting at `i`; see `parse_sxe` for the one-token forms.
fn season_episode(toks: &[Token<'_>], i: usize, ctx: Ctx, f: &mut Fields) -> Option<usize> {
    let t = toks[i].lower;
    let (seasons, episodes, mut len) = if let Some((s, eps)) = parse_sxe(t) {
        if s.is_none() && ctx.first {
            return None;
        }
        (s.into_iter().collect::<Vec<_>>(), eps, 1)
    } else if toks[i].entry.season() || toks[i].entry.episode() {
        words_season_episode(toks, i)?
    } else if t == "complete" {
        return complete_tag(toks, i, f);
    } else {
        return None;
    };
    let (mut seasons, mut episodes) = (seasons, episodes);
    // "S01 E02" / "S01.E02": an episode token right after a season-only token.
    if episodes.is_empty()
        && !seasons.is_empty()
        && let Some((None, eps)) = toks
            .get(i + len)
            .filter(|n| n.sep != Sep::Hyphen)
            .and_then(|n| parse_sxe(n.lower))
    {
        episodes = eps;
        len += 1;
    }
    // Anime-style "Title S2 - 05": a free-standing dash, then the episode number.
    if episodes.is_empty()
        && seasons.len() == 1
        && let Some(e) = toks
            .get(i + len)
            .filter(|n| n.dash && n.lower.len() <= 4)
            .and_then(Token::number)
    {
        episodes.push(e);
        len += 1;
    }
    len += ranges(toks, i + len, &mut seasons, &mut episodes);
    len += more_episodes(toks, i + len, &mut episodes);
    if toks.get(i + len).is_some_and(|n| n.lower == "complete") {
        f.complete = true;
        len += 1;
    }
    if !f.se_found {
        f.se_found = true;
        f.seasons = seasons;
        f.episodes = episodes;
    }
    Some(len)
}

/// `.E02`, `& E02`, `+ E02` after an episode: more episodes of the same season.
fn more_episodes(toks: &[Token<'_>], mut j: usize, episodes: &mut Vec<u16>) -> usize {
    let start = j;
    while let Some(&last) = episodes.last() {
        let joiner = toks
            .get(j)
            .is_some_and(|t| matches!(t.lower, "&" | "+" | "and"));
        let k = j + usize::from(joiner);
        let next = toks
            .get(k)
            .filter(|t| t.sep != Sep::Hyphen)
            .and_then(|t| parse_sxe(t.lower));
        match next {
            Some((None, eps)) if eps.first().is_some_and(|&e| e > last) => {
                episodes.extend(eps);
                j = k + 1;
            }
            _ => break,
        }
    }
    j - start
}

/// `-E03`, `-03`, `-S03` after a season/episode: ranges (`S01E01-E03` is 1, 2, 3).
fn ranges(
    toks: &[Token<'_>],
    mut j: usize,
    seasons: &mut Vec<u16>,
    episodes: &mut Vec<u16>,
) -> usize {
    let start = j;
    while let Some(n) = toks
        .get(j)
        .filter(|n| n.sep == Sep::Hyphen || n.lower == "to" && n.sep != Sep::Start)
    {
        let (n, extra) = if n.lower == "to" {
            match toks.get(j + 1) {
                Some(m) => (m, 1),
                None => break,
            }
        } else {
            (n, 0)
        };
        let l = n.lower;
        let value = n.number().or_else(|| match parse_sxe(l) {
            Some((None, eps)) if !episodes.is_empty() => eps.first().copied(),
            Some((Some(s), eps)) if eps.is_empty() && episodes.is_empty() => Some(s),
            Some((Some(s), eps)) if seasons.last() == Some(&s) => eps.first().copied(),
            _ => None,
        });
        let Some(value) = value else { break };
        let list = if episodes.is_empty() {
            &mut *seasons
        } else {
            &mut *episodes
        };
        let Some(&last) = list.last() else { break };
        if value <= last {
            break;
        }
        extend_range(list, last, value);
        j += 1 + extra;
    }
    j - start
}

fn extend_range(list: &mut Vec<u16>, last: u16, to: u16) {
    if to - last > MAX_RANGE {
        list.push(to);
    } else {
        list.extend(last + 1..=to);
    }
}

/// "Season 1", "Season 1 Episode 2", "Episode 5", "Seasons 1-3".
fn words_season_episode(toks: &[Token<'_>], i: usize) -> Option<(Vec<u16>, Vec<u16>, usize)> {
    let mut seasons = Vec::new();
    let mut episodes = Vec::new();
    let mut j = i;
    if toks[j].entry.season() {
        // "The Series 2020" is a title and a year, not season 2020.
        let s = toks.get(j + 1)?.number().filter(|&s| s < 1000)?;
        seasons.push(s);
        j += 2;
        j += ranges(toks, j, &mut seasons, &mut Vec::new());
    }
    if toks.get(j).is_some_and(|t| t.entry.episode())
        && let Some(e) = toks.get(j + 1).and_then(Token::number)
    {
        episodes.push(e);
        j += 2;
    }
    (j > i).then_some((seasons, episodes, j - i))
}

/// "Complete Series", "Complete Seasons", or "Complete" beside a season tag.
fn complete_tag(toks: &[Token<'_>], i: usize, f: &mut Fields) -> Option<usize> {
    let next = toks.get(i + 1).map(|n| n.lower);
    let len = match next {
        Some("series" | "seasons" | "collection" | "serie") if i > 0 => 2,
        Some(n) if vocab::season_word(n) || parse_sxe(n).is_some_and(|(s, _)| s.is_some()) => 1,
        _ => return None,
    };
    f.complete = true;
    Some(len)
}

/// One-token season/episode forms: `s01e02`, `s1e2`, `s01e01e02`, `s01`, `e05`, `ep05`,
/// `1x02`. Returns (season, episodes).
pub(super) fn parse_sxe(t: &str) -> Option<(Option<u16>, Vec<u16>)> {
    let b = t.as_bytes();
    if b.first() == Some(&b's') && b.get(1).is_some_and(u8::is_ascii_digit) {
        let (season, rest) = digits(&t[1..], 4)?;
        let episodes = episode_list(rest)?;
        return Some((Some(season), episodes));
    }
    if b.first() == Some(&b'e') {
        let rest = t.strip_prefix("ep").unwrap_or(&t[1..]);
        let first = digits(rest, 4).map(|(e, r)| (vec![e], r));
        let (mut episodes, more) = first?;
        episodes.extend(episode_list(more)?);
        return Some((None, episodes));
    }
    let (season, rest) = digits(t, 2)?;
    let (episode, rest) = digits(rest.strip_prefix('x')?, 3)?;
    let ep_digits = t.len() - rest.len() - t.find('x')? - 1;
    (rest.is_empty() && ep_digits >= 2).then_some((Some(season), vec![episode]))
}

/// `a` and `b` written one after the other into `buf` (`web` + `dl` → `webdl`); empty when
/// they do not fit, which no vocabulary word needs.
fn glue<'b>(buf: &'b mut [u8; 12], a: &str, b: &str) -> &'b str {
    let len = a.len() + b.len();
    if len > buf.len() {
        return "";
    }
    buf[..a.len()].copy_from_slice(a.as_bytes());
    buf[a.len()..len].copy_from_slice(b.as_bytes());
    // Two whole `str`s back to back are valid UTF-8, so this never falls back.
    std::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// `e01e02…` (possibly empty) to episode numbers; anything else is not an episode list.
fn episode_list(mut rest: &str) -> Option<Vec<u16>> {
    let mut eps = Vec::new();
    while !rest.is_empty() {
        // `s01e01+e02` joins episodes with a plus.
        let r = rest.strip_prefix('+').unwrap_or(rest).strip_prefix('e')?;
        let (e, r) = digits(r, 4)?;
        eps.push(e);
        rest = r;
    }
    Some(eps)
}

/// Leading ASCII digits (1 to `max`) as a number, and the rest.
fn digits(s: &str, max: usize) -> Option<(u16, &str)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || len > max {
        return None;
    }
    // The first `len` bytes are ASCII digits, so `len` is a char boundary.
    Some((s[..len].parse().ok()?, &s[len..]))
}

/// Second pass: language words count after the first tag, or before it when the words
/// after them are tags ("KGF Chapter 2 Hindi 720p" but "The Italian Job 2003").
fn tag_languages(toks: &[Token<'_>], title_start: usize, tags: &mut [Tag], f: &mut Fields) {
    let n = toks.len();
    let first_tag = (title_start..n)
        .find(|&i| tags[i] == Tag::Tech)
        .unwrap_or(n);
    let mut found = vec![None; n];
    for i in (title_start + 1..n).rev() {
        if tags[i] != Tag::Word {
            continue;
        }
        let Some((code, kind)) = toks[i].entry.language else {
            continue;
        };
        // "Eng Subs", "Multi-Subs": subtitle languages, not audio.
        if toks.get(i + 1).is_some_and(|n| n.entry.subtitle()) {
            continue;
        }
        let ok = i > first_tag || {
            let capitals = !toks[i].text.bytes().any(|b| b.is_ascii_lowercase()) || code == "multi";
            let mut j = i + 1;
            while j < n && tags[j] == Tag::Word && toks[j].entry.filler() {
                j += 1;
            }
            let follows = j == n
                || tags[j] == Tag::Tech
                || found[j].is_some()
                || (kind == vocab::LangKind::Code && matches!(tags[j], Tag::Year(_)))
                || (j + 1 == n && toks[j].sep == Sep::Hyphen);
            follows && (kind == vocab::LangKind::Name || capitals)
        };
        if ok {
            found[i] = Some(code);
            let mut j = i + 1;
            while j < n && tags[j] == Tag::Word && toks[j].entry.filler() {
                tags[j] = Tag::Tech;
                j += 1;
            }
        }
    }
    for (i, code) in found.iter().enumerate() {
        if let Some(code) = code {
            tags[i] = Tag::Tech;
            if !f.languages.contains(code) {
                f.languages.push(code);
            }
        }
    }
}

/// Anime-style absolute episodes: "Title - 01 [1080p]".
/// Only before the first tag, and not a decimal ("- 1.85GB -").
fn dash_episode(toks: &[Token<'_>], title_start: usize, tags: &mut [Tag], f: &mut Fields) {
    let first_tag = (title_start..toks.len())
        .find(|&i| tags[i] == Tag::Tech)
        .unwrap_or(toks.len());
    let hit = (title_start + 1..first_tag).find(|&i| {
        let t = &toks[i];
        let decimal = toks.get(i + 1).is_some_and(|n| n.sep == Sep::Dot);
        let num = t
            .lower
            .split_once('v')
            .map_or(t.lower, |(n, v)| if v.len() == 1 { n } else { "" });
        tags[i] == Tag::Word
            && t.dash
            && !decimal
            && (1..=4).contains(&num.len())
            && num.bytes().all(|b| b.is_ascii_digit())
    });
    if let Some(i) = hit {
        let t = toks[i].lower;
        let num = t.split_once('v').map_or(t, |(n, _)| n);
        if let Ok(e) = num.parse() {
            tags[i] = Tag::Tech;
            f.se_found = true;
            f.episodes.push(e);
        }
    }
}

/// The year: the last year-like number after the title's first word and before the first
/// tag; failing that, the first one after the tags begin.
fn pick_year(tags: &[Tag], title_start: usize, first_tag: usize) -> Option<usize> {
    let is_year = |i: &usize| matches!(tags[*i], Tag::Year(_));
    (title_start + 1..first_tag.max(title_start + 1))
        .rev()
        .find(is_year)
        .or_else(|| (first_tag.max(title_start + 1)..tags.len()).find(is_year))
}

/// The release group at the end: `-GROUP`, else a final bracket holding a plain word
/// (`[YTS]`), never a CRC like `[F02B9CB7]`.
fn trailing_group(toks: &[Token<'_>], tags: &[Tag], title_end: usize) -> Option<String> {
    let mut k = toks.len();
    let mut last_bracket = None;
    while k > title_end && toks[k - 1].bracket != 0 {
        let b = toks[k - 1].bracket;
        let start = toks[..k]
            .iter()
            .rposition(|t| t.bracket != b)
            .map_or(0, |p| p + 1);
        last_bracket.get_or_insert(start..k);
        k = start;
    }
    if k > title_end && k >= 1 {
        let t = &toks[k - 1];
        if t.sep == Sep::Hyphen
            && tags[k - 1] == Tag::Word
            && t.text.chars().any(char::is_alphabetic)
        {
            return Some(t.text.to_owned());
        }
    }
    let span = last_bracket?;
    let plain = span.len() <= 3 && span.clone().all(|i| tags[i] == Tag::Word);
    let crc = span.len() == 1
        && toks[span.start].lower.len() == 8
        && toks[span.start]
            .lower
            .bytes()
            .all(|b| b.is_ascii_hexdigit());
    (plain && !crc && span.start >= title_end).then(|| span_text(&toks[span]))
}

/// The text of consecutive tokens as written between them (`Erai-raws`, `YTS.MX`).
fn span_text(toks: &[Token<'_>]) -> String {
    let mut out = String::new();
    for (k, t) in toks.iter().enumerate() {
        if k > 0 {
            out.push(match t.sep {
                Sep::Hyphen => '-',
                Sep::Dot => '.',
                Sep::Underscore => '_',
                Sep::Start | Sep::Space => ' ',
            });
        }
        out.push_str(t.text);
    }
    out
}

/// Title words joined by single spaces; hyphenated words stay glued (`Spider-Man`), a
/// free-standing dash stays a dash, and dotted single letters stay an acronym (`S.W.A.T.`).
fn join_title(toks: &[Token<'_>], hyphens_only: bool) -> String {
    let mut out = String::new();
    let single =
        |t: &Token<'_>| t.text.chars().count() == 1 && t.text.chars().all(char::is_alphabetic);
    for (k, t) in toks.iter().enumerate() {
        let in_acronym = single(t)
            && (toks
                .get(k + 1)
                .is_some_and(|n| single(n) && n.sep == Sep::Dot)
                || k > 0 && single(&toks[k - 1]) && t.sep == Sep::Dot);
        let acronym_tail = in_acronym && k > 0 && single(&toks[k - 1]) && t.sep == Sep::Dot;
        if k > 0 && !acronym_tail {
            if t.dash {
                out.push_str(" - ");
            } else if t.sep == Sep::Hyphen && !hyphens_only {
                out.push('-');
            } else {
                out.push(' ');
            }
        }
        out.push_str(t.text);
        if in_acronym {
            out.push('.');
        }
    }
    let trimmed = out.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '-' | ':' | ',' | ';' | '&' | '+')
    });
    trimmed.to_owned()
}
