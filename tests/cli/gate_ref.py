"""An independent reading of the gate's rules (DESIGN §7, reports/gate.h), written from
the specification in Python for the CLI tests: the direction table, the tolerance terms,
the standard errors (stored, binomial), Wilson/Newcombe for proportions, and the
severities. It shares no code with ckptscope; the tests compare the two."""
import math
import re

HIGHER = {"acc", "acc_norm", "acc_mutual_info", "exact_match", "em", "mc1", "contains", "pass@1",
          "bleu_acc", "rouge1_acc", "rouge2_acc", "rougeL_acc", "mc2", "f1", "mcc", "bleu", "chrf",
          "bleu_max", "bleu_diff", "rouge1_max", "rouge1_diff", "rouge2_max", "rouge2_diff",
          "rougeL_max", "rougeL_diff"}
LOWER = {"pct_stereotype", "ter", "brier_score", "likelihood_difference", "likelihood_diff",
         "ppl", "perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte"}
BINOMIAL = {"acc", "acc_norm", "acc_mutual_info", "exact_match", "em", "mc1", "contains",
            "pass@1", "bleu_acc", "rouge1_acc", "rouge2_acc", "rougeL_acc", "pct_stereotype"}
BUILTIN_LOWER = {"nll", "ppl", "bpb"}


def table_direction(score_id):
    """'higher', 'lower' or None for a score id evals/<task>/<metric> or eval/<set>/<m>."""
    group, _, metric = score_id.split("/", 2)
    base = metric.split(",")[0]
    if group == "eval":
        return "lower" if base in BUILTIN_LOWER else None
    return "higher" if base in HIGHER else "lower" if base in LOWER else None


def parse_tolerance(spec):
    out = []
    for term in spec.split(","):
        kind, x = term.split(":")
        out.append((kind, float(x)))
    return out


def wilson(p, n, z):
    """Wilson (1927) score interval."""
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z / d * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, c - h), min(1.0, c + h)


def finite(x):
    return x is not None and math.isfinite(x)


def side_se(p, binomial):
    v, se, n = p
    if finite(se) and se >= 0:
        return se, "stored"
    if binomial and finite(n) and n >= 1 and 0 <= v <= 1:
        return math.sqrt(v * (1 - v) / n), "binomial"
    return None, None


def judge(a, r, direction, binomial, tol):
    """a, r: (value, stderr, n) with None/NaN for unknown. Returns a dict with severity,
    delta, sigma, z, worse (the band on the bad side) and rule."""
    nan = float("nan")
    out = {"delta": nan, "sigma": nan, "z": nan, "worse": nan, "rule": ""}
    if a[0] is None or r[0] is None or math.isnan(a[0]) or math.isnan(r[0]) or \
            math.isnan(a[0] - r[0]):
        out["severity"] = "warning"
        return out
    delta = a[0] - r[0]
    out["delta"] = delta
    sa, ka = side_se(a, binomial)
    sr, kr = side_se(r, binomial)
    if ka and kr:
        out["sigma"] = math.hypot(sa, sr)
        if out["sigma"] > 0:
            out["z"] = delta / out["sigma"]
    down = up = None
    for kind, x in tol:
        if kind == "abs":
            down = up = x
        elif kind == "rel":
            if r[0] == 0 or not finite(r[0]):
                continue
            down = up = x * abs(r[0])
        elif kind == "se":
            if not (ka and kr):
                continue
            if ka == kr == "binomial":
                la, ua = wilson(a[0], a[2], x)
                lr, ur = wilson(r[0], r[2], x)
                down = math.hypot(ua - a[0], r[0] - lr)   # Newcombe (1998) method 10
                up = math.hypot(a[0] - la, ur - r[0])
                out["rule"] = "wilson:%g" % x
                break
            down = up = x * out["sigma"]
        out["rule"] = "%s:%g" % (kind, x)
        break
    if direction == "equal":
        worse = up if delta > 0 else down
        g, better = -abs(delta), worse
    else:
        g = -delta if direction == "lower" else delta
        worse, better = (up, down) if direction == "lower" else (down, up)
    if worse is not None:
        out["worse"] = worse
    if direction is None:
        sev = "warning"
    elif worse is None:
        sev = "warning" if g < 0 else "improvement" if g > 0 else "unchanged"
    elif -g > worse:
        sev = "regression"
    elif g < 0 and direction != "equal":
        sev = "warning"
    elif g > better and direction != "equal":
        sev = "improvement"
    else:
        sev = "unchanged"
    if finite(a[2]) and finite(r[2]) and a[2] != r[2] and sev in ("unchanged", "improvement"):
        sev = "warning"
    out["severity"] = sev
    return out


Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


def judge_interval(a, r, lo, hi, direction, tol):
    """A change a - r with its own 95 % interval [lo, hi] (the bootstrap of dnll, DESIGN
    §3 and §7), as regress --help states the rule: the first tolerance term gives a
    margin t (abs:X: X; rel:X: X |r|; se:K: 0, the interval's halves scaled by K / 1.96);
    a regression when the whole interval lies worse than t, an improvement when it lies
    wholly better than -t, a warning when the change is worse but the interval reaches
    within t, else unchanged. Returns severity, delta, the interval as used, t, rule."""
    d = a - r
    t = None
    for kind, x in tol:
        if kind == "abs":
            t = x
        elif kind == "rel":
            if r == 0 or not finite(r):
                continue
            t = x * abs(r)
        else:
            lo, hi = d - (d - lo) * x / Z95, d + (hi - d) * x / Z95
            t = 0.0
        rule = "bootstrap+%s:%g" % (kind, x)
        break
    assert t is not None, "no tolerance term applies"
    if direction == "higher":
        wlo, whi, g = -hi, -lo, -d
    else:
        wlo, whi, g = lo, hi, d
    if direction == "equal":
        sev = "regression" if lo > t or hi < -t else "unchanged"
    elif wlo > t:
        sev = "regression"
    elif whi < -t:
        sev = "improvement"
    elif g > 0:
        sev = "warning"
    else:
        sev = "unchanged"
    return {"severity": sev, "delta": d, "lo": lo, "hi": hi, "t": t, "rule": rule}


def rule_matches(pattern, score_id):
    import fnmatch
    subject = score_id if "/" in pattern else score_id.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(subject, pattern)


def unescape_md(cell):
    return re.sub(r"\\(.)", r"\1", cell.strip())


def markdown_rows(text):
    """Rows of the per-score tables of a regress Markdown report, with their section."""
    rows, section = [], None
    for line in text.splitlines():
        m = re.match(r"(?:### |<details><summary>)(\w+) \((\d+)\)", line)
        if m:
            section = m.group(1)
            continue
        if section and line.startswith("| ") and not line.startswith(("| score", "| ---")):
            cells = [unescape_md(c) for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            keys = ["id", "better", "against", "value", "reference", "change", "z", "tolerance", "why"]
            assert len(cells) == len(keys), line
            row = dict(zip(keys, cells))
            row["section"] = section
            rows.append(row)
    return rows
