# http-endpoints: /livez, /readyz (200, then 503 when full), /metrics in
# Prometheus text, the demo page at /, and 1013 for a session past the
# limit.
. tests/lib.sh
start_server --max-sessions 1
code() { curl -s -o "$NF_TMP/body" -w '%{http_code}' "$BASE$1"; }
[ "$(code /livez)" = 200 ] || fail "/livez"
[ "$(code /readyz)" = 200 ] || fail "/readyz not ready"
[ "$(code /metrics)" = 200 ] || fail "/metrics"
grep -q '^# TYPE nf_frames_received_total counter' "$NF_TMP/body" || fail "metrics text"
grep -q 'nf_stage_seconds_bucket{stage="predict",le="+Inf"}' "$NF_TMP/body" || fail "histogram"
[ "$(code /)" = 200 ] || fail "/ (demo page)"
grep -qi '<html' "$NF_TMP/body" || fail "/ is not the demo page"
curl -s -D "$NF_TMP/headers" -o /dev/null "$BASE/"
grep -qi "^content-security-policy: default-src 'self'" "$NF_TMP/headers" || fail "no CSP header"
grep -qi '<script[^>]*src=' "$NF_TMP/body" || fail "the page loads no script file"
sed 's/<script[^>]*src=[^>]*>//g' "$NF_TMP/body" | grep -qi '<script' && fail "inline script in the page"
[ "$(code /no-such-file)" = 404 ] || fail "404 expected"
"$BUILD/nf-probe" "$URL" --send none --timeout 10 >"$NF_TMP/p1.out" &
P1=$!
i=0
while [ "$(metric nf_sessions)" != 1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(code /readyz)" = 503 ] || fail "/readyz should be 503 when full"
curl -s "$BASE/metrics" | grep -q '^nf_session_drift{session="' || fail "no per-session drift in /metrics"
out=$("$BUILD/nf-probe" "$URL" --send none --timeout 10)
case "$out" in "close 1013 "*) ;; *) fail "second session: expected 1013, got '$out'" ;; esac
stop_server
wait $P1
grep -q '^close 1001 ' "$NF_TMP/p1.out" || fail "p1: $(cat "$NF_TMP/p1.out")"
exit 0
