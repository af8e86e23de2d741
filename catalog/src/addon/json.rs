//! The addon's JSON shapes (manifest, meta previews, meta, streams) and what goes in them:
//! display strings, dates, the web-playability rule.
//!
//! Field names follow the stremio-addon-sdk docs; optional fields are left out rather than
//! sent as `null`. Only [`super::answer`] calls these builders.

use serde::Serialize;

use super::route::{CatalogExtra, PAGE, catalog_id};
use super::{AddonError, Links};
use crate::model::{Catalog, EpisodeMeta, Kind, Post, Title, file_order};
use crate::name::{Audio, Codec, Container, Hdr};

/// The addon's manifest identity, set by the operator (name, description, images).
#[derive(Debug, Clone, PartialEq)]
pub struct AddonInfo {
    pub name: String,
    pub description: String,
    /// Semver; defaults to the crate version so a new release invalidates clients' caches.
    pub version: String,
    pub logo: Option<String>,
    pub background: Option<String>,
}

impl Default for AddonInfo {
    fn default() -> Self {
        AddonInfo {
            name: "tgcdn".into(),
            description: "Films and series from a Telegram channel, streamed through tgcdn".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            logo: None,
            background: None,
        }
    }
}

pub(super) const ADDON_ID: &str = "org.tgcdn.addon";
const TYPES: [&str; 2] = ["movie", "series"];
const ID_PREFIXES: [&str; 2] = ["tt", "tgcdn"];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Manifest<'a> {
    id: &'static str,
    version: &'a str,
    name: &'a str,
    description: &'a str,
    resources: Vec<Resource>,
    types: [&'static str; 2],
    catalogs: Vec<CatalogDecl>,
    id_prefixes: [&'static str; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    logo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    background: Option<&'a str>,
    behavior_hints: ManifestHints,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    name: &'static str,
    types: [&'static str; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    id_prefixes: Option<[&'static str; 2]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogDecl {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'static str,
    name: &'static str,
    extra: Vec<ExtraDecl>,
    /// The older manifest form of `extra`, still read by older clients.
    extra_supported: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtraDecl {
    name: &'static str,
    is_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options_limit: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestHints {
    configurable: bool,
    configuration_required: bool,
}

pub(super) fn manifest<'a>(info: &'a AddonInfo, catalog: &Catalog) -> Manifest<'a> {
    let decl = |kind: Kind, name: &'static str| {
        let mut extra = vec![
            ExtraDecl {
                name: "search",
                is_required: false,
                options: None,
                options_limit: None,
            },
            ExtraDecl {
                name: "skip",
                is_required: false,
                options: None,
                options_limit: None,
            },
        ];
        let genres: Vec<String> = catalog
            .genres(kind)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut supported = vec!["search", "skip"];
        // A genre filter with no genres to pick from is noise in the client's UI.
        if !genres.is_empty() {
            extra.push(ExtraDecl {
                name: "genre",
                is_required: false,
                options: Some(genres),
                options_limit: Some(1),
            });
            supported.push("genre");
        }
        CatalogDecl {
            kind: kind.as_str(),
            id: catalog_id(kind),
            name,
            extra,
            extra_supported: supported,
        }
    };
    Manifest {
        id: ADDON_ID,
        version: &info.version,
        name: &info.name,
        description: &info.description,
        resources: vec![
            Resource {
                name: "catalog",
                types: TYPES,
                id_prefixes: None,
            },
            Resource {
                name: "meta",
                types: TYPES,
                id_prefixes: Some(ID_PREFIXES),
            },
            Resource {
                name: "stream",
                types: TYPES,
                id_prefixes: Some(ID_PREFIXES),
            },
        ],
        types: TYPES,
        catalogs: vec![decl(Kind::Movie, "Films"), decl(Kind::Series, "Series")],
        id_prefixes: ID_PREFIXES,
        logo: info.logo.as_deref(),
        background: info.background.as_deref(),
        behavior_hints: ManifestHints {
            configurable: false,
            configuration_required: false,
        },
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MetaPreview<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    poster: Option<&'a str>,
    poster_shape: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    genres: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    release_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    imdb_rating: Option<String>,
}

fn preview(t: &Title) -> MetaPreview<'_> {
    let m = t.metadata.as_ref();
    MetaPreview {
        id: &t.id,
        kind: t.kind.as_str(),
        name: t.display_name(),
        poster: m.and_then(|m| m.poster.as_deref()),
        poster_shape: "poster",
        genres: t.genres(),
        release_info: t.display_year().map(|y| y.to_string()),
        description: m.and_then(|m| m.overview.as_deref()),
        imdb_rating: m.and_then(|m| m.rating).map(|r| format!("{r:.1}")),
    }
}

#[derive(Serialize)]
pub(super) struct Metas<'a> {
    metas: Vec<MetaPreview<'a>>,
}

pub(super) fn catalog_page<'a>(
    catalog: &'a Catalog,
    kind: Kind,
    extra: &CatalogExtra,
) -> Metas<'a> {
    let skip = extra.skip;
    let titles = match (&extra.search, &extra.genre) {
        (Some(q), genre) => catalog.search(kind, q, genre.as_deref(), skip, PAGE),
        (None, Some(genre)) => catalog.by_genre(kind, genre, skip, PAGE),
        (None, None) => catalog.newest(kind, skip, PAGE),
    };
    Metas {
        metas: titles.into_iter().map(preview).collect(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Meta<'a> {
    #[serde(flatten)]
    preview: MetaPreview<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    background: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    released: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    videos: Option<Vec<Video<'a>>>,
}

#[derive(Serialize)]
pub(super) struct MetaAnswer<'a> {
    meta: Meta<'a>,
}

#[derive(Serialize)]
struct Video<'a> {
    id: String,
    title: String,
    released: String,
    season: u16,
    episode: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbnail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overview: Option<&'a str>,
}

pub(super) fn meta<'a>(
    catalog: &'a Catalog,
    kind: Kind,
    id: &str,
) -> Result<MetaAnswer<'a>, AddonError> {
    let t = catalog
        .get(id)
        .filter(|t| t.kind == kind)
        .ok_or_else(|| AddonError::not_found(id))?;
    let m = t.metadata.as_ref();
    let videos = (kind == Kind::Series).then(|| {
        t.episodes
            .iter()
            .map(|ep| {
                let known = m.and_then(|m| {
                    m.episodes
                        .iter()
                        .find(|e| e.season == ep.season && e.episode == ep.episode)
                });
                video(t, ep.season, ep.episode, &ep.files, known)
            })
            .collect()
    });
    let meta = Meta {
        preview: preview(t),
        background: m.and_then(|m| m.background.as_deref()),
        logo: m.and_then(|m| m.logo.as_deref()),
        runtime: m
            .and_then(|m| m.runtime_minutes)
            .map(|r| format!("{r} min")),
        released: m
            .and_then(|m| m.released.as_deref())
            .and_then(iso_from_date),
        videos,
    };
    Ok(MetaAnswer { meta })
}

/// An episode: its metadata when known, else "Episode N" released when its first file was
/// posted (Stremio orders and marks episodes by `released`, so it is never left out).
fn video<'a>(
    t: &Title,
    season: u16,
    episode: u16,
    files: &[Post],
    known: Option<&'a EpisodeMeta>,
) -> Video<'a> {
    let posted = files.iter().map(|p| p.date).min().unwrap_or(t.newest);
    Video {
        id: format!("{}:{season}:{episode}", t.id),
        title: known
            .and_then(|k| k.title.clone())
            .unwrap_or_else(|| format!("Episode {episode}")),
        released: known
            .and_then(|k| k.released.as_deref())
            .and_then(iso_from_date)
            .unwrap_or_else(|| iso_from_unix(posted)),
        season,
        episode,
        thumbnail: known.and_then(|k| k.thumbnail.as_deref()),
        overview: known.and_then(|k| k.overview.as_deref()),
    }
}

#[derive(Serialize)]
pub(super) struct Streams {
    streams: Vec<Stream>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stream {
    url: String,
    name: String,
    description: String,
    behavior_hints: StreamHints,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StreamHints {
    binge_group: String,
    video_size: u64,
    filename: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    video_hash: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    not_web_ready: bool,
}

/// One stream per file, best first. An id or episode we do not have is an empty list, not
/// an error: Stremio asks every addon that claims `tt` for every IMDb id a viewer opens.
pub(super) fn streams(
    catalog: &Catalog,
    kind: Kind,
    id: &str,
    episode: Option<(u16, u16)>,
    links: Links<'_>,
) -> Streams {
    let files: &[Post] = match (catalog.get(id).filter(|t| t.kind == kind), episode) {
        (Some(t), None) if kind == Kind::Movie => &t.files,
        (Some(t), Some((s, e))) if kind == Kind::Series => t.episode(s, e).unwrap_or_default(),
        _ => &[],
    };
    debug_assert!(files.is_sorted_by(|a, b| file_order(a, b).is_le()));
    Streams {
        streams: files.iter().map(|p| stream(p, links)).collect(),
    }
}

fn stream(p: &Post, links: Links<'_>) -> Stream {
    let quality = p.parsed.quality.map(|q| q.as_str());
    Stream {
        url: links.url(&p.file, &p.file_name),
        name: match quality {
            Some(q) => format!("tgcdn {q}"),
            None => "tgcdn".into(),
        },
        description: describe(p),
        behavior_hints: StreamHints {
            binge_group: binge_group(p),
            video_size: p.size,
            filename: p.file_name.clone(),
            video_hash: p.video_hash.map(|h| format!("{h:016x}")),
            not_web_ready: not_web_ready(p),
        },
    }
}

/// File name, then size and the technical fields a viewer picks a release by.
fn describe(p: &Post) -> String {
    let n = &p.parsed;
    let mut facts = vec![human_size(p.size)];
    facts.extend(n.source.map(|s| s.as_str().to_owned()));
    facts.extend(n.codec.map(|c| c.as_str().to_owned()));
    facts.extend(n.hdr.iter().map(|h| h.as_str().to_owned()));
    let mut audio: Vec<&str> = n.audio.iter().map(|a| a.as_str()).collect();
    audio.extend(n.channels.as_deref());
    if !audio.is_empty() {
        facts.push(audio.join(" "));
    }
    if !n.languages.is_empty() {
        facts.push(n.languages.join("/"));
    }
    format!("{}\n{}", p.file_name, facts.join(" · "))
}

/// Same quality and release group: autoplay keeps a viewer on one release across episodes.
fn binge_group(p: &Post) -> String {
    let quality = p.parsed.quality.map_or("any", |q| q.as_str());
    let group: String = p
        .parsed
        .group
        .as_deref()
        .unwrap_or("none")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("tgcdn-{quality}-{group}")
}

/// Whether Stremio's web player (a browser `<video>`) cannot play the file as it is, so the
/// app must go through its streaming server. Playable: an MP4/M4V/WebM container (from the
/// name, else the MIME type) with H.264, VP9 or AV1 video (unknown in such a container is
/// taken as H.264, by far the usual case), no Dolby Vision, and only browser audio (AAC,
/// Opus, MP3, FLAC; AC-3/E-AC-3/DTS/TrueHD/Atmos are not decoded by most browsers).
pub fn not_web_ready(p: &Post) -> bool {
    let n = &p.parsed;
    let container_ok = match n.container {
        Some(c) => matches!(c, Container::Mp4 | Container::M4v | Container::Webm),
        None => matches!(
            p.mime.as_deref(),
            Some("video/mp4" | "video/x-m4v" | "video/webm")
        ),
    };
    let codec_ok = matches!(n.codec, None | Some(Codec::H264 | Codec::Vp9 | Codec::Av1));
    let hdr_ok = !n.hdr.contains(&Hdr::DolbyVision);
    let audio_ok = n
        .audio
        .iter()
        .all(|a| matches!(a, Audio::Aac | Audio::Opus | Audio::Mp3 | Audio::Flac));
    !(container_ok && codec_ok && hdr_ok && audio_ok)
}

/// Bytes in binary units, one decimal ("1.4 GiB").
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // f64 is exact to 2^53 bytes (8 PiB) and one decimal is all that is shown.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `YYYY-MM-DD` → `YYYY-MM-DDT00:00:00.000Z`; anything else is dropped.
pub(super) fn iso_from_date(date: &str) -> Option<String> {
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(0..4)
        && digits(5..7)
        && digits(8..10);
    ok.then(|| format!("{date}T00:00:00.000Z"))
}

/// Unix seconds → ISO 8601 UTC (`2026-12-02T07:25:00.000Z`).
pub(super) fn iso_from_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
