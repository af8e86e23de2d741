//! The parser's table: realistic release names (scene and P2P movies and series, anime,
//! Indian and European releases, site prefixes, Telegram captions, tricky years), each with
//! every field it must yield, plus properties over arbitrary input.

use super::Audio::*;
use super::Codec::*;
use super::Container::*;
use super::Hdr::*;
use super::Quality::*;
use super::Source::*;
use super::{MAX_NAME_BYTES, ParsedName, parse, parse_post};
use proptest::prelude::*;

enum Input {
    Name(&'static str),
    Post(Option<&'static str>, Option<&'static str>),
}

fn name(s: &'static str) -> Input {
    Input::Name(s)
}

fn post(file: Option<&'static str>, caption: Option<&'static str>) -> Input {
    Input::Post(file, caption)
}

impl Input {
    fn want(self, w: W) -> (Input, ParsedName) {
        (self, w.0)
    }

    fn run(&self) -> ParsedName {
        match self {
            Input::Name(s) => parse(s),
            Input::Post(f, c) => parse_post(*f, *c),
        }
    }

    fn describe(&self) -> String {
        match self {
            Input::Name(s) => format!("{s:?}"),
            Input::Post(f, c) => format!("post({f:?}, {c:?})"),
        }
    }
}

/// Expected fields; every field left out must be empty/None.
struct W(ParsedName);

fn w(title: &str) -> W {
    W(ParsedName {
        title: title.to_owned(),
        ..ParsedName::default()
    })
}

impl W {
    fn y(mut self, y: u16) -> Self {
        self.0.year = Some(y);
        self
    }
    fn s(mut self, s: &[u16]) -> Self {
        self.0.seasons = s.to_vec();
        self
    }
    fn e(mut self, e: &[u16]) -> Self {
        self.0.episodes = e.to_vec();
        self
    }
    fn complete(mut self) -> Self {
        self.0.complete = true;
        self
    }
    fn q(mut self, q: super::Quality) -> Self {
        self.0.quality = Some(q);
        self
    }
    fn src(mut self, s: super::Source) -> Self {
        self.0.source = Some(s);
        self
    }
    fn c(mut self, c: super::Codec) -> Self {
        self.0.codec = Some(c);
        self
    }
    fn hdr(mut self, h: &[super::Hdr]) -> Self {
        self.0.hdr = h.to_vec();
        self
    }
    fn a(mut self, a: &[super::Audio]) -> Self {
        self.0.audio = a.to_vec();
        self
    }
    fn ch(mut self, ch: &str) -> Self {
        self.0.channels = Some(ch.to_owned());
        self
    }
    fn l(mut self, l: &[&str]) -> Self {
        self.0.languages = l.iter().map(|s| (*s).to_owned()).collect();
        self
    }
    fn g(mut self, g: &str) -> Self {
        self.0.group = Some(g.to_owned());
        self
    }
    fn ct(mut self, c: super::Container) -> Self {
        self.0.container = Some(c);
        self
    }
}

fn cases() -> Vec<(Input, ParsedName)> {
    vec![
        name("Movie.Name.2020.1080p.WEB-DL.DDP5.1.H.264-GROUP.mkv").want(w("Movie Name").y(2020).q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").g("GROUP").ct(Mkv)),
        name("The.Matrix.1999.2160p.UHD.BluRay.REMUX.HDR10.HEVC.TrueHD.7.1.Atmos-FGT.mkv").want(w("The Matrix").y(1999).q(P2160).src(Remux).c(H265).hdr(&[Hdr10]).a(&[TrueHd, Atmos]).ch("7.1").g("FGT").ct(Mkv)),
        name("Oppenheimer.2023.1080p.BluRay.x264.DTS-HD.MA.5.1-SWTYBLZ.mkv").want(w("Oppenheimer").y(2023).q(P1080).src(BluRay).c(H264).a(&[DtsHdMa]).ch("5.1").g("SWTYBLZ").ct(Mkv)),
        name("Dune.Part.Two.2024.2160p.WEB-DL.DV.HDR10+.DDP5.1.Atmos.H.265-FLUX.mkv").want(w("Dune Part Two").y(2024).q(P2160).src(WebDl).c(H265).hdr(&[DolbyVision, Hdr10Plus]).a(&[Eac3, Atmos]).ch("5.1").g("FLUX").ct(Mkv)),
        name("2001.A.Space.Odyssey.1968.1080p.BluRay.x264-AMIABLE.mkv").want(w("2001 A Space Odyssey").y(1968).q(P1080).src(BluRay).c(H264).g("AMIABLE").ct(Mkv)),
        name("2001 A Space Odyssey 1968.mp4").want(w("2001 A Space Odyssey").y(1968).ct(Mp4)),
        name("Blade Runner 2049 (2017) [1080p] [BluRay] [5.1] [YTS.MX].mp4").want(w("Blade Runner 2049").y(2017).q(P1080).src(BluRay).ch("5.1").ct(Mp4)),
        name("1917 (2019) 1080p BluRay.mkv").want(w("1917").y(2019).q(P1080).src(BluRay).ct(Mkv)),
        name("2012.2009.1080p.BluRay.x264.mkv").want(w("2012").y(2009).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("Breaking.Bad.S01E02.720p.BluRay.x264-DEMAND.mkv").want(w("Breaking Bad").s(&[1]).e(&[2]).q(P720).src(BluRay).c(H264).g("DEMAND").ct(Mkv)),
        name("breaking.bad.s1e2.720p.mkv").want(w("breaking bad").s(&[1]).e(&[2]).q(P720).ct(Mkv)),
        name("The.Office.US.S05E14.1080p.WEB.h264-NTb.mkv").want(w("The Office US").s(&[5]).e(&[14]).q(P1080).src(WebDl).c(H264).g("NTb").ct(Mkv)),
        name("Friends 1x02 The One with the Sonogram at the End.avi").want(w("Friends").s(&[1]).e(&[2]).ct(Avi)),
        name("Game of Thrones Season 1 Episode 2 720p.mkv").want(w("Game of Thrones").s(&[1]).e(&[2]).q(P720).ct(Mkv)),
        name("The.Expanse.S01E01-E03.1080p.WEBRip.x265-RARBG.mkv").want(w("The Expanse").s(&[1]).e(&[1, 2, 3]).q(P1080).src(WebRip).c(H265).g("RARBG").ct(Mkv)),
        name("Show.Name.S02E05E06.720p.HDTV.x264-KILLERS.mkv").want(w("Show Name").s(&[2]).e(&[5, 6]).q(P720).src(Hdtv).c(H264).g("KILLERS").ct(Mkv)),
        name("Show.Name.S03E01-03.1080p.mkv").want(w("Show Name").s(&[3]).e(&[1, 2, 3]).q(P1080).ct(Mkv)),
        name("Stranger.Things.S04.2160p.NF.WEB-DL.DDP5.1.Atmos.DV.HDR.H.265-FLUX").want(w("Stranger Things").s(&[4]).q(P2160).src(WebDl).c(H265).hdr(&[DolbyVision, Hdr]).a(&[Eac3, Atmos]).ch("5.1").g("FLUX")),
        name("The Wire Season 1 Complete 720p BluRay x264").want(w("The Wire").s(&[1]).complete().q(P720).src(BluRay).c(H264)),
        name("Breaking.Bad.S01-S05.Complete.1080p.BluRay.x265").want(w("Breaking Bad").s(&[1, 2, 3, 4, 5]).complete().q(P1080).src(BluRay).c(H265)),
        name("The.Sopranos.Complete.Series.1080p.BluRay.x264").want(w("The Sopranos").complete().q(P1080).src(BluRay).c(H264)),
        name("[SubsPlease] Jujutsu Kaisen - 01 (1080p) [F02B9CB7].mkv").want(w("Jujutsu Kaisen").e(&[1]).q(P1080).g("SubsPlease").ct(Mkv)),
        name("[Erai-raws] Spy x Family - 12 [720p][Multiple Subtitle].mkv").want(w("Spy x Family").e(&[12]).q(P720).g("Erai-raws").ct(Mkv)),
        name("[www.example.org] - Movie Name (2021) 720p HDRip x264 AAC.mkv").want(w("Movie Name").y(2021).q(P720).src(HdRip).c(H264).a(&[Aac]).ct(Mkv)),
        name("www.TamilBlasters.com - Leo (2023) Tamil HQ HDRip 1080p x264 AAC 5.1.mkv").want(w("Leo").y(2023).q(P1080).src(HdRip).c(H264).a(&[Aac]).ch("5.1").l(&["ta"]).ct(Mkv)),
        name("@ChannelName Pathaan 2023 Hindi 1080p WEB-DL x264 AAC.mkv").want(w("Pathaan").y(2023).q(P1080).src(WebDl).c(H264).a(&[Aac]).l(&["hi"]).ct(Mkv)),
        name("KGF Chapter 2 Hindi 720p.mkv").want(w("KGF Chapter 2").q(P720).l(&["hi"]).ct(Mkv)),
        name("The.Italian.Job.2003.1080p.BluRay.x264.mkv").want(w("The Italian Job").y(2003).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("La.Dolce.Vita.1960.ITA.ENG.1080p.BluRay.x264.mkv").want(w("La Dolce Vita").y(1960).q(P1080).src(BluRay).c(H264).l(&["it", "en"]).ct(Mkv)),
        name("Amelie.2001.FRENCH.1080p.BluRay.x264-LOST.mkv").want(w("Amelie").y(2001).q(P1080).src(BluRay).c(H264).l(&["fr"]).g("LOST").ct(Mkv)),
        name("Movie.2019.MULTi.1080p.BluRay.x264-GROUP.mkv").want(w("Movie").y(2019).q(P1080).src(BluRay).c(H264).l(&["multi"]).g("GROUP").ct(Mkv)),
        name("Spider-Man.No.Way.Home.2021.1080p.WEBRip.x264.AAC5.1-[YTS.MX].mp4").want(w("Spider-Man No Way Home").y(2021).q(P1080).src(WebRip).c(H264).a(&[Aac]).ch("5.1").ct(Mp4)),
        name("S.W.A.T.2017.S01E01.720p.HDTV.x264-KILLERS.mkv").want(w("S.W.A.T.").y(2017).s(&[1]).e(&[1]).q(P720).src(Hdtv).c(H264).g("KILLERS").ct(Mkv)),
        name("Charlotte's.Web.2006.1080p.BluRay.mkv").want(w("Charlotte's Web").y(2006).q(P1080).src(BluRay).ct(Mkv)),
        name("Cam.2018.1080p.NF.WEBRip.DDP5.1.x264-NTG.mkv").want(w("Cam").y(2018).q(P1080).src(WebRip).c(H264).a(&[Eac3]).ch("5.1").g("NTG").ct(Mkv)),
        name("Avengers Endgame 2019 HDCAM x264.mp4").want(w("Avengers Endgame").y(2019).src(Cam).c(H264).ct(Mp4)),
        name("Movie.2022.HDTS.x264-GROUP.mkv").want(w("Movie").y(2022).src(Telesync).c(H264).g("GROUP").ct(Mkv)),
        name("The.Batman.2022.TS.x264.mp4").want(w("The Batman").y(2022).src(Telesync).c(H264).ct(Mp4)),
        name("Movie.Name.2020.DVDRip.XviD-GROUP.avi").want(w("Movie Name").y(2020).src(DvdRip).c(Xvid).g("GROUP").ct(Avi)),
        name("VID_20240101_123456.mp4").want(w("VID 20240101 123456").ct(Mp4)),
        name("Mission.Impossible.Dead.Reckoning.Part.One.2023.1080p.AMZN.WEB-DL.DDP5.1.H.264-FLUX.mkv").want(w("Mission Impossible Dead Reckoning Part One").y(2023).q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").g("FLUX").ct(Mkv)),
        name("Aliens.1986.Extended.Cut.1080p.BluRay.x264.mkv").want(w("Aliens").y(1986).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("Movie.Name.EXTENDED.1080p.BluRay.x264-GRP.mkv").want(w("Movie Name").q(P1080).src(BluRay).c(H264).g("GRP").ct(Mkv)),
        name("Doctor.Who.2005.S01E01.Rose.1080p.BluRay.x264.mkv").want(w("Doctor Who").y(2005).s(&[1]).e(&[1]).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("Top Gun Maverick (2022) 2160p 4K WEB-DL HDR x265 10bit DDP 5.1-PSA.mkv").want(w("Top Gun Maverick").y(2022).q(P2160).src(WebDl).c(H265).hdr(&[Hdr]).a(&[Eac3]).ch("5.1").g("PSA").ct(Mkv)),
        name("Movie Name 2021 720p HEVC x265 [Hindi + English] ESub.mkv").want(w("Movie Name").y(2021).q(P720).c(H265).l(&["hi", "en"]).ct(Mkv)),
        name("Movie Name (2021) Dual Audio [Hindi-English] 480p.mkv").want(w("Movie Name").y(2021).q(P480).l(&["multi", "hi", "en"]).ct(Mkv)),
        name("Mr.Robot.S02E03.eps2.1_k3rnel-pan1c.ksd.720p.mkv").want(w("Mr Robot").s(&[2]).e(&[3]).q(P720).ct(Mkv)),
        name("Fast & Furious 7 (2015) 1080p.mkv").want(w("Fast & Furious 7").y(2015).q(P1080).ct(Mkv)),
        name("The Mandalorian S02E08 Chapter 16 The Rescue 2160p DSNP WEB-DL DDP5.1 Atmos HDR HEVC-MZABI.mkv").want(w("The Mandalorian").s(&[2]).e(&[8]).q(P2160).src(WebDl).c(H265).hdr(&[Hdr]).a(&[Eac3, Atmos]).ch("5.1").g("MZABI").ct(Mkv)),
        name("Rick and Morty - S05E01 - Mort Dinner Rick Andre.mkv").want(w("Rick and Morty").s(&[5]).e(&[1]).ct(Mkv)),
        name("One.Piece.E1071.1080p.WEB.x264.mkv").want(w("One Piece").e(&[1071]).q(P1080).src(WebDl).c(H264).ct(Mkv)),
        name("[HorribleSubs] One Piece - 1071 [1080p].mkv").want(w("One Piece").e(&[1071]).q(P1080).g("HorribleSubs").ct(Mkv)),
        name("Attack on Titan S04E28 1080p WEB-DL AAC2.0 H.264.mkv").want(w("Attack on Titan").s(&[4]).e(&[28]).q(P1080).src(WebDl).c(H264).a(&[Aac]).ch("2.0").ct(Mkv)),
        name("Oppenheimer 2023 IMAX 2160p").want(w("Oppenheimer").y(2023).q(P2160)),
        name("Интерстеллар.2014.1080p.BluRay.x264.mkv").want(w("Интерстеллар").y(2014).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("千与千尋 Spirited Away (2001) 1080p.mkv").want(w("千与千尋 Spirited Away").y(2001).q(P1080).ct(Mkv)),
        name("Amélie (2001) 1080p BluRay FLAC 2.0 x264.mkv").want(w("Amélie").y(2001).q(P1080).src(BluRay).c(H264).a(&[Flac]).ch("2.0").ct(Mkv)),
        post(Some("video.mp4"), Some("🎬 Oppenheimer (2023)\n📀 1080p BluRay\n#Oppenheimer #Nolan")).want(w("Oppenheimer").y(2023).q(P1080).src(BluRay).ct(Mp4)),
        post(None, Some("Join @moviechannel for more!\n🎥 The Batman 2022 1080p WEB-DL\nSize: 2.1GB")).want(w("The Batman").y(2022).q(P1080).src(WebDl)),
        post(Some("VID_20240101_123456.mp4"), Some("Title: Dune Part Two\nYear: 2024\nQuality: 2160p")).want(w("Dune Part Two").y(2024).q(P2160).ct(Mp4)),
        post(Some("Breaking.Bad.S01E01.720p.mkv"), Some("Something else 1999")).want(w("Breaking Bad").s(&[1]).e(&[1]).q(P720).ct(Mkv)),
        post(Some("1917.mkv"), Some("1917 (2019) 1080p")).want(w("1917").y(2019).q(P1080).ct(Mkv)),
        post(Some("S01E05.mkv"), Some("Severance Season 1\nEpisode 5")).want(w("Severance").s(&[1]).e(&[5]).ct(Mkv)),
        name("Inception (2010) 1080p BrRip x264 - 1.85GB - YIFY.mp4").want(w("Inception").y(2010).q(P1080).src(BluRay).c(H264).ct(Mp4)),
        name("The.Shawshank.Redemption.1994.REMASTERED.1080p.BluRay.x264-GROUP.mkv").want(w("The Shawshank Redemption").y(1994).q(P1080).src(BluRay).c(H264).g("GROUP").ct(Mkv)),
        name("Parasite.2019.KOREAN.1080p.BluRay.x264.DTS-FGT.mkv").want(w("Parasite").y(2019).q(P1080).src(BluRay).c(H264).a(&[Dts]).l(&["ko"]).g("FGT").ct(Mkv)),
        name("Joker.2019.2160p.UHD.BluRay.x265.10bit.HDR.TrueHD.7.1.Atmos-TERMiNAL.mkv").want(w("Joker").y(2019).q(P2160).src(BluRay).c(H265).hdr(&[Hdr]).a(&[TrueHd, Atmos]).ch("7.1").g("TERMiNAL").ct(Mkv)),
        name("The.Lord.of.the.Rings.The.Fellowship.of.the.Ring.2001.EXTENDED.1080p.BluRay.x264.mkv").want(w("The Lord of the Rings The Fellowship of the Ring").y(2001).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("Leon.The.Professional.1994.Extended.1080p.BluRay.x264.mkv").want(w("Leon The Professional").y(1994).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("Godzilla.Minus.One.2023.JAPANESE.1080p.WEBRip.x264.AAC-YTS.mp4").want(w("Godzilla Minus One").y(2023).q(P1080).src(WebRip).c(H264).a(&[Aac]).l(&["ja"]).g("YTS").ct(Mp4)),
        name("RRR.2022.1080p.NF.WEB-DL.DUAL.DDP5.1.H.264-TEPES.mkv").want(w("RRR").y(2022).q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").l(&["multi"]).g("TEPES").ct(Mkv)),
        name("Jawan (2023) Hindi 1080p HQ S-Print x264 AAC.mkv").want(w("Jawan").y(2023).q(P1080).c(H264).a(&[Aac]).l(&["hi"]).ct(Mkv)),
        name("Le.Fabuleux.Destin.d'Amélie.Poulain.2001.FRENCH.1080p.BluRay.x264.mkv").want(w("Le Fabuleux Destin d'Amélie Poulain").y(2001).q(P1080).src(BluRay).c(H264).l(&["fr"]).ct(Mkv)),
        name("Home.Alone.1990.DVDRip.XviD.AC3-FLAWL3SS.avi").want(w("Home Alone").y(1990).src(DvdRip).c(Xvid).a(&[Ac3]).g("FLAWL3SS").ct(Avi)),
        name("Gladiator.2000.Remastered.BRRip.XviD.MP3-XVID.avi").want(w("Gladiator").y(2000).src(BluRay).c(Xvid).a(&[Mp3]).ct(Avi)),
        name("Star.Wars.Episode.IV.A.New.Hope.1977.1080p.BluRay.x264.mkv").want(w("Star Wars Episode IV A New Hope").y(1977).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("Se7en.1995.1080p.BluRay.x264.mkv").want(w("Se7en").y(1995).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("E.T.the.Extra-Terrestrial.1982.1080p.BluRay.x264.mkv").want(w("E.T. the Extra-Terrestrial").y(1982).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("9.2009.720p.BluRay.mkv").want(w("9").y(2009).q(P720).src(BluRay).ct(Mkv)),
        name("10.Cloverfield.Lane.2016.1080p.mkv").want(w("10 Cloverfield Lane").y(2016).q(P1080).ct(Mkv)),
        name("Spider-Man: Across the Spider-Verse (2023) 1080p WEBRip.mkv").want(w("Spider-Man: Across the Spider-Verse").y(2023).q(P1080).src(WebRip).ct(Mkv)),
        name("Wonder.Woman.1984.2020.1080p.WEB-DL.mkv").want(w("Wonder Woman 1984").y(2020).q(P1080).src(WebDl).ct(Mkv)),
        name("The.Movie.2019.1080p.BluRay.x264-[YTS.AM].mp4").want(w("The Movie").y(2019).q(P1080).src(BluRay).c(H264).g("YTS.AM").ct(Mp4)),
        name("Game.of.Thrones.S08E06.The.Iron.Throne.1080p.AMZN.WEB-DL.DDP5.1.H.264-GoT.mkv").want(w("Game of Thrones").s(&[8]).e(&[6]).q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").g("GoT").ct(Mkv)),
        name("the.last.of.us.s01e09.1080p.web.h264-cakes.mkv").want(w("the last of us").s(&[1]).e(&[9]).q(P1080).src(WebDl).c(H264).g("cakes").ct(Mkv)),
        name("Chernobyl.S01.1080p.BluRay.x264-ROVERS").want(w("Chernobyl").s(&[1]).q(P1080).src(BluRay).c(H264).g("ROVERS")),
        name("Seinfeld Season 1-9 Complete 720p").want(w("Seinfeld").s(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).complete().q(P720)),
        name("Sherlock.S04E01.720p.HDTV.x264-MTB.mkv").want(w("Sherlock").s(&[4]).e(&[1]).q(P720).src(Hdtv).c(H264).g("MTB").ct(Mkv)),
        name("The Simpsons 10x05 Bart the Mother.avi").want(w("The Simpsons").s(&[10]).e(&[5]).ct(Avi)),
        name("Dark.S03.COMPLETE.GERMAN.1080p.NF.WEB-DL.DDP5.1.x264-TVS").want(w("Dark").s(&[3]).complete().q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").l(&["de"]).g("TVS")),
        name("Squid.Game.S01E01.KOREAN.1080p.NF.WEBRip.DDP5.1.x264-NOGRP.mkv").want(w("Squid Game").s(&[1]).e(&[1]).q(P1080).src(WebRip).c(H264).a(&[Eac3]).ch("5.1").l(&["ko"]).g("NOGRP").ct(Mkv)),
        name("Panchayat S03 Hindi 1080p AMZN WEB-DL DDP5.1 H.264.mkv").want(w("Panchayat").s(&[3]).q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").l(&["hi"]).ct(Mkv)),
        name("Show.Name.2019.S01E01.mkv").want(w("Show Name").y(2019).s(&[1]).e(&[1]).ct(Mkv)),
        name("Succession S04 E10 1080p.mkv").want(w("Succession").s(&[4]).e(&[10]).q(P1080).ct(Mkv)),
        name("Shogun.2024.S01E01.Anjin.1080p.DSNP.WEB-DL.DDP5.1.H.264-NTb.mkv").want(w("Shogun").y(2024).s(&[1]).e(&[1]).q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").g("NTb").ct(Mkv)),
        name("Fargo - 5x01 - The Tragedy of the Commons.mkv").want(w("Fargo").s(&[5]).e(&[1]).ct(Mkv)),
        name("Planet Earth II Episode 1 Islands 2160p.mkv").want(w("Planet Earth II").e(&[1]).q(P2160).ct(Mkv)),
        name("Friends.S01-S10.COMPLETE.1080p.BluRay.x265.mkv").want(w("Friends").s(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).complete().q(P1080).src(BluRay).c(H265).ct(Mkv)),
        name("The.Office.Complete.Series.Season.1-9.1080p").want(w("The Office").s(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).complete().q(P1080)),
        name("[Judas] Shingeki no Kyojin - S04E28 [1080p][HEVC x265 10bit][Multi-Subs].mkv").want(w("Shingeki no Kyojin").s(&[4]).e(&[28]).q(P1080).c(H265).g("Judas").ct(Mkv)),
        name("[Erai-raws] Kimetsu no Yaiba - Katanakaji no Sato Hen - 01 [1080p][Multiple Subtitle].mkv").want(w("Kimetsu no Yaiba - Katanakaji no Sato Hen").e(&[1]).q(P1080).g("Erai-raws").ct(Mkv)),
        name("[ASW] Solo Leveling - 12 [1080p HEVC x265 10Bit][AAC].mkv").want(w("Solo Leveling").e(&[12]).q(P1080).c(H265).a(&[Aac]).g("ASW").ct(Mkv)),
        name("Naruto Shippuden - 500 [720p].mkv").want(w("Naruto Shippuden").e(&[500]).q(P720).ct(Mkv)),
        name("[www.1TamilMV.wf] - Leo (2023) Tamil TRUE WEB-DL - 1080p - AVC - (DD+5.1 - 640Kbps & AAC) - 6.2GB - ESub.mkv").want(w("Leo").y(2023).q(P1080).src(WebDl).c(H264).a(&[Eac3, Aac]).ch("5.1").l(&["ta"]).ct(Mkv)),
        name("www.1TamilBlasters.lat - Jailer (2023) [Tamil + Telugu + Hindi] 1080p HQ HDRip - x264 - (DD+5.1 - 192Kbps & AAC) - 2.5GB - ESub.mkv").want(w("Jailer").y(2023).q(P1080).src(HdRip).c(H264).a(&[Eac3, Aac]).ch("5.1").l(&["ta", "te", "hi"]).ct(Mkv)),
        name("TamilMV.com - Jailer 2023.mkv").want(w("Jailer").y(2023).ct(Mkv)),
        name("@MoviesHub_Official - Animal (2023) Hindi 720p.mkv").want(w("Animal").y(2023).q(P720).l(&["hi"]).ct(Mkv)),
        name("Les.Miserables.2012.TRUEFRENCH.1080p.BluRay.x264.mkv").want(w("Les Miserables").y(2012).q(P1080).src(BluRay).c(H264).l(&["fr"]).ct(Mkv)),
        name("Il.Traditore.2019.iTALiAN.AC3.1080p.BluRay.x264.mkv").want(w("Il Traditore").y(2019).q(P1080).src(BluRay).c(H264).a(&[Ac3]).l(&["it"]).ct(Mkv)),
        name("Le Dîner de cons (1998) FRENCH 1080p.mkv").want(w("Le Dîner de cons").y(1998).q(P1080).l(&["fr"]).ct(Mkv)),
        name("Deadpool & Wolverine (2024) 2160p WEB-DL DV HDR10 DDP5.1 Atmos.mkv").want(w("Deadpool & Wolverine").y(2024).q(P2160).src(WebDl).hdr(&[DolbyVision, Hdr10]).a(&[Eac3, Atmos]).ch("5.1").ct(Mkv)),
        name("Band of Brothers (2001) Season 1 S01 1080p BluRay.mkv").want(w("Band of Brothers").y(2001).s(&[1]).q(P1080).src(BluRay).ct(Mkv)),
        name("Money Heist S01 Complete Spanish 1080p.mkv").want(w("Money Heist").s(&[1]).complete().q(P1080).l(&["es"]).ct(Mkv)),
        name("The.Mandalorian.S03E01.Chapter.17.1080p.DSNP.WEB-DL.DDP5.1.Atmos.H.264-FLUX.mkv").want(w("The Mandalorian").s(&[3]).e(&[1]).q(P1080).src(WebDl).c(H264).a(&[Eac3, Atmos]).ch("5.1").g("FLUX").ct(Mkv)),
        name("Movie Title 2020 720p WEBRip x264 ESubs [Tamil + Telugu + Kannada].mkv").want(w("Movie Title").y(2020).q(P720).src(WebRip).c(H264).l(&["ta", "te", "kn"]).ct(Mkv)),
        name("Some.Movie.2021.HC.HDRip.XviD-EVO.avi").want(w("Some Movie").y(2021).src(HdRip).c(Xvid).g("EVO").ct(Avi)),
        name("Top.Gun.1986.REMASTERED.1080p.BluRay.x264.DTS-HD.MA.5.1-SWTYBLZ.mkv").want(w("Top Gun").y(1986).q(P1080).src(BluRay).c(H264).a(&[DtsHdMa]).ch("5.1").g("SWTYBLZ").ct(Mkv)),
        name("Oppenheimer.2023.HDR.2160p.WEB.H265-NAISU.mkv").want(w("Oppenheimer").y(2023).q(P2160).src(WebDl).c(H265).hdr(&[Hdr]).g("NAISU").ct(Mkv)),
        name("Barbie.2023.1080p.AMZN.WEB-DL.DDP5.1.Atmos.H.264-FLUX.mkv").want(w("Barbie").y(2023).q(P1080).src(WebDl).c(H264).a(&[Eac3, Atmos]).ch("5.1").g("FLUX").ct(Mkv)),
        name("The Holdovers 2023 1080p WEB h264-ETHEL").want(w("The Holdovers").y(2023).q(P1080).src(WebDl).c(H264).g("ETHEL")),
        name("Past.Lives.2023.1080p.AMZN.WEB-DL.DDP5.1.H.264-FLUX").want(w("Past Lives").y(2023).q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").g("FLUX")),
        name("Poor.Things.2023.1080p.BluRay.x264-GUACAMOLE.mkv").want(w("Poor Things").y(2023).q(P1080).src(BluRay).c(H264).g("GUACAMOLE").ct(Mkv)),
        post(None, Some("🔥 Loki S02E01 1080p 🔥\n\n#Loki #Marvel")).want(w("Loki").s(&[2]).e(&[1]).q(P1080)),
        post(Some("file_123.mp4"), Some("Killers of the Flower Moon (2023)\nLanguage: English\nQuality: 2160p HDR")).want(w("Killers of the Flower Moon").y(2023).q(P2160).hdr(&[Hdr]).l(&["en"]).ct(Mp4)),
        post(Some("Movie.mkv"), None).want(w("Movie").ct(Mkv)),
        post(Some("Video.mp4"), Some("#trending #movies")).want(w("Video").ct(Mp4)),
        name("S01E01.mkv").want(w("").s(&[1]).e(&[1]).ct(Mkv)),
        name("Show.S01E001-E9999.mkv").want(w("Show").s(&[1]).e(&[1, 9999]).ct(Mkv)),
        name("").want(w("")),
        name("   ...___---   ").want(w("")),
        name("Just Some Words").want(w("Just Some Words")),
        name("Line of Duty Series 6 Episode 1 1080p.mkv").want(w("Line of Duty").s(&[6]).e(&[1]).q(P1080).ct(Mkv)),
        name("The.Series.2020.1080p.mkv").want(w("The Series").y(2020).q(P1080).ct(Mkv)),
        name("Top.Boy.Series.2.720p.mkv").want(w("Top Boy").s(&[2]).q(P720).ct(Mkv)),
        name("[SubsPlease] Mushoku Tensei S2 - 05 (1080p) [ABCDEF12].mkv").want(w("Mushoku Tensei").s(&[2]).e(&[5]).q(P1080).g("SubsPlease").ct(Mkv)),
        name("Show.S01.EP05.720p.mkv").want(w("Show").s(&[1]).e(&[5]).q(P720).ct(Mkv)),
        name("Show - 1x05-1x06 - Title.mkv").want(w("Show").s(&[1]).e(&[5, 6]).ct(Mkv)),
        name("Season 01 Episode 05 - Pilot.mkv").want(w("").s(&[1]).e(&[5]).ct(Mkv)),
        name("Title.S01.E01E02.1080p.mkv").want(w("Title").s(&[1]).e(&[1, 2]).q(P1080).ct(Mkv)),
        name("Movie-Name-2019-1080p-WEB-DL.mkv").want(w("Movie Name").y(2019).q(P1080).src(WebDl).ct(Mkv)),
        name("Movie (2020) - 1080p - WEB-DL - Hindi.mkv").want(w("Movie").y(2020).q(P1080).src(WebDl).l(&["hi"]).ct(Mkv)),
        name("Dual.2022.1080p.WEBRip.mkv").want(w("Dual").y(2022).q(P1080).src(WebRip).ct(Mkv)),
        name("The Movie 2019 Hindi ORG 720p.mkv").want(w("The Movie").y(2019).q(P720).l(&["hi"]).ct(Mkv)),
        name("Movie.Name.[2019].1080p.mkv").want(w("Movie Name").y(2019).q(P1080).ct(Mkv)),
        name("Show Name S01E01 REPACK 1080p.mkv").want(w("Show Name").s(&[1]).e(&[1]).q(P1080).ct(Mkv)),
        name("The.Batman.2022.HDCAM.TS").want(w("The Batman").y(2022).src(Cam)),
        name("Movie.2022.HDTS.ts").want(w("Movie").y(2022).src(Telesync).ct(Ts)),
        name("Show.S01E01-E02-E03.720p.mkv").want(w("Show").s(&[1]).e(&[1, 2, 3]).q(P720).ct(Mkv)),
        name("Show.S01E01+E02.720p.mkv").want(w("Show").s(&[1]).e(&[1, 2]).q(P720).ct(Mkv)),
        name("Show S01E01 & E02 720p.mkv").want(w("Show").s(&[1]).e(&[1, 2]).q(P720).ct(Mkv)),
        name("Show.S01E01.E02.720p.mkv").want(w("Show").s(&[1]).e(&[1, 2]).q(P720).ct(Mkv)),
        name("Show.Name.S2023E01.mkv").want(w("Show Name").s(&[2023]).e(&[1]).ct(Mkv)),
        name("Movie.Name.2019.1080p.10bit.BluRay.6CH.x265.HEVC-PSA.mkv").want(w("Movie Name").y(2019).q(P1080).src(BluRay).c(H265).ch("5.1").g("PSA").ct(Mkv)),
        name("Movie Name (1080p) (2019).mkv").want(w("Movie Name").y(2019).q(P1080).ct(Mkv)),
        name("Movie Name - 2019 - 1080p.mkv").want(w("Movie Name").y(2019).q(P1080).ct(Mkv)),
        name("It.2017.1080p.mkv").want(w("It").y(2017).q(P1080).ct(Mkv)),
        name("Dune (2021) (1080p BluRay x265 HEVC 10bit AAC 7.1 Tigole).mkv").want(w("Dune").y(2021).q(P1080).src(BluRay).c(H265).a(&[Aac]).ch("7.1").ct(Mkv)),
        name("Mad Max: Fury Road (2015) [2160p] [4K] [WEB] [5.1] [YTS.MX].mp4").want(w("Mad Max: Fury Road").y(2015).q(P2160).src(WebDl).ch("5.1").ct(Mp4)),
        name("The.French.Dispatch.2021.1080p.WEBRip.x264.mkv").want(w("The French Dispatch").y(2021).q(P1080).src(WebRip).c(H264).ct(Mkv)),
        name("English.Vinglish.2012.Hindi.1080p.BluRay.x264.mkv").want(w("English Vinglish").y(2012).q(P1080).src(BluRay).c(H264).l(&["hi"]).ct(Mkv)),
        name("Love.Actually.2003.720p.BRRip.x264.AC3-ETRG.mkv").want(w("Love Actually").y(2003).q(P720).src(BluRay).c(H264).a(&[Ac3]).g("ETRG").ct(Mkv)),
        name("Heat.1995.Directors.Cut.1080p.BluRay.x264.mkv").want(w("Heat").y(1995).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("Baahubali 2 The Conclusion (2017) Telugu 1080p BluRay.mkv").want(w("Baahubali 2 The Conclusion").y(2017).q(P1080).src(BluRay).l(&["te"]).ct(Mkv)),
        name("Vikram.2022.Tamil.1080p.AMZN.WEB-DL.DDP5.1.H.264.mkv").want(w("Vikram").y(2022).q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").l(&["ta"]).ct(Mkv)),
        name("Lupin.S01E01.FRENCH.1080p.NF.WEB-DL.DDP5.1.x264.mkv").want(w("Lupin").s(&[1]).e(&[1]).q(P1080).src(WebDl).c(H264).a(&[Eac3]).ch("5.1").l(&["fr"]).ct(Mkv)),
        name("Elite.S07E01.MULTi.1080p.WEB.x264.mkv").want(w("Elite").s(&[7]).e(&[1]).q(P1080).src(WebDl).c(H264).l(&["multi"]).ct(Mkv)),
        name("3.Body.Problem.S01E01.1080p.NF.WEB-DL.DDP5.1.Atmos.H.264-FLUX.mkv").want(w("3 Body Problem").s(&[1]).e(&[1]).q(P1080).src(WebDl).c(H264).a(&[Eac3, Atmos]).ch("5.1").g("FLUX").ct(Mkv)),
        name("The.100.S01E01.720p.HDTV.x264-KILLERS.mkv").want(w("The 100").s(&[1]).e(&[1]).q(P720).src(Hdtv).c(H264).g("KILLERS").ct(Mkv)),
        name("24.S01E01.720p.BluRay.mkv").want(w("24").s(&[1]).e(&[1]).q(P720).src(BluRay).ct(Mkv)),
        name("1883.S01E01.1080p.WEB.mkv").want(w("1883").s(&[1]).e(&[1]).q(P1080).src(WebDl).ct(Mkv)),
        name("1923.S01E01.1080p.WEB.h264-GOSSIP.mkv").want(w("1923").s(&[1]).e(&[1]).q(P1080).src(WebDl).c(H264).g("GOSSIP").ct(Mkv)),
        name("Fallout.2024.S01E01.2160p.AMZN.WEB-DL.DDP5.1.HDR10+.H.265.mkv").want(w("Fallout").y(2024).s(&[1]).e(&[1]).q(P2160).src(WebDl).c(H265).hdr(&[Hdr10Plus]).a(&[Eac3]).ch("5.1").ct(Mkv)),
        name("Peaky Blinders S06E01 720p WEB x265-MiNX.mkv").want(w("Peaky Blinders").s(&[6]).e(&[1]).q(P720).src(WebDl).c(H265).g("MiNX").ct(Mkv)),
        name("Bleach - 366 [BD 1080p].mkv").want(w("Bleach").e(&[366]).q(P1080).src(BluRay).ct(Mkv)),
        name("[Anime Time] Demon Slayer - 44 [1080p][HEVC 10bit x265][AAC][Multi Sub].mkv").want(w("Demon Slayer").e(&[44]).q(P1080).c(H265).a(&[Aac]).g("Anime Time").ct(Mkv)),
        name("[SubsPlease] Oshi no Ko - 12v2 (1080p) [ABCD1234].mkv").want(w("Oshi no Ko").e(&[12]).q(P1080).g("SubsPlease").ct(Mkv)),
        name("Dragon Ball Z - 001 - The New Threat [720p].mkv").want(w("Dragon Ball Z").e(&[1]).q(P720).ct(Mkv)),
        name("Attack.on.Titan.S04E28.JAPANESE.1080p.CR.WEBRip.AAC2.0.x264-SDH.mkv").want(w("Attack on Titan").s(&[4]).e(&[28]).q(P1080).src(WebRip).c(H264).a(&[Aac]).ch("2.0").l(&["ja"]).g("SDH").ct(Mkv)),
        name("1984.1984.1080p.BluRay.x264.mkv").want(w("1984").y(1984).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("2046.2004.1080p.BluRay.x264.mkv").want(w("2046").y(2004).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("Apollo.13.1995.1080p.BluRay.x264.mkv").want(w("Apollo 13").y(1995).q(P1080).src(BluRay).c(H264).ct(Mkv)),
        name("[ www.Torrenting.com ] - Sherlock.S04E01.720p.HDTV.x264-MTB.mkv").want(w("Sherlock").s(&[4]).e(&[1]).q(P720).src(Hdtv).c(H264).g("MTB").ct(Mkv)),
        name("www.Scene-Rls.net - Movie.2019.1080p.WEB.x264-GRP.mkv").want(w("Movie").y(2019).q(P1080).src(WebDl).c(H264).g("GRP").ct(Mkv)),
        name("[TGx] Movie 2020 1080p WEBRip.mkv").want(w("Movie").y(2020).q(P1080).src(WebRip).g("TGx").ct(Mkv)),
        name("@tamilmovies Kaithi 2019 Tamil 720p HDRip.mkv").want(w("Kaithi").y(2019).q(P720).src(HdRip).l(&["ta"]).ct(Mkv)),
        name("Movie_Name_2019_1080p_WEB-DL_x264.mkv").want(w("Movie Name").y(2019).q(P1080).src(WebDl).c(H264).ct(Mkv)),
        name("Kill Bill Vol. 1 (2003) 1080p BluRay.mkv").want(w("Kill Bill Vol 1").y(2003).q(P1080).src(BluRay).ct(Mkv)),
        name("Marvels.Agents.of.S.H.I.E.L.D.S01E01.720p.mkv").want(w("Marvels Agents of S.H.I.E.L.D.").s(&[1]).e(&[1]).q(P720).ct(Mkv)),
        name("Old.Movie.1950.DVD9.NTSC.mkv").want(w("Old Movie").y(1950).src(Dvd).ct(Mkv)),
        name("Some.Movie.2023.CAMRip.x264.mp4").want(w("Some Movie").y(2023).src(Cam).c(H264).ct(Mp4)),
        name("Some Movie 2023 HDTC 720p.mkv").want(w("Some Movie").y(2023).q(P720).ct(Mkv)),
        name("Pirates.of.the.Caribbean.2003.1080p.BluRay.x264.DTS.mkv").want(w("Pirates of the Caribbean").y(2003).q(P1080).src(BluRay).c(H264).a(&[Dts]).ct(Mkv)),
        name("The.Dark.Knight.2008.IMAX.2160p.UHD.BluRay.x265.HDR.DTS-X.7.1.mkv").want(w("The Dark Knight").y(2008).q(P2160).src(BluRay).c(H265).hdr(&[Hdr]).a(&[Dts]).ch("7.1").ct(Mkv)),
        name("Movie.2021.1080p.BluRay.Opus.5.1.AV1.mkv").want(w("Movie").y(2021).q(P1080).src(BluRay).c(Av1).a(&[Opus]).ch("5.1").ct(Mkv)),
        name("Movie 2020 1080p WEB-DL VP9 Opus.webm").want(w("Movie").y(2020).q(P1080).src(WebDl).c(Vp9).a(&[Opus]).ct(Webm)),
        name("Clip.2019.480p.mov").want(w("Clip").y(2019).q(P480).ct(Mov)),
        name("Home.Video.1995.576p.DVDRip.mpg").want(w("Home Video").y(1995).q(P576).src(DvdRip)),
        name("Movie.2018.1080p.BluRay.AVC.DTS-HD.MA.7.1-GRP.m2ts").want(w("Movie").y(2018).q(P1080).src(BluRay).c(H264).a(&[DtsHdMa]).ch("7.1").g("GRP").ct(Ts)),
        name("Show.S01E01.HDTV.XviD-LOL.avi").want(w("Show").s(&[1]).e(&[1]).src(Hdtv).c(Xvid).g("LOL").ct(Avi)),
        name("Show.Name.S01E01.720p.HDTV.x264-GRP[eztv].mkv").want(w("Show Name").s(&[1]).e(&[1]).q(P720).src(Hdtv).c(H264).g("GRP").ct(Mkv)),
        name("Movie.2020.720p.HDRip.x264.Eng.Subs.mkv").want(w("Movie").y(2020).q(P720).src(HdRip).c(H264).ct(Mkv)),
        name("Movie.Name.2019.1080p.BluRay.x264.HINDI.ENGLISH.mkv").want(w("Movie Name").y(2019).q(P1080).src(BluRay).c(H264).l(&["hi", "en"]).ct(Mkv)),
        name("Movie Name 2019 Hindi Dubbed 720p.mkv").want(w("Movie Name").y(2019).q(P720).l(&["hi"]).ct(Mkv)),
        name("Movie Name 2019 HDR10 DV 2160p.mkv").want(w("Movie Name").y(2019).q(P2160).hdr(&[Hdr10, DolbyVision]).ct(Mkv)),
        name("Movie.Name.2019.HLG.2160p.mkv").want(w("Movie Name").y(2019).q(P2160).hdr(&[Hlg]).ct(Mkv)),
        name("The.Matrix.Resurrections.2021.2160p.HMAX.WEB-DL.DDP5.1.Atmos.DV.HEVC-CMRG.mkv").want(w("The Matrix Resurrections").y(2021).q(P2160).src(WebDl).c(H265).hdr(&[DolbyVision]).a(&[Eac3, Atmos]).ch("5.1").g("CMRG").ct(Mkv)),
        post(None, Some("Oppenheimer 2023 | 1080p | Hindi + English")).want(w("Oppenheimer").y(2023).q(P1080).l(&["hi", "en"])),
        post(None, Some("📺 House of the Dragon\nSeason 2 Episode 3\n🎞 Quality: 1080p\n📁 Size: 1.5GB")).want(w("House of the Dragon").s(&[2]).e(&[3]).q(P1080)),
        post(Some("Sintel.2010.1080p.mkv"), Some("some caption")).want(w("Sintel").y(2010).q(P1080).ct(Mkv)),
        post(None, None).want(w("")),
        post(Some("video_2024-01-01_12-30-45.mp4"), Some("Big Buck Bunny (2008) 4K")).want(w("Big Buck Bunny").y(2008).q(P2160).ct(Mp4)),
        post(None, Some("✅ New Upload ✅\n🎬 Name: The Godfather (1972)\n🔊 Audio: English\n💿 Quality: 1080p BluRay\n👉 Join @Movies for more")).want(w("The Godfather").y(1972).q(P1080).src(BluRay).l(&["en"])),
        post(Some("IMG_4521.MOV"), Some("Interstellar 2014 IMAX 2160p")).want(w("Interstellar").y(2014).q(P2160).ct(Mov)),
        post(Some("1917.mkv"), Some("Watch now!")).want(w("1917").ct(Mkv)),
    ]
}

#[test]
fn table() {
    let cases = cases();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(input, want)| {
            let got = input.run();
            (got != *want)
                .then(|| format!("{}\n   want {want:?}\n   got  {got:?}", input.describe()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn series_and_movies() {
    assert!(parse("Show.S01E01.mkv").is_series());
    assert!(parse("The.Sopranos.Complete.Series.1080p").is_series());
    assert!(!parse("Movie.2020.1080p.mkv").is_series());
}

#[test]
fn older_stored_names_without_complete_still_decode() {
    let json = r#"{"title":"X","year":null,"seasons":[],"episodes":[],"quality":null,"source":null,
        "codec":null,"hdr":[],"audio":[],"channels":null,"languages":[],"group":null,"container":null}"#;
    let p: ParsedName = serde_json::from_str(json).unwrap();
    assert!(!p.complete);
}

#[test]
fn long_multibyte_names_are_cut_at_a_char_boundary() {
    let long = "é".repeat(MAX_NAME_BYTES) + ".2020.mkv";
    let p = parse(&long);
    assert!(p.title.len() <= MAX_NAME_BYTES && p.title.chars().all(|c| c == 'é'));
    assert_eq!(p.container, None);
}

#[test]
fn hostile_ranges_stay_small() {
    let p = parse("Show.S01E001-E9999.mkv");
    assert_eq!(p.episodes, vec![1, 9999]);
    let p = parse("Show.S01-S200.mkv");
    assert_eq!(p.seasons.len(), 200);
}

/// Strings made of the pieces release names are made of, so the properties reach the
/// rules and not only the tokenizer.
fn release_like() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "S01",
        "E02",
        "s1e2",
        "1x02",
        "-",
        " - ",
        ".",
        "_",
        "[",
        "]",
        "(",
        ")",
        "2019",
        "1917",
        "1080p",
        "4K",
        "WEB",
        "DL",
        "-DL",
        "H",
        "264",
        "DDP5",
        "1",
        "5.1",
        "Season",
        "Episode",
        "Complete",
        "Series",
        "Hindi",
        "ENG",
        "MULTi",
        "@chan",
        "#tag",
        "www.",
        "site.com",
        "🎬",
        "é",
        "千",
        "x",
        "\n",
        "Title",
        "of",
        "-GRP",
        ".mkv",
        "Cut",
        "EXTENDED",
        "TS",
        "Dual",
        "Audio",
        "E01-E99999",
        "9999",
        "0",
        "v2",
        "+",
        "&",
        "'",
        ":",
        "\u{200b}",
        "\u{301}",
    ]);
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn title_is_clean(t: &str) -> bool {
    t.trim() == t && !t.contains("  ") && !t.contains('_') && !t.contains("..") && !t.contains('\n')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_is_deterministic(s in any::<String>()) {
        let p = parse(&s);
        prop_assert_eq!(&p, &parse(&s));
        prop_assert!(title_is_clean(&p.title), "title {:?}", p.title);
    }

    #[test]
    fn release_like_names_parse_cleanly(s in release_like()) {
        let p = parse(&s);
        prop_assert_eq!(&p, &parse(&s));
        prop_assert!(title_is_clean(&p.title), "title {:?}", p.title);
        prop_assert!(p.episodes.len() <= 2 * 201 && p.seasons.len() <= 2 * 201);
    }

    #[test]
    fn posts_never_panic(f in proptest::option::of(release_like()), c in proptest::option::of(release_like())) {
        let p = parse_post(f.as_deref(), c.as_deref());
        prop_assert_eq!(&p, &parse_post(f.as_deref(), c.as_deref()));
        prop_assert!(title_is_clean(&p.title), "title {:?}", p.title);
    }
}
