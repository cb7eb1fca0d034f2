# train-pairs: the --pairs workflow of models/README.md end to end, briefly:
# a folder of (input, target) pairs made from opencv-doc photos (the target
# is ffmpeg's negate filter, standing in for a user's slow per-frame
# model), a few training steps with tools/train/train.py --pairs, export,
# then the exported file loads and runs in nf-eval and carries its name.
# It checks the plumbing, not the quality: 4 steps teach nothing.
. tests/lib.sh
PY=/usr/bin/python3
$PY -c 'import torch, PIL' 2>/dev/null ||
    skip "SKIP: python3-torch or python3-pil missing (make models installs them)"
DATA=/usr/share/doc/opencv-doc/examples/data
PAIRS=$NF_TMP/pairs
mkdir -p "$PAIRS/input" "$PAIRS/target"
for f in baboon.jpg fruits.jpg building.jpg butterfly.jpg; do
    [ -f "$DATA/$f" ] || skip "SKIP: $DATA/$f missing (install opencv-doc)"
    n=${f%.jpg}
    ffmpeg -nostdin -loglevel error -y -i "$DATA/$f" -vf scale=256:192 "$PAIRS/input/$n.png" ||
        fail "ffmpeg could not convert $f"
    ffmpeg -nostdin -loglevel error -y -i "$PAIRS/input/$n.png" -vf negate "$PAIRS/target/$n.png" ||
        fail "ffmpeg negate failed"
done
$PY tools/train/train.py --pairs "$PAIRS" --name negated --steps 4 \
    --out "$NF_TMP/negated.pt" --export "$NF_TMP/negated.safetensors" \
    >"$NF_TMP/train.log" 2>&1 || { cat "$NF_TMP/train.log"; fail "train.py --pairs failed"; }
cat "$NF_TMP/train.log"
grep -q "data: 4 pairs from" "$NF_TMP/train.log" || fail "train.py did not read the 4 pairs"
[ -s "$NF_TMP/negated.safetensors" ] || fail "no model exported"
# The exporter's metadata: the name, and where the pairs came from.
head -c 65536 "$NF_TMP/negated.safetensors" | grep -a -q '"nf.name":"negated"' ||
    fail "exported model is not named 'negated'"
head -c 65536 "$NF_TMP/negated.safetensors" | grep -a -q "pairs from $PAIRS" ||
    fail "exported model does not record its training pairs"
IN=$(clip vtest-100-160x120 100 160:120)
"$BUILD/nf-eval" --model "$NF_TMP/negated.safetensors" --input "$IN" --frames 20 \
    --csv "$NF_TMP/e.csv" --plot "$NF_TMP/e.svg" --quiet >"$NF_TMP/eval.out" ||
    fail "nf-eval could not run the exported model"
grep -q "nonfinite: 0" "$NF_TMP/eval.out" || fail "the exported model produced NaN or Inf"
