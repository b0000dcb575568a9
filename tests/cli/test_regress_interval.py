"""`ckptscope regress` on held-out nll with the block-bootstrap interval of its change
(DESIGN §3, §7): eval/<set>/nll against the previous checkpoint is judged on
dnll_prev_lo/dnll_prev_hi when the run file holds them (scan --metrics ppl,kl), in the
Markdown summary and the JUnit XML; the kl family's other series are not scores.

The run file: `ckptscope scan --metrics norms` over a generated fixture, plus /eval series
written through the store (cks-runfx) with chosen values: one set per case (a significant
rise, a rise within noise, a significant fall, no change, no interval at all, a NaN
bound). The expected severity of each is computed here from the values read back with
h5py by tests/cli/gate_ref.py's judge_interval, written from regress --help's rule and
sharing no code with ckptscope.
usage: test_regress_interval.py CKPTSCOPE CKS_FIXTURE CKS_RUNFX"""
import json
import math
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gate_ref as G  # noqa: E402
import plot_support as P  # noqa: E402
from cks_testlib import run_tests  # noqa: E402

P.init(sys.argv)
TMP = tempfile.mkdtemp(prefix="cks-regress-iv-")
NAN = float("nan")
# set: (nll at the previous checkpoint, nll at the last, dnll_prev_lo, dnll_prev_hi)
CASES = {
    "rise": (3.00, 3.05, 0.04, 0.06),        # wholly above 0: a regression under se:2
    "noise": (3.00, 3.01, -0.01, 0.03),      # worse, the interval reaches below 0
    "fall": (3.00, 2.90, -0.12, -0.08),      # wholly below 0: an improvement
    "flat": (3.000, 2.999, -0.003, 0.001),   # better within the interval: unchanged
    "none": (3.00, 3.05, None, None),        # no interval: rel:0.01 judges it
    "half": (3.00, 3.05, 0.04, None),        # a NaN bound: no interval either
}
COMPARISONS = ["kl_prev", "kl_prev_p50", "top1_agree_prev", "forgot_prev", "learned_prev",
               "dnll_prev"]


def tmp(name):
    return os.path.join(TMP, name)


def make_run():
    src = tmp("fx")
    P.fixture(src, "--checkpoints", 4)
    path = tmp("run.h5")
    P.run(["scan", src, "-o", path, "--quiet", "--metrics", "norms"], check=0)
    R = P.Run(path)
    order = list(R.order)
    last, prev = order[-1], order[-2]
    ops = []

    def series(set_, m, row, v):
        ops.append({"op": "series", "path": "/eval/%s/%s" % (set_, m), "row": int(row),
                    "value": None if v is None or math.isnan(v) else v})
    for set_, (a, b, lo, hi) in CASES.items():
        for k, row in enumerate(order):
            nll = b if row == last else a if row == prev else a + 0.5 * (len(order) - k)
            series(set_, "nll", row, nll)
            series(set_, "tokens", row, 5000.0)
            first = k == 0
            for m in COMPARISONS:
                series(set_, m, row, NAN if first else 0.1)
            if lo is not None or hi is not None:
                here = row == last
                series(set_, "dnll_prev_lo", row, (lo if here else -1.0) if lo is not None
                       else NAN)
                series(set_, "dnll_prev_hi", row, (hi if here else 1.0) if hi is not None
                       else NAN)
    P.runfx(path, ops)
    return P.Run(path), R.names[last], R.names[prev]


def expected(R, at, prev, tol="se:2,rel:0.01"):
    """{score id: judge dict} from the run file read with h5py."""
    a, p = R.row(at), R.row(prev)
    out = {}
    with h5py.File(R.path, "r") as f:
        for set_ in CASES:
            g = f["eval"][set_]
            va, vp = float(g["nll"][a]), float(g["nll"][p])
            lo = float(g["dnll_prev_lo"][a]) if "dnll_prev_lo" in g else NAN
            hi = float(g["dnll_prev_hi"][a]) if "dnll_prev_hi" in g else NAN
            if math.isnan(lo) or math.isnan(hi):
                j = G.judge((va, None, 5000.0), (vp, None, 5000.0), "lower", False,
                            G.parse_tolerance(tol))
                j["interval"] = False
            else:
                j = G.judge_interval(va, vp, lo, hi, "lower", G.parse_tolerance(tol))
                j["interval"] = True
            out["eval/%s/nll" % set_] = j
    return out


def regress(run, *args, check):
    j, md = tmp("r.xml"), tmp("r.md")
    if os.path.exists(md):
        os.remove(md)
    code, _, err = P.run(["regress", run, "--junit", j, "--markdown", md, "--include",
                          "eval/*/nll"] + list(args), check=check)
    with open(md, encoding="utf-8") as f:
        text = f.read()
    return ET.parse(j).getroot(), text, err


def check(root, md, want):
    rows = {r["id"]: r for r in G.markdown_rows(md) if r["against"] == "previous"}
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(rows) == set(want), (sorted(rows), sorted(want))
    for sid, w in want.items():
        r = rows[sid]
        assert r["section"].lower().rstrip("s") == w["severity"], (sid, r, w)
        if w["interval"]:
            iv = "[95%%: %+.4g, %+.4g]" % (w["lo"], w["hi"])
            assert r["change"].endswith(iv), (sid, r["change"], iv)
            assert r["tolerance"] == "%s: %.4g" % (w["rule"], w["t"]), (sid, r["tolerance"], w)
            assert r["z"] == "—", r
        else:
            assert "95%" not in r["change"] and not r["tolerance"].startswith("bootstrap"), r
        c = cases[sid]
        assert c.find("system-out").text.startswith(w["severity"] + ":"), c.find("system-out").text
        if w["interval"]:
            assert iv in c.find("system-out").text, c.find("system-out").text
        f = c.find("failure")
        assert (f is not None) == (w["severity"] == "regression"), (sid, w["severity"])
        if f is not None and w["interval"]:
            assert "95% interval" in f.get("message"), f.get("message")


def test_nll_judged_on_its_interval():
    R, at, prev = CACHE_RUN()
    want = expected(R, at, prev)
    # the cases are what their names say (a check of the test's own values)
    assert [want["eval/%s/nll" % s]["severity"] for s in CASES] == \
        ["regression", "warning", "improvement", "unchanged", "regression", "regression"], want
    root, md, err = regress(R.path, check=1)
    check(root, md, want)
    assert "previous checkpoint %s" % prev.replace("_", "\\_") in md, md[:600]
    # a margin from abs: and rel: terms, the interval unscaled
    for tol in ("abs:0.03", "rel:0.02", "abs:0"):
        want = expected(R, at, prev, tol)
        root, md, _ = regress(R.path, "--tolerance", "nll=" + tol,
                              check=1 if any(w["severity"] == "regression"
                                             for w in want.values()) else 0)
        check(root, md, want)
    # se:3 widens the interval: the rise within noise stays a warning, the significant one
    # is judged on 3/1.96 of its halves
    want = expected(R, at, prev, "se:3")
    root, md, _ = regress(R.path, "--tolerance", "nll=se:3", check=None)
    check(root, md, want)


def test_comparisons_are_not_scores():
    R, at, prev = CACHE_RUN()
    code, _, _ = P.run(["regress", R.path, "--junit", tmp("all.xml"), "--markdown",
                        tmp("all.md")], check=None)
    ids = {c.get("name") for c in ET.parse(tmp("all.xml")).getroot().iter("testcase")}
    assert ids == {"eval/%s/nll" % s for s in CASES}, sorted(ids)
    # named by --include, they are gated (no direction known: warnings)
    root, md, _ = regress(R.path, "--include", "eval/rise/kl_prev", check=1)
    rows = {r["id"]: r for r in G.markdown_rows(md)}
    assert rows["eval/rise/kl_prev"]["section"] == "Warnings" and \
        "direction unknown" in rows["eval/rise/kl_prev"]["why"], rows["eval/rise/kl_prev"]


def test_baseline_uses_the_tolerance_alone():
    R, at, prev = CACHE_RUN()
    base = tmp("base.json")
    P.run(["regress", R.path, "--at", prev, "--include", "eval/*/nll", "--write-baseline",
           base, "--no-previous", "--markdown", tmp("w.md")], check=None)
    root, md, _ = regress(R.path, "--baseline", base, check=1)
    rows = [r for r in G.markdown_rows(md) if r["against"] == "baseline"]
    assert len(rows) == len(CASES)
    for r in rows:
        assert "95%" not in r["change"] and not r["tolerance"].startswith("bootstrap"), r
    b = json.load(open(base))
    want = {m["id"]: G.judge((R.data("/" + m["id"])[R.row(at)], None, 5000.0),
                             (m["value"], None, m["n"]), "lower", False,
                             G.parse_tolerance("se:2,rel:0.01"))["severity"]
            for m in b["metrics"]}
    assert {r["id"]: r["section"].lower().rstrip("s") for r in rows} == want, (rows, want)


_RUN = {}


def CACHE_RUN():
    if "r" not in _RUN:
        _RUN["r"] = make_run()
    return _RUN["r"]


if __name__ == "__main__":
    try:
        run_tests([test_nll_judged_on_its_interval, test_comparisons_are_not_scores,
                   test_baseline_uses_the_tolerance_alone], sys.argv[4:])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
