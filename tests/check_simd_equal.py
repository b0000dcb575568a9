#!/usr/bin/env python3
"""The portable build's kernels against the SIMD build's: runs two cks-kernels executables
(this build's, -DCKS_SIMD=OFF, and the reference, a build with the x86-64 clones) and
compares their lines within the rounding the kernels state:

- counts (nan, inf, count), absmax, absmax_delta and the widening hashes: equal exactly
  (a largest magnitude is a stored value; widening is exact);
- values from a 16-bit kernel (norms of BF16/F16, drift of two tensors of one 16-bit
  dtype): f32 partial sums of 8 values per lane, each within 8 * 2^-24 of the sum of its
  terms' magnitudes in either build, so the builds differ by at most 2^-20 relative
  (fro, rms, rel_fro), 2^-20 of the rms for mean and std, and 2^-19 absolute for cos;
- everything else is summed in f64: 1e-12 on the same scales.

The builds differ only where the x86-64-v3/v4 clones (and aarch64) fuse a multiply and an
add that the baseline x86-64 code rounds twice.

Usage: check_simd_equal.py THIS_KERNELS REFERENCE_KERNELS
Exit 77 (a ctest skip) when the reference is missing outside CI; in CI (CI=true) that fails.
"""
import math
import os
import subprocess
import sys

HALF = ("BF16", "F16")
EXACT = {"nan", "inf", "count", "absmax", "absmax_delta", "hash"}


def run(exe):
    out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    cases = {}
    for line in out.splitlines():
        name, *fields = line.split()
        cases[name] = {k: int(v) if v.isdigit() else float(v)
                       for k, v in (f.split("=", 1) for f in fields)}
    return cases


def tolerance(name, key, vals):
    parts = name.split("_")
    if parts[0] == "norms":
        half = parts[-1] in HALF
    else:  # drift_<case>_<dtype a>_<dtype b>
        half = parts[-1] == parts[-2] and parts[-1] in HALF
    rel = 2.0**-20 if half else 1e-12
    if key in ("mean", "std"):
        return rel * vals["rms"]
    if key == "cos":
        return 2 * rel
    return rel * abs(vals[key])


def main():
    mine_exe, ref_exe = sys.argv[1], sys.argv[2]
    if not os.path.exists(ref_exe):
        msg = (f"check_simd_equal: no reference {ref_exe}: build the SIMD preset (dev) "
               "first")
        if os.environ.get("CI") == "true":
            print(msg + " (in CI this fails)")
            return 1
        print(msg + " (skipped)")
        return 77
    mine, ref = run(mine_exe), run(ref_exe)
    failures = []
    if sorted(mine) != sorted(ref):
        failures.append(f"cases differ: {sorted(set(mine) ^ set(ref))}")
    compared, largest = 0, (0.0, "")
    for name in sorted(set(mine) & set(ref)):
        a, b = mine[name], ref[name]
        for key in sorted(b):
            x, y = a.get(key), b[key]
            if x is None:
                failures.append(f"{name}: {key} missing")
                continue
            compared += 1
            if key in EXACT:
                ok = x == y or (math.isnan(x) and math.isnan(y))
            elif math.isnan(y) or math.isnan(x):
                ok = math.isnan(x) and math.isnan(y)
            else:
                tol = tolerance(name, key, b)
                ok = abs(x - y) <= tol
                if tol > 0 and abs(x - y) / tol > largest[0]:
                    largest = (abs(x - y) / tol, f"{name} {key}")
            if not ok:
                failures.append(f"{name}: {key} = {x!r} here, {y!r} in the SIMD build")
    for f in failures:
        print("check_simd_equal:", f)
    if failures:
        return 1
    print(f"check_simd_equal: {len(ref)} cases, {compared} values agree within the "
          "stated rounding; largest difference "
          + (f"{largest[0]:.3g} of the tolerance ({largest[1]})" if largest[1] else "0"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
