# resize-midstream: a session may change resolution between frames and
# the new size starts a cold cache (PROTOCOL.md 4.5). Every frame is
# answered at its own size, in order, nothing is dropped, across growing,
# shrinking, odd and tiny sizes; and the replies after a change are
# byte-identical to a fresh session's replies to the same pictures.
. tests/lib.sh
start_server
mkdir -p "$NF_TMP/a" "$NF_TMP/b" "$NF_TMP/c"
probe() { # probe DIR SIZES: 3 frames per size, one at a time
    out=$("$BUILD/nf-probe" "$URL" --send resize --count 3 --sizes "$2" \
        --save "$NF_TMP/$1" --timeout 30 2>"$NF_TMP/$1.err")
    echo "resize $2 -> $out"
    cat "$NF_TMP/$1.err"
    case "$out" in "ok "*) ;; *) fail "resize $2: $out" ;; esac
}
probe a 320x240,640x480,160x120,33x17,1x1,320x240
grep -q 'replies=18 ' "$NF_TMP/a.err" || fail "expected 18 replies"
probe b 640x480
probe c 320x240
# Session a's frames 3-5 (after its change to 640x480) and 15-17 (back
# to 320x240) against fresh sessions b and c showing the same pictures.
for k in 0 1 2; do
    cmp -s "$NF_TMP/a/$((3 + k)).jpg" "$NF_TMP/b/$k.jpg" ||
        fail "reply $((3 + k)) after the change to 640x480 is not a cold start"
    cmp -s "$NF_TMP/a/$((15 + k)).jpg" "$NF_TMP/c/$k.jpg" ||
        fail "reply $((15 + k)) after the change back to 320x240 is not a cold start"
done
frames_accounted
[ "$RECV" = 24 ] && [ "$SENT" = 24 ] && [ "$DROPPED" = 0 ] || fail "frames were lost"
kill -0 "$SERVER_PID" || fail "server died"
stop_server
