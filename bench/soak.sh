#!/bin/sh
# soak.sh - `make soak`: one nextframe server under a steady load for a
# long time, checked for memory growth, crashes and lost frames.
#
# build/nf-bench drives 8 streams (320x240 at 10 fps each, open loop) for
# SOAK_MINUTES (default 30) against one server. Every 10 s this script
# samples the server's resident memory (VmRSS in /proc/PID/status) and its
# /metrics frame counters and prints a progress line. At the end it writes
# $OUT/soak.txt (the summary, one "name: value unit" line per figure),
# $OUT/soak.csv (the samples) and $OUT/soak-rss.svg (RSS over time), and
# checks:
#
#   memory      RSS at the end is at most 5% above RSS right after the
#               warm-up (the first quarter of the run, at most 2 minutes);
#   crashes     none: the server is alive at the end, no stream failed or
#               was closed by the server, and SIGTERM then ends the
#               server with status 0;
#   accounting  every frame is answered or dropped for a counted reason:
#               on the server, received = sent + dropped by reason
#               (superseded, slow_reader, closed, error); nf-bench's sent
#               equals the server's received, and its replies (late ones
#               included) the server's sent.
#
# Why 320x240 at 10 fps: the server and nf-bench share this machine's two
# cores (nf-bench's 8 threads take CPU from the model's OpenMP threads).
# Measured here (15 s runs of 8 streams, 2026-11-25, other work on the
# machine): 5 fps each, 40 replies/s, nothing dropped, p99 33 ms; 10 fps,
# 63-78 replies/s of 80, 0.1-1.5% dropped (superseded), p50 11-96 ms; 15
# fps, 69 replies/s of 120: saturated. 10 fps is the most this machine
# serves with the model keeping up; it runs busy enough that frames are
# sometimes superseded, so the drop accounting is exercised too.
# 640x480 costs five times as much per frame (11 ms): 8 streams of it
# would overload these two cores at any useful rate.
#
#   sh bench/soak.sh        (make soak)
#
# Environment: BUILD (build), OUT (build/soak), SOAK_MINUTES (30, may be
# fractional), SOAK_STREAMS (8), SOAK_SIZE (320x240), SOAK_FPS (10),
# SOAK_SAMPLE_S (10), MODEL (models/toon.safetensors).
# Exit status: 0 every check holds, 1 one failed, 2 bad set-up.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
OUT=${OUT:-build/soak}
MINUTES=${SOAK_MINUTES:-30}
STREAMS=${SOAK_STREAMS:-8}
SIZE=${SOAK_SIZE:-320x240}
FPS=${SOAK_FPS:-10}
STEP=${SOAK_SAMPLE_S:-10}
MODEL=${MODEL:-models/toon.safetensors}
VTEST=/usr/share/doc/opencv-doc/examples/data/vtest.avi
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
case "${1:-}" in
-h | --help)
    # The header comment, up to the first line of code.
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
    ;;
"") ;;
*) echo "soak.sh: no arguments (see --help)" >&2; exit 2 ;;
esac

. bench/lib.sh
die() {
    echo "soak.sh: $*" >&2
    exit 2
}
for p in nextframe nf-bench; do
    [ -x "$BUILD/$p" ] || die "$BUILD/$p missing: run make first"
done
SECS=$(awk -v m="$MINUTES" 'BEGIN { s = m * 60; if (s >= 10) printf "%d", s }')
[ -n "$SECS" ] || die "SOAK_MINUTES=$MINUTES: expected at least 10 seconds' worth"
case "$SIZE" in *[!0-9x]* | x* | *x | *x*x*) die "SOAK_SIZE=$SIZE: expected WxH" ;; esac
case "$STREAMS$STEP" in *[!0-9]*) die "SOAK_STREAMS and SOAK_SAMPLE_S are whole numbers" ;; esac
WARM=$((SECS / 4))
[ $WARM -gt 120 ] && WARM=120
mkdir -p "$OUT"
CSV=$OUT/soak.csv
TXT=$OUT/soak.txt
SVG=$OUT/soak-rss.svg

CLIP=$OUT/vtest-$SIZE.y4m
if [ ! -s "$CLIP" ]; then
    [ -f "$VTEST" ] || die "$VTEST missing (install opencv-doc)"
    ffmpeg -nostdin -loglevel error -y -i "$VTEST" -frames:v 150 \
        -vf "scale=$(echo "$SIZE" | tr x :)" -pix_fmt yuv420p \
        -f yuv4mpegpipe "$CLIP.tmp" && mv "$CLIP.tmp" "$CLIP" ||
        die "ffmpeg could not convert $VTEST"
fi

SRV="" BENCH=""
cleanup() {
    [ -n "$BENCH" ] && kill "$BENCH" 2>/dev/null
    [ -n "$SRV" ] && kill -9 "$SRV" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# More streams than the default per-address limit need the limit raised.
EXTRA=""
[ "$STREAMS" -gt 8 ] && EXTRA="--max-sessions-per-addr $STREAMS --max-sessions $STREAMS"
# shellcheck disable=SC2086
start_srv 150 "$OUT/server.out" "$BUILD/nextframe" --port 0 --model "$MODEL" $EXTRA ||
    die "the server did not start"
# counters: "sessions received sent superseded slow_reader closed error"
counters() {
    curl -s --max-time 5 "$BASE/metrics" | awk '
        /^nf_sessions /                  { s = $2 }
        /^nf_frames_received_total /     { r = $2 }
        /^nf_frames_sent_total /         { t = $2 }
        /^nf_frames_dropped_total\{reason="superseded"\}/  { d1 = $2 }
        /^nf_frames_dropped_total\{reason="slow_reader"\}/ { d2 = $2 }
        /^nf_frames_dropped_total\{reason="closed"\}/      { d3 = $2 }
        /^nf_frames_dropped_total\{reason="error"\}/       { d4 = $2 }
        END { printf "%d %d %d %d %d %d %d\n", s, r, t, d1, d2, d3, d4 }'
}

echo "soak: $STREAMS streams, $SIZE at $FPS fps each, $SECS s (warm-up $WARM s), server pid $SRV, $URL"
echo "soak: started $(date -u '+%Y-%m-%d %H:%M:%S UTC'); results in $OUT"
echo "t_s,rss_kib,sessions,received,sent,superseded,slow_reader,closed,error" >"$CSV"
"$BUILD/nf-bench" --url "$URL" --input "$CLIP" --streams "$STREAMS" --fps "$FPS" \
    --seconds "$SECS" --warmup 0 --label soak --quiet --json "$OUT/soak-bench.json" \
    >"$OUT/soak-bench.txt" 2>&1 &
BENCH=$!
T0=$(date +%s)
k=0
crashed=0
while :; do
    now=$(date +%s)
    t=$((now - T0))
    if ! kill -0 "$SRV" 2>/dev/null; then
        crashed=1
        echo "soak: $t s: the server is gone"
        break
    fi
    set -- $(counters)
    rss=$(rss_kb "$SRV")
    echo "$t,$rss,$1,$2,$3,$4,$5,$6,$7" >>"$CSV"
    echo "soak: $t/$SECS s  rss $((rss / 1024)) MiB  sessions $1  frames in $2 out $3 dropped $(($4 + $5 + $6 + $7))"
    kill -0 "$BENCH" 2>/dev/null || break
    k=$((k + 1))
    # Sleep to the next multiple of STEP since the start (no drift).
    wait_s=$((T0 + k * STEP - $(date +%s)))
    [ $wait_s -gt 0 ] && sleep $wait_s
done
wait "$BENCH"
bench_rc=$?
BENCH=""

# Every session ends; the counters settle.
i=0
while [ $crashed = 0 ] && [ $i -lt 50 ]; do
    set -- $(counters)
    [ "$1" = 0 ] && break
    sleep 0.1
    i=$((i + 1))
done
kill -0 "$SRV" 2>/dev/null || crashed=1
final=$(counters)
rss_end=$(rss_kb "$SRV")

# SIGTERM: a clean exit with status 0 within 5 s.
stop_rc=none
if [ $crashed = 0 ]; then
    kill -TERM "$SRV"
    i=0
    while kill -0 "$SRV" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$SRV" 2>/dev/null; then
        stop_rc=hung
    else
        wait "$SRV"
        stop_rc=$?
    fi
fi
SRV=""

"$PY" - "$CSV" "$OUT/soak-bench.json" "$TXT" "$SVG" "$WARM" "$crashed" \
    "$bench_rc" "$stop_rc" "$final" "${rss_end:-0}" "$STREAMS" "$SIZE" "$FPS" "$SECS" <<'PY'
"""Checks the soak run and writes the summary (the plot: plot-rss.py)."""
import csv
import json
import sys

(csv_path, bench_path, txt_path, svg_path, warm, crashed, bench_rc, stop_rc,
 final, rss_end, streams, size, fps, secs) = sys.argv[1:]
warm, crashed, secs = int(warm), int(crashed), int(secs)
rows = [dict((k, int(v or 0)) for k, v in r.items())
        for r in csv.DictReader(open(csv_path))]
lines, failed = [], []


def say(name, value, unit=""):
    lines.append(f"{name}: {value}{' ' + unit if unit else ''}")


def check(ok, what):
    lines.append(f"check: {'PASS' if ok else 'FAIL'} {what}")
    if not ok:
        failed.append(what)


say("streams", streams)
say("frame_size", size)
say("fps_per_stream", fps, "fps")
say("duration", secs, "s")
say("warmup", warm, "s")
say("samples", len(rows))

# Memory: the first sample at or after the warm-up against the last one,
# both with every stream running (the very last sample may come after
# nf-bench closed its streams, when the server has freed their memory).
after = [r for r in rows if r["t_s"] >= warm and r["rss_kib"] > 0 and
         r["sessions"] == int(streams)]
if after:
    base, last = after[0]["rss_kib"], after[-1]["rss_kib"]
    peak = max(r["rss_kib"] for r in after)
    growth = 100.0 * (last - base) / base
    say("rss_after_warmup", f"{base / 1024:.1f}", "MiB")
    say("rss_end", f"{last / 1024:.1f}", "MiB")
    say("rss_max_after_warmup", f"{peak / 1024:.1f}", "MiB")
    say("rss_growth", f"{growth:.2f}", "%")
    say("rss_max_growth", f"{100.0 * (peak - base) / base:.2f}", "%")
    check(growth <= 5.0, f"RSS grew {growth:.2f}% after the warm-up (at most 5%)")
    say("rss_streams_closed", f"{int(rss_end) / 1024:.1f}", "MiB")
else:
    base = None
    check(False, "no RSS sample after the warm-up with every stream open")

# Crashes.
try:
    bench = json.load(open(bench_path))
except (OSError, ValueError):
    bench = None
conn_err = bench["connection_errors"] if bench else -1
closes = sorted({s["close_code"] for s in bench["per_stream"]}) if bench else []
say("server_crashes", crashed)
say("nf_bench_exit", bench_rc)
say("stream_failures", conn_err)
say("stream_close_codes", " ".join(map(str, closes)) or "none")
say("sigterm_exit", stop_rc)
check(crashed == 0, "the server was alive at the end")
check(bench_rc == "0" and conn_err == 0,
      "no stream failed or was closed by the server")
check(stop_rc == "0", "SIGTERM ended the server with status 0")

# Accounting.
_, recv, sent, sup, slow, closed, err = map(int, final.split())
dropped = sup + slow + closed + err
say("server_frames_received", recv)
say("server_frames_sent", sent)
say("server_dropped_superseded", sup)
say("server_dropped_slow_reader", slow)
say("server_dropped_closed", closed)
say("server_dropped_error", err)
check(recv == sent + dropped,
      f"server: received {recv} = sent {sent} + dropped {dropped} "
      f"(superseded {sup}, slow_reader {slow}, closed {closed}, error {err})")
if bench:
    t = bench["total"]
    say("bench_frames_sent", t["frames_sent"])
    say("bench_replies", t["replies"])
    say("bench_late_replies", t["late_replies"])
    say("bench_dropped", t["dropped"])
    say("bench_unanswered", t["unanswered"])
    say("bench_skipped_by_client", t["skipped_by_client"])
    say("bench_server_dropped", t["server_dropped"])
    say("throughput", f"{t['throughput_fps']:.1f}", "fps")
    for p in ("p50", "p95", "p99", "max"):
        say(f"latency_{p}", f"{t['latency_ms'][p]:.1f}", "ms")
    check(t["frames_sent"] == recv,
          f"nf-bench sent {t['frames_sent']}, the server received {recv}")
    check(t["replies"] + t["late_replies"] == sent,
          f"nf-bench got {t['replies']} replies + {t['late_replies']} late, "
          f"the server sent {sent}")
    check(t["frames_sent"] == t["replies"] + t["dropped"],
          f"nf-bench: sent {t['frames_sent']} = replies {t['replies']} + "
          f"dropped {t['dropped']}")
    check(t["dropped"] == dropped + t["late_replies"],
          f"nf-bench's {t['dropped']} dropped = the server's {dropped} "
          f"dropped by reason + {t['late_replies']} answered late")
else:
    check(False, "no nf-bench JSON")
say("result", "FAIL" if failed else "PASS")
open(txt_path, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))

sys.exit(1 if failed else 0)
PY
rc=$?
"$PY" bench/plot-rss.py "$CSV" -o "$SVG" --warmup-s "$WARM" --limit-pct 5 \
    --title "nextframe soak: server RSS, $STREAMS streams of $SIZE at $FPS fps" &&
    echo "soak: wrote $TXT, $CSV and $SVG"
exit $rc
