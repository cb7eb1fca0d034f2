#!/bin/sh
# make-models.sh - retrains, exports and evaluates nextframe's shipped style
# models (`make models`): models/{toon,sketch,oil}.safetensors, their model
# cards models/{toon,sketch,oil}.md, the golden fixtures tests/golden/ and
# the picture docs/img/styles.png.
#
# Each model trains for a fixed number of steps from a fixed seed with one
# thread, so a run reproduces the weights exactly (the exported files differ
# only in the recorded command if the paths differ). The three trainings run
# side by side, one thread each: on a 2-core machine that is as fast as
# one after the other with two threads, and unlike two OpenMP threads it
# does not slow down 10x when another process takes a core. About 40
# minutes for all three on an otherwise idle 2-core machine. Checkpoints
# and logs go to $NF_TRAIN_DIR.
#
#   sh tools/train/make-models.sh [LOOK...]     (default: toon sketch oil)
#
# Environment: NF_TRAIN_STEPS (default 2000), NF_TRAIN_THREADS (1, threads
# per training), NF_TRAIN_DIR (build/train), NF_TRAIN_MINUTES (0: no wall
# time cap; a cap makes the result depend on the machine's load). Installs the Debian packages it
# needs (root or sudo), like tools/install-deps.sh.
set -eu
cd "$(dirname "$0")/../.."

PY=/usr/bin/python3 # Debian's PyTorch; another python3 may come first.
STEPS=${NF_TRAIN_STEPS:-2000}
THREADS=${NF_TRAIN_THREADS:-1}
MINUTES=${NF_TRAIN_MINUTES:-0}
DIR=${NF_TRAIN_DIR:-build/train}
LOOKS=${*:-toon sketch oil}

PKGS="python3-torch python3-numpy python3-pil ffmpeg opencv-doc
gnome-backgrounds plasma-workspace-wallpapers"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "make-models: installing:$missing"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
        --no-install-recommends $missing
fi

mkdir -p "$DIR" docs/img
seed_of() {
    case "$1" in toon) echo 1 ;; sketch) echo 2 ;; oil) echo 3 ;; *) echo 9 ;; esac
}
train() {
    start=$(date +%s)
    $PY tools/train/train.py --look "$1" --seed "$(seed_of "$1")" \
        --steps "$STEPS" --minutes "$MINUTES" --threads "$THREADS" \
        --out "$DIR/$1.pt" \
        --export "models/$1.safetensors" >"$DIR/$1.log" 2>&1 || return 1
    echo "$(($(date +%s) - start))" >"$DIR/$1.seconds"
}
pids=""
for look in $LOOKS; do
    echo "make-models: training $look ($STEPS steps, $THREADS thread(s)), log $DIR/$look.log"
    train "$look" &
    pids="$pids $!"
done
failed=0
for p in $pids; do wait "$p" || failed=1; done
for look in $LOOKS; do tail -n 3 "$DIR/$look.log"; done
[ "$failed" = 0 ] || { echo "make-models: a training failed" >&2; exit 1; }

echo "make-models: evaluating on Megamind.avi and tree.avi"
pids=""
for look in toon sketch oil; do
    $PY tools/train/evaluate.py --threads "$THREADS" \
        --json "$DIR/eval-$look.json" "models/$look.safetensors" &
    pids="$pids $!"
done
for p in $pids; do wait "$p" || exit 1; done
$PY tools/train/make-golden.py --ckpt-dir "$DIR"
$PY tools/train/cards.py --eval "$DIR"/eval-toon.json "$DIR"/eval-sketch.json \
    "$DIR"/eval-oil.json --train-dir "$DIR" --figure docs/img/styles.png
echo "make-models: done"
