#!/usr/bin/python3
"""Reference values for the spectral statistics of DESIGN §3, computed independently of
the C code: float64 numpy full SVD of each matrix, the statistics written out from the
definitions, and the power-law fit written out as the `powerlaw` package's procedure
(Clauset, Shalizi & Newman 2009, SIAM Review 51:661, §3: continuous MLE for alpha and xmin
chosen by the minimum Kolmogorov-Smirnov distance), which is not installable here.

Writes tests/data/spectral/matrices.safetensors (the matrices, F32) and
tests/data/spectral/expected.json (per matrix: shape, top eigenvalues, every metric, all
eigenvalues; plus eigenvalue-only cases). Deterministic: numpy's PCG64 with fixed seeds.

    /usr/bin/python3 tools/make_spectral_refs.py [OUTDIR]

The functions `spectral_stats` and `powerlaw_fit` are also imported by the CLI test.
"""
import json
import math
import os
import struct
import sys

import numpy as np

# λ counts as nonzero when λ > λ1 · max(m, n) · ε64 (DESIGN §3's "nonzero", made exact:
# below that a computed eigenvalue is rounding noise; numpy's matrix_rank uses the same
# tolerance on σ·σ1 with the roles reversed, but this one is what a Gram-matrix
# eigensolver can resolve).
EPS64 = np.finfo(np.float64).eps
MIN_TAIL = 10
METRICS = ["sigma_max", "log_spectral_norm", "log_norm", "stable_rank", "entropy",
           "effective_rank", "alpha", "xmin", "ks", "tail", "alpha_weighted",
           "num_spikes", "mp_softrank"]


def powerlaw_fit(x):
    """DESIGN §3 literally: candidates are the distinct values with a tail of >= 10; for
    each, alpha = 1 + k / sum(ln(x_i / xmin)) and the two-sided KS distance D of the tail
    against F(x) = 1 - (x/xmin)^(1-alpha); the smallest D wins, ties to the smaller xmin.
    A candidate whose tail is one repeated value has no MLE (sum = 0) and is skipped.
    Returns (alpha, xmin, D, k, D of the runner-up) or NaNs when no candidate exists.
    The runner-up says how far the choice of xmin is from a tie (tests need a margin)."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    best = None
    second = math.inf
    for xmin in np.unique(x):
        tail = x[x >= xmin]
        k = len(tail)
        if k < MIN_TAIL:
            break
        s = np.sum(np.log(tail / xmin))
        if not s > 0:
            continue
        alpha = 1.0 + k / s
        cdf = 1.0 - (tail / xmin) ** (1.0 - alpha)
        i = np.arange(1, k + 1, dtype=np.float64)
        d = max(np.max(np.abs(i / k - cdf)), np.max(np.abs((i - 1) / k - cdf)))
        if best is None or d < best[2]:
            if best is not None:
                second = min(second, best[2])
            best = (alpha, float(xmin), d, k)
        else:
            second = min(second, d)
    if best is None:
        return (math.nan, math.nan, math.nan, 0, math.nan)
    return best + (second,)


def spectral_stats(lam, rows, cols, fro2=None):
    """Every metric of DESIGN §3 from the min(rows, cols) eigenvalues λ = σ² (any order;
    fewer given means the rest are zero). fro2 = ||W||_F^2, default sum(λ). Returns
    (metrics, KS distance of the runner-up xmin)."""
    lam = np.sort(np.asarray(lam, dtype=np.float64))[::-1]
    out = {m: math.nan for m in METRICS}
    out["tail"] = 0
    out["num_spikes"] = 0
    runner_up = math.nan
    l1 = lam[0] if len(lam) else 0.0
    out["sigma_max"] = math.sqrt(max(l1, 0.0))
    if not l1 > 0:
        return out, runner_up
    nz = lam[lam > l1 * max(rows, cols) * EPS64]
    if fro2 is None:
        fro2 = float(np.sum(nz))
    out["log_spectral_norm"] = math.log10(l1)
    out["log_norm"] = math.log10(fro2)
    out["stable_rank"] = fro2 / l1
    r = len(nz)
    if r > 1:
        p = nz / np.sum(nz)
        out["entropy"] = float(-np.sum(p * np.log(p)) / math.log(r))
    sv = np.sqrt(nz)
    q = sv / np.sum(sv)
    out["effective_rank"] = float(math.exp(-np.sum(q * np.log(q))))
    if min(rows, cols) >= MIN_TAIL:
        alpha, xmin, d, k, runner_up = powerlaw_fit(nz)
        if k:
            out.update(alpha=alpha, xmin=xmin, ks=d, tail=int(k),
                       alpha_weighted=alpha * math.log10(l1))
    lplus = fro2 / (rows * cols) * (math.sqrt(rows) + math.sqrt(cols)) ** 2
    out["num_spikes"] = int(np.sum(lam > lplus))
    out["mp_softrank"] = lplus / l1
    return out, runner_up


def orthonormal(rng, n, k):
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return q * np.sign(np.diag(r))


def pareto_quantiles(n, alpha, scale):
    """n eigenvalues on the quantile grid of a Pareto law p(x) ~ x^-alpha, x >= scale."""
    u = (np.arange(n) + 0.5) / n
    return scale * (1.0 - u) ** (-1.0 / (alpha - 1.0))


def make_matrices():
    """(name, float32 matrix, note, analytic expectations) in a fixed order."""
    mats = []
    rng = np.random.Generator(np.random.PCG64(20240611))

    # Exact power-law spectrum: W = U diag(s) V^T with s^2 on a Pareto(alpha=2.5) grid.
    m, n, a = 128, 224, 2.5
    lam = pareto_quantiles(m, a, 0.01)
    w = orthonormal(rng, m, m) @ np.diag(np.sqrt(lam)) @ orthonormal(rng, n, m).T
    mats.append(("powerlaw_128x224", w, "U diag(s) V^T, s^2 Pareto quantiles, alpha 2.5",
                 {"alpha_approx": a}))

    # Diagonal: singular values are |d| (analytic).
    d = np.linspace(0.05, 2.4, 48) * np.where(np.arange(48) % 3 == 0, -1.0, 1.0)
    w = np.diag(rng.permutation(d))
    mats.append(("diag_48", w, "diagonal, distinct |d|",
                 {"lambda": sorted((np.float64(np.float32(v)) ** 2 for v in d), reverse=True)}))

    # Rank-deficient: rank 12 of 64 (52 zero eigenvalues, excluded from entropy/alpha).
    w = rng.standard_normal((96, 12)) @ rng.standard_normal((12, 64)) * 0.1
    mats.append(("rank12_96x64", w, "rank 12 product of Gaussians", {"rank": 12}))

    # Fewer than 10 on one side: alpha and its companions are NaN; both orientations.
    mats.append(("small_8x40", rng.standard_normal((8, 40)), "min side 8", {}))
    mats.append(("small_40x8", rng.standard_normal((40, 8)), "min side 8, tall", {}))

    # Gaussian, both orientations.
    mats.append(("gauss_192x128", rng.standard_normal((192, 128)) * 0.02, "iid N(0, 0.02^2)", {}))
    mats.append(("gauss_112x176", rng.standard_normal((112, 176)) * 0.02, "iid N(0, 0.02^2), wide", {}))

    # Heavy-tailed: iid Student-t with 3 degrees of freedom.
    mats.append(("student3_160x224", rng.standard_t(3.0, (160, 224)) * 0.01, "iid Student-t(3)", {}))

    # Gaussian bulk plus three strong rank-one spikes (far above the BBP threshold): the
    # MP edge test should count exactly the three spikes.
    m, n = 96, 160
    w = rng.standard_normal((m, n))
    for strength in (8.0, 6.0, 4.0):
        u = rng.standard_normal(m)
        v = rng.standard_normal(n)
        w += strength * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v)) * math.sqrt(n)
    mats.append(("spikes3_96x160", w * 0.02, "Gaussian + 3 rank-one spikes", {"num_spikes": 3}))
    return [(name, np.asarray(w, dtype=np.float32), note, extra)
            for name, w, note, extra in mats]


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"generator": "tools/make_spectral_refs.py"}}, [], 0
    for name, arr in tensors:
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def nan_to_none(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def spike_margin(lam, rows, cols):
    """min |λ/λ+ - 1|: how far num_spikes is from flipping under rounding."""
    lplus = np.sum(lam) / (rows * cols) * (math.sqrt(rows) + math.sqrt(cols)) ** 2
    return float(np.min(np.abs(lam / lplus - 1.0)))


def case_from_eigs(name, lam, rows, cols, note, extra):
    st, runner_up = spectral_stats(lam, rows, cols)
    return {"name": name, "rows": rows, "cols": cols, "note": note, "analytic": extra,
            "metrics": {k: nan_to_none(v) for k, v in st.items()},
            "ks_runner_up": nan_to_none(runner_up),
            "spike_margin": spike_margin(lam, rows, cols),
            "lambda": [float(v) for v in np.sort(lam)[::-1]]}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "data", "spectral")
    os.makedirs(outdir, exist_ok=True)
    mats = make_matrices()
    cases = []
    for name, w, note, extra in mats:
        w64 = w.astype(np.float64)  # the stored f32 values, exactly
        sv = np.linalg.svd(w64, full_matrices=False, compute_uv=False)
        c = case_from_eigs(name, sv * sv, w.shape[0], w.shape[1], note, extra)
        c["fro2"] = float(np.sum(w64 * w64))
        cases.append(c)
        print(f"{name:20s} alpha {c['metrics']['alpha']} ks {c['metrics']['ks']} "
              f"runner-up {c['ks_runner_up']} spikes {c['metrics']['num_spikes']}")

    # Eigenvalue-only cases for cks_spectral_from_eigs.
    rng = np.random.Generator(np.random.PCG64(7))
    lam = (1.0 - rng.random(1000)) ** (-1.0 / 1.5)  # Pareto sample, alpha = 2.5, xmin = 1
    eig_cases = [
        case_from_eigs("pareto_sample_1000", lam, 1000, 3000,
                       "iid Pareto(alpha 2.5, xmin 1) sample", {"alpha_approx": 2.5}),
        case_from_eigs("ties_40", np.repeat([1.0, 2.0, 3.0, 5.0], 10), 40, 40,
                       "four values repeated ten times each", {}),
        case_from_eigs("constant_20", np.full(20, 4.0), 20, 30,
                       "one repeated value: no power-law MLE", {}),
    ]
    write_safetensors(os.path.join(outdir, "matrices.safetensors"), [(n, w) for n, w, _, _ in mats])
    doc = {"generator": "tools/make_spectral_refs.py", "numpy": np.__version__,
           "rank_tolerance": "lambda > lambda_1 * max(rows, cols) * 2^-52",
           "top": 16, "matrices": cases, "eigenvalue_cases": eig_cases}
    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
