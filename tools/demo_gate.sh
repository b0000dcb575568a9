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
# Environment: CKPTSCOPE (default build/analyze/ckptscope), CKS_GATE_OUT,
# CKS_GATE_BASELINES (default examples/baseline), CKS_GATE_RUN (gate this run file
# instead of cloning and scanning the demo).
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
    # set names: the file stems, as examples/reference_losses.json (and so the baselines)
    # name them
    "$ck" scan "$out/demo" -o "$run" --metrics norms,ppl --quiet \
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
[ -n "${GITHUB_STEP_SUMMARY:-}" ] || cat "$summary"
echo "demo_gate: $([ $status = 0 ] && echo passed || echo FAILED); reports in $out" >&2
exit $status
