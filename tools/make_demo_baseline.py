#!/usr/bin/python3
"""Writes the CI gate's baselines of the embedded demo run, examples/baseline/<ckpt>.json
(the `ckptscope regress` baseline format), from numbers computed without ckptscope:

- norms/<metric>/<tensor>: every tensor's fro, rms, mean, std (population), absmax, nan
  and inf, in float64 numpy from the branch's weight file (bf16 widened exactly; read by
  tools/tinyllama.py: safetensors parsed by hand, .bin through torch.load), direction
  "equal". Tolerances from metrics/norms.c's own accuracy statement: for 16-bit dtypes
  it sums runs of values in f32 before adding them in f64, "a relative error below
  2^-20" (9.5e-7), so fro, rms and std get rel:1e-6 and the mean, a sum of differences
  that may cancel, abs:1e-6 x absmax (measured on the demo: 3.7e-8 relative and
  1.7e-11 x absmax); absmax and the nan/inf counts are exact (abs:0);
- eval/<set>/{nll,ppl,bpb}: PyTorch's held-out losses recorded in
  examples/reference_losses.json (DESIGN §5 protocol, ctx 128, stride 64, BOS), with the
  scored token count as n, direction "equal", tolerance rel:1e-6: float32 rounding moves
  a set's nll by far less (ckptscope matches PyTorch to about 1e-8 relative,
  tests/cli/test_ppl_demo.py), rms_norm_eps 1e-5 instead of 1e-6 by more (5.1e-6 on
  2.9729, 1.7e-6 relative: examples/README.md).

Checkpoints: ckpt_1920 (safetensors) and ckpt_0960 (the PyTorch .bin), so both readers
are pinned. `--check` recomputes and compares with the committed files instead.
usage: make_demo_baseline.py [--examples DIR] [--check]"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyllama as tl  # noqa: E402

CHECKPOINTS = ("ckpt_0960", "ckpt_1920")
PPL_TOL = "rel:1e-6"


def norms_tolerance(metric, values):
    if metric in ("fro", "rms", "std"):
        return "rel:1e-6"
    if metric == "mean":
        return "abs:%.3g" % (1e-6 * values["absmax"])
    return "abs:0"  # absmax, nan, inf


def git(repo, *args):
    return subprocess.run(["git", "-C", repo] + list(args), check=True,
                          stdout=subprocess.PIPE).stdout


def norms(a):
    """DESIGN §3 norms over the finite elements, float64."""
    a = a.astype(np.float64).ravel()
    f = a[np.isfinite(a)]
    return {"fro": float(np.sqrt(np.sum(f * f))), "rms": float(np.sqrt(np.mean(f * f))),
            "mean": float(np.mean(f)), "std": float(np.std(f)), "absmax": float(np.max(np.abs(f))),
            "nan": int(np.isnan(a).sum()), "inf": int(np.isinf(a).sum())}


def weights(repo, ckpt, fmt):
    ref = "origin/" + ckpt
    if fmt == "safetensors":
        t = tl.read_safetensors_f32(git(repo, "show", ref + ":model.safetensors"))
    else:
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(git(repo, "show", ref + ":pytorch_model.bin"))
            f.flush()
            t = tl.read_torch_bin_f32(f.name)
    return {k: v.numpy() for k, v in t.items()}


def baseline(repo, ref, ckpt):
    rec = next(c for c in ref["checkpoints"] if c["name"] == ckpt)
    metrics = []
    for name, a in sorted(weights(repo, ckpt, rec["format"]).items()):
        values = norms(a)
        for m, v in values.items():
            metrics.append({"id": "norms/%s/%s" % (m, name), "value": v, "stderr": None, "n": None,
                            "direction": "equal", "tolerance": norms_tolerance(m, values)})
    for s in rec["sets"]:
        for m in ("nll", "ppl", "bpb"):
            metrics.append({"id": "eval/%s/%s" % (s["name"], m), "value": s[m], "stderr": None,
                            "n": s["tokens"], "direction": "equal", "tolerance": PPL_TOL})
    config = json.loads(git(repo, "show", "origin/%s:config.json" % ckpt))
    return {"format": "ckptscope-baseline", "format_version": 1,
            "created_by": "tools/make_demo_baseline.py (numpy norms, PyTorch reference losses)",
            "run": {"model": None, "source": "examples/demo.bundle", "config": config},
            "checkpoint": {"name": ckpt, "step": rec["step"]}, "metrics": metrics}


def dumps(doc):
    """The document with one score per line (readable diffs when a number moves)."""
    head = {k: v for k, v in doc.items() if k != "metrics"}
    text = json.dumps(head, indent=1)[:-2]
    lines = ",\n  ".join(json.dumps(m) for m in doc["metrics"])
    return text + ',\n "metrics": [\n  ' + lines + "\n ]\n}\n"


def same(a, b):
    """Equal documents, numbers within 1e-12 relative (a recomputed float64 sum)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            math.isclose(a, b, rel_tol=1e-12, abs_tol=0)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(__file__), "..", "examples"))
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    ref = json.load(open(os.path.join(a.examples, "reference_losses.json")))
    out_dir = os.path.join(a.examples, "baseline")
    with tempfile.TemporaryDirectory(prefix="cks-baseline-") as tmp:
        repo = os.path.join(tmp, "demo")
        subprocess.run(["git", "clone", "-q", os.path.join(a.examples, "demo.bundle"), repo], check=True)
        bad = 0
        for ckpt in CHECKPOINTS:
            doc = baseline(repo, ref, ckpt)
            path = os.path.join(out_dir, ckpt + ".json")
            if a.check:
                with open(path) as f:
                    ok = same(json.load(f), doc)
                print("%s: %s (%d scores)" % (path, "as recomputed" if ok else "DIFFERS", len(doc["metrics"])))
                bad += not ok
                continue
            os.makedirs(out_dir, exist_ok=True)
            with open(path, "w") as f:
                f.write(dumps(doc))
            print("wrote %s: %d scores" % (path, len(doc["metrics"])))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
