#!/bin/sh
# Makes the PyTorch references of the forward-pass and perplexity tests, tests/data/llama/:
# runs test_llama, test_ppl and the `ppl` CLI test with CKS_LLAMA_REF_RECORD set, so that
# every case runs tools/llama_ref.py (Debian's python3-torch) on the test's own model and
# inputs, records the output with a digest of those inputs, and checks ckptscope against
# it. The tests themselves then read the committed files and need no PyTorch.
#
#   tools/make_llama_refs.sh BUILD_DIR           rewrite tests/data/llama/
#   tools/make_llama_refs.sh --check BUILD_DIR   compare with the committed files
#
# --check (ctest llama_refs_current, run in CI where PyTorch is installed) fails when a
# value moved by more than 1e-5 + 1e-6 |value|, a tenth of what the tests allow (1e-4 on
# logits and per-token losses, 1e-5 relative on a set's loss): PyTorch's float32 results
# differ in their last bits between CPUs. Without torch it fails in CI (CI=true) and
# exits 77 (a ctest skip) elsewhere.
set -eu
check=0
if [ "${1:-}" = --check ]; then
    check=1
    shift
fi
[ $# -eq 1 ] || { echo "usage: tools/make_llama_refs.sh [--check] BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "make_llama_refs: $py cannot import torch (python3-torch)"
    [ "${CI:-}" = true ] && exit 1
    exit 77
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/cks-llama-refs.XXXXXX")
trap 'rm -rf "$out"' EXIT
export CKS_LLAMA_REF_RECORD="$out" CKS_PYTHON="$py" CKS_SOURCE_DIR="$src"
export CKS_SHARED_DATA="$src/../shared/data" OMP_WAIT_POLICY=PASSIVE
"$build/tests/test_llama"
"$build/tests/test_ppl"
"$py" "$src/tests/cli/test_ppl.py" "$build/analyze/ckptscope" "$build/tests/support/cks-fixture"
if [ $check = 0 ]; then
    mkdir -p "$src/tests/data/llama"
    rm -f "$src/tests/data/llama"/*.json
    cp "$out"/*.json "$src/tests/data/llama/"
    echo "make_llama_refs: wrote $(ls "$out" | wc -l) references to tests/data/llama/"
    exit 0
fi
"$py" - "$out" "$src/tests/data/llama" <<'EOF'
import json, os, sys
new, old = sys.argv[1], sys.argv[2]
bad = []
def walk(a, b, where):
    if isinstance(b, dict):
        if not isinstance(a, dict) or sorted(a) != sorted(b):
            bad.append("%s: keys differ" % where)
            return
        for k in b:
            walk(a[k], b[k], where + "." + k)
    elif isinstance(b, list):
        if not isinstance(a, list) or len(a) != len(b):
            bad.append("%s: lengths differ" % where)
            return
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, "%s[%d]" % (where, i))
    elif isinstance(b, float) and isinstance(a, (int, float)):
        if abs(a - b) > 1e-5 + 1e-6 * abs(b):
            bad.append("%s: %r now, %r committed" % (where, a, b))
    elif a != b:
        bad.append("%s: %r now, %r committed" % (where, a, b))
names = sorted(os.listdir(new))
if names != sorted(os.listdir(old)):
    bad.append("files differ: %s now, %s committed" % (names, sorted(os.listdir(old))))
for n in names:
    if os.path.exists(os.path.join(old, n)):
        walk(json.load(open(os.path.join(new, n))), json.load(open(os.path.join(old, n))), n)
for b in bad[:20]:
    print("make_llama_refs: " + b)
if bad:
    print("make_llama_refs: %d differences: the committed references are stale "
          "(tools/make_llama_refs.sh BUILD_DIR remakes them)" % len(bad))
    sys.exit(1)
print("make_llama_refs: %d references current" % len(names))
EOF
