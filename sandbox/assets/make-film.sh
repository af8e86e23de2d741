#!/usr/bin/env bash
# Makes film.mp4, the sandbox's demo film: 30 s of ffmpeg's test pattern with a 440 Hz tone,
# H.264 (main profile, yuv420p) + AAC in MP4 with the index at the front (faststart), so a
# browser plays it from the first bytes and seeks with Range requests; a keyframe every 2 s
# gives seeking something to land on. Run once; the output is committed (ffmpeg is not
# needed to build or run the sandbox). Needs ffmpeg with libx264 (Debian's has it).
set -euo pipefail
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=640x360:rate=24:duration=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=30" \
    -c:v libx264 -profile:v main -pix_fmt yuv420p -preset veryslow -crf 30 -g 48 \
    -c:a aac -b:a 64k -ac 2 \
    -movflags +faststart -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
    -metadata title="tgcdn sandbox demo" \
    film.mp4
ls -l film.mp4
