//! Release-name parsing throughput: 100 000 names (a mix of the shapes in the parser's
//! table: scene and P2P movies and series, anime, Indian releases with site prefixes,
//! captions' file names), printed as names/s next to a baseline measured in the same run —
//! lowercasing the same names and splitting them on separators, the least any parser does.
//!
//! `cargo bench -p tgcdn-catalog --bench parse` prints the figures, then criterion's own.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tgcdn_catalog::name;

const NAMES: usize = 100_000;

const SHAPES: &[&str] = &[
    "Movie.Name.2020.1080p.WEB-DL.DDP5.1.H.264-GROUP.mkv",
    "The.Matrix.1999.2160p.UHD.BluRay.REMUX.HDR10.HEVC.TrueHD.7.1.Atmos-FGT.mkv",
    "Oppenheimer.2023.1080p.BluRay.x264.DTS-HD.MA.5.1-SWTYBLZ.mkv",
    "2001.A.Space.Odyssey.1968.1080p.BluRay.x264-AMIABLE.mkv",
    "Blade Runner 2049 (2017) [1080p] [BluRay] [5.1] [YTS.MX].mp4",
    "1917 (2019) 1080p BluRay.mkv",
    "Breaking.Bad.S01E02.720p.BluRay.x264-DEMAND.mkv",
    "Friends 1x02 The One with the Sonogram at the End.avi",
    "Game of Thrones Season 1 Episode 2 720p.mkv",
    "The.Expanse.S01E01-E03.1080p.WEBRip.x265-RARBG.mkv",
    "Stranger.Things.S04.2160p.NF.WEB-DL.DDP5.1.Atmos.DV.HDR.H.265-FLUX",
    "Breaking.Bad.S01-S05.Complete.1080p.BluRay.x265",
    "[SubsPlease] Jujutsu Kaisen - 01 (1080p) [F02B9CB7].mkv",
    "[Erai-raws] Kimetsu no Yaiba - Katanakaji no Sato Hen - 01 [1080p][Multiple Subtitle].mkv",
    "[www.example.org] - Movie Name (2021) 720p HDRip x264 AAC.mkv",
    "www.1TamilBlasters.lat - Jailer (2023) [Tamil + Telugu + Hindi] 1080p HQ HDRip - x264 - (DD+5.1 - 192Kbps & AAC) - 2.5GB - ESub.mkv",
    "@ChannelName Pathaan 2023 Hindi 1080p WEB-DL x264 AAC.mkv",
    "La.Dolce.Vita.1960.ITA.ENG.1080p.BluRay.x264.mkv",
    "S.W.A.T.2017.S01E01.720p.HDTV.x264-KILLERS.mkv",
    "Charlotte's.Web.2006.1080p.BluRay.mkv",
    "Top Gun Maverick (2022) 2160p 4K WEB-DL HDR x265 10bit DDP 5.1-PSA.mkv",
    "Movie Name (2021) Dual Audio [Hindi-English] 480p.mkv",
    "Интерстеллар.2014.1080p.BluRay.x264.mkv",
    "千与千尋 Spirited Away (2001) 1080p.mkv",
    "VID_20240101_123456.mp4",
    "the.last.of.us.s01e09.1080p.web.h264-cakes.mkv",
];

/// `NAMES` names cycling through the shapes, every third with spaces and every third with
/// underscores instead of dots, so the tokenizer sees each separator style.
fn names() -> Vec<String> {
    (0..NAMES)
        .map(|i| {
            let shape = SHAPES[i % SHAPES.len()];
            match (i / SHAPES.len()) % 3 {
                0 => shape.to_owned(),
                1 => shape.replace('.', " "),
                _ => shape.replace('.', "_"),
            }
        })
        .collect()
}

fn baseline(name: &str) -> usize {
    name.to_lowercase()
        .split(|c: char| c.is_whitespace() || matches!(c, '.' | '_' | '-' | '[' | ']' | '(' | ')'))
        .filter(|w| !w.is_empty())
        .count()
}

fn parse_all(names: &[String]) -> usize {
    names
        .iter()
        .map(|n| black_box(name::parse(black_box(n))).title.len())
        .sum()
}

fn baseline_all(names: &[String]) -> usize {
    names.iter().map(|n| baseline(black_box(n))).sum()
}

/// Time this thread spent on a CPU, in ns (Linux `schedstat`); `None` elsewhere. On a
/// shared machine wall-clock rates mostly measure the neighbours, on-CPU time does not.
fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Best of `rounds` passes over all names, in names per second of wall-clock time and of
/// on-CPU time.
fn rate(names: &[String], rounds: u32, f: fn(&[String]) -> usize) -> (f64, Option<f64>) {
    let mut best_wall = Duration::MAX;
    let mut best_cpu: Option<u64> = None;
    for _ in 0..rounds {
        let (start, cpu_start) = (Instant::now(), cpu_ns());
        black_box(f(names));
        best_wall = best_wall.min(start.elapsed());
        if let (Some(a), Some(b)) = (cpu_start, cpu_ns()) {
            let ns = b.saturating_sub(a).max(1);
            best_cpu = Some(best_cpu.map_or(ns, |c| c.min(ns)));
        }
    }
    let n = names.len() as f64;
    (
        n / best_wall.as_secs_f64(),
        best_cpu.map(|ns| n * 1e9 / ns as f64),
    )
}

fn bench(c: &mut Criterion) {
    let names = names();
    let (parse, parse_cpu) = rate(&names, 5, parse_all);
    let (base, base_cpu) = rate(&names, 5, baseline_all);
    println!(
        "parse {NAMES} names, wall clock: {parse:.0} names/s; baseline (lowercase + split): \
         {base:.0} names/s; parse costs {:.1}x the baseline",
        base / parse
    );
    if let (Some(p), Some(b)) = (parse_cpu, base_cpu) {
        println!(
            "parse {NAMES} names, on-CPU time of one core: {p:.0} names/s; baseline: {b:.0} \
             names/s; parse costs {:.1}x the baseline",
            b / p
        );
    }
    let mut group = c.benchmark_group("names");
    group.throughput(Throughput::Elements(NAMES as u64));
    group.sample_size(10);
    group.bench_function("parse", |b| b.iter(|| parse_all(&names)));
    group.bench_function("baseline_lowercase_split", |b| {
        b.iter(|| baseline_all(&names))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
