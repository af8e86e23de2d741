//! Vocabulary of the release-name parser: what one lowercased token (or two glued ones)
//! means on its own — a resolution, a source, a codec, an HDR format, an audio format, a
//! language, or a word that only ever appears among the technical tags.
//!
//! Context-free lookups only; `rules` decides which of them count where. The word lists are
//! tables folded once into one hash map, so a token costs one lookup per question instead of
//! a walk through a few hundred string comparisons (the parser's hot path).

use super::{Audio, Codec, Hdr, Quality, Source};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

/// Whether a language word is a code (`ENG`, counted only when written in capitals, since
/// codes collide with words) or a name (`Italian`, counted only where tags follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LangKind {
    Code,
    Name,
}

use LangKind::{Code, Name};

const QUALITIES: &[(Quality, &[&str])] = &[
    (
        Quality::P2160,
        &["2160p", "2160i", "4k", "uhd", "4kuhd", "uhd4k"],
    ),
    (Quality::P1440, &["1440p", "2k"]),
    (Quality::P1080, &["1080p", "1080i", "fhd", "1080ph"]),
    (Quality::P720, &["720p", "720i"]),
    (Quality::P576, &["576p", "576i"]),
    (Quality::P480, &["480p", "480i"]),
    (Quality::P360, &["360p"]),
];

const SOURCES: &[(Source, &[&str])] = &[
    (Source::Remux, &["remux", "bdremux"]),
    (
        Source::BluRay,
        &[
            "bluray",
            "bdrip",
            "brrip",
            "bd",
            "bdmv",
            "uhdbluray",
            "blurayrip",
            "bd25",
            "bd50",
        ],
    ),
    (Source::WebDl, &["webdl", "web", "webdlrip", "amzndl"]),
    (Source::WebRip, &["webrip", "webmux", "webhdrip"]),
    (
        Source::Hdtv,
        &["hdtv", "pdtv", "hdtvrip", "dsr", "dsrip", "satrip", "tvrip"],
    ),
    (Source::HdRip, &["hdrip", "hdrrip", "dvdscr"]),
    (Source::DvdRip, &["dvdrip", "dvdmux"]),
    (Source::Dvd, &["dvd", "dvd5", "dvd9", "dvdr", "ntsc", "pal"]),
    (Source::Cam, &["cam", "camrip", "hdcam"]),
    (
        Source::Telesync,
        &["ts", "hdts", "telesync", "tsrip", "pdvd", "predvd", "hqcam"],
    ),
];

const CODECS: &[(Codec, &[&str])] = &[
    (Codec::H264, &["x264", "h264", "avc", "h264avc", "avc1"]),
    (Codec::H265, &["x265", "h265", "hevc", "h265hevc"]),
    (Codec::Av1, &["av1"]),
    (Codec::Vp9, &["vp9"]),
    (Codec::Xvid, &["xvid", "divx", "xvidhd"]),
    (Codec::Mpeg2, &["mpeg2", "mpeg"]),
];

const HDRS: &[(Hdr, &[&str])] = &[
    (Hdr::Hdr, &["hdr"]),
    (Hdr::Hdr10, &["hdr10"]),
    (Hdr::Hdr10Plus, &["hdr10+", "hdr10plus", "hdr10p"]),
    (Hdr::DolbyVision, &["dv", "dovi", "dolbyvision"]),
    (Hdr::Hlg, &["hlg"]),
];

/// Channel layouts written as one word.
const CHANNEL_WORDS: &[(&str, &[&str])] = &[
    ("2.0", &["2ch", "stereo"]),
    ("5.1", &["6ch"]),
    ("7.1", &["8ch"]),
];

/// ISO 639-1 code (or `multi`) and whether the word is a code (`ENG`: counted only in
/// capitals, since codes collide with words) or a name (`Italian`: counted where tags follow).
const LANGUAGES: &[((&str, LangKind), &[&str])] = &[
    (("multi", Code), &["multi", "multiaudio"]),
    (("multi", Name), &["dual"]),
    (("en", Code), &["eng"]),
    (("en", Name), &["english"]),
    (("it", Code), &["ita"]),
    (("it", Name), &["italian", "italiano"]),
    (("hi", Code), &["hin"]),
    (("hi", Name), &["hindi"]),
    (
        ("fr", Code),
        &["fre", "fra", "vff", "vfq", "vf2", "vostfr", "truefrench"],
    ),
    (("fr", Name), &["french", "francais", "français"]),
    (("de", Code), &["ger", "deu"]),
    (("de", Name), &["german", "deutsch"]),
    (("es", Code), &["spa", "esp"]),
    (
        ("es", Name),
        &["spanish", "español", "espanol", "castellano", "latino"],
    ),
    (("ru", Code), &["rus"]),
    (("ru", Name), &["russian"]),
    (("ja", Code), &["jap", "jpn"]),
    (("ja", Name), &["japanese"]),
    (("ko", Code), &["kor"]),
    (("ko", Name), &["korean"]),
    (("zh", Code), &["chi", "chn"]),
    (("zh", Name), &["chinese", "mandarin", "cantonese"]),
    (("ta", Code), &["tam"]),
    (("ta", Name), &["tamil"]),
    (("te", Code), &["tel"]),
    (("te", Name), &["telugu"]),
    (("ml", Code), &["mal"]),
    (("ml", Name), &["malayalam"]),
    (("kn", Code), &["kan"]),
    (("kn", Name), &["kannada"]),
    (("bn", Code), &["ben"]),
    (("bn", Name), &["bengali", "bangla"]),
    (("mr", Name), &["marathi"]),
    (("pa", Name), &["punjabi"]),
    (("gu", Name), &["gujarati"]),
    (("ur", Name), &["urdu"]),
    (("pt", Code), &["por"]),
    (("pt", Name), &["portuguese"]),
    (("pl", Code), &["pol"]),
    (("pl", Name), &["polish"]),
    (("tr", Code), &["tur"]),
    (("tr", Name), &["turkish"]),
    (("ar", Code), &["ara"]),
    (("ar", Name), &["arabic"]),
    (("uk", Code), &["ukr"]),
    (("uk", Name), &["ukrainian"]),
    (("nl", Name), &["dutch"]),
    (("sv", Name), &["swedish"]),
    (("da", Name), &["danish"]),
    (("no", Name), &["norwegian"]),
    (("fi", Name), &["finnish"]),
    (("el", Name), &["greek"]),
    (("he", Name), &["hebrew"]),
    (("th", Name), &["thai"]),
    (("vi", Name), &["vietnamese"]),
    (("id", Name), &["indonesian"]),
    (("cs", Name), &["czech"]),
    (("hu", Name), &["hungarian"]),
    (("ro", Name), &["romanian"]),
    (("fa", Name), &["persian"]),
];

/// Also ordinary words ("Charlotte's Web", "Cam", "Opus"): tags only next to other tags.
const AMBIGUOUS: u16 = 1 << 0;
/// Skipped when looking past a language for the tags that confirm it ("Hindi Dubbed 720p").
const FILLER: u16 = 1 << 1;
/// After a language, make it a subtitle language ("Eng Subs"), not an audio one.
const SUBTITLE: u16 = 1 << 2;
/// Tags Stremio does not show that only ever appear among the tags, so they end the title.
const OTHER: u16 = 1 << 3;
/// End the title when in capitals or followed by Cut/Edition/tags; else may be title words.
const EDITION: u16 = 1 << 4;
/// Followed by a number: a season ("Season 1", British "Series 2").
const SEASON: u16 = 1 << 5;
/// Followed by a number: an episode.
const EPISODE: u16 = 1 << 6;
/// Caption labels dropped before a title ("Title: Oppenheimer").
const TITLE_LABEL: u16 = 1 << 7;
/// Caption labels of lines that hold no title ("Size: 2.1GB").
const INFO_LABEL: u16 = 1 << 8;
/// Camera, phone and Telegram file-name words that say nothing about the video.
const GENERIC: u16 = 1 << 9;

const FLAGS: &[(u16, &[&str])] = &[
    (
        AMBIGUOUS,
        &[
            "web", "ts", "cam", "bd", "pal", "ntsc", "dvd", "dv", "dd", "hc", "nf", "mpeg", "opus",
            "atmos", "hdr", "uhd", "2k", "4k", "hlg", "avc", "flac", "internal", "proper",
            "limited", "mp3", "dts", "true", "hq",
        ],
    ),
    (
        FILLER,
        &[
            "dubbed", "dub", "audio", "+", "&", "and", "org", "original", "line",
        ],
    ),
    (
        SUBTITLE,
        &[
            "sub",
            "subs",
            "subtitle",
            "subtitles",
            "subbed",
            "subtitled",
            "sdh",
        ],
    ),
    (
        OTHER,
        &[
            "repack",
            "proper",
            "rerip",
            "internal",
            "10bit",
            "8bit",
            "12bit",
            "hi10p",
            "hi10",
            "amzn",
            "nf",
            "dsnp",
            "hmax",
            "atvp",
            "pcok",
            "pmtp",
            "sdr",
            "esub",
            "esubs",
            "msub",
            "msubs",
            "hardsub",
            "hc",
            "subbed",
            "dubbed",
            "hevc10",
            "x26410bit",
            "60fps",
            "uncensored",
            "nordic",
            "true",
            "hq",
        ],
    ),
    (
        EDITION,
        &[
            "extended",
            "unrated",
            "remastered",
            "uncut",
            "theatrical",
            "directors",
            "imax",
            "criterion",
            "limited",
            "dc",
            "restored",
            "director's",
        ],
    ),
    (
        SEASON,
        &[
            "season",
            "seasons",
            "saison",
            "staffel",
            "temporada",
            "stagione",
            "series",
        ],
    ),
    (
        EPISODE,
        &[
            "episode", "episodes", "ep", "eps", "episodio", "folge", "épisode",
        ],
    ),
    (
        TITLE_LABEL,
        &[
            "title", "name", "movie", "film", "series", "show", "anime", "titolo", "titre",
        ],
    ),
    (
        INFO_LABEL,
        &[
            "size",
            "quality",
            "language",
            "languages",
            "audio",
            "genre",
            "genres",
            "format",
            "file",
            "source",
            "resolution",
            "subtitles",
            "subs",
            "rating",
            "imdb",
            "duration",
            "runtime",
            "cast",
            "director",
            "plot",
            "storyline",
            "codec",
            "lang",
            "released",
            "release",
            "date",
            "year",
        ],
    ),
    (
        GENERIC,
        &[
            "video",
            "vid",
            "img",
            "pxl",
            "mov",
            "movie",
            "file",
            "clip",
            "untitled",
            "document",
            "telegram",
            "new",
            "record",
            "recording",
            "screen",
            "output",
            "media",
            "export",
            "final",
            "dsc",
            "mvi",
            "gopr",
        ],
    ),
];

/// Everything the vocabulary knows about one lowercased word; each token carries its own,
/// looked up once when it is made.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Entry {
    pub quality: Option<Quality>,
    pub source: Option<Source>,
    pub codec: Option<Codec>,
    pub hdr: Option<Hdr>,
    pub channels: Option<&'static str>,
    pub language: Option<(&'static str, LangKind)>,
    flags: u16,
}

impl Entry {
    fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
    pub fn ambiguous(&self) -> bool {
        self.has(AMBIGUOUS)
    }
    pub fn filler(&self) -> bool {
        self.has(FILLER)
    }
    pub fn subtitle(&self) -> bool {
        self.has(SUBTITLE)
    }
    pub fn other(&self) -> bool {
        self.has(OTHER)
    }
    pub fn edition(&self) -> bool {
        self.has(EDITION)
    }
    pub fn season(&self) -> bool {
        self.has(SEASON)
    }
    pub fn episode(&self) -> bool {
        self.has(EPISODE)
    }
    pub fn title_label(&self) -> bool {
        self.has(TITLE_LABEL)
    }
    pub fn info_label(&self) -> bool {
        self.has(INFO_LABEL)
    }
    /// Any technical field on its own (`[1080p]` is a tag, `[SubsPlease]` is not).
    pub fn is_tag(&self) -> bool {
        self.quality.is_some()
            || self.source.is_some()
            || self.codec.is_some()
            || self.hdr.is_some()
            || self.language.is_some()
            || self.other()
    }
}

/// FNV-1a: the keys are a few bytes long and the map is never written after it is built,
/// so there is nothing for hostile input to flood.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Map = HashMap<&'static str, Entry, BuildHasherDefault<Fnv>>;

static VOCAB: LazyLock<Map> = LazyLock::new(build);

fn build() -> Map {
    let mut map = Map::default();
    let mut put = |words: &[&'static str], f: &mut dyn FnMut(&mut Entry)| {
        for w in words {
            f(map.entry(*w).or_default());
        }
    };
    for (q, words) in QUALITIES {
        put(words, &mut |e| e.quality = Some(*q));
    }
    for (s, words) in SOURCES {
        put(words, &mut |e| e.source = Some(*s));
    }
    for (c, words) in CODECS {
        put(words, &mut |e| e.codec = Some(*c));
    }
    for (h, words) in HDRS {
        put(words, &mut |e| e.hdr = Some(*h));
    }
    for (c, words) in CHANNEL_WORDS {
        put(words, &mut |e| e.channels = Some(*c));
    }
    for (l, words) in LANGUAGES {
        put(words, &mut |e| e.language = Some(*l));
    }
    for (flag, words) in FLAGS {
        put(words, &mut |e| e.flags |= *flag);
    }
    map
}

fn entry(t: &str) -> Entry {
    VOCAB.get(t).copied().unwrap_or_default()
}

/// The entry of a token's lowercase text, with `1920x1080`-style sizes as a quality.
pub(super) fn lookup(t: &str) -> Entry {
    let mut e = entry(t);
    if e.quality.is_none() {
        e.quality = resolution(t);
    }
    e
}

fn has(t: &str, flag: u16) -> bool {
    entry(t).flags & flag != 0
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

pub(super) fn season_word(t: &str) -> bool {
    has(t, SEASON)
}

pub(super) fn generic_name_word(t: &str) -> bool {
    has(t, GENERIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A word listed twice in one table would silently take the later meaning.
    #[test]
    fn no_word_twice_in_a_table() {
        fn check<T>(name: &str, table: &[(T, &[&str])]) {
            let mut seen = HashSet::new();
            for (_, words) in table {
                for w in *words {
                    assert!(seen.insert(*w), "{name} lists {w:?} twice");
                    assert_eq!(*w, w.to_lowercase(), "{name}: {w:?} is matched lowercased");
                }
            }
        }
        check("QUALITIES", QUALITIES);
        check("SOURCES", SOURCES);
        check("CODECS", CODECS);
        check("HDRS", HDRS);
        check("CHANNEL_WORDS", CHANNEL_WORDS);
        check("LANGUAGES", LANGUAGES);
        for (flag, words) in FLAGS {
            check(&format!("flag {flag}"), &[((), *words)]);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(lookup("webdl").source, Some(Source::WebDl));
        assert_eq!(lookup("1920x1080").quality, Some(Quality::P1080));
        assert_eq!(lookup("3840x1600").quality, Some(Quality::P2160));
        assert_eq!(audio("ddp5"), Some((Audio::Eac3, "5")));
        assert_eq!(lookup("hindi").language, Some(("hi", LangKind::Name)));
        assert!(lookup("web").ambiguous() && !lookup("webrip").ambiguous());
        assert!(!lookup("the").is_tag());
    }
}
