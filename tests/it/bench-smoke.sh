# bench-smoke: nf-bench drives 2 streams for 2 s against a real server and
# writes a JSON report whose figures are all there and consistent (replies
# measured, p50 <= p99 <= max, frame accounting adds up, no connection
# errors; busy sessions skipped anchors, counted in /metrics); bad usage
# exits 2, an unreachable server exits 1 with the reason in the JSON, and
# plot-bench.py draws the report.
. tests/lib.sh
IN=$(clip vtest-120-320x240 120 320:240)
"$BUILD/nf-bench" --help | grep -q usage || fail "nf-bench --help prints no usage"
"$BUILD/nf-bench" --input "$IN" --streams 0 2>"$NF_TMP/err" >/dev/null
[ $? -eq 2 ] || fail "--streams 0 did not exit 2"
grep -q -- '--streams' "$NF_TMP/err" || fail "bad --streams message: $(cat "$NF_TMP/err")"

start_server --model models/default.safetensors
"$BUILD/nf-bench" --url "$URL" --input "$IN" --streams 2 --seconds 2 \
    --warmup 0.5 --label smoke --quiet --json "$NF_TMP/bench.json" \
    >"$NF_TMP/bench.out" || { cat "$NF_TMP/bench.out"; fail "nf-bench failed"; }
cat "$NF_TMP/bench.out"
grep -q '^throughput: ' "$NF_TMP/bench.out" || fail "no throughput line"
python3 bench/plot-bench.py "$NF_TMP/bench.json" -o "$NF_TMP/bench.svg" ||
    fail "plot-bench.py failed"
# One Python for every check: each start costs seconds on a busy machine.
python3 - "$NF_TMP/bench.json" "$NF_TMP/bench.svg" <<'PY' || fail "bench JSON check failed"
import json, sys, xml.etree.ElementTree as ET
ET.parse(sys.argv[2])  # plot-bench.py wrote well-formed SVG
d = json.load(open(sys.argv[1]))
for k in ("command", "label", "backend", "frame", "streams", "measured_s",
          "total", "per_stream", "connection_errors", "latency_us_sorted"):
    assert k in d, "missing " + k
assert d["label"] == "smoke" and d["streams"] == 2, (d["label"], d["streams"])
assert d["backend"], "no backend name from the welcome"
assert (d["frame"]["width"], d["frame"]["height"]) == (320, 240), d["frame"]
assert d["connection_errors"] == 0, d["connection_errors"]
assert 1.9 < d["measured_s"] < 2.1, d["measured_s"]
t = d["total"]
lat = t["latency_ms"]
print("total:", t["frames_sent"], "sent,", t["replies"], "replies,",
      t["dropped"], "dropped; latency", lat)
assert t["replies"] > 0
assert t["frames_sent"] == t["replies"] + t["dropped"], t
assert 0 < lat["p50"] <= lat["p99"] <= lat["max"], lat
assert t["throughput_fps"] > 0 and 0 <= t["drop_ratio"] <= 1, t
stages = t["stage_ms"]
for k in ("queue", "decode", "predict", "encode", "server", "overhead"):
    assert stages[k]["p50"] <= stages[k]["p95"], (k, stages[k])
assert 0 < stages["predict"]["p50"] <= stages["server"]["p50"] < lat["max"]
assert len(d["per_stream"]) == 2
assert sum(s["replies"] for s in d["per_stream"]) == t["replies"]
for s in d["per_stream"]:
    assert s["replies"] > 0 and s["error"] is None, s
    assert s["close_code"] == 1000, s["close_code"]
l = d["latency_us_sorted"]
assert len(l) == t["replies"] and l == sorted(l), "latencies not sorted"
assert abs(l[-1] / 1000 - lat["max"]) < 0.01, (l[-1], lat["max"])
PY
# In the closed loop each stream's next frame waits while its anchor would
# run, so busy sessions skip anchors (anchor_skip, docs/TEMPORAL.md) and
# /metrics counts them; at most 4 in a row, so anchors still run.
skipped=$(curl -s "$BASE/metrics" | sed -n 's/^nf_anchors_skipped_total \([0-9]*\)$/\1/p')
echo "anchors skipped: $skipped"
[ -n "$skipped" ] && [ "$skipped" -gt 0 ] || fail "no anchor skipped in the closed loop (/metrics: '$skipped')"
curl -s "$BASE/metrics" | grep -q '^# TYPE nf_anchors_skipped_total counter' ||
    fail "nf_anchors_skipped_total has no TYPE line"
stop_server

# The server is gone now: the connection failure is reported and counted.
"$BUILD/nf-bench" --url "$URL" --input "$IN" --seconds 0.5 --warmup 0 \
    --quiet --json "$NF_TMP/down.json" >/dev/null 2>"$NF_TMP/err"
[ $? -eq 1 ] || fail "an unreachable server did not exit 1"
grep -q 'cannot connect' "$NF_TMP/err" || fail "no clear message: $(cat "$NF_TMP/err")"
grep -q '"connection_errors": 1' "$NF_TMP/down.json" ||
    fail "connection error not counted in the JSON"
exit 0
