#!/bin/sh
# Sets up, builds and runs the main job on the embedded demo run (examples/, see
# examples/README.md): clones the bundle of checkpoint branches to a temporary folder and
# analyses it. Output goes to stdout; files to $CKS_DEMO_OUT (default: a temporary folder,
# printed at the end).
set -eu
cd "$(dirname "$0")/.."
tools/setup-deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$(nproc)" >/dev/null
ck=build/analyze/ckptscope
out=${CKS_DEMO_OUT:-$(mktemp -d /tmp/ckptscope-demo.XXXXXX)}
mkdir -p "$out"
rm -rf "$out/run"
# A clone has the checkpoints as remote-tracking branches origin/ckpt_*, which ckptscope
# reads without checking anything out.
git clone -q examples/demo.bundle "$out/run"
last=$(git -C "$out/run" for-each-ref --format='%(refname:lstrip=3)' 'refs/remotes/origin/ckpt_*' | sort | tail -n 1)
# Function space (DESIGN §3): KL of each checkpoint's predictions from the previous one's
# on the held-out texts, and memorisation of the training sequences the run repeated 240
# times, beside sequences it saw once (steps 65-96) and held-out windows
# (examples/train_data/README.md).
set -- --metrics norms,spectral,drift,ppl,kl,memorization \
    --train-data examples/train_data/duplicated.jsonl.gz \
    --train-data examples/train_data/ckpt_0096.jsonl.gz \
    --train-data examples/train_data/heldout.jsonl.gz
set -x
$ck list "$out/run"
$ck inspect "$out/run@$last" --tensors 'model.layers.0.*'
rm -f "$out/run.h5"
$ck ppl "$out/run@$last" --text examples/heldout/*.txt
$ck scan "$out/run" -o "$out/run.h5" --eval examples/heldout/jargon_heldout.txt \
    --eval examples/heldout/apache_license.txt --eval examples/heldout/libgit2_log_c.txt "$@"
$ck plot "$out/run.h5" -o "$out/plots"
$ck report "$out/run.h5"
$ck report "$out/run.h5" --trends -o "$out/trends.html"
set +x
# midway, the duplicated sequences are half memorised; at the end, fully
for at in ckpt_0768 "$last"; do
    echo "+ $ck report $out/run.h5 --at $at  (function space and memorisation)"
    $ck report "$out/run.h5" --at "$at" | sed -n '/^function space/,/^outliers/p' | sed '$d'
done
echo "demo: outputs in $out"
