#!/usr/bin/python3
"""Reference values for the function-space statistics of DESIGN §3 (metrics/klrow.h,
klsum.h, bootstrap.h, memo.h), computed independently of the C code with numpy in float64:

- KL(P_c || P_t), nll, argmax (first maximum: ties to the lowest id) per position, from
  float32 logits rows made by a counter-based splitmix64 generator that C reproduces bit
  for bit (every float32 step is a product by a power of two or a single rounded sum);
- the set aggregates: mean KL, its percentiles by numpy's default (linear) quantile, max,
  top-1 agreement, forgetting and learning events, dnll, top-1 accuracy;
- the block bootstrap of dnll re-implemented in numpy: numpy's legacy RandomState(seed)
  draws the same 32-bit stream as GSL's gsl_rng_mt19937 (randint(0, 2**32, dtype=uint64)),
  gsl_rng_uniform_int's rejection rule written out, sums in draw order (np.cumsum adds
  sequentially, as C does);
- gsl_ran_choose's selection (Knuth's algorithm S with gsl_rng_uniform = x / 2^32) the
  same way, and the first outputs of the stream itself.

Writes tests/data/fstats/refs.json. Deterministic (no other randomness).

    /usr/bin/python3 tools/make_fstats_refs.py           # rewrite the refs
    /usr/bin/python3 tools/make_fstats_refs.py --check   # exit 1 unless the refs are current

--check without numpy exits 77 (ctest's skip), or 1 when CI=true: a missing reference
must fail CI, never pass as a skip.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "fstats", "refs.json")

try:
    import numpy as np
except ImportError:  # the ctest entry runs --check
    if "--check" in sys.argv:
        print("make_fstats_refs: numpy is missing", file=sys.stderr)
        sys.exit(1 if os.environ.get("CI") == "true" else 77)
    raise

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15

# ---------------------------------------------------------------------------------------
# The generator (tests/test_fstats.c has the same): value i of stream s is splitmix64's
# mix of s * 2^40 + (i + 1) * golden.


def mix64(z):
    z = np.asarray(z, dtype=np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def gen(stream, idx):
    """uint64 values of stream at integer indices idx (numpy wraps uint64 products)."""
    idx = np.asarray(idx, dtype=np.uint64)
    with np.errstate(over="ignore"):
        base = np.uint64((stream << 40) & M64)
        return mix64(base + (idx + np.uint64(1)) * np.uint64(GOLDEN))


def unif32(stream, idx):
    """float32 in [0, 1), a multiple of 2^-24: exact."""
    return ((gen(stream, idx) >> np.uint64(40)).astype(np.float64) * 2.0 ** -24).astype(np.float32)


def unif64(stream, idx):
    """float64 in [0, 1), a multiple of 2^-53: exact."""
    return (gen(stream, idx) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


# ---------------------------------------------------------------------------------------
# Logits rows: 7 kinds of rows (by position % 7), see make_rows.

VOCAB = 389
DOCS = [260, 1, 0, 45, 257, 3, 30]


def make_rows(npos, V):
    """(c, t, y): float32 [npos, V] logits of base and t, targets. Kinds by p % 7:
    0 t = c + small noise; 1 both spiked at y; 2 c spiked at y, t elsewhere (forgot; only
    when p % 14 == 2, else kind 0, so that forgot and learned differ);
    3 t spiked at y, c elsewhere (learned); 4 t = c; 5 t = c + 4 (same distribution);
    6 wide independent rows (|logit| < 64) with a two-way tie at the top of each."""
    P = np.arange(npos, dtype=np.uint64)[:, None] * np.uint64(V) + np.arange(V, dtype=np.uint64)
    half = np.float32(0.5)
    c = (unif32(1, P) - half) * np.float32(16)
    noise = (unif32(2, P) - half) * np.float32(2.0 ** -4)
    wide_c = (unif32(3, P) - half) * np.float32(128)
    wide_t = (unif32(4, P) - half) * np.float32(128)
    spike = np.float32(12) + (unif32(5, np.arange(npos)) - half)
    y = (gen(6, np.arange(npos)) % np.uint64(V)).astype(np.int64)
    other = ((y + 1 + (gen(7, np.arange(npos)) % np.uint64(V - 1)).astype(np.int64)) % V)
    t = np.empty_like(c)
    for p in range(npos):
        k = p % 7
        if k == 0 or (k == 2 and p % 14 != 2):
            t[p] = c[p] + noise[p]
        elif k in (1, 2, 3):
            t[p] = c[p] + noise[p] * np.float32(8)
            c[p, y[p] if k in (1, 2) else other[p]] = spike[p]
            t[p, y[p] if k in (1, 3) else other[p]] = spike[p]
        elif k == 4:
            t[p] = c[p]
        elif k == 5:
            t[p] = c[p] + np.float32(4)
        else:
            c[p], t[p] = wide_c[p], wide_t[p]
            lo, hi = sorted({int(y[p]) % V, int(other[p]) % V} | {(int(y[p]) + 7) % V})[:2]
            c[p, lo] = c[p, hi] = c[p].max() + np.float32(1)
            t[p, lo] = t[p, hi] = t[p].max() + np.float32(1)
    return c, t, y


def log_softmax64(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def per_position(c, t, y):
    lc, lt = log_softmax64(c), log_softmax64(t)
    kl = (np.exp(lc) * (lc - lt)).sum(axis=-1)
    rows = np.arange(len(y))
    return {"kl": kl, "nll_c": -lc[rows, y], "nll_t": -lt[rows, y],
            "arg_c": c.argmax(axis=-1), "arg_t": t.argmax(axis=-1), "y": y}


# ---------------------------------------------------------------------------------------
# GSL's generator and its uses, in numpy


class GslMt:
    """gsl_rng_mt19937 seeded s: numpy's legacy RandomState(s) gives the same 32-bit
    outputs (init_genrand seeding in both)."""

    def __init__(self, seed):
        # gsl_rng_set (mt.c): a seed of 0 means 4357, the generator's old default
        self.rs = np.random.RandomState(seed if seed != 0 else 4357)

    def get(self):
        return int(self.rs.randint(0, 2 ** 32, dtype=np.uint64))

    def uniform_int(self, n):
        """gsl_rng_uniform_int (gsl_rng.h, GSL 2.7): scale = range / n with range =
        max - min = 2^32 - 1; k = (x - min) / scale, drawn again while k >= n."""
        scale = (2 ** 32 - 1) // n
        while True:
            k = self.get() // scale
            if k < n:
                return k

    def uniform(self):
        """gsl_rng_uniform for mt19937: x / 2^32."""
        return self.get() / 4294967296.0


def blocks(values, docs, block):
    sums, counts, at = [], [], 0
    for n in docs:
        for p in range(0, n, block):
            k = min(block, n - p)
            sums.append(np.cumsum(values[at + p:at + p + k])[-1])
            counts.append(k)
        at += n
    return np.array(sums, dtype=np.float64), np.array(counts, dtype=np.int64)


def bootstrap(values, docs, block=256, resamples=1000, seed=1, lo=0.025, hi=0.975):
    """DESIGN §3 literally (see metrics/bootstrap.h)."""
    D, N = blocks(np.asarray(values, dtype=np.float64), docs, block)
    nb = len(D)
    r = GslMt(seed)
    stat = np.empty(resamples)
    for b in range(resamples):
        idx = np.array([r.uniform_int(nb) for _ in range(nb)], dtype=np.int64)
        stat[b] = np.cumsum(D[idx])[-1] / float(np.cumsum(N[idx])[-1])
    stat.sort()
    return float(np.quantile(stat, lo)), float(np.quantile(stat, hi)), nb


def choose(n, k, seed):
    """gsl_ran_choose (randist/shuffle.c): item i is taken when (n - i) * u < k - j."""
    r, out, j = GslMt(seed), [], 0
    for i in range(n):
        if j >= k:
            break
        if (n - i) * r.uniform() < k - j:
            out.append(i)
            j += 1
    return out


# ---------------------------------------------------------------------------------------


def summary(pp, docs):
    kl, delta = pp["kl"], pp["nll_t"] - pp["nll_c"]
    ac, at, y = pp["arg_c"], pp["arg_t"], pp["y"]
    lo, hi, nb = bootstrap(delta, docs)
    q = np.quantile(kl, [0.5, 0.9, 0.99])
    return {"positions": len(kl), "kl": kl.mean(), "kl_p50": q[0], "kl_p90": q[1],
            "kl_p99": q[2], "kl_max": kl.max(), "top1_agree": np.mean(ac == at),
            "forgot": np.mean((ac == y) & (at != y)), "learned": np.mean((at == y) & (ac != y)),
            "dnll": delta.mean(), "dnll_lo": lo, "dnll_hi": hi, "top1_acc": np.mean(at == y),
            "top1_acc_base": np.mean(ac == y), "blocks": nb}


def as_json(v):
    if isinstance(v, dict):
        return {k: as_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [as_json(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    return v


def make():
    npos = sum(DOCS)
    c, t, y = make_rows(npos, VOCAB)
    pp = per_position(c, t, y)
    # bootstrap on generated values: 40 documents of 0..1199 positions, several options
    docs = [int(x) for x in gen(8, np.arange(40)) % np.uint64(1200)]
    docs[3] = 0
    values = unif64(9, np.arange(sum(docs))) * 2.0 - 0.9
    boot = []
    for opt in [dict(), dict(block=7, resamples=50, seed=42, lo=0.1, hi=0.9),
                dict(block=1000, resamples=200, seed=0, lo=0.0, hi=1.0)]:
        lo, hi, nb = bootstrap(values, docs, **opt)
        boot.append({"options": opt, "lo": lo, "hi": hi, "blocks": nb})
    D, N = blocks(values, docs, 256)
    r1 = GslMt(1)
    stream = [r1.get() for _ in range(16)]
    draws = []
    for n in (3, 1000, 2 ** 31 + 1):
        r = GslMt(1)
        draws.append({"n": n, "seed": 1, "draws": [r.uniform_int(n) for _ in range(12)]})
    quant = []
    for n, src in ((1, 10), (2, 11), (5, 12), (1000, 13)):
        x = np.sort(unif64(src, np.arange(n)))
        qs = [0.0, 0.025, 0.5, 0.9, 0.99, 0.975, 1.0]
        quant.append({"x": x, "q": qs, "want": [float(np.quantile(x, q)) for q in qs]})
    return {
        "made_by": "tools/make_fstats_refs.py (numpy %s, float64)" % np.__version__,
        "generator": "splitmix64 mix of (stream << 40) + (i + 1) * 0x9E3779B97F4A7C15",
        "kl": {"vocab": VOCAB, "docs": DOCS, "per_position": pp, "summary": summary(pp, DOCS)},
        "bootstrap": {"docs": docs, "values_stream": 9, "cases": boot,
                      "blocks_256": {"sums_first": D[:5], "counts_first": N[:5], "n": len(D)}},
        "mt19937_seed1_first": stream,
        "uniform_int": draws,
        "choose": [{"n": n, "k": k, "seed": s, "pick": choose(n, k, s)}
                   for n, k, s in ((1000, 10, 1), (37, 36, 5), (5, 1, 7), (64, 32, 1))],
        "quantiles": quant,
    }


def dump(obj):
    return json.dumps(as_json(obj), indent=1, sort_keys=True) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed refs")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    text = dump(make())
    if args.check:
        with open(args.out) as f:
            old = f.read()
        if old != text:
            print("make_fstats_refs: %s is not what the script computes now; rerun it" % args.out)
            return 1
        print("make_fstats_refs: %s is current" % args.out)
        return 0
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print("make_fstats_refs: wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
