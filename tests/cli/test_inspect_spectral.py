#!/usr/bin/python3
"""CLI test of `ckptscope inspect --spectral` (text and --json) against numpy.

Fixture checkpoints come from cks-fixture (F32 and BF16, folder layout). The safetensors
file is read here with numpy alone, each 2-D tensor's singular values computed by numpy's
float64 SVD, and the statistics by tools/make_spectral_refs.py (DESIGN §3 written out in
Python, independent of the C code). Also the error and edge cases: an option misuse, no
matching tensor, a matrix over the size limit (a sparse file), a matrix holding NaN.

usage: test_inspect_spectral.py CKPTSCOPE CKS_FIXTURE
"""
import importlib.util
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
spec = importlib.util.spec_from_file_location(
    "refs", os.path.join(ROOT, "tools", "make_spectral_refs.py"))
refs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(refs)

CKPTSCOPE, FIXTURE = sys.argv[1], sys.argv[2]
from cks_testlib import check, close, finish, read_safetensors  # noqa: E402


def run(*args, want=0):
    """ckptscope inspect ARGS..., checking the exit status."""
    p = subprocess.run([CKPTSCOPE, "inspect", *args], capture_output=True, text=True)
    check(p.returncode == want,
          f"inspect {' '.join(args)}: exit {p.returncode}, wanted {want}; stderr: {p.stderr.strip()}")
    return p


def reference(w):
    sv = np.linalg.svd(w, compute_uv=False)
    st, _ = refs.spectral_stats(sv * sv, w.shape[0], w.shape[1])
    return st


def test_fixture(tmp, dtype):
    src = os.path.join(tmp, "run-" + dtype)
    subprocess.run([FIXTURE, src, "--layout", "folder", "--checkpoints", "1", "--dtype", dtype],
                   check=True)
    weights = read_safetensors(os.path.join(src, "ckpt_000", "model.safetensors"))
    doc = json.loads(run(src + "@ckpt_000", "--spectral", "--json", "--threads", "2").stdout)
    seen = 0
    for t in doc["tensors"]:
        w = weights[t["name"]]
        if w.ndim != 2:
            check("spectral" not in t, f"{dtype} {t['name']}: 1-D tensor has spectral")
            continue
        seen += 1
        got = t.get("spectral")
        check(got is not None and list(got) == refs.METRICS,
              f"{dtype} {t['name']}: spectral keys {list(got or {})}")
        want = reference(w)
        for k in refs.METRICS:
            if k in ("tail", "num_spikes"):
                check(isinstance(got[k], int) and got[k] == want[k],
                      f"{dtype} {t['name']} {k}: {got[k]} != {want[k]}")
            else:
                check(close(got[k], want[k], 1e-9),
                      f"{dtype} {t['name']} {k}: {got[k]} != {want[k]}")
    check(seen == 16, f"{dtype}: {seen} matrices, wanted 16")

    # Text: a SPECTRAL table with one row per matrix, values to the 5 digits printed.
    text = run(src + "@ckpt_000", "--spectral").stdout
    lines = text.splitlines()
    head = [i for i, l in enumerate(lines) if l.startswith("SPECTRAL")]
    check(len(head) == 1, f"{dtype}: SPECTRAL table header missing")
    rows = {}
    for l in lines[head[0] + 1:] if head else []:
        if not l.strip():
            break
        f = l.split()
        rows[f[0]] = f[1:]
    check(len(rows) == 16, f"{dtype}: {len(rows)} rows in the SPECTRAL table")
    for name, f in rows.items():
        want = reference(weights[name])
        for k, v in zip(refs.METRICS, f):
            wv = want[k]
            if isinstance(wv, float) and math.isnan(wv):
                check(v == "-", f"{dtype} text {name} {k}: {v} for NaN")
            else:
                check(abs(float(v) - wv) <= 1e-4 * abs(wv) + 1e-12,
                      f"{dtype} text {name} {k}: {v} != {wv}")
    # Without --spectral nothing changes.
    plain = run(src + "@ckpt_000").stdout
    check("SPECTRAL" not in plain, f"{dtype}: SPECTRAL table without --spectral")
    check("spectral" not in run(src + "@ckpt_000", "--json").stdout,
          f"{dtype}: spectral in JSON without --spectral")
    return src


def write_safetensors(path, tensors):
    """tensors: (name, dtype, shape, raw bytes or None for a trailing BF16 hole)."""
    header, off = {}, 0
    for name, dtype, shape, raw in tensors:
        size = len(raw) if raw is not None else int(np.prod(shape)) * 2
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + size]}
        off += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, _, _, raw in tensors:
            if raw is not None:
                f.write(raw)
        f.truncate(8 + len(text) + off)  # the last tensor, if raw is None, is a hole


def test_errors(tmp, src):
    spec_ = src + "@ckpt_000"
    p = run(spec_, "--spectral=yes", want=2)
    check("spectral" in p.stderr, f"--spectral=yes: message {p.stderr!r}")
    p = run(spec_, "--spectral", "--tensors", "nothing.*", want=2)
    check("no tensor matches 'nothing.*'" in p.stderr, f"no match: message {p.stderr!r}")
    p = run(spec_, "--spectral", "--threads", "0x", want=2)
    check("threads" in p.stderr, f"--threads 0x: message {p.stderr!r}")
    # Only 1-D tensors selected: no table, no key, exit 0.
    p = run(spec_, "--spectral", "--tensors", "*norm*")
    check("SPECTRAL" not in p.stdout, "1-D only: SPECTRAL table printed")

    # A checkpoint of hand-made tensors: a matrix with a NaN (statistics null, exit 0),
    # and one whose smaller side is over the limit, as a sparse file (exit 2, message
    # names the file and the tensor).
    bad = os.path.join(tmp, "bad")
    os.makedirs(os.path.join(bad, "ckpt_000"))
    shutil.copy(os.path.join(src, "ckpt_000", "config.json"), os.path.join(bad, "ckpt_000"))
    w = np.random.Generator(np.random.PCG64(3)).standard_normal((32, 24)).astype("<f4")
    w[5, 7] = np.nan
    big = 16385
    st = os.path.join(bad, "ckpt_000", "model.safetensors")
    write_safetensors(st, [("nan.weight", "F32", w.shape, w.tobytes()),
                           ("big.weight", "BF16", (big, big), None)])
    doc = json.loads(run(bad + "@ckpt_000", "--spectral", "--json", "--tensors", "nan.*").stdout)
    sp = doc["tensors"][0]["spectral"]
    check(all(sp[k] is None for k in refs.METRICS), f"NaN matrix: {sp}")
    p = run(bad + "@ckpt_000", "--spectral", "--tensors", "big.*", want=2)
    check("model.safetensors" in p.stderr and "big.weight" in p.stderr and "16384" in p.stderr
          and p.stderr.count("\n") == 1, f"over the limit: message {p.stderr!r}")
    check(p.stdout == "", "over the limit: partial output on stdout")


def main():
    tmp = tempfile.mkdtemp(prefix="cks-spectral-cli-")
    try:
        test_fixture(tmp, "f32")
        src = test_fixture(tmp, "bf16")
        test_errors(tmp, src)
        p = run("--help")
        check("--spectral" in p.stdout and "alpha" in p.stdout,
              "--help does not document --spectral")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish()
    print("ok")


if __name__ == "__main__":
    main()
