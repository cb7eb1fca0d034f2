# scale-out: two nextframe instances behind HAProxy, configured by
# deploy/haproxy.cfg itself (only addresses, ports, paths, logging and two
# limits rewritten), all on loopback. Shows that sessions
# spread across both instances; that an instance made full behind the
# balancer's back (its /readyz answers 503) is marked DOWN and skipped for
# new sessions while its open sessions keep streaming; that with both full
# a new session is refused by HAProxy with 503; that a freed instance takes
# sessions again; that viewers (/mjpeg) reach the instance of their
# session; that the balancer limits sessions per client address (429); that
# TLS ends at the balancer; and that no session loses a frame.
# docs/DEPLOY.md describes the set-up. Skips when haproxy is not installed.
. tests/lib.sh

HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || skip "SKIP: haproxy not installed (apt-get install haproxy)"
CLIP=$(clip vtest-100-160x120 100 160:120)
MAX=2      # --max-sessions of each instance
PER_ADDR=4 # the balancer's sessions per client address (all are 127.0.0.1)
TIMEOUT=10 # seconds to wait for any one state change

PIDS=""
scale_cleanup() {
    for p in $PIDS; do
        kill -9 "$p" 2>/dev/null
    done
    cleanup
}
trap scale_cleanup EXIT
trap 'exit 143' HUP INT TERM

# free_ports N: N different TCP ports free on 127.0.0.1 right now.
free_ports() {
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# start_instance NAME: starts one nextframe; sets NAME_PID and NAME_BASE.
start_instance() {
    "$BUILD/nextframe" --host 127.0.0.1 --port 0 --threads 1 \
        --max-sessions $MAX --idle-timeout 0 \
        >"$NF_TMP/$1.out" 2>"$NF_TMP/$1.err" &
    pid=$!
    eval "$1_PID=$pid"
    PIDS="$PIDS $pid"
    i=0
    while ! grep -q '^listening on http://' "$NF_TMP/$1.out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$NF_TMP/$1.err"; fail "$1 did not start"; }
        [ $i -lt 100 ] || fail "$1 did not start in 10 s"
        sleep 0.1
        i=$((i + 1))
    done
    eval "$1_BASE=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$NF_TMP/$1.out")"
}

# sessions BASE: the instance's open sessions, from its /readyz body.
sessions() {
    curl -s "$1/readyz" | sed -n 's|^sessions \([0-9]*\)/.*|\1|p'
}

# hap_status SERVER: its state in backend nextframe_stream (UP, DOWN, ...).
hap_status() {
    curl -s "http://127.0.0.1:$STATS_PORT/stats;csv" | awk -F, -v s="$1" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == "nextframe_stream" && $2 == s { print $col["status"] }'
}

# wait_for DESCRIPTION COMMAND VALUE: polls until COMMAND prints VALUE.
wait_for() {
    i=0
    while [ "$(eval "$2")" != "$3" ]; do
        [ $i -lt $((TIMEOUT * 10)) ] ||
            fail "$1: waited ${TIMEOUT} s for '$2' to be '$3', it is '$(eval "$2")'"
        sleep 0.1
        i=$((i + 1))
    done
}

counts() { echo "$(sessions "$A_BASE") $(sessions "$B_BASE")"; }

# client NAME: a session through the balancer, 10 frames/s, one in flight,
# until SIGINT; its statistics land in $NF_TMP/NAME.json.
client() {
    "$BUILD/nf-client" "$FRONT" "$CLIP" --loop --fps 10 --inflight 1 \
        --json "$NF_TMP/$1.json" >"$NF_TMP/$1.out" 2>&1 &
    eval "$1_PID=$!"
    PIDS="$PIDS $!"
}

# upgrade URL: the HTTP status a WebSocket upgrade request to URL gets
# (101 when a session opened; curl gives up after 2 s).
upgrade() {
    curl -sk --max-time 2 -o "$NF_TMP/upgrade.body" -w '%{http_code}' \
        -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
        -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
        -H 'Sec-WebSocket-Protocol: nextframe.v1' "$1"
}

# viewer NAME BASE: a viewer's requests for a session of instance NAME
# (at BASE) all reach NAME. The newest session from 127.0.0.1 went to NAME,
# and HAProxy routes /mjpeg by the client address's newest session; round
# robin would send every other request to the other instance, which
# answers 404.
viewer() {
    sid=$(curl -s "$2/metrics" | sed -n 's/^nf_session_drift{session="\([^"]*\)"}.*/\1/p' | head -n 1)
    [ -n "$sid" ] || fail "no session id in $1's metrics"
    for i in 1 2 3 4; do
        code=$(curl -s --max-time 0.5 -o /dev/null -w '%{http_code}' \
            "http://127.0.0.1:$FRONT_PORT/mjpeg?session=$sid")
        [ "$code" = 200 ] || fail "viewer request $i for session $sid on $1: HTTP $code"
    done
    echo "viewer: 4 of 4 /mjpeg?session=$sid requests through the balancer reached $1"
}

# The two instances.
start_instance A
start_instance B
echo "instance A: $A_BASE, instance B: $B_BASE, $MAX sessions each"

# The balancer, from the shipped configuration.
# shellcheck disable=SC2046 # three numbers, split on purpose
set -- $(free_ports 3)
FRONT_PORT=$1 TLS_PORT=$2 STATS_PORT=$3
CFG=$NF_TMP/haproxy.cfg
if command -v openssl >/dev/null; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -days 1 -subj /CN=localhost -keyout "$NF_TMP/key.pem" \
        -out "$NF_TMP/cert.pem" 2>/dev/null || fail "openssl req"
    cat "$NF_TMP/cert.pem" "$NF_TMP/key.pem" >"$NF_TMP/nextframe.pem"
    TLS_BIND="bind 127.0.0.1:$TLS_PORT ssl crt $NF_TMP/nextframe.pem"
else
    TLS_PORT=""
    TLS_BIND="# (no openssl: no TLS listener)"
fi
# Not root, no chroot, no daemon, log to stdout; the rest as shipped.
sed -e '/^ *\(chroot\|user\|group\|daemon\)\( \|$\)/d' \
    -e 's|^\( *\)log /dev/log .*|\1log stdout format raw local0|' \
    -e "s|/run/haproxy/admin.sock|$NF_TMP/admin.sock|" \
    -e "s|^\( *\)bind :80\$|\1bind 127.0.0.1:$FRONT_PORT|" \
    -e "s|^\( *\)bind :443 ssl crt [^ ]*|\1$TLS_BIND|" \
    -e "s|^\( *\)bind 127.0.0.1:8404\$|\1bind 127.0.0.1:$STATS_PORT|" \
    -e "s|^\( *default-server .*\) maxconn 16\$|\1 maxconn $MAX|" \
    -e "s|{ sc0_conn_cur gt 8 }|{ sc0_conn_cur gt $PER_ADDR }|" \
    -e "s|10.0.0.11:8080|${A_BASE#http://}|" \
    -e "s|10.0.0.12:8080|${B_BASE#http://}|" \
    deploy/haproxy.cfg >"$CFG"
for want in "127.0.0.1:$FRONT_PORT" "127.0.0.1:$STATS_PORT" "maxconn $MAX" \
    "sc0_conn_cur gt $PER_ADDR" \
    "${A_BASE#http://}" "${B_BASE#http://}"; do
    grep -q "$want" "$CFG" || fail "deploy/haproxy.cfg changed: no '$want' after rewriting"
done
"$HAPROXY" -c -q -f "$CFG" || fail "haproxy -c rejects the configuration"
"$HAPROXY" -db -f "$CFG" >"$NF_TMP/haproxy.log" 2>&1 &
HAP_PID=$!
PIDS="$PIDS $HAP_PID"
FRONT="ws://127.0.0.1:$FRONT_PORT/v1/stream"
wait_for "stats page" "curl -s -o /dev/null -w %{http_code} 'http://127.0.0.1:$STATS_PORT/stats;csv'" 200
wait_for "nf1 healthy" "hap_status nf1" UP
wait_for "nf2 healthy" "hap_status nf2" UP
echo "haproxy: ws://127.0.0.1:$FRONT_PORT, both instances UP"

# TLS ends at the balancer: the WebSocket upgrade works over https.
if [ -n "$TLS_PORT" ]; then
    code=$(upgrade "https://127.0.0.1:$TLS_PORT/v1/stream")
    [ "$code" = 101 ] || fail "wss through the balancer: HTTP $code, expected 101"
    echo "TLS: the WebSocket upgrade over https through the balancer answered 101"
    wait_for "the TLS probe's session to end" counts "0 0"
fi

# 1. Two sessions through the balancer land on different instances.
client c1
wait_for "c1 open" "counts | awk '{ print \$1 + \$2 }'" 1
c1_on=$( [ "$(sessions "$A_BASE")" = 1 ] && echo A || echo B)
client c2
wait_for "c2 open" "counts | awk '{ print \$1 + \$2 }'" 2
[ "$(counts)" = "1 1" ] || fail "two sessions not spread: A B = $(counts)"
echo "spread: c1 on $c1_on, c2 on the other; sessions A B = $(counts)"

# 2. A session opened on A directly (another balancer, a direct client)
# makes A full: its /readyz answers 503, HAProxy marks it DOWN, and its
# session through the balancer keeps streaming.
"$BUILD/nf-probe" "ws://${A_BASE#http://}/v1/stream" --send none --timeout 60 \
    >"$NF_TMP/direct.out" 2>&1 &
DIRECT_PID=$!
PIDS="$PIDS $DIRECT_PID"
wait_for "A full" "sessions $A_BASE" $MAX
code=$(curl -s -o "$NF_TMP/readyz" -w '%{http_code}' "$A_BASE/readyz")
[ "$code" = 503 ] && [ "$(head -n 1 "$NF_TMP/readyz")" = full ] ||
    fail "A full: /readyz answered $code $(head -n 1 "$NF_TMP/readyz")"
wait_for "nf1 marked DOWN" "hap_status nf1" DOWN
echo "A full: /readyz 503 '$(head -n 1 "$NF_TMP/readyz")', HAProxy marks nf1 DOWN"
a_metric() { curl -s "$A_BASE/metrics" | awk '$1 == "nf_frames_sent_total" { print $2 }'; }
sent0=$(a_metric)
wait_for "A's balanced session streaming while nf1 is DOWN" \
    "[ \$(a_metric) -ge $((sent0 + 5)) ] && echo yes" yes
echo "A's session through the balancer streams on while nf1 is DOWN ($sent0 -> $(a_metric) frames sent by A)"

# 3. A new session through the balancer skips the full instance.
client c3
wait_for "c3 open" "counts | awk '{ print \$1 + \$2 }'" $((2 * MAX))
[ "$(counts)" = "$MAX $MAX" ] || fail "c3 did not go to B: A B = $(counts)"
wait_for "nf2 marked DOWN" "hap_status nf2" DOWN
echo "skip: c3 went to B although A had only one balanced session; A B = $(counts), both DOWN"
viewer B "$B_BASE"

# 4. Both full: a new session is refused by HAProxy with 503 before any
# instance sees it.
code=$(upgrade "http://127.0.0.1:$FRONT_PORT/v1/stream")
[ "$code" = 503 ] || fail "both full: the balancer answered $code, expected 503"
"$BUILD/nf-client" "$FRONT" "$CLIP" --frames 5 --timeout 5 >"$NF_TMP/refused.out" 2>&1 &&
    fail "both full: nf-client succeeded"
[ "$(counts)" = "$MAX $MAX" ] || fail "both full: an instance took a session: A B = $(counts)"
echo "full: the upgrade got HTTP $code ($(grep -o 'No server[^<]*' "$NF_TMP/upgrade.body" | head -n 1))"
echo "full: nf-client said: $(tr '\n' ' ' <"$NF_TMP/refused.out")"

# 5. A frees a slot: it is UP again and takes the next session.
kill "$DIRECT_PID"
wait "$DIRECT_PID" 2>/dev/null
wait_for "A freed" "sessions $A_BASE" $((MAX - 1))
wait_for "nf1 back UP" "hap_status nf1" UP
client c4
wait_for "c4 open" "counts" "$MAX $MAX"
echo "recovered: nf1 UP again, c4 went to A; A B = $(counts)"
viewer A "$A_BASE"

# 6. The balancer's per-address limit: a fifth session from 127.0.0.1 gets
# 429 although an instance might have room.
code=$(upgrade "http://127.0.0.1:$FRONT_PORT/v1/stream")
[ "$code" = 429 ] || fail "session $((PER_ADDR + 1)) from one address: HTTP $code, expected 429"
echo "per address: session $((PER_ADDR + 1)) from 127.0.0.1 got HTTP $code"

# 7. Every session streamed the whole time without losing a frame.
for c in c1 c2 c3 c4; do
    kill -INT "$(eval echo \$${c}_PID)"
done
for c in c1 c2 c3 c4; do
    wait "$(eval echo \$${c}_PID)" || { cat "$NF_TMP/$c.out"; fail "$c failed"; }
    s=$(json_num "$NF_TMP/$c.json" frames_sent)
    r=$(json_num "$NF_TMP/$c.json" frames_received)
    d=$(json_num "$NF_TMP/$c.json" frames_dropped)
    [ "$r" = "$s" ] && [ "$d" = 0 ] || fail "$c: sent $s, received $r, dropped $d"
    [ "$r" -ge 10 ] || fail "$c: only $r frames"
    echo "$c: sent $s, received $r, dropped $d"
done
wait_for "sessions closed" counts "0 0"

# HAProxy's log: state changes, and each session (logged when it ended)
# with the instance that served it; -db prints state changes twice.
grep -o 'nextframe\(_stream\)\{0,1\}/.*' "$NF_TMP/haproxy.log" |
    sed 's/, info: .*//; s/, check duration.*//' | uniq | sed 's/^/haproxy log: /'

kill -TERM "$HAP_PID"
wait "$HAP_PID" 2>/dev/null # (no "Terminated" line)
kill -TERM "$A_PID" "$B_PID"
wait "$A_PID" || fail "instance A exited with $?"
wait "$B_PID" || fail "instance B exited with $?"
exit 0
