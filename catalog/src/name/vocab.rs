//! Vocabulary of the release-name parser: what one lowercased token (or two glued ones)
//! means on its own — a resolution, a source, a codec, an HDR format, an audio format, a
//! language, or a word that only ever appears among the technical tags.
//!
//! Context-free lookups only; `rules` decides which of them count where.

use super::{Audio, Codec, Hdr, Quality, Source};

pub(super) fn quality(t: &str) -> Option<Quality> {
    Some(match t {
        "2160p" | "2160i" | "4k" | "uhd" | "4kuhd" | "uhd4k" => Quality::P2160,
        "1440p" | "2k" => Quality::P1440,
        "1080p" | "1080i" | "fhd" | "1080ph" => Quality::P1080,
        "720p" | "720i" => Quality::P720,
        "576p" | "576i" => Quality::P576,
        "480p" | "480i" => Quality::P480,
        "360p" => Quality::P360,
        _ => return resolution(t),
    })
}

/// `1920x1080`-style sizes, classed by width (cinemascope heights vary, widths don't).
fn resolution(t: &str) -> Option<Quality> {
    let (w, h) = t.split_once('x')?;
    if !(3..=4).contains(&w.len()) || !(3..=4).contains(&h.len()) {
        return None;
    }
    let w: u16 = w.parse().ok()?;
    let h: u16 = h.parse().ok()?;
    Some(match (w, h) {
        (3800.., _) | (_, 2000..) => Quality::P2160,
        (2500.., _) => Quality::P1440,
        (1900.., _) | (_, 1000..) => Quality::P1080,
        (1200.., _) | (_, 700..) => Quality::P720,
        (_, 560..) => Quality::P576,
        (_, 400..) => Quality::P480,
        _ => Quality::P360,
    })
}

/// A source written as one token, or as two glued ones (`web`+`dl`, `blu`+`ray`).
pub(super) fn source(t: &str) -> Option<Source> {
    Some(match t {
        "remux" | "bdremux" => Source::Remux,
        "bluray" | "bdrip" | "brrip" | "bd" | "bdmv" | "uhdbluray" | "blurayrip" | "bd25"
        | "bd50" => Source::BluRay,
        "webdl" | "web" | "webdlrip" | "amzndl" => Source::WebDl,
        "webrip" | "webmux" | "webhdrip" => Source::WebRip,
        "hdtv" | "pdtv" | "hdtvrip" | "dsr" | "dsrip" | "satrip" | "tvrip" => Source::Hdtv,
        "hdrip" | "hdrrip" | "dvdscr" => Source::HdRip,
        "dvdrip" | "dvdmux" => Source::DvdRip,
        "dvd" | "dvd5" | "dvd9" | "dvdr" | "ntsc" | "pal" => Source::Dvd,
        "cam" | "camrip" | "hdcam" => Source::Cam,
        "ts" | "hdts" | "telesync" | "tsrip" | "pdvd" | "predvd" | "hqcam" => Source::Telesync,
        _ => return None,
    })
}

pub(super) fn codec(t: &str) -> Option<Codec> {
    Some(match t {
        "x264" | "h264" | "avc" | "h264avc" | "avc1" => Codec::H264,
        "x265" | "h265" | "hevc" | "h265hevc" => Codec::H265,
        "av1" => Codec::Av1,
        "vp9" => Codec::Vp9,
        "xvid" | "divx" | "xvidhd" => Codec::Xvid,
        "mpeg2" | "mpeg" => Codec::Mpeg2,
        _ => return None,
    })
}

pub(super) fn hdr(t: &str) -> Option<Hdr> {
    Some(match t {
        "hdr" => Hdr::Hdr,
        "hdr10" => Hdr::Hdr10,
        "hdr10+" | "hdr10plus" | "hdr10p" => Hdr::Hdr10Plus,
        "dv" | "dovi" | "dolbyvision" => Hdr::DolbyVision,
        "hlg" => Hdr::Hlg,
        _ => return None,
    })
}

/// An audio format at the start of `t`, and what follows it (channel digits, if any):
/// `ddp5` → (Eac3, "5"), `aac` → (Aac, "").
pub(super) fn audio(t: &str) -> Option<(Audio, &str)> {
    const PREFIXES: &[(&str, Audio)] = &[
        ("truehd", Audio::TrueHd),
        ("dtshdma", Audio::DtsHdMa),
        ("dtsma", Audio::DtsHdMa),
        ("dtshd", Audio::Dts),
        ("dtsx", Audio::Dts),
        ("dts", Audio::Dts),
        ("ddpa", Audio::Eac3),
        ("ddp", Audio::Eac3),
        ("dd+", Audio::Eac3),
        ("eac3", Audio::Eac3),
        ("eac", Audio::Eac3),
        ("ac3", Audio::Ac3),
        ("dd", Audio::Ac3),
        ("aac", Audio::Aac),
        ("flac", Audio::Flac),
        ("opus", Audio::Opus),
        ("mp3", Audio::Mp3),
        ("atmos", Audio::Atmos),
    ];
    PREFIXES.iter().find_map(|(p, a)| {
        let rest = t.strip_prefix(p)?;
        let digits = rest.len() <= 2 && rest.bytes().all(|b| b.is_ascii_digit());
        digits.then_some((*a, rest))
    })
}

/// A channel layout from a token like `6ch`, or from the two digits of `5.1`.
pub(super) fn channels_word(t: &str) -> Option<&'static str> {
    Some(match t {
        "2ch" | "stereo" => "2.0",
        "6ch" => "5.1",
        "8ch" => "7.1",
        _ => return None,
    })
}

pub(super) fn channels_pair(main: &str, lfe: &str) -> Option<&'static str> {
    Some(match (main, lfe) {
        ("1", "0") => "1.0",
        ("2", "0") => "2.0",
        ("2", "1") => "2.1",
        ("5", "1") => "5.1",
        ("6", "1") => "6.1",
        ("7", "1") => "7.1",
        ("7", "2") => "7.2",
        _ => return None,
    })
}

/// Whether a language word is a code (`ENG`, counted only when written in capitals, since
/// codes collide with words) or a name (`Italian`, counted only where tags follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LangKind {
    Code,
    Name,
}

pub(super) fn language(t: &str) -> Option<(&'static str, LangKind)> {
    use LangKind::{Code, Name};
    Some(match t {
        "multi" | "multiaudio" => ("multi", Code),
        "dual" => ("multi", Name),
        "eng" => ("en", Code),
        "english" => ("en", Name),
        "ita" => ("it", Code),
        "italian" | "italiano" => ("it", Name),
        "hin" => ("hi", Code),
        "hindi" => ("hi", Name),
        "fre" | "fra" | "vff" | "vfq" | "vf2" | "vostfr" | "truefrench" => ("fr", Code),
        "french" | "francais" | "français" => ("fr", Name),
        "ger" | "deu" => ("de", Code),
        "german" | "deutsch" => ("de", Name),
        "spa" | "esp" => ("es", Code),
        "spanish" | "español" | "espanol" | "castellano" | "latino" => ("es", Name),
        "rus" => ("ru", Code),
        "russian" => ("ru", Name),
        "jap" | "jpn" => ("ja", Code),
        "japanese" => ("ja", Name),
        "kor" => ("ko", Code),
        "korean" => ("ko", Name),
        "chi" | "chn" => ("zh", Code),
        "chinese" | "mandarin" | "cantonese" => ("zh", Name),
        "tam" => ("ta", Code),
        "tamil" => ("ta", Name),
        "tel" => ("te", Code),
        "telugu" => ("te", Name),
        "mal" => ("ml", Code),
        "malayalam" => ("ml", Name),
        "kan" => ("kn", Code),
        "kannada" => ("kn", Name),
        "ben" => ("bn", Code),
        "bengali" | "bangla" => ("bn", Name),
        "marathi" => ("mr", Name),
        "punjabi" => ("pa", Name),
        "gujarati" => ("gu", Name),
        "urdu" => ("ur", Name),
        "por" => ("pt", Code),
        "portuguese" => ("pt", Name),
        "pol" => ("pl", Code),
        "polish" => ("pl", Name),
        "tur" => ("tr", Code),
        "turkish" => ("tr", Name),
        "ara" => ("ar", Code),
        "arabic" => ("ar", Name),
        "ukr" => ("uk", Code),
        "ukrainian" => ("uk", Name),
        "dutch" => ("nl", Name),
        "swedish" => ("sv", Name),
        "danish" => ("da", Name),
        "norwegian" => ("no", Name),
        "finnish" => ("fi", Name),
        "greek" => ("el", Name),
        "hebrew" => ("he", Name),
        "thai" => ("th", Name),
        "vietnamese" => ("vi", Name),
        "indonesian" => ("id", Name),
        "czech" => ("cs", Name),
        "hungarian" => ("hu", Name),
        "romanian" => ("ro", Name),
        "persian" => ("fa", Name),
        _ => return None,
    })
}

/// Words skipped when looking past a language for the tags that confirm it
/// ("Hindi Dubbed 720p", "Dual Audio", "Hindi + English").
pub(super) fn language_filler(t: &str) -> bool {
    matches!(
        t,
        "dubbed" | "dub" | "audio" | "+" | "&" | "and" | "org" | "original" | "line"
    )
}

/// Tag words that are also ordinary words ("Charlotte's Web", "Cam", "Opus"): they count
/// only next to other tags, never on their own inside a title.
pub(super) fn ambiguous(t: &str) -> bool {
    matches!(
        t,
        "web"
            | "ts"
            | "cam"
            | "bd"
            | "pal"
            | "ntsc"
            | "dvd"
            | "dv"
            | "dd"
            | "hc"
            | "nf"
            | "mpeg"
            | "opus"
            | "atmos"
            | "hdr"
            | "uhd"
            | "2k"
            | "4k"
            | "hlg"
            | "avc"
            | "flac"
            | "internal"
            | "proper"
            | "limited"
            | "mp3"
            | "dts"
            | "true"
            | "hq"
    )
}

pub(super) fn subtitle_word(t: &str) -> bool {
    matches!(
        t,
        "sub" | "subs" | "subtitle" | "subtitles" | "subbed" | "subtitled" | "sdh"
    )
}

/// Tags that say nothing Stremio shows but only ever appear among the technical fields,
/// so they end the title.
pub(super) fn other_tag(t: &str) -> bool {
    matches!(
        t,
        "repack"
            | "proper"
            | "rerip"
            | "internal"
            | "10bit"
            | "8bit"
            | "12bit"
            | "hi10p"
            | "hi10"
            | "amzn"
            | "nf"
            | "dsnp"
            | "hmax"
            | "atvp"
            | "pcok"
            | "pmtp"
            | "sdr"
            | "esub"
            | "esubs"
            | "msub"
            | "msubs"
            | "hardsub"
            | "hc"
            | "subbed"
            | "dubbed"
            | "hevc10"
            | "x26410bit"
            | "60fps"
            | "uncensored"
            | "nordic"
            | "true"
            | "hq"
    )
}

/// Edition words: they end the title when written in capitals or followed by `Cut`,
/// `Edition` or other tags; otherwise they may be part of it.
pub(super) fn edition(t: &str) -> bool {
    matches!(
        t,
        "extended"
            | "unrated"
            | "remastered"
            | "uncut"
            | "theatrical"
            | "directors"
            | "imax"
            | "criterion"
            | "limited"
            | "dc"
            | "restored"
            | "director's"
    )
}

/// Words that only mean something after a season or episode tag or a `Complete`.
pub(super) fn season_word(t: &str) -> bool {
    matches!(
        t,
        "season" | "seasons" | "saison" | "staffel" | "temporada" | "stagione"
    )
}

pub(super) fn episode_word(t: &str) -> bool {
    matches!(
        t,
        "episode" | "episodes" | "ep" | "eps" | "episodio" | "folge" | "épisode"
    )
}

/// Captions label their lines ("Title: Oppenheimer"); a title label is dropped, an info label
/// (`Size:`, `Quality:`) means the line holds no title.
pub(super) fn title_label(t: &str) -> bool {
    matches!(
        t,
        "title" | "name" | "movie" | "film" | "series" | "show" | "anime" | "titolo" | "titre"
    )
}

pub(super) fn info_label(t: &str) -> bool {
    matches!(
        t,
        "size"
            | "quality"
            | "language"
            | "languages"
            | "audio"
            | "genre"
            | "genres"
            | "format"
            | "file"
            | "source"
            | "resolution"
            | "subtitles"
            | "subs"
            | "rating"
            | "imdb"
            | "duration"
            | "runtime"
            | "cast"
            | "director"
            | "plot"
            | "storyline"
            | "codec"
            | "lang"
            | "released"
            | "release"
            | "date"
            | "year"
    )
}

/// Generic camera/phone/Telegram file names say nothing about the video.
pub(super) fn generic_name_word(t: &str) -> bool {
    matches!(
        t,
        "video"
            | "vid"
            | "img"
            | "pxl"
            | "mov"
            | "movie"
            | "file"
            | "clip"
            | "untitled"
            | "document"
            | "telegram"
            | "new"
            | "record"
            | "recording"
            | "screen"
            | "output"
            | "media"
            | "export"
            | "final"
            | "dsc"
            | "mvi"
            | "gopr"
    )
}
