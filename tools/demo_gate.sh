#!/bin/sh
# The CI regression gate on the embedded demo run (examples/, DESIGN §7, §9): clones
# examples/demo.bundle, scans it, and runs `ckptscope regress` against each committed
# baseline examples/baseline/<checkpoint>.json. Those pin numbers computed without
# ckptscope (tools/make_demo_baseline.py): every tensor's weight norms (numpy) and the
# held-out perplexities (PyTorch, examples/reference_losses.json), all with direction
# "equal". A change that moves one beyond its tolerance, or leaves a NaN, fails (exit 1)
# with a Markdown report: appended to $GITHUB_STEP_SUMMARY when set, else printed. JUnit
# XML and the run file go to $CKS_GATE_OUT (default: a temporary folder).
#
# The scan runs the kl and memorization families too, and the newest checkpoint's held-out
# nll is also judged against the previous checkpoint on the
# block-bootstrap interval of its change (DESIGN §3, §7; JUnit in nll_vs_previous.xml):
# the gate of a training run, which the baselines' reproducibility gate is not.
#
# Environment: CKPTSCOPE (default build/analyze/ckptscope), CKS_GATE_OUT,
# CKS_GATE_BASELINES (default examples/baseline), CKS_GATE_RUN (gate this run file
# instead of cloning and scanning the demo), CKS_GATE_BASELINES_ONLY (set: skip the
# nll-against-previous gate).
set -eu
cd "$(dirname "$0")/.."
ck=${CKPTSCOPE:-build/analyze/ckptscope}
out=${CKS_GATE_OUT:-$(mktemp -d /tmp/ckptscope-gate.XXXXXX)}
baselines=${CKS_GATE_BASELINES:-examples/baseline}
mkdir -p "$out"
run="$out/demo.h5"
if [ -n "${CKS_GATE_RUN:-}" ]; then
    run=$CKS_GATE_RUN # gate a run file scanned before (the tests gate one scan twice)
else
    rm -rf "$out/demo" "$run"
    git clone -q examples/demo.bundle "$out/demo"
    set -- --metrics norms,ppl,kl,memorization \
        --train-data examples/train_data/duplicated.jsonl.gz \
        --train-data examples/train_data/ckpt_0096.jsonl.gz \
        --train-data examples/train_data/heldout.jsonl.gz
    # set names: the file stems, as examples/reference_losses.json (and so the baselines)
    # name them
    "$ck" scan "$out/demo" -o "$run" --quiet "$@" \
        --eval examples/heldout/jargon_heldout.txt --eval examples/heldout/apache_license.txt \
        --eval examples/heldout/libgit2_log_c.txt
fi
set -- --include 'norms/*' --include 'eval/*'

summary=${GITHUB_STEP_SUMMARY:-$out/gate.md}
[ -n "${GITHUB_STEP_SUMMARY:-}" ] || : >"$summary" # regress appends
status=0
for b in "$baselines"/*.json; do
    at=$(basename "$b" .json)
    "$ck" regress "$run" --at "$at" --baseline "$b" --no-previous --fail-on warning \
        --junit "$out/$at.xml" --markdown "$summary" "$@" || status=$?
done
# the training-run gate: the newest checkpoint's held-out nll against the previous one,
# on the bootstrap interval of the change (lower is better; a margin of 0.01 nats)
if [ -z "${CKS_GATE_BASELINES_ONLY:-}" ]; then
    "$ck" regress "$run" --include 'eval/*/nll' --tolerance 'nll=abs:0.01' \
        --junit "$out/nll_vs_previous.xml" --markdown "$summary" || status=$?
fi
[ -n "${GITHUB_STEP_SUMMARY:-}" ] || cat "$summary"
echo "demo_gate: $([ $status = 0 ] && echo passed || echo FAILED); reports in $out" >&2
exit $status
