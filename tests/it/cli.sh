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
cat "$NF_TMP/err"
exit 0
