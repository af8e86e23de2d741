//! Release-name parser: from a file name (or a caption) to title, year, season/episode and
//! the technical fields Stremio shows and sorts by.
//!
//! Pure and total: every input yields a [`ParsedName`] (an unparseable name is all title).
//! Submodules run one way: `vocab` (what a word means) → `token` (words, their separators
//! and vocabulary entries) → `rules` (which words are which field, title, year, group) →
//! `post` (file name vs caption).
//! A tokenizer and rules rather than regular expressions: one pass over a few dozen tokens,
//! no regex crate, and every byte index comes from `char_indices` so any UTF-8 is safe.

use serde::{Deserialize, Serialize};

mod post;
mod rules;
mod token;
mod vocab;

#[cfg(test)]
mod tests;

pub use post::parse_post;

/// Longest name looked at, in bytes; the rest is ignored so hostile input costs bounded time.
/// Telegram file names are far shorter.
pub const MAX_NAME_BYTES: usize = 1024;

/// Parses a file name (extension included) into its fields.
pub fn parse(file_name: &str) -> ParsedName {
    let (stem, container) = token::split_extension(truncate(file_name, MAX_NAME_BYTES));
    let lower = stem.to_ascii_lowercase();
    let toks = token::tokenize(stem, &lower);
    let mut parsed = rules::parse_tokens(&toks, false);
    parsed.container = container;
    parsed
}

/// `s` cut to at most `max` bytes, at a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let end = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    &s[..end]
}

/// Everything a release name says. `seasons` and `episodes` are both empty for a movie;
/// a whole-season pack has seasons and no episodes; a multi-episode file lists each episode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedName {
    /// Display title, words separated by single spaces ("Blade Runner 2049").
    pub title: String,
    pub year: Option<u16>,
    pub seasons: Vec<u16>,
    pub episodes: Vec<u16>,
    pub quality: Option<Quality>,
    pub source: Option<Source>,
    pub codec: Option<Codec>,
    pub hdr: Vec<Hdr>,
    pub audio: Vec<Audio>,
    /// Audio channel layout as written ("5.1", "7.1", "2.0").
    pub channels: Option<String>,
    /// ISO 639-1 codes in the order found ("en", "it"); `multi` for MULTi and dual-audio
    /// releases.
    pub languages: Vec<String>,
    pub group: Option<String>,
    pub container: Option<Container>,
    /// The name says it is a complete pack ("Complete Series", "S01 Complete"); with no
    /// season numbers it is still a series.
    #[serde(default)]
    pub complete: bool,
}

impl ParsedName {
    /// A name with a season, an episode or "Complete Series" is a series; anything else a
    /// movie.
    pub fn is_series(&self) -> bool {
        !self.seasons.is_empty() || !self.episodes.is_empty() || self.complete
    }
}

/// Vertical resolution class; ordered worst to best, so `max()` is the best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Quality {
    P360,
    P480,
    P576,
    P720,
    P1080,
    P1440,
    /// Also written 4K / UHD.
    P2160,
}

impl Quality {
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::P360 => "360p",
            Quality::P480 => "480p",
            Quality::P576 => "576p",
            Quality::P720 => "720p",
            Quality::P1080 => "1080p",
            Quality::P1440 => "1440p",
            Quality::P2160 => "2160p",
        }
    }
}

/// Where the release was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    Remux,
    BluRay,
    WebDl,
    WebRip,
    Hdtv,
    HdRip,
    DvdRip,
    Dvd,
    Cam,
    Telesync,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Remux => "Remux",
            Source::BluRay => "BluRay",
            Source::WebDl => "WEB-DL",
            Source::WebRip => "WEBRip",
            Source::Hdtv => "HDTV",
            Source::HdRip => "HDRip",
            Source::DvdRip => "DVDRip",
            Source::Dvd => "DVD",
            Source::Cam => "CAM",
            Source::Telesync => "TS",
        }
    }
}

/// Video codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Codec {
    /// x264 / H.264 / AVC.
    H264,
    /// x265 / H.265 / HEVC.
    H265,
    Av1,
    Vp9,
    Xvid,
    Mpeg2,
}

impl Codec {
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "H.264",
            Codec::H265 => "HEVC",
            Codec::Av1 => "AV1",
            Codec::Vp9 => "VP9",
            Codec::Xvid => "XviD",
            Codec::Mpeg2 => "MPEG-2",
        }
    }
}

/// High dynamic range formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Hdr {
    /// Written plainly as HDR.
    Hdr,
    Hdr10,
    Hdr10Plus,
    DolbyVision,
    Hlg,
}

impl Hdr {
    pub fn as_str(self) -> &'static str {
        match self {
            Hdr::Hdr => "HDR",
            Hdr::Hdr10 => "HDR10",
            Hdr::Hdr10Plus => "HDR10+",
            Hdr::DolbyVision => "DV",
            Hdr::Hlg => "HLG",
        }
    }
}

/// Audio codecs and formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Audio {
    Aac,
    Ac3,
    /// E-AC-3, written DDP / DD+.
    Eac3,
    Dts,
    DtsHdMa,
    TrueHd,
    Atmos,
    Flac,
    Opus,
    Mp3,
}

impl Audio {
    pub fn as_str(self) -> &'static str {
        match self {
            Audio::Aac => "AAC",
            Audio::Ac3 => "DD",
            Audio::Eac3 => "DDP",
            Audio::Dts => "DTS",
            Audio::DtsHdMa => "DTS-HD MA",
            Audio::TrueHd => "TrueHD",
            Audio::Atmos => "Atmos",
            Audio::Flac => "FLAC",
            Audio::Opus => "Opus",
            Audio::Mp3 => "MP3",
        }
    }
}

/// File container, from the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Container {
    Mkv,
    Mp4,
    M4v,
    Avi,
    Webm,
    Mov,
    Ts,
    Wmv,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Mkv => "mkv",
            Container::Mp4 => "mp4",
            Container::M4v => "m4v",
            Container::Avi => "avi",
            Container::Webm => "webm",
            Container::Mov => "mov",
            Container::Ts => "ts",
            Container::Wmv => "wmv",
        }
    }
}
