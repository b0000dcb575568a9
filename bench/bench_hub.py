#!/usr/bin/python3
"""Downloads from the loopback stand-in of the hub (tests/cli/hub_server.py), serving a
fixture repository with Git LFS weights:

1. rate: one checkpoint's files fetched by the hf:// source (cks-hub-walk: wait for the
   checkpoint = download, hash check, publish) with 1 and with 4 files in flight, against
   `curl` fetching the same resolve URLs (following the 302 to the storage host) one after
   another and 4 at once (curl -Z). Each into a fresh folder on the same disk; best and
   median of --repeat runs.
2. overlap: with the server limited to --rate MB/s (a network link), N checkpoints
   walked with and without prefetch. Without it a checkpoint costs its download plus its
   analysis (here: every file mapped and hashed again); with it about the larger of the two.

3. scan (with CKPTSCOPE): `ckptscope scan hf://org/bench --evict` at the same rate, with
   prefetch (the next checkpoint downloads while this one is analysed) and without it
   (CKS_TEST_NO_PREFETCH: each checkpoint fetched when its task runs), against the two
   parts alone: the download (the walk without prefetch) and the analysis (the same scan
   reading the filled cache with HF_HUB_OFFLINE=1). With prefetch a checkpoint should cost
   about the larger of the two, without it their sum.

Prints figures and the load; never fails.
usage: bench_hub.py CKS_FIXTURE CKS_HUB_WALK [CKPTSCOPE] [--hidden 1024] [--layers 4]
                    [--shards 4] [--checkpoints 3] [--rate 150] [--metrics LIST]
                    [--repeat 3] [--dir D]"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cli"))
from hub_server import Hub  # noqa: E402


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def walk(exe, hub, home, *args):
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
    env.update(HF_HOME=home, HF_ENDPOINT=hub.url, no_proxy="*", NO_PROXY="*")
    shutil.rmtree(home, ignore_errors=True)
    t0 = time.monotonic()
    p = subprocess.run([exe, "hf://org/bench", *args], env=env, capture_output=True, text=True,
                       check=True)
    wall = time.monotonic() - t0
    shutil.rmtree(home, ignore_errors=True)
    return [json.loads(l) for l in p.stdout.splitlines()], wall


def scan(exe, hub, home, metrics, fill=False, **env_extra):
    """Seconds of `ckptscope scan hf://org/bench --evict` into a fresh run file (and a
    fresh cache unless fill: then the cache is filled first, and the scan reads it
    offline)."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
    env.update(HF_HOME=home, HF_ENDPOINT=hub.url, no_proxy="*", NO_PROXY="*", **env_extra)
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(home)
    run = os.path.join(home, "run.h5")
    if fill:
        subprocess.run([exe, "scan", "hf://org/bench", "-o", run, "--metrics", "norms",
                        "--quiet"], env=env, check=True)
        os.unlink(run)
        env["HF_HUB_OFFLINE"] = "1"
    t0 = time.monotonic()
    subprocess.run([exe, "scan", "hf://org/bench", "-o", run, "--metrics", metrics, "--quiet"] +
                   ([] if fill else ["--evict"]), env=env, check=True)
    wall = time.monotonic() - t0
    shutil.rmtree(home, ignore_errors=True)
    return wall


def curl(urls, out, parallel):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    args = ["curl", "-s", "--no-progress-meter", "-f", "-L", "--noproxy", "*"]
    if parallel:
        args += ["-Z", "--parallel-max", "4"]
    for i, u in enumerate(urls):
        args += ["-o", os.path.join(out, "f%d" % i), u]
    t0 = time.monotonic()
    subprocess.run(args, check=True, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    shutil.rmtree(out, ignore_errors=True)
    return wall


def fmt(nbytes, secs):
    return "%7.3f s  %7.1f MB/s" % (secs, nbytes / secs / 1e6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture")
    ap.add_argument("walk")
    ap.add_argument("ckptscope", nargs="?")
    ap.add_argument("--metrics", default="norms,spectral,drift", help="for the scan part")
    ap.add_argument("--skip-rate", action="store_true", help="leave out the download rates")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--checkpoints", type=int, default=3)
    ap.add_argument("--rate", type=float, default=150, help="MB/s for the overlap part")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-hub-", dir=a.dir)
    try:
        repo = os.path.join(root, "repo")
        h = a.hidden
        subprocess.run([a.fixture, repo, "--lfs", "--shards", str(a.shards), "--checkpoints",
                        str(a.checkpoints), "--hidden", str(h), "--intermediate", str(h * 11 // 4),
                        "--vocab", str(32 * h), "--heads", "8", "--kv-heads", "8", "--layers",
                        str(a.layers)], check=True)
        hub = Hub(repo, "org/bench", None)
        commit = hub.repo.branches["ckpt_000"]
        files = [e for e in hub.repo.trees[commit] if e["type"] == "file"]
        nbytes = sum(e["size"] for e in files)
        urls = ["%s/org/bench/resolve/%s/%s" % (hub.url, commit, e["path"]) for e in files]
        home = os.path.join(root, "hf")
        print("checkpoint: %d files, %.1f MiB (%d LFS shards); load %s" %
              (len(files), nbytes / 2**20, a.shards, load()))
        rows = {"curl, one at a time": [], "curl -Z, 4 at once": [],
                "hf:// source, 1 in flight": [], "hf:// source, 4 in flight": []}
        for _ in range(0 if a.skip_rate else a.repeat):
            rows["curl, one at a time"].append(curl(urls, os.path.join(root, "c"), False))
            rows["curl -Z, 4 at once"].append(curl(urls, os.path.join(root, "c"), True))
            for n, key in ((1, "hf:// source, 1 in flight"), (4, "hf:// source, 4 in flight")):
                steps, _ = walk(a.walk, hub, home, "--count", "1", "--threads", str(n))
                rows[key].append(steps[0]["wait_s"])
        if not a.skip_rate:
            print("%-28s %-24s %-24s" % ("download (loopback)", "best", "median"))
            for k, v in rows.items():
                print("%-28s %-24s %-24s" % (k, fmt(nbytes, min(v)),
                                            fmt(nbytes, statistics.median(v))))
            print("load %s" % load())

        hub.rate = a.rate * 1e6
        print("\noverlap: server limited to %.0f MB/s, %d checkpoints, 4 in flight; load %s" %
              (a.rate, a.checkpoints, load()))
        seq, wall_seq = walk(a.walk, hub, home, "--no-prefetch")
        pre, wall_pre = walk(a.walk, hub, home)
        dl = statistics.mean(s["wait_s"] for s in seq)
        an = statistics.mean(s["read_s"] for s in seq)
        print("  per checkpoint: download %.3f s, analysis %.3f s (sum %.3f, max %.3f)" %
              (dl, an, dl + an, max(dl, an)))
        print("  walk without prefetch: %.3f s = %.3f s per checkpoint" %
              (wall_seq, wall_seq / a.checkpoints))
        print("  walk with prefetch:    %.3f s = %.3f s per checkpoint (waits %s)" %
              (wall_pre, wall_pre / a.checkpoints,
               ", ".join("%.3f" % s["wait_s"] for s in pre)))
        print("load %s" % load())
        if a.ckptscope:
            print("\nscan --evict --metrics %s: server limited to %.0f MB/s, %d checkpoints; "
                  "load %s" % (a.metrics, a.rate, a.checkpoints, load()))
            dl = []
            for _ in range(a.repeat):
                steps, _ = walk(a.walk, hub, home, "--no-prefetch")
                dl.append(sum(s["wait_s"] for s in steps))
            parts = {"download alone (walk)": dl, "analysis alone (cache, offline)": [],
                     "scan without prefetch": [], "scan with prefetch": []}
            for _ in range(a.repeat):
                parts["analysis alone (cache, offline)"].append(
                    scan(a.ckptscope, hub, home, a.metrics, fill=True))
                parts["scan without prefetch"].append(
                    scan(a.ckptscope, hub, home, a.metrics, CKS_TEST_NO_PREFETCH="1"))
                parts["scan with prefetch"].append(scan(a.ckptscope, hub, home, a.metrics))
            print("  %-34s %-10s %-10s %s" % ("", "best s", "median s", "per checkpoint (median)"))
            for k, v in parts.items():
                m = statistics.median(v)
                print("  %-34s %-10.3f %-10.3f %.3f" % (k, min(v), m, m / a.checkpoints))
            d = statistics.median(dl)
            an = statistics.median(parts["analysis alone (cache, offline)"])
            print("  sum of the parts %.3f s, larger part %.3f s" % (d + an, max(d, an)))
            print("load %s" % load())
        hub.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
