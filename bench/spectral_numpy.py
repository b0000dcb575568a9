#!/usr/bin/python3
"""Times the numpy/scipy SVD paths that WeightWatcher takes per weight matrix, for the
comparison with bench_spectral (same shapes, 1 and 2 threads; prints figures only).

WeightWatcher's ESD (weightwatcher.py, WeightWatcher.combined_eigenvalues) does
`W = W.astype(float)` and then `svd_vals(W)`: in 0.7.x on Linux without CUDA that is
`scipy.linalg.svd(W, compute_uv=False)` (RMT_Util.py `_svd_vals_accurate`; LAPACK dgesdd
with jobz='N'); 0.4.x called `np.linalg.svd(W, compute_uv=False)`. Both are timed, with
the float64 conversion, plus the full SVD with vectors `np.linalg.svd(W,
full_matrices=False)` that some of its other analyses use.

    /usr/bin/python3 bench/spectral_numpy.py [--shapes 1024x1024,...] [--threads 1,2]
                                             [--reps N] [--no-full]
Each thread count runs in a child process, because OpenBLAS reads OPENBLAS_NUM_THREADS
when numpy is first imported. Wall and process CPU seconds, best of --reps.
"""
import argparse
import os
import subprocess
import sys
import time

SHAPES = "1024x1024,2048x2048,4096x1024,4096x4096,4096x11008"


def child(shapes, reps, full):
    import numpy as np
    import scipy.linalg

    rng = np.random.Generator(np.random.PCG64(1))
    for m, n in shapes:
        w32 = (rng.standard_normal((m, n), dtype=np.float32) * 0.02).astype(np.float32)
        paths = [
            ("ww 0.7 scipy.linalg.svd(W.astype(float), compute_uv=False)",
             lambda: scipy.linalg.svd(w32.astype(float), compute_uv=False)),
            ("ww 0.4 np.linalg.svd(W.astype(float), compute_uv=False)",
             lambda: np.linalg.svd(w32.astype(float), compute_uv=False)),
        ]
        if full:
            paths.append(("full np.linalg.svd(W.astype(float), full_matrices=False)",
                          lambda: np.linalg.svd(w32.astype(float), full_matrices=False)))
        for name, fn in paths:
            best = cpu = float("inf")
            for _ in range(reps):
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                best = min(best, time.perf_counter() - t0)
                cpu = min(cpu, time.process_time() - c0)
            print(f"{m:5d}x{n:<6d} {os.environ['OPENBLAS_NUM_THREADS']:>2s} thr  "
                  f"{best:9.3f} s (cpu {cpu:9.3f})  {name}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default=SHAPES)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--no-full", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    if a.child:
        child(shapes, a.reps, not a.no_full)
        return
    for th in a.threads.split(","):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=th, OMP_NUM_THREADS=th)
        args = [sys.executable, __file__, "--child", "--shapes", a.shapes, "--reps", str(a.reps)]
        if a.no_full:
            args.append("--no-full")
        subprocess.run(args, env=env, check=True)


if __name__ == "__main__":
    main()
