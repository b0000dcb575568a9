#!/usr/bin/python3
"""Peak RSS and time of `ckptscope scan` on fixture runs of 5 and 40 checkpoints of the
same model: the peak must not grow with the number of checkpoints (at most three are
mapped, and each tensor's pages are dropped once read). Prints figures; never fails.
usage: bench_scan_rss.py CKPTSCOPE CKS_FIXTURE [--hidden H] [--counts 5,40] [--dir D]"""
import argparse
import os
import shutil
import subprocess
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckptscope")
    ap.add_argument("fixture")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--counts", default="5,40")
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-scan-", dir=a.dir)
    model = ["--hidden", a.hidden, "--intermediate", a.hidden * 11 // 4, "--vocab", 8 * a.hidden,
             "--heads", 8, "--kv-heads", 8, "--layers", 2]
    try:
        for n in [int(x) for x in a.counts.split(",")]:
            src = os.path.join(root, "fx%d" % n)
            subprocess.run([a.fixture, src, "--layout", "folder", "--checkpoints", str(n)] +
                           [str(m) for m in model], check=True)
            ckpt_bytes = os.path.getsize(os.path.join(src, "ckpt_000", "model.safetensors"))
            out = os.path.join(root, "run%d.h5" % n)
            t0 = time.time()
            p = subprocess.Popen([a.ckptscope, "scan", src, "-o", out, "--quiet"])
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.time() - t0
            print("scan of %2d checkpoints x %5.1f MiB: peak RSS %6.1f MiB, %5.2f s (%.0f ms and "
                  "%.0f MB/s per checkpoint), run file %.2f MiB, exit %d"
                  % (n, ckpt_bytes / 2**20, ru.ru_maxrss / 1024, wall, wall / n * 1e3,
                     ckpt_bytes / (wall / n) / 1e6, os.path.getsize(out) / 2**20,
                     os.waitstatus_to_exitcode(status)))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
