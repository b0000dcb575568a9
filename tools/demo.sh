#!/bin/sh
# Sets up, builds and runs the main job on the embedded demo: writes a checkpoint source
# to a temporary folder and analyses it. Output goes to stdout; files to $CKS_DEMO_OUT
# (default: a temporary folder, printed at the end).
set -eu
cd "$(dirname "$0")/.."
tools/setup-deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$(nproc)" >/dev/null
ck=build/analyze/ckptscope
out=${CKS_DEMO_OUT:-$(mktemp -d /tmp/ckptscope-demo.XXXXXX)}
mkdir -p "$out"
rm -rf "$out/run"
# Until the trained demo run lands, a generated tiny LLaMA in git with LFS pointers.
build/tests/support/cks-fixture "$out/run" --checkpoints 6 --lfs --dtype bf16 --kv-heads 2
set -x
$ck list "$out/run"
$ck inspect "$out/run@ckpt_005" --tensors 'model.layers.0.*'
set +x
echo "demo: outputs in $out"
