"""Function space in `ckptscope plot` and `ckptscope report` (DESIGN §4, §6): the kl
family's series (/eval/<set>/kl_prev, kl_ref, their percentiles, top1_agree, forgot,
learned, dnll with its bootstrap interval, top1_acc) and memorisation (/memo/<set>/...)
drawn against step and shown per checkpoint, only where the run file has them.

The run file: `ckptscope scan --metrics norms` over a generated fixture, then the datasets
the kl and memorization scan families write, made here from known values (closed-form
curves per set and checkpoint) through the store (cks-runfx) and, for the datasets that
are not float series (/memo/<set>/full uint8, token_kl_prev float32 [N, tokens]), with
h5py. Every number drawn or printed is compared with those values read back with h5py.
usage: test_fspace_report.py CKPTSCOPE CKS_FIXTURE CKS_RUNFX SOURCE_DIR [test...]"""
import html.parser
import json
import math
import os
import re
import shutil
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_support as P  # noqa: E402
from cks_testlib import run_tests  # noqa: E402

P.init(sys.argv)
TMP = tempfile.mkdtemp(prefix="cks-fspace-")
CACHE = {}
SETS = ["held_a", "held_b"]
MEMO = ["heldout", "train_dup"]  # in name order, as the run file lists them
KL_PLOTS = {"kl_prev": ["kl_prev"], "kl_ref": ["kl_ref"], "top1_agree_prev": ["top1_agree_prev"],
            "forgetting_prev": ["forgot_prev", "learned_prev"], "top1_acc": ["top1_acc"]}
MEMO_PLOTS = {"memo_token_match": "token_match", "memo_full_match": "full_match",
              "memo_prefix_match": "prefix_match"}


def tmp(name):
    return os.path.join(TMP, name)


def fs_values(step, s, first):
    """Known values of set s (index) at a checkpoint of the given step; the first
    checkpoint has no previous one (NaN), held_b has no reference comparison."""
    nan = float("nan")
    v = {"nll": 3.0 + 2.0 * math.exp(-step) + 0.5 * s, "tokens": 1000.0 + 100 * s,
         "top1_acc": 0.1 + 0.1 * step + 0.01 * s}
    v["ppl"] = math.exp(v["nll"])
    v["bpb"] = v["nll"] / math.log(2) / 4.0
    for base, on in (("prev", not first), ("ref", s == 0)):
        if base == "ref" and not on:
            continue
        kl = 0.5 * math.exp(-0.7 * step) * (1 + s) + (0.01 if base == "ref" else 0)
        d = -0.2 * math.exp(-step) + 0.003 * s
        vals = {"kl_%s": kl, "kl_%s_p50": 0.6 * kl, "kl_%s_p90": 1.8 * kl,
                "kl_%s_p99": 4.0 * kl, "kl_%s_max": 9.5 * kl,
                "top1_agree_%s": 0.5 + 0.08 * step, "forgot_%s": 0.02 + 0.01 * s,
                "learned_%s": 0.05 * math.exp(-0.3 * step), "dnll_%s": d,
                "dnll_%s_lo": d - 0.004, "dnll_%s_hi": d + 0.005}
        for k, x in vals.items():
            v[k % base] = x if on else nan
    return v


def memo_values(step, set_):
    """train_dup is memorised as training goes on, heldout stays near zero."""
    dup = set_ == "train_dup"
    tm = min(1.0, 0.02 + 0.2 * step) if dup else 0.03 + 0.001 * step
    return {"token_match": tm, "full_match": max(0.0, tm - 0.5) * 2 if dup else 0.0,
            "prefix_match": 0.9 * tm, "sequences": 8.0 if dup else 48.0}


def make_run(name, kl=True, memo=True):
    src = tmp("fx")
    if not os.path.isdir(src):
        P.fixture(src, "--checkpoints", 6)
    path = tmp(name + ".h5")
    P.run(["scan", src, "-o", path, "--quiet", "--metrics", "norms"], check=0)
    R = P.Run(path)
    first = R.names[R.order[0]]
    ops = []
    for r, ck in enumerate(R.names):
        for s, set_ in enumerate(SETS):
            for m, x in fs_values(int(R.steps[r]), s, ck == first).items():
                if not kl and (m.startswith(("kl_", "top1_agree", "forgot", "learned", "dnll"))
                               or m == "top1_acc"):
                    continue
                ops.append({"op": "series", "path": "/eval/%s/%s" % (set_, m), "row": r,
                            "value": None if math.isnan(x) else x,
                            "description": "the %s of DESIGN section 3" % m})
        for set_ in MEMO if memo else []:
            for m, x in memo_values(int(R.steps[r]), set_).items():
                ops.append({"op": "series", "path": "/memo/%s/%s" % (set_, m), "row": r,
                            "value": x, "unit": "sequences" if m == "sequences" else "1"})
    P.runfx(path, ops)
    with h5py.File(path, "r+") as f:  # the datasets that are not float series
        n = len(R.names)
        if memo:
            full = f.create_dataset("memo/train_dup/full", data=np.ones((n, 8), np.uint8))
            full.attrs["axes"] = "checkpoint,sequence"
        if kl:
            t = f.create_dataset("eval/held_a/token_kl_prev",
                                 data=np.full((n, 1000), 0.25, np.float32))
            t.attrs["axes"] = "checkpoint,token"
    return P.Run(path)


def full_run():
    if "full" not in CACHE:
        CACHE["full"] = make_run("full")
    return CACHE["full"]


# ---- plot ----

def test_plots_match_run_file():
    R = full_run()
    out = tmp("plots")
    P.run(["plot", R.path, "-o", out, "--only", "kl,memorization", "--scripts"], check=0)
    drawn, skipped = P.index_entries(out)
    want = sorted(f + ".png" for f in list(KL_PLOTS) + list(MEMO_PLOTS))
    assert sorted(drawn) == want and skipped == [], (drawn, skipped)
    for f in drawn:
        assert P.png_ok(os.path.join(out, f)) == (960, 560), f
    steps = R.steps[R.order]
    for stem, metrics in KL_PLOTS.items():
        gp = os.path.join(out, stem + ".png.gp")
        blocks, titles = P.gp_blocks(gp), P.gp_titles(gp)
        want_titles, k = [], 0
        for set_ in SETS:
            for m in metrics:
                y = R.by_step("/eval/%s/%s" % (set_, m))
                if y is None:  # held_b has no reference comparison: no line
                    continue
                want_titles.append(set_ if len(metrics) == 1 else
                                   "%s %s" % (set_, m.split("_")[0]))
                b = np.array(blocks["d%d" % k])
                assert list(b[:, 0]) == list(steps), (stem, b[:, 0])
                P.close(b[:, 1], y, 1e-9, "%s %s %s" % (stem, set_, m))
                k += 1
        assert titles == want_titles, (stem, titles, want_titles)
        text = open(gp, encoding="utf-8").read()
        if stem.startswith("kl_"):  # 0.5 e^(-0.7 step) spans decades: log scale
            assert "set logscale y" in text, stem
    for stem, m in MEMO_PLOTS.items():
        gp = os.path.join(out, stem + ".png.gp")
        blocks = P.gp_blocks(gp)
        assert P.gp_titles(gp) == MEMO, P.gp_titles(gp)
        for k, set_ in enumerate(MEMO):
            P.close(np.array(blocks["d%d" % k])[:, 1], R.by_step("/memo/%s/%s" % (set_, m)),
                    1e-9, "%s %s" % (stem, set_))
        assert "set yrange [-0.02:1.02]" in open(gp, encoding="utf-8").read()


def test_plots_only_where_the_data_is():
    R = make_run("ppl_only", kl=False, memo=False)
    out = tmp("plots-ppl")
    P.run(["plot", R.path, "-o", out], check=0)
    drawn, skipped = P.index_entries(out)
    assert not [f for f in drawn if f.split(".")[0] in list(KL_PLOTS) + list(MEMO_PLOTS)], drawn
    fams = [s[0] for s in skipped]
    assert fams.count("kl") == len(KL_PLOTS) and fams.count("memorization") == len(MEMO_PLOTS), \
        skipped
    assert any("scan --metrics ppl,kl" in s[1] for s in skipped if s[0] == "kl"), skipped
    assert any("/memo" in s[1] for s in skipped if s[0] == "memorization"), skipped
    # asked for by name: an error naming what is missing, exit 2
    _, _, err = P.run(["plot", R.path, "-o", tmp("p2"), "--only", "kl"], check=2)
    assert "no kl plot can be drawn" in err and "kl_prev" in err, err
    _, _, err = P.run(["plot", R.path, "-o", tmp("p3"), "--only", "memorization"], check=2)
    assert "no memorization plot can be drawn" in err and "/memo" in err, err
    _, _, err = P.run(["plot", R.path, "-o", tmp("p4"), "--only", "kl,bogus"], check=2)
    assert "memorization" in err, err  # the known families are listed


# ---- report ----

def fmt(x, integer=False):
    if x is None or not math.isfinite(x):
        return "-"
    return "%.0f" % x if integer else "%.4g" % x


def kl_rows(R, at):
    """Expected function-space rows at checkpoint name at: [SET, BASE, 10 cells]."""
    r, rows = R.row(at), []
    for set_ in SETS:
        for base in ("prev", "ref"):
            if R.data("/eval/%s/kl_%s" % (set_, base)) is None:
                continue
            g = lambda m: R.data("/eval/%s/%s" % (set_, m % base))[r]  # noqa: E731
            cells = [fmt(g(m)) for m in ("kl_%s", "kl_%s_p50", "kl_%s_p90", "kl_%s_p99",
                                         "kl_%s_max", "top1_agree_%s", "forgot_%s",
                                         "learned_%s", "dnll_%s")]
            lo, hi = g("dnll_%s_lo"), g("dnll_%s_hi")
            cells.append("-" if math.isnan(lo) and math.isnan(hi)
                         else "[%s, %s]" % (fmt(lo), fmt(hi)))
            rows.append([set_, base] + cells)
    return rows


def memo_rows(R, at):
    r = R.row(at)
    return [[s, fmt(R.data("/memo/%s/sequences" % s)[r], True)] +
            [fmt(R.data("/memo/%s/%s" % (s, m))[r]) for m in ("token_match", "full_match",
                                                               "prefix_match")]
            for s in MEMO]


def text_table(text, title, ncols):
    """Rows of the aligned table under the line title (cells split on 2+ spaces)."""
    lines = text.split(title + "\n", 1)[1].split("\n\n")[0].splitlines()
    rows = [re.split(r"\s{2,}", l.strip()) for l in lines]
    assert all(len(x) == ncols for x in rows), rows
    return rows


def test_report_text_markdown_json_html():
    R = full_run()
    for at in (R.names[R.order[-1]], R.names[R.order[2]], R.names[R.order[0]]):
        _, text, _ = P.run(["report", R.path, "--at", at], check=0)
        kl = text_table(text, "function space against the previous checkpoint and the reference "
                              "(/eval; KL in nats, DNLL with its 95% bootstrap interval):", 12)
        assert kl[0] == ["SET", "BASE", "KL", "KL_P50", "KL_P90", "KL_P99", "KL_MAX",
                         "TOP1_AGREE", "FORGOT", "LEARNED", "DNLL", "DNLL_95%"], kl[0]
        assert kl[1:] == kl_rows(R, at), (at, kl[1:], kl_rows(R, at))
        memo = text_table(text, "memorisation of training data (/memo):", 5)
        assert memo[0] == ["SET", "SEQUENCES", "TOKEN_MATCH", "FULL_MATCH", "PREFIX_MATCH"]
        assert memo[1:] == memo_rows(R, at), (memo[1:], memo_rows(R, at))
        ev = text_table(text, "held-out evaluation (/eval):", 6)
        assert ev[0][-1] == "TOP1_ACC" and [x[-1] for x in ev[1:]] == [
            fmt(R.data("/eval/%s/top1_acc" % s)[R.row(at)]) for s in SETS], ev
        # Markdown: the same rows as pipe tables
        _, md, _ = P.run(["report", R.path, "--at", at, "--format", "markdown"], check=0)
        assert "\n## Function space\n" in md and "\n## Memorisation\n" in md
        for row in kl_rows(R, at):
            assert "| " + " | ".join(c.replace("_", "\\_").replace("[", "\\[")
                                     .replace("]", "\\]") for c in row) + " |" in md, (row, md)
        # JSON: every series of the set, null where there is no value; memo sets
        _, js, _ = P.run(["report", R.path, "--at", at, "--format", "json"], check=0)
        doc = json.loads(js)
        r = R.row(at)
        for e in doc["eval"]:
            for m, x in e.items():
                if m == "set":
                    continue
                want = R.data("/eval/%s/%s" % (e["set"], m))[r]
                assert (x is None and math.isnan(want)) or math.isclose(x, want, rel_tol=1e-15), \
                    (e["set"], m, x, want)
            assert "token_kl_prev" not in e
        with h5py.File(R.path, "r") as f:
            want_keys = {k for k in f["eval/held_a"] if f["eval/held_a"][k].ndim == 1}
        assert set(doc["eval"][0]) - {"set"} == want_keys, doc["eval"][0]
        assert [m["set"] for m in doc["memo"]] == MEMO
        for m in doc["memo"]:
            assert m["sequences"] == int(R.data("/memo/%s/sequences" % m["set"])[r])
            assert isinstance(m["sequences"], int)
            for k in ("token_match", "full_match", "prefix_match"):
                assert m[k] == R.data("/memo/%s/%s" % (m["set"], k))[r], (m, k)
            assert "full" not in m  # [N, sequences] uint8: not a series
        assert "memo" not in doc["missing"]
        # HTML: both tables, well formed
        _, page, _ = P.run(["report", R.path, "--at", at, "--format", "html"], check=0)
        assert "Memorisation of training data (/memo)." in page and "DNLL_95%" in page
        parser = html.parser.HTMLParser()
        parser.feed(page)
    # no kl, no memo: no such tables, "memo" missing in JSON, the plain eval table
    Rp = make_run("ppl_only2", kl=False, memo=False)
    _, text, _ = P.run(["report", Rp.path], check=0)
    assert "function space" not in text and "memorisation" not in text
    assert "TOP1_ACC" not in text
    doc = json.loads(P.run(["report", Rp.path, "--format", "json"], check=0)[1])
    assert "memo" in doc["missing"] and doc["memo"] == []


def test_trends_page_sections():
    R = full_run()
    out = tmp("trends.html")
    P.run(["report", R.path, "--trends", "-o", out], check=0)
    page = open(out, encoding="utf-8").read()
    for sec, n in (("kl", len(KL_PLOTS)), ("memo", len(MEMO_PLOTS))):
        part = page.split('<h2 id="%s">' % sec, 1)[1].split("<h2 ", 1)[0]
        assert part.count("<figure") == n, (sec, part.count("<figure"))
    # the checkpoint table: KL to the previous checkpoint per eval set and token_match per
    # memorisation set, one row per checkpoint in step order
    table = page.split('<h2 id="checkpoints">', 1)[1].split("</table>", 1)[0]
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert heads[-4:] == ["KL prev held_a", "KL prev held_b", "token_match heldout",
                          "token_match train_dup"], heads
    rows = re.findall(r"<tr[^>]*><td class=\"r\">.*?</tr>", table)
    assert len(rows) == len(R.names)
    for i, row in zip(R.order, rows):
        cells = re.findall(r'<td class="r">([^<]*)</td>', row)[-4:]
        want = [fmt(R.data("/eval/%s/kl_prev" % s)[i]) for s in SETS] + \
               [fmt(R.data("/memo/%s/token_match" % s)[i]) for s in MEMO]
        assert cells == want, (R.names[i], cells, want)


if __name__ == "__main__":
    try:
        run_tests([test_plots_match_run_file, test_plots_only_where_the_data_is,
                   test_report_text_markdown_json_html, test_trends_page_sections], sys.argv[5:])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
