# jpeg-isolation: a JPEG whose header cannot be read (it declares a height
# of 0) closes its own session with 4422 and nothing else: new sessions
# that follow are served (fuzzing finding F1, tests/fuzz/README.md; the
# frames are tests/it/py/jpeg-isolation.py's).
. tests/lib.sh
/usr/bin/python3 -c 'import websockets' 2>/dev/null ||
    skip "SKIP: /usr/bin/python3 has no websockets module (apt-get install python3-websockets)"
start_server --model models/default.safetensors
/usr/bin/python3 tests/it/py/jpeg-isolation.py "$URL" || fail "a bad JPEG broke later sessions (above)"
kill -0 "$SERVER_PID" || fail "server died"
stop_server
