#!/usr/bin/python3
"""Time and peak RSS of `ckptscope plot` and `report` on a run file of K2's shape: 360
checkpoints x 723 tensors (80 layers of q k v o gate up down and two norms, embed,
final norm, lm_head), the five heatmap metrics of every tensor, /spectra of the ESD
matrices at the last checkpoint, and a few eval series, written through the store by
cks-runfx (values are synthetic: the plotting cost depends on the shape only). Prints
figures; never fails.
usage: bench_plot.py CKPTSCOPE CKS_RUNFX [--checkpoints N] [--layers L] [--dir D]"""
import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time

import numpy as np

KINDS = [("q", 8192, 8192), ("k", 1024, 8192), ("v", 1024, 8192), ("o", 8192, 8192),
         ("gate", 22016, 8192), ("up", 22016, 8192), ("down", 8192, 22016),
         ("attn_norm", 8192, 0), ("mlp_norm", 8192, 0)]


def ops(n, layers):
    rng = np.random.default_rng(1)
    tensors = [{"name": "model.embed_tokens.weight", "layer": -1, "kind": "embed",
                "rows": 32032, "cols": 8192}]
    for l in range(layers):
        for k, r, c in KINDS:
            tensors.append({"name": "model.layers.%d.%s" % (l, k), "layer": l, "kind": k,
                            "rows": r, "cols": c})
    tensors += [{"name": "model.norm.weight", "layer": -1, "kind": "final_norm", "rows": 8192,
                 "cols": 0},
                {"name": "lm_head.weight", "layer": -1, "kind": "lm_head", "rows": 32032,
                 "cols": 8192}]
    nt = len(tensors)
    out = []
    for r in range(n):
        out.append({"op": "ckpt", "name": "ckpt_%03d" % r, "step": r * 1000, "commit": "%040x" % r})
        if r == 0:
            out.append({"op": "tensors", "tensors": tensors})
    for r in range(n):
        base = rng.random(nt)
        for path, scale in [("/drift/prev/rel_fro", 0.01), ("/drift/ref/rel_fro", 0.5),
                            ("/norms/rms", 0.02), ("/spectral/alpha", 4.0),
                            ("/spectral/stable_rank", 30.0)]:
            v = [None if (path.startswith("/spectral") and t["cols"] == 0) or
                 (path == "/drift/prev/rel_fro" and r == 0) else float(scale * (0.5 + b))
                 for t, b in zip(tensors, base)]
            out.append({"op": "row", "path": path, "row": r, "values": v})
        for s in ("held_a", "held_b", "held_c"):
            out.append({"op": "series", "path": "/eval/%s/ppl" % s, "row": r,
                        "value": 5 + 100 * math.exp(-r / 40)})
    last = n - 1
    for t in tensors:
        if t["cols"] and (t["layer"] == layers // 2 or t["layer"] < 0):
            lam = sorted((rng.pareto(2.5, 256) + 1).tolist(), reverse=True)
            out.append({"op": "spectra", "tensor": t["name"], "row": last, "values": lam})
    for m, v in [("xmin", 2.0), ("tail", 100.0)]:
        out.append({"op": "row", "path": "/spectral/" + m, "row": last,
                    "values": [v if t["cols"] else None for t in tensors]})
    return out, nt


def timed(args, root):
    """Wall time, rusage, exit status, stderr, and the peak RSS in KiB. The peak comes from
    GNU time when it is installed: a child forked from this (large) Python inherits its
    high-water mark, so wait4's ru_maxrss would report Python's size, not ckptscope's.
    It covers the gnuplot children too (the kernel folds waited-for children in)."""
    rss_file = os.path.join(root, "rss")
    gnu_time = shutil.which("time") if os.path.exists("/usr/bin/time") else None
    cmd = (["/usr/bin/time", "-f", "%M", "-o", rss_file] if gnu_time else []) + args
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    err = p.stderr.read().decode()
    peak = float("nan")
    if gnu_time:
        with open(rss_file) as f:
            peak = float(f.read().split()[-1])
    return time.time() - t0, ru, os.waitstatus_to_exitcode(status), err, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckptscope")
    ap.add_argument("runfx")
    ap.add_argument("--checkpoints", type=int, default=360)
    ap.add_argument("--layers", type=int, default=80)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-plot-", dir=a.dir)
    try:
        run = os.path.join(root, "run.h5")
        o, nt = ops(a.checkpoints, a.layers)
        t0 = time.time()
        subprocess.run([a.runfx, run, "--create", "bench"], check=True,
                       input="".join(json.dumps(x) + "\n" for x in o), text=True)
        print("machine: %s, %d CPUs (%s)" % (platform.processor() or platform.machine(),
                                             os.cpu_count(), platform.platform()))
        print("run file: %d checkpoints x %d tensors, %.1f MiB (written in %.1f s)"
              % (a.checkpoints, nt, os.path.getsize(run) / 2**20, time.time() - t0))
        for fmt, threads in (("png", 1), ("png", 0), ("svg", 0)):
            out = os.path.join(root, "plots-%s-%d" % (fmt, threads))
            wall, ru, code, err, peak = timed([a.ckptscope, "plot", run, "-o", out, "--format",
                                               fmt, "--quiet", "--threads", str(threads)], root)
            files = [f for f in os.listdir(out) if f.endswith(fmt)]
            size = sum(os.path.getsize(os.path.join(out, f)) for f in files)
            print("plot --format %s --threads %s: %d plots in %.1f s (%.0f ms each), %.1f MiB, "
                  "peak RSS %.1f MiB (ckptscope or a gnuplot), CPU user+sys %.1f s, exit %d %s"
                  % (fmt, threads or "auto", len(files), wall, 1e3 * wall / max(len(files), 1), size / 2**20,
                     peak / 1024, ru.ru_utime + ru.ru_stime, code, err.strip()))
        for args, what in [(["report", run], "report (text)"),
                           (["report", run, "--format", "json"], "report --format json"),
                           (["report", run, "--trends", "-o", os.path.join(root, "t.html"),
                             "--quiet"], "report --trends")]:
            wall, ru, code, err, peak = timed([a.ckptscope] + args, root)
            extra = ""
            if "--trends" in args:
                extra = ", page %.1f MiB" % (os.path.getsize(os.path.join(root, "t.html")) / 2**20)
            print("%s: %.2f s, peak RSS %.1f MiB%s, exit %d %s"
                  % (what, wall, peak / 1024, extra, code, err.strip()))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
