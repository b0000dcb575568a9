#!/usr/bin/python3
"""Time of `ckptscope evals import` and `ckptscope regress`: the real Pythia-12B series
(27 files of 87 tasks, when ../shared/data is there) and a synthetic LLM360-sized one
(N checkpoints x 4 files: arc, hellaswag, mmlu in the v0.4 layout with 57 subtasks and
its group, truthfulqa), imported at once, then one more checkpoint into the full file
(what CI does per new checkpoint), then the gate. Prints wall and CPU seconds; never
fails.
usage: bench_gate.py CKPTSCOPE [--checkpoints N] [--dir D]"""
import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time


def timed(args):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode not in (0, 1):
        raise SystemExit("%s failed: %s" % (" ".join(args), p.stderr))
    return wall, cpu


def llm360_files(folder, name, rng):
    acc = lambda: {"acc,none": rng.uniform(0.2, 0.8), "acc_stderr,none": rng.uniform(0.005, 0.03)}
    files = {
        "eval_arc.json": {"results": {"arc_easy": acc(), "arc_challenge": acc()}},
        "eval_hellaswag.json": {"results": {"hellaswag": dict(acc(), **{"acc_norm,none": 0.5})}},
        "eval_mmlu.json": {"results": {"mmlu_sub%02d" % i: acc() for i in range(57)},
                           "groups": {"mmlu": acc()},
                           "n-samples": {"mmlu_sub%02d" % i: {"original": 200, "effective": 200}
                                         for i in range(57)}},
        "eval_truthfulqa.json": {"results": {"truthfulqa_mc1": acc(),
                                             "truthfulqa_mc2": {"acc,none": 0.4}}},
    }
    paths = []
    for fname, doc in files.items():
        doc["config"] = {"model_args": "pretrained=LLM360/Synthetic,revision=%s" % name}
        p = os.path.join(folder, "%s_%s" % (name, fname))
        with open(p, "w") as f:
            json.dump(doc, f)
        paths.append(p)
    return paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckptscope")
    ap.add_argument("--checkpoints", type=int, default=360)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-gate-", dir=a.dir)
    ck = a.ckptscope
    try:
        shared = os.environ.get("CKS_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..",
                                                                "shared", "data"))
        pythia = os.path.join(shared, "evals", "pythia-12b")
        if os.path.isdir(pythia):
            files = sorted(os.path.join(pythia, f) for f in os.listdir(pythia))
            run = os.path.join(root, "pythia.h5")
            w, c = timed([ck, "evals", "import", run, "--quiet"] + files)
            print("pythia-12b: import %d files (%d scores each): %.2f s wall, %.2f s CPU, %d KiB"
                  % (len(files), 172, w, c, os.path.getsize(run) // 1024))
            w, c = timed([ck, "regress", run, "--quiet", "--markdown", os.devnull])
            print("pythia-12b: regress 172 scores: %.3f s wall, %.3f s CPU" % (w, c))
        rng = random.Random(1)
        src = os.path.join(root, "llm360")
        os.makedirs(src)
        n = a.checkpoints
        files = []
        for i in range(n):
            files += llm360_files(src, "ckpt_%03d" % i, rng)
        run = os.path.join(root, "llm360.h5")
        w, c = timed([ck, "evals", "import", run, "--quiet"] + files)
        scores = sum(len([k for k in t if "stderr" not in k])
                     for p in files[:4] for sec in ("results", "groups")
                     for t in json.load(open(p)).get(sec, {}).values())
        print("synthetic LLM360: import %d checkpoints x 4 files (%d scores each) at once: "
              "%.2f s wall, %.2f s CPU, %d KiB" % (n, scores, w, c, os.path.getsize(run) // 1024))
        extra = llm360_files(src, "ckpt_%03d" % n, rng)
        w, c = timed([ck, "evals", "import", run, "--quiet"] + extra)
        print("synthetic LLM360: one more checkpoint into the %d-row file: %.3f s wall, %.3f s CPU"
              % (n, w, c))
        w, c = timed([ck, "regress", run, "--quiet", "--markdown", os.devnull])
        print("synthetic LLM360: regress: %.3f s wall, %.3f s CPU" % (w, c))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
