# cli: every program answers --help; bad options and bad model files are
# refused with a message that names the problem.
. tests/lib.sh
for p in nextframe nf-client nf-probe; do
    "$BUILD/$p" --help >"$NF_TMP/help" 2>&1 || fail "$p --help exited non-zero"
    grep -qi 'usage' "$NF_TMP/help" || fail "$p --help prints no usage"
done
"$BUILD/nextframe" --port nope >/dev/null 2>"$NF_TMP/err" && fail "--port nope accepted"
grep -q -- '--port' "$NF_TMP/err" || fail "bad --port message: $(cat "$NF_TMP/err")"
printf 'not a model' >"$NF_TMP/bad.safetensors"
"$BUILD/nextframe" --port 0 --model "$NF_TMP/bad.safetensors" >/dev/null 2>"$NF_TMP/err" &&
    fail "a corrupt model was accepted"
grep -q "bad.safetensors" "$NF_TMP/err" || fail "model error does not name the file: $(cat "$NF_TMP/err")"
head -c 100 models/default.safetensors >"$NF_TMP/trunc.safetensors"
"$BUILD/nextframe" --port 0 --model "$NF_TMP/trunc.safetensors" >/dev/null 2>"$NF_TMP/err" &&
    fail "a truncated model was accepted"
grep -q "trunc.safetensors" "$NF_TMP/err" || fail "no file name: $(cat "$NF_TMP/err")"
# A damaged copy of a real model per case, each refused with a message
# that names the file and the problem: the data section cut short, a
# header length larger than the file, one larger than any header may be
# (2^64-1, which wraps when 8 is added), data_offsets past the end.
python3 - "$NF_TMP" <<'PY' || fail "could not write the damaged models"
import json, struct, sys
d = sys.argv[1]
b = open("models/toon.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
open(d + "/cut.safetensors", "wb").write(b[:-1000])
open(d + "/hlen.safetensors", "wb").write(struct.pack("<Q", len(b)) + b[8:])
open(d + "/hwrap.safetensors", "wb").write(struct.pack("<Q", 2**64 - 1) + b[8:])
last = max((v["data_offsets"][1], k) for k, v in head.items() if k != "__metadata__")[1]
begin, end = head[last]["data_offsets"]
head[last]["data_offsets"] = [begin + 8, end + 8]
js = json.dumps(head, separators=(",", ":")).encode()
open(d + "/offsets.safetensors", "wb").write(struct.pack("<Q", len(js)) + js + b[8 + n:])
PY
refused() { # refused NAME PATTERN: the server will not start on NAME
    timeout 10 "$BUILD/nextframe" --port 0 --model "$NF_TMP/$1.safetensors" \
        >"$NF_TMP/out" 2>"$NF_TMP/err" && fail "$1: the damaged model was accepted"
    cat "$NF_TMP/err"
    grep -q '^listening' "$NF_TMP/out" && fail "$1: the server started"
    grep -q "$1.safetensors" "$NF_TMP/err" || fail "$1: the message does not name the file"
    grep -q "$2" "$NF_TMP/err" || fail "$1: the message does not say '$2'"
}
refused cut 'data section'
refused hlen 'header length [0-9]* exceeds'
refused hwrap 'header length [0-9]* exceeds'
refused offsets 'data_offsets'
exit 0
