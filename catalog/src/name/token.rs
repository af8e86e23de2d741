//! Tokenizer of the release-name parser: splits a name into words on spaces, dots,
//! underscores, brackets and hyphens, remembering which separator came before each word and
//! which bracket it sits in, and drops what is never part of a release (the extension, site
//! prefixes like `www.site.org`, `@channel` handles, links, `#hashtags`, emoji).
//!
//! Works on `&str` slices only at char boundaries found by `char_indices`, so any UTF-8 input
//! is safe. Each token carries its `vocab` entry, looked up once here.

use super::Container;
use super::vocab::{self, Entry};

/// What separated a token from the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sep {
    /// First token of the name.
    Start,
    /// Whitespace, a bracket or a mix of separators.
    Space,
    /// Only dots (`H.264`, `5.1`, `S.W.A.T`).
    Dot,
    /// Only underscores.
    Underscore,
    /// A hyphen glued to both words (`Spider-Man`, `WEB-DL`, `x264-GROUP`).
    Hyphen,
}

#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    /// As written, minus decorations (emoji, quotes) at either end.
    pub text: &'a str,
    /// ASCII-lowercased, without trailing `,:;!?`: what the vocabulary matches against.
    pub lower: &'a str,
    /// What the vocabulary says about `lower`.
    pub entry: Entry,
    pub sep: Sep,
    /// A free-standing dash (` - `) came between the previous token and this one.
    pub dash: bool,
    /// 0 outside brackets, else the number of the top-level bracket pair it is in.
    pub bracket: u32,
}

impl Token<'_> {
    pub fn is_digits(&self) -> bool {
        !self.lower.is_empty() && self.lower.bytes().all(|b| b.is_ascii_digit())
    }

    /// The token as a number when it is 1 to 4 ASCII digits.
    pub fn number(&self) -> Option<u16> {
        if self.is_digits() && self.lower.len() <= 4 {
            self.lower.parse().ok()
        } else {
            None
        }
    }
}

/// Splits off a known video extension: `("Movie.2020", Some(Mkv))`.
pub(super) fn split_extension(name: &str) -> (&str, Option<Container>) {
    let name = name.trim();
    let Some(dot) = name.rfind('.') else {
        return (name, None);
    };
    // `rfind` gives the byte index of an ASCII '.', so `dot + 1` is a char boundary.
    let raw = &name[dot + 1..];
    // A final upper-case `.TS` is the telesync tag ("The.Batman.2022.TS"), not a file type.
    if raw == "TS" {
        return (name, None);
    }
    let ext = raw.to_ascii_lowercase();
    let container = match ext.as_str() {
        "mkv" => Some(Container::Mkv),
        "mp4" => Some(Container::Mp4),
        "m4v" => Some(Container::M4v),
        "avi" => Some(Container::Avi),
        "webm" => Some(Container::Webm),
        "mov" => Some(Container::Mov),
        "ts" | "m2ts" | "mts" => Some(Container::Ts),
        "wmv" => Some(Container::Wmv),
        "mpg" | "mpeg" | "flv" | "3gp" | "ogv" | "vob" | "divx" => None,
        _ => return (name, None),
    };
    (&name[..dot], container)
}

fn is_word_sep(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '|' | '\u{200b}' | '\u{feff}')
}

fn bracket_open(c: char) -> bool {
    matches!(c, '(' | '[' | '{' | '【' | '「' | '《' | '〔')
}

fn bracket_close(c: char) -> bool {
    matches!(c, ')' | ']' | '}' | '】' | '」' | '》' | '〕')
}

fn is_dash(c: char) -> bool {
    matches!(c, '-' | '–' | '—' | '~' | '‐' | '−')
}

/// Characters kept at the edges of a word: letters, digits and the punctuation that belongs
/// to titles or tags (`HDR10+`, `Airplane!`, `Marvel's`).
fn keep_edge(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '+' | '!' | '?' | '\'' | '&' | ':' | ',' | '$' | '%')
}

const TLDS: &[&str] = &[
    "com", "org", "net", "io", "me", "to", "tv", "cc", "ws", "in", "co", "info", "biz", "xyz",
    "club", "se", "ru", "lol", "pw", "mx", "ag", "link", "site", "online", "vip", "app", "fun",
    "top", "uk", "eu", "nz", "ch", "pro", "live", "movie", "movies", "cx", "is", "li", "si",
];

fn is_tld(label: &str) -> bool {
    TLDS.iter().any(|t| t.eq_ignore_ascii_case(label))
}

/// Length of a leading site name in `word`: `www.label.tld…` (up to the first known
/// top-level domain, else the first two labels after `www`), or, when `bare`, a word that is
/// exactly `label.tld` (`Site.com`; not `Welcome.to.Marwen`).
fn site_prefix_len(word: &str, bare: bool) -> Option<usize> {
    let is_www = word
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("www."));
    if is_www {
        let mut end = 0;
        for (n, label) in word.split('.').enumerate().take(5) {
            end += label.len() + usize::from(n > 0);
            if n > 0 && is_tld(label) {
                return Some(end);
            }
        }
        let third = word
            .match_indices('.')
            .nth(2)
            .map_or(word.len(), |(i, _)| i);
        return Some(third);
    }
    let (label, tld) = word.split_once('.')?;
    let plain = !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-');
    (bare && plain && is_tld(tld)).then_some(word.len())
}

/// Words of a name: maximal runs between whitespace and brackets, with their bracket number.
struct Word {
    start: usize,
    end: usize,
    bracket: u32,
}

fn words(s: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let (mut depth, mut pairs, mut start) = (0u32, 0u32, None::<usize>);
    let current = |depth: u32, pairs: u32| if depth > 0 { pairs } else { 0 };
    for (i, c) in s.char_indices() {
        let boundary = is_word_sep(c) || bracket_open(c) || bracket_close(c);
        if boundary {
            if let Some(st) = start.take() {
                out.push(Word {
                    start: st,
                    end: i,
                    bracket: current(depth, pairs),
                });
            }
            if bracket_open(c) {
                if depth == 0 {
                    pairs += 1;
                }
                depth = depth.saturating_add(1);
            } else if bracket_close(c) {
                depth = depth.saturating_sub(1);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push(Word {
            start: st,
            end: s.len(),
            bracket: current(depth, pairs),
        });
    }
    out
}

/// Tokens of `s` (a name without its extension); `lower` is `s.to_ascii_lowercase()`, made
/// once per name by the caller so tokens can borrow their lowercase form instead of each
/// allocating one. ASCII lowercasing keeps every byte offset, so one range indexes both.
pub(super) fn tokenize<'a>(s: &'a str, lower: &'a str) -> Vec<Token<'a>> {
    let src = Source { s, lower };
    // Release names average a token per 4–5 bytes; one allocation covers most of them.
    let mut out = Vec::with_capacity(s.len() / 4 + 4);
    let mut dash = false;
    let mut prev_bracket = None;
    for (n, w) in words(s).iter().enumerate() {
        let mut word = &s[w.start..w.end];
        let mut offset = w.start;
        if word.starts_with(['@', '#']) || is_link(word) {
            continue;
        }
        let first_in_bracket = w.bracket != 0 && prev_bracket != Some(w.bracket);
        prev_bracket = Some(w.bracket);
        let bare_site = n == 0 || first_in_bracket;
        if let Some(len) = site_prefix_len(word, bare_site) {
            word = &word[len..];
            offset += len;
        }
        let before = out.len();
        split_word(src, word, offset, w.bracket, &mut dash, &mut out);
        if out.len() > before && out[before].sep != Sep::Hyphen {
            out[before].sep = if before == 0 { Sep::Start } else { Sep::Space };
        }
    }
    out
}

fn is_link(word: &str) -> bool {
    let starts = |p: &str| {
        word.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    starts("http://") || starts("https://") || starts("t.me/")
}

/// A name and its ASCII-lowercased copy.
#[derive(Clone, Copy)]
struct Source<'a> {
    s: &'a str,
    lower: &'a str,
}

/// Splits one word on dots, underscores, slashes and hyphens into tokens. A single hyphen
/// between two parts (or leading the word) glues them (`Sep::Hyphen`); any other run holding
/// a dash (`_-_`, `--`, a lone `-`) is a free-standing dash.
fn split_word<'a>(
    src: Source<'a>,
    word: &'a str,
    offset: usize,
    bracket: u32,
    dash: &mut bool,
    out: &mut Vec<Token<'a>>,
) {
    let mut sep = Sep::Space;
    let mut run_start = 0;
    let mut in_part = false;
    let mut part_start = 0;
    for (i, c) in word
        .char_indices()
        .chain(std::iter::once((word.len(), ' ')))
    {
        let at_end = i == word.len();
        let is_sep = at_end || is_separator_char(c);
        if !is_sep && !in_part {
            let run = &word[run_start..i];
            if !run.is_empty() {
                sep = separator_kind(run, run_start == 0, dash);
            }
            in_part = true;
            part_start = i;
        } else if is_sep && in_part {
            let part = Part {
                start: offset + part_start,
                end: offset + i,
                sep,
                bracket,
            };
            push_token(src, part, dash, out);
            in_part = false;
            run_start = i;
            sep = Sep::Space;
        }
    }
    let tail = &word[run_start..];
    if !in_part && tail.chars().any(is_dash) {
        *dash = true;
    }
}

fn separator_kind(run: &str, word_start: bool, dash: &mut bool) -> Sep {
    let mut chars = run.chars();
    let single = chars.next().filter(|_| chars.next().is_none());
    match single {
        Some(c) if is_dash(c) => Sep::Hyphen,
        _ if run.chars().any(is_dash) => {
            *dash = true;
            Sep::Space
        }
        _ if word_start => Sep::Space,
        _ if run.chars().all(|c| c == '.') => Sep::Dot,
        _ if run.chars().all(|c| c == '_') => Sep::Underscore,
        _ => Sep::Space,
    }
}

/// Byte range of one part of a word in the name, and where it sits.
struct Part {
    start: usize,
    end: usize,
    sep: Sep,
    bracket: u32,
}

fn push_token<'a>(src: Source<'a>, part: Part, dash: &mut bool, out: &mut Vec<Token<'a>>) {
    let raw = &src.s[part.start..part.end];
    if raw.starts_with(['@', '#']) {
        return;
    }
    let trimmed = raw.trim_start_matches(|c| !keep_edge(c) || c == ':' || c == ',');
    let text = trimmed.trim_end_matches(|c| !keep_edge(c));
    let start = part.start + (raw.len() - trimmed.len());
    if !text
        .chars()
        .any(|c| c.is_alphanumeric() || c == '&' || c == '+')
    {
        return;
    }
    let lower = src.lower[start..start + text.len()].trim_end_matches([',', ':', ';', '!', '?']);
    out.push(Token {
        text,
        lower,
        entry: vocab::lookup(lower),
        sep: part.sep,
        dash: *dash,
        bracket: part.bracket,
    });
    *dash = false;
}

fn is_separator_char(c: char) -> bool {
    matches!(c, '.' | '_' | '/' | '\\') || is_dash(c)
}
