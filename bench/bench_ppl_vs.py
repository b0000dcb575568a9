#!/usr/bin/python3
"""What the function-space comparison costs (DESIGN §3): `ppl --vs` against one `ppl` of
the same sets (two forward passes plus the KL of every position over the whole
vocabulary; target at most 2.2x), and `scan --metrics ppl,kl` against `scan --metrics ppl`
per checkpoint (one forward pass per checkpoint, the previous logits kept; target at most
1.2x), on the embedded demo run and on random weights of the stories110M shape (dim 768,
12 layers, 12 heads, hidden 2048, vocab 32000, bf16 on disk; cks-fixture). CPU seconds
(user + system of the child, the best of --reps runs: on a shared machine wall-clock time
counts the slices other jobs took), and peak RSS. Prints figures; never fails.
usage: bench_ppl_vs.py CKPTSCOPE CKS_FIXTURE [--tokens N] [--ctx N] [--reps N]
                       [--threads N] [--dir D] [--skip-110m]"""
import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX = os.path.join(ROOT, "examples")
STORIES = ["--hidden", "768", "--intermediate", "2048", "--layers", "12", "--heads", "12",
           "--kv-heads", "12", "--vocab", "32000", "--max-pos", "1024", "--dtype", "bf16",
           "--layout", "folder", "--step-every", "100"]


def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, reps):
    """Best CPU seconds of reps runs, and the largest peak RSS (MiB) of a child."""
    best = None
    for _ in range(reps):
        t0 = cpu()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        dt = cpu() - t0
        best = dt if best is None else min(best, dt)
    return best, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def row(what, base, other, target):
    print("  %-44s %8.2f s  %8.2f s  %5.2fx CPU  (target <= %.1fx)" % (what, base, other,
                                                                   other / base, target))


def compare(ck, name, this, vs, data, scan_src, scan_eval, nckpt, extra, reps, tmp):
    print("%s:" % name)
    one, rss1 = timed([ck, "ppl", this, *data, "--quiet", *extra], reps)
    two, rss2 = timed([ck, "ppl", this, *data, "--vs", vs, "--quiet", *extra], reps)
    row("ppl vs ppl --vs", one, two, 2.2)
    out = os.path.join(tmp, "run.h5")
    evals = [a for f in scan_eval for a in ("--eval", f)]
    secs = {}
    for metrics in ("ppl", "ppl,kl"):
        def scan():
            if os.path.exists(out):
                os.unlink(out)
            subprocess.run([ck, "scan", scan_src, "-o", out, "--metrics", metrics, *evals,
                            "--quiet", *extra], check=True)
        best = None
        for _ in range(reps):
            t0 = cpu()
            scan()
            dt = cpu() - t0
            best = dt if best is None else min(best, dt)
        secs[metrics] = best / nckpt
    row("scan ppl vs ppl,kl, per checkpoint (%d)" % nckpt, secs["ppl"], secs["ppl,kl"], 1.2)
    print("  peak RSS of the children so far: %.0f MiB" % max(rss1, rss2,
          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckptscope")
    ap.add_argument("fixture")
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--skip-110m", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-ppl-vs-", dir=a.dir)
    extra = ["--threads", a.threads]
    print("load: %s" % open("/proc/loadavg").read().strip())
    try:
        demo = os.path.join(tmp, "demo")
        subprocess.run(["git", "clone", "-q", os.path.join(EX, "demo.bundle"), demo], check=True)
        held = [os.path.join(EX, "heldout", f) for f in sorted(os.listdir(os.path.join(EX, "heldout")))]
        ref = json.load(open(os.path.join(EX, "reference_losses.json")))
        compare(a.ckptscope, "demo (%d checkpoints, %d sets)" % (len(ref["checkpoints"]), len(held)),
                demo + "@ckpt_0096", demo + "@ckpt_0064", ["--text", *held], demo, held,
                len(ref["checkpoints"]), extra, a.reps, tmp)
        if not a.skip_110m:
            src = os.path.join(tmp, "stories")
            subprocess.run([a.fixture, src, "--checkpoints", "3", *STORIES], check=True)
            r = random.Random(1)
            toks = os.path.join(tmp, "random.jsonl")
            with open(toks, "w") as f:
                for n in (a.tokens // 2, a.tokens // 4, a.tokens // 4):
                    f.write(json.dumps({"token_ids": [r.randrange(32000) for _ in range(n)]}) + "\n")
            compare(a.ckptscope, "stories110M shape (%d tokens, ctx %d)" % (a.tokens, a.ctx),
                    src + "@ckpt_001", src + "@ckpt_000", ["--tokens", toks, "--ctx", str(a.ctx)],
                    src, [toks], 3, extra + ["--ctx", str(a.ctx)], a.reps, tmp)
        print("load: %s" % open("/proc/loadavg").read().strip())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
