# control-limits: a control message over the size limit closes that
# session with 1009 before it is parsed, whether the limit is the default
# (4096 bytes) or set with --max-control-bytes; a message exactly at the
# limit is answered with state. A burst of control messages within the
# rate limit (nextframe --max-control-rate N: "bursts of N", 20 by
# default), written at once by a client that reads every answer, is
# answered in full; one over it closes with 1008 and a reason starting
# "policy violation" (PROTOCOL.md section 8).
. tests/lib.sh
bad=""
expect() { # expect MODE RESULT [probe args...]; RESULT: "ok" or "close CODE ..."
    mode=$1 want=$2
    shift 2
    out=$("$BUILD/nf-probe" "$URL" --send "$mode" --timeout 10 "$@" 2>&1 | tail -n 1)
    echo "$mode $* -> $out"
    case "$out" in "$want"*) ;; *)
        echo "FAIL: $mode $*: expected '$want...', got '$out'"
        bad="$bad|$mode $*"
        ;;
    esac
}
start_server
expect bigcontrol ok --bytes 4096
expect bigcontrol "close 1009 "
expect bigcontrol "close 1009 " --bytes 1000000
expect ctrlburst ok --count 4
expect ctrlburst ok --count 10
expect ctrlburst ok --count 20
expect ctrlburst "close 1008 policy violation" --count 21
expect ctrlburst "close 1008 policy violation" --count 1000
kill -0 "$SERVER_PID" || fail "server died"
stop_server
start_server --max-control-bytes 256
expect bigcontrol ok --bytes 256
expect bigcontrol "close 1009 " --bytes 257
kill -0 "$SERVER_PID" || fail "server died"
stop_server
[ -z "$bad" ] || fail "control limits not as documented:$(echo "$bad" | tr '|' '\n' | sed 's/^/ /')"
