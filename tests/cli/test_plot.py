"""`ckptscope plot` and `ckptscope report` end to end, with the real gnuplot.

The run file: `ckptscope scan` over a generated git fixture whose last two checkpoints
miss their Git LFS objects (incomplete: NaN rows, drawn as gaps), plus /eval and /evals
series written through the store by cks-runfx (as the forward pass and `evals import`
write them; one value left out to make a gap), plus /spectral and /spectra the same way
while the spectral family is not built into this ckptscope (synthetic power-law spectra;
the real scan's values are used once it is). Every plot kind is drawn as PNG and SVG and
checked as a file (PNG chunks, SVG through an XML parser); what was drawn is checked
against the run file read with h5py and recomputed with numpy (medians, histogram areas,
the fitted power-law density of DESIGN §3), through the scripts `plot --scripts` keeps.
Reports are checked the same way. Names with quotes, backquotes, newlines and system()
calls go through every output, and nothing they ask for happens.
usage: test_plot.py CKPTSCOPE CKS_FIXTURE CKS_RUNFX SOURCE_DIR [test...]"""
import glob
import html.parser
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_support as P  # noqa: E402
from cks_testlib import need, run_tests, shared_data  # noqa: E402

P.init(sys.argv)
SOURCE_DIR = sys.argv[4]
TMP = tempfile.mkdtemp(prefix="cks-plot-")
CACHE = {}
KINDS = ["q", "k", "v", "o", "gate", "up", "down", "attn_norm", "mlp_norm", "embed",
         "final_norm", "lm_head", "other"]
HEAT_METRICS = [("/drift/prev/rel_fro", "drift_prev_rel_fro"),
                ("/drift/ref/rel_fro", "drift_ref_rel_fro"), ("/norms/rms", "norms_rms"),
                ("/spectral/alpha", "spectral_alpha"),
                ("/spectral/stable_rank", "spectral_stable_rank")]


def tmp(name):
    return os.path.join(TMP, name)


# ---- the run file ----

def eval_ops(R):
    """/eval/<set>/{ppl,bpb,nll,tokens}: a decaying curve per set; no value for the
    incomplete checkpoints (nothing to run) nor for held_a at ckpt_002 (a gap)."""
    ops = []
    for r, name in enumerate(R.names):
        for s, (floor, tau) in {"held_a": (5.0, 1.0), "held_b": (10.0, 1.5)}.items():
            ppl = floor + 240.0 * math.exp(-R.steps[r] / tau)
            missing = R.status[r] != "complete" or (s == "held_a" and name == "ckpt_002")
            for m, v, unit in [("ppl", ppl, "1"), ("nll", math.log(ppl), "nats/token"),
                               ("bpb", math.log2(ppl) / 4.2, "bits/byte"),
                               ("tokens", 4096.0, "tokens")]:
                ops.append({"op": "series", "path": "/eval/%s/%s" % (s, m), "row": r,
                            "value": None if missing else v, "unit": unit,
                            "description": "held-out " + m})
    return ops


def evals_ops(R):
    """/evals/<task>/<metric>[_stderr] as lm-eval import writes them (acc_norm of piqa
    without a standard error)."""
    ops = []
    for r in range(len(R.names)):
        for t, base in {"arc_easy": 0.25, "piqa": 0.5}.items():
            acc = base + 0.05 * R.steps[r]
            se = math.sqrt(acc * (1 - acc) / 1000)
            ops += [{"op": "series", "path": "/evals/%s/acc" % t, "row": r, "value": acc,
                     "unit": "fraction"},
                    {"op": "series", "path": "/evals/%s/acc_stderr" % t, "row": r, "value": se},
                    {"op": "series", "path": "/evals/%s/acc_norm" % t, "row": r,
                     "value": acc + 0.02, "unit": "fraction"}]
            if t == "arc_easy":
                ops.append({"op": "series", "path": "/evals/%s/acc_norm_stderr" % t, "row": r,
                            "value": se})
                ops.append({"op": "series", "path": "/evals/%s/n_samples" % t, "row": r,
                            "value": 1000.0, "unit": "documents"})
    return ops


def spectral_ops(R, k_store=256):
    """Synthetic spectra (power-law tails, a fixed seed) with their fits, for builds without
    the spectral family: only the plots' handling of them is under test here."""
    rng = np.random.default_rng(7)
    ops = []
    nt = len(R.tnames)
    for r in range(len(R.names)):
        if R.status[r] != "complete":
            continue
        cols = {m: [None] * nt for m in ("alpha", "xmin", "tail", "ks", "stable_rank")}
        for j in range(nt):
            if R.cols[j] == 0:
                continue
            n = int(min(R.rows[j], R.cols[j]))
            a = 2.0 + 2.5 * rng.random() + 0.1 * R.steps[r]
            lam = np.sort((1 - rng.random(n)) ** (-1.0 / (a - 1)))[::-1] * 1e-3
            xmin = lam[n // 3]
            cols["alpha"][j] = a
            cols["xmin"][j] = float(xmin)
            cols["tail"][j] = float(np.sum(lam >= xmin))
            cols["ks"][j] = 0.05
            cols["stable_rank"][j] = float(lam.sum() / lam[0])
            top = [float(x) for x in lam[:k_store]]
            ops.append({"op": "spectra", "tensor": R.tnames[j], "row": r, "values": top})
        for m, v in cols.items():
            ops.append({"op": "row", "path": "/spectral/" + m, "row": r, "values": v})
    return ops


def main_run():
    if "main" in CACHE:
        return CACHE["main"]
    src = tmp("fx")
    P.fixture(src, "--checkpoints", 7, "--lfs", "--lfs-missing-from", 5)
    path = tmp("run.h5")
    spectral = P.spectral_built_in()
    P.run(["scan", src, "-o", path, "--quiet", "--metrics",
           "norms,spectral,drift" if spectral else "norms,drift"], check=0)
    R = P.Run(path)
    assert R.status == ["complete"] * 5 + ["incomplete"] * 2, R.status
    P.runfx(path, eval_ops(R) + evals_ops(R) + ([] if spectral else spectral_ops(R)))
    CACHE["main"] = P.Run(path)
    return CACHE["main"]


def drawn_plots(fmt="png"):
    key = "plots-" + fmt
    if key not in CACHE:
        R = main_run()
        out = tmp(key)
        _, stdout, _ = P.run(["plot", R.path, "-o", out, "--format", fmt, "--scripts"], check=0)
        assert re.match(r"plot: \d+ plots in ", stdout), stdout
        CACHE[key] = out
    return CACHE[key]


def expected_files(R):
    """Every plot the main run must give, and the ones it must skip."""
    files = ["eval_ppl", "eval_bpb", "evals_arc_easy", "evals_piqa", "alpha_hist"]
    files += ["median_" + stem for _, stem in HEAT_METRICS]
    skipped = []
    for path, stem in HEAT_METRICS:
        for k in KINDS[:9]:
            (skipped if "spectral" in path and k.endswith("norm") else files).append(
                "heatmap_%s_%s" % (stem, k))
    mid = (max(R.layer) + 1) // 2  # the middle layer: nlayers / 2
    for j, n in enumerate(R.tnames):
        if R.cols[j] and (R.layer[j] == mid and R.kind[j] in KINDS[:7] or
                          R.kind[j] in ("embed", "lm_head")):
            files.append("esd_" + n)
    return files, skipped


# ---- plot ----

def test_plot_png_every_family():
    R = main_run()
    out = drawn_plots("png")
    drawn, skipped = P.index_entries(out)
    want, want_skipped = expected_files(R)
    assert sorted(drawn) == sorted(f + ".png" for f in want), (sorted(drawn), sorted(want))
    sizes = {"eval": (960, 560), "evals": (960, 560), "median": (960, 560),
             "heatmap": (960, 520), "esd": (900, 600), "alpha": (900, 540)}
    for f in drawn:
        assert P.png_ok(os.path.join(out, f)) == sizes[f.split("_")[0]], f
    on_disk = sorted(os.listdir(out))
    assert on_disk == sorted(drawn + [f + ".gp" for f in drawn] + ["index.txt"]), on_disk
    # skipped with the reason: spectral metrics of the 1-D norm kinds, and function space,
    # which this run file does not hold (test_fspace_report.py draws it)
    fs = [(f, t) for f, t in skipped if f in ("kl", "memorization")]
    assert [f for f, _ in fs] == ["kl"] * 5 + ["memorization"] * 3, fs
    assert all("scan --metrics" in t for _, t in fs), fs
    skipped = [s for s in skipped if s[0] not in ("kl", "memorization")]
    assert len(skipped) == len(want_skipped), skipped
    for family, text in skipped:
        assert family == "heatmap" and "(2-D matrices only)" in text, text


def test_plot_svg_parses():
    R = main_run()
    out = drawn_plots("svg")
    drawn, _ = P.index_entries(out)
    want, _ = expected_files(R)
    assert sorted(drawn) == sorted(f + ".svg" for f in want)
    for f in drawn:
        root = P.svg_ok(os.path.join(out, f))
        assert "training step" in P.svg_text(root) or f.startswith(("esd", "alpha")), f


def test_plot_lines_match_run_file():
    """eval, evals and median plots: step order, values, gaps (NaN) where the file has
    none, one line per set/metric/kind."""
    R = main_run()
    out = drawn_plots("png")
    steps = R.steps[R.order]
    gp = lambda f: os.path.join(out, f + ".png.gp")  # noqa: E731
    # held-out perplexity: sets in name order, the ckpt_002 gap of held_a, incomplete gaps
    assert P.gp_titles(gp("eval_ppl")) == ["held_a", "held_b"]
    blocks = P.gp_blocks(gp("eval_ppl"))
    for i, s in enumerate(["held_a", "held_b"]):
        d = np.array(blocks["d%d" % i])
        assert list(d[:, 0]) == list(steps)
        P.close(d[:, 1], R.by_step("/eval/%s/ppl" % s), 1e-9, "eval_ppl " + s)
    gap = np.array(blocks["d0"])[:, 1]
    assert np.isnan(gap[list(steps).index(2)]) and np.isnan(gap[-1]) and np.isnan(gap[-2])
    with open(gp("eval_ppl")) as f:  # ppl spans > 10x: log axis
        assert "set logscale y" in f.read()
    # imported scores: metrics in name order, stderr as the third column (NaN when absent)
    for task, metrics in [("arc_easy", ["acc", "acc_norm"]), ("piqa", ["acc", "acc_norm"])]:
        assert P.gp_titles(gp("evals_" + task)) == metrics
        blocks = P.gp_blocks(gp("evals_" + task))
        for i, m in enumerate(metrics):
            d = np.array(blocks["d%d" % i])
            P.close(d[:, 1], R.by_step("/evals/%s/%s" % (task, m)), 1e-9, task + m)
            se = R.by_step("/evals/%s/%s_stderr" % (task, m))
            if se is None:  # no band without a standard error
                assert d.shape[1] == 2, (task, m)
            else:
                P.close(d[:, 2], se, 1e-9, task + m + " stderr")
    # per-kind medians against numpy
    for path, stem in HEAT_METRICS:
        vals = R.by_step(path)
        titles = P.gp_titles(gp("median_" + stem))
        blocks = P.gp_blocks(gp("median_" + stem))
        kinds = [k for k in KINDS if k in R.kind]
        want = []
        for k in kinds:
            cols = [j for j in range(len(R.tnames)) if R.kind[j] == k]
            v = np.where(np.isfinite(vals[:, cols]), vals[:, cols], np.nan)
            with np.errstate(all="ignore"):
                med = np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan
                                for row in v])
            if np.isfinite(med).any():
                want.append(("%s (%d)" % (k, len(cols)), med))
        assert titles == [w[0] for w in want], (stem, titles)
        for i, (_, med) in enumerate(want):
            P.close(np.array(blocks["d%d" % i])[:, 1], med, 1e-9, "median %s %s" % (stem, i))
        assert np.isnan(np.array(blocks["d0"])[-1, 1]), "incomplete checkpoint drawn"


def test_plot_heatmaps_match_run_file():
    """Each cell: step, layer, its column's edges around the step, value; NaN cells absent."""
    R = main_run()
    out = drawn_plots("png")
    steps = R.steps[R.order]
    for path, stem in HEAT_METRICS:
        vals = R.by_step(path)
        for k in KINDS[:9]:
            f = os.path.join(out, "heatmap_%s_%s.png.gp" % (stem, k))
            if not os.path.exists(f):
                continue
            cells = P.gp_blocks(f)["cells"]
            want = {}
            for j in range(len(R.tnames)):
                if R.kind[j] != k:
                    continue
                for i in range(len(steps)):
                    if np.isfinite(vals[i, j]):
                        want[(int(steps[i]), int(R.layer[j]))] = vals[i, j]
            got = {(int(c[0]), int(c[1])): c for c in cells}
            assert sorted(got) == sorted(want), (f, sorted(got), sorted(want))
            lo = None
            with open(f) as fh:
                m = re.search(r"set cbrange \[([^:]+):", fh.read())
                lo = float(m.group(1)) if m else None
            for key, c in got.items():
                z = want[key]
                # log colour scale: zeros (rel_fro at the reference) drawn at its low end
                # (10 significant digits in the script)
                assert abs(c[6] - z) <= 1e-9 * abs(z) or (lo is not None and z == 0 and
                                                          c[6] == lo), (f, key, c, z)
                assert c[2] < c[0] < c[3] and c[4] == key[1] - 0.5 and c[5] == key[1] + 0.5
            # the columns tile the step axis without overlap
            edges = sorted({(c[2], c[3]) for c in cells})
            for (a, b), (c, d) in zip(edges, edges[1:]):
                assert b <= c + 1e-9, (f, edges)


def test_plot_spectra_match_run_file():
    """ESD: the histogram's area is the stored share of the min(rows, cols) eigenvalues,
    every stored eigenvalue falls in a bar, the dashed line is (k/R)(a-1)/xmin (x/xmin)^-a
    (Clauset et al. 2009 eq. 2.2 scaled to the tail) from xmin; alpha histogram: one count
    per finite alpha, in the right bin."""
    R = main_run()
    out = drawn_plots("png")
    at = R.newest_complete()
    row = R.row(at)
    alpha, xmin, tail = (R.data("/spectral/" + m)[row] for m in ("alpha", "xmin", "tail"))
    checked = 0
    for f in glob.glob(os.path.join(out, "esd_*.png.gp")):
        name = os.path.basename(f)[4:-7]
        j = R.tnames.index(name)
        with h5py.File(R.path, "r") as h:
            lam = h["spectra"][name][row].astype(np.float64)
        lam = lam[np.isfinite(lam) & (lam > 0)]
        n = min(R.rows[j], R.cols[j])
        b = P.gp_blocks(f)
        h = np.array(b["h"])
        area = np.sum(h[:, 1] * (h[:, 3] - h[:, 2]))
        P.close(area, len(lam) / n, 1e-6, "ESD area " + name)
        for x in lam:
            assert np.any((h[:, 2] <= x * (1 + 1e-9)) & (x <= h[:, 3] * (1 + 1e-9))), (name, x)
        if np.isfinite(alpha[j]):
            fit = np.array(b["f"])
            a, xm, k = alpha[j], xmin[j], tail[j]
            P.close(fit[:, 1], (k / n) * (a - 1) / xm * (fit[:, 0] / xm) ** (-a), 1e-7, name)
            P.close(fit[0, 0], xm, 1e-9, "fit starts at xmin")
            with open(f) as fh:
                assert "set arrow 1 from %.10g, graph 0" % xm in fh.read()
        checked += 1
    assert checked >= 9
    a = np.array(P.gp_blocks(os.path.join(out, "alpha_hist.png.gp"))["a"])
    fin = alpha[np.isfinite(alpha)]
    # bins of 0.25 from a multiple of 0.25 at or below min(alpha, 2), counted by numpy
    w = 0.25 if fin.max() - fin.min() <= 8 else (fin.max() - fin.min()) / 32
    x0 = math.floor(min(fin.min(), 2.0) / w) * w
    edges = x0 + w * np.arange(int((max(fin.max(), 6.0) - x0) / w) + 3)
    counts, _ = np.histogram(fin, bins=edges)
    want = [(e + w / 2, c) for e, c in zip(edges, counts) if c]
    P.close(a, np.array(want), 1e-9, "alpha histogram")


# ---- report ----

def test_report_json_matches_run_file():
    R = main_run()
    at = R.newest_complete()
    assert at == "ckpt_004"
    _, out, _ = P.run(["report", R.path, "--format", "json"], check=0)
    doc = json.loads(out)
    row = R.row(at)
    assert doc["checkpoint"]["name"] == at and doc["checkpoint"]["status"] == "complete"
    assert doc["checkpoint"]["step"] == int(R.steps[row])
    assert doc["run"]["checkpoints"] == len(R.names) and doc["run"]["ref"] == "ckpt_000"
    assert doc["config"]["num_hidden_layers"] == max(R.layer) + 1
    assert doc["missing"] == ["memo"], doc["missing"]  # no memorisation scanned
    groups = {"norms": "/norms", "drift_prev": "/drift/prev", "drift_ref": "/drift/ref",
              "spectral": "/spectral"}
    with h5py.File(R.path, "r") as f:
        by_name = {t["name"]: t for t in doc["tensors"]}
        assert sorted(by_name) == sorted(R.tnames)
        for j, n in enumerate(R.tnames):
            t = by_name[n]
            assert (t["layer"], t["kind"], t["rows"], t["cols"]) == (
                R.layer[j], R.kind[j], R.rows[j], R.cols[j])
            for key, g in groups.items():
                assert sorted(t[key]) == sorted(f[g]), (key, sorted(t[key]))
                for m, v in t[key].items():
                    want = f[g][m][row, j]
                    if not np.isfinite(want):
                        assert v is None, (n, key, m, v)
                    else:
                        P.close(v, want, 1e-12, "%s %s %s" % (n, key, m))
        # outliers recomputed with numpy
        for key, g in [("largest_drift_prev", "/drift/prev"), ("largest_drift_ref", "/drift/ref")]:
            rf = f[g]["rel_fro"][row]
            ok = [j for j in np.argsort(-rf, kind="stable") if np.isfinite(rf[j]) and rf[j] > 0]
            assert [o["name"] for o in doc["outliers"][key]] == [R.tnames[j] for j in ok[:5]]
        al = f["spectral/alpha"][row]
        out_of = {R.tnames[j] for j in range(len(al)) if np.isfinite(al[j]) and
                  (al[j] < 2 or al[j] > 6)}
        assert {o["name"] for o in doc["outliers"]["alpha_outside"]} == out_of
        for o in doc["outliers"]["alpha_outside"]:
            assert ("alpha_low" if o["alpha"] < 2 else "alpha_high") in by_name[o["name"]]["flags"]
        assert doc["outliers"]["nonfinite"] == []
        evals = {e["set"]: e for e in doc["eval"]}
        assert sorted(evals) == ["held_a", "held_b"]
        P.close(evals["held_b"]["ppl"], f["eval/held_b/ppl"][row], 1e-12, "ppl")
        assert evals["held_b"]["tokens"] == 4096
        tasks = {t["task"]: {m["name"]: m for m in t["metrics"]} for t in doc["evals"]}
        assert tasks["piqa"]["acc_norm"]["stderr"] is None
        assert sorted(tasks["arc_easy"]) == ["acc", "acc_norm"]  # n_samples is no score
        assert [t["n_samples"] for t in doc["evals"]] == [1000, None]
        P.close(tasks["arc_easy"]["acc"]["stderr"], f["evals/arc_easy/acc_stderr"][row], 1e-12,
                "stderr")
    # an incomplete checkpoint: every value null, never 0
    doc = json.loads(P.run(["report", R.path, "--format", "json", "--at", "ckpt_006"],
                           check=0)[1])
    assert doc["checkpoint"]["status"] == "incomplete"
    for t in doc["tensors"]:
        assert all(v is None for g in groups for v in t[g].values()), t
    assert all(e.get("ppl") is None for e in doc["eval"])


class Tags(html.parser.HTMLParser):
    """Collects ids, internal links and images; checks that tables and sections nest."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.imgs, self.stack, self.errors = set(), [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            if a["id"] in self.ids:
                self.errors.append("duplicate id " + a["id"])
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "img":
            self.imgs.append(a)
        if tag in ("table", "tr", "td", "th", "ul", "li", "h1", "h2", "h3", "figure", "div",
                   "nav", "a", "code", "p"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("table", "tr", "td", "th", "ul", "li", "h1", "h2", "h3", "figure", "div",
                   "nav", "a", "code", "p"):
            if not self.stack or self.stack.pop() != tag:
                self.errors.append("misnested </%s>" % tag)


def check_html(text):
    t = Tags()
    t.feed(text)
    t.close()
    assert not t.errors and not t.stack, (t.errors[:5], t.stack[:5])
    for href in t.links:
        assert href.startswith("#") and href[1:] in t.ids, "broken link " + href
    return t


def test_report_text_markdown_html():
    R = main_run()
    _, text, _ = P.run(["report", R.path], check=0)
    assert text.startswith("ckptscope report: ckpt_004 (step 4)\n")
    lines = text.splitlines()
    head = next(i for i, l in enumerate(lines) if l.startswith("LAYER"))
    cols = lines[head].split()
    assert cols[:4] == ["LAYER", "KIND", "SHAPE", "RMS"] and cols[-1] == "FLAGS"
    # every tensor row, its rms as %.4g of the file's value
    rms = R.data("/norms/rms")[R.row("ckpt_004")]
    rows = lines[head + 1:head + 1 + len(R.tnames)]
    assert len(rows) == len(R.tnames)
    q0 = R.tnames.index("model.layers.0.self_attn.q_proj.weight")
    q0row = next(r for r in rows if r.split()[:2] == ["0", "q"])
    assert q0row.split()[3] == "%.4g" % rms[q0], q0row
    # header lines align: every value starts in the same column
    assert len({re.match(r"\S+(?: \S+)*\s{2,}", l).end() for l in lines[2:12]}) == 1, lines[2:12]
    assert "held-out evaluation (/eval):" in text and "eval scores (/evals):" in text
    _, inc, _ = P.run(["report", R.path, "--at", "ckpt_005"], check=0)
    assert "note: this checkpoint is not complete" in inc
    # Markdown: pipe tables with alignment rows, escaped names
    _, md, _ = P.run(["report", R.path, "--format", "markdown"], check=0)
    assert md.startswith("# ckptscope report: ckpt\\_004 (step 4)")
    assert "| LAYER | KIND | SHAPE | RMS |" in md and "| ---: | --- | ---: | ---: |" in md
    assert "\n## Tensors (%d)\n" % len(R.tnames) in md
    # HTML: well nested, every internal link lands
    _, page, _ = P.run(["report", R.path, "--format", "html", "-o", tmp("r.html")], check=0)
    with open(tmp("r.html"), encoding="utf-8") as f:
        page = f.read()
    t = check_html(page)
    assert "t%d" % q0 in t.ids and "outliers" in t.ids


def test_trends_page_self_contained():
    R = main_run()
    priv = tmp("trends-tmp")
    os.mkdir(priv)
    out = tmp("trends.html")
    P.run(["report", R.path, "--trends", "-o", out], env={"TMPDIR": priv}, check=0)
    assert os.listdir(priv) == [], "temporary plots left behind: %r" % os.listdir(priv)
    with open(out, encoding="utf-8") as f:
        page = f.read()
    t = check_html(page)
    want, _ = expected_files(R)
    assert len(t.imgs) == len(want), (len(t.imgs), len(want))
    import base64
    for img in t.imgs:
        src = img["src"]
        assert src.startswith("data:image/png;base64,"), src[:40]
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (img["width"], img["height"]) == (str(w), str(h))
    # nothing from the network: no URL in any attribute, a policy that forbids fetching
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "default-src 'none'" in page and "<script" not in page
    for sec in ["overview", "checkpoints", "eval", "evals", "medians", "heatmaps", "esd",
                "alpha", "c-ckpt", "c-tensors"]:
        assert sec in t.ids, sec
    # the checkpoint table: one row per checkpoint in step order
    for name in R.names:
        assert name in page


# ---- hostile names ----

# Names that become HDF5 path components (eval sets, tasks) or folder names cannot hold a
# '/': their commands touch relative names, which would land in the working folder of
# whatever ran them (gnuplot runs in the output folder); no_markers looks everywhere.
HOSTILE = ["ckpt_1'\"`touch %(m)s/bq`\nsystem(\"touch %(m)s/sys\")",
           "set'; system('touch PWNED_set') #\n@x {^_&} <b>&amp;",
           "task`touch PWNED_task`'\r\n\"",
           "model.layers.0.self_attn.q_proj.weight'`touch %(m)s/tensor`\nsystem(\"touch %(m)s/t2\")"]


def hostile_run(markers):
    h = [s % {"m": markers} for s in HOSTILE]
    path = tmp("hostile.h5")
    nt, steps = 3, [0, 10, 20, 30]
    tensors = [{"name": h[3], "layer": 0, "kind": "q", "rows": 32, "cols": 16},
               {"name": "model.layers.1.self_attn.q_proj.weight", "layer": 1, "kind": "q",
                "rows": 32, "cols": 16},
               {"name": "model.norm.weight", "layer": -1, "kind": "final_norm", "rows": 32,
                "cols": 0}]
    ops = [{"op": "attr", "obj": "/", "name": "config",
            "value": json.dumps({"num_hidden_layers": 2, "torch_dtype": h[1]})}]
    names = [h[0] if i == 1 else "ckpt_%02d" % s for i, s in enumerate(steps)]
    for r, (n, s) in enumerate(zip(names, steps)):
        ops.append({"op": "ckpt", "name": n, "step": s, "commit": "", "status": "complete"})
        if r == 0:
            ops.append({"op": "tensors", "tensors": tensors})
    for r, s in enumerate(steps):
        ops.append({"op": "row", "path": "/norms/rms", "row": r, "values": [0.1 + s / 100] * nt})
        ops.append({"op": "row", "path": "/norms/nan", "row": r, "values": [0, 1, 0],
                    "unit": "elements"})
        ops.append({"op": "row", "path": "/drift/prev/rel_fro", "row": r,
                    "values": [None if r == 0 else 0.1 / r] * nt})
        ops.append({"op": "row", "path": "/spectral/alpha", "row": r, "values": [1.5, 3.0, None]})
        ops.append({"op": "row", "path": "/spectral/xmin", "row": r, "values": [0.5, 0.5, None]})
        ops.append({"op": "row", "path": "/spectral/tail", "row": r, "values": [8, 8, None]})
        lam = list(np.geomspace(10, 0.01, 16))
        ops.append({"op": "spectra", "tensor": h[3], "row": r, "values": lam})
        ops.append({"op": "series", "path": "/eval/%s/ppl" % h[1], "row": r, "value": 50 - s})
        ops.append({"op": "series", "path": "/evals/%s/acc" % h[2], "row": r, "value": 0.3})
        ops.append({"op": "series", "path": "/evals/%s/acc_stderr" % h[2], "row": r,
                    "value": 0.01})
    P.runfx(path, ops, create=h[1])
    return path, h


def no_markers(markers):
    left = os.listdir(markers)
    assert left == [], "a name was run as code: %r" % left
    for top in (TMP, os.getcwd()):
        for d, _, files in os.walk(top):
            bad = [f for f in files if f.startswith("PWNED")]
            assert not bad, "a name was run as code: %s/%r" % (d, bad)


def test_hostile_names_draw_harmlessly():
    markers = tmp("markers")
    os.mkdir(markers)
    path, h = hostile_run(markers)
    # control: the same name pasted naively into a gnuplot script (double quotes) does run
    # its command, so an empty markers folder below means the quoting held, not that the
    # attack could not work
    ctl = tmp("control")
    os.mkdir(ctl)
    subprocess.run(["gnuplot", "-d"], input='set title "%s"\n' % h[0].split("\n")[0].replace(
        markers, ctl), text=True, capture_output=True)
    assert os.listdir(ctl) == ["bq"], os.listdir(ctl)
    for fmt in ("png", "svg"):
        out = tmp("hostile-" + fmt)
        P.run(["plot", path, "-o", out, "--format", fmt, "--at", h[0], "--tensors", "*"],
              check=0)
        drawn, _ = P.index_entries(out)
        fams = {f.split("_")[0] for f in drawn}
        assert fams == {"eval", "evals", "median", "heatmap", "esd", "alpha"}, drawn
        for f in drawn:
            assert os.path.dirname(os.path.realpath(os.path.join(out, f))) == os.path.realpath(out)
            (P.png_ok if fmt == "png" else P.svg_ok)(os.path.join(out, f))
        if fmt == "svg":
            # the names were drawn as text, verbatim up to the newline, not run
            text = " ".join(P.svg_text(P.svg_ok(os.path.join(out, f))) for f in drawn)
            assert "system('touch PWNED_set')" in text
            assert "task`touch PWNED_task`'" in text
            assert "ckpt_1'\"`touch %s/bq` system(\"to" % markers in text  # cut at 60
            assert "{^_&} <b>&amp;" in text
    for fmt in ("text", "markdown", "json", "html"):
        code, out, err = P.run(["report", path, "--format", fmt, "--at", h[0]], check=0)
        if fmt == "json":
            assert json.loads(out)["checkpoint"]["name"] == h[0]
        if fmt == "html":
            check_html(out)
            assert "<b>&amp;" not in out
        if fmt == "text":
            assert "\r" not in out and "ckpt_1'\"`touch" in out
    P.run(["report", path, "--trends", "-o", tmp("hostile.html")], check=0)
    with open(tmp("hostile.html"), encoding="utf-8") as f:
        check_html(f.read())
    no_markers(markers)


def test_hostile_folder_names_end_to_end():
    """A plain-folder source whose checkpoint folder is named like an attack: scan, plot,
    report, trends."""
    markers = tmp("markers2")
    os.mkdir(markers)
    src = tmp("hostile-src")
    P.fixture(src, "--layout", "folder", "--checkpoints", 3)
    bad = "ckpt_001'\"`touch PWNED_fa`\n$(touch PWNED_fb) system(\"touch PWNED_fc\")"
    os.rename(os.path.join(src, "ckpt_001"), os.path.join(src, bad))
    run = tmp("hostile-src.h5")
    P.run(["scan", src, "-o", run, "--quiet", "--metrics", "norms,drift"], check=0)
    assert bad in P.Run(run).names
    P.run(["plot", run, "-o", tmp("hostile-src-png"), "--at", bad], check=0)
    P.run(["plot", run, "-o", tmp("hostile-src-svg"), "--format", "svg"], check=0)
    for f in glob.glob(tmp("hostile-src-svg") + "/*.svg"):
        P.svg_ok(f)
    for fmt in ("text", "markdown", "json", "html"):
        P.run(["report", run, "--format", fmt, "--at", bad], check=0)
    P.run(["report", run, "--trends", "-o", tmp("hostile-src.html")], check=0)
    no_markers(markers)


# ---- rejections ----

def expect_fail(args, needle, env=None):
    code, out, err = P.run(args, env=env)
    assert code == 2, "%s: exit %d\n%s" % (args, code, err)
    assert needle in err, "%s: %r not in %r" % (args, needle, err)
    assert err.count("\n") == 1, "not one line: %r" % err


def test_rejections():
    R = main_run()
    # not a run file
    text = tmp("notrun.h5")
    with open(text, "w") as f:
        f.write("hello\n")
    with h5py.File(tmp("other.h5"), "w") as f:
        f["x"] = np.zeros(3)
    for p, why in [(text, "notrun.h5: not a ckptscope run file (not HDF5)"),
                   (tmp("other.h5"), "other.h5: not a ckptscope run file"),
                   (tmp("absent.h5"), "absent.h5")]:
        expect_fail(["plot", p, "-o", tmp("o1")], why)
        expect_fail(["report", p], why)
    # an empty run; a run with checkpoints and no metric at all
    P.runfx(tmp("empty.h5"), [], create="src")
    for args in (["plot", tmp("empty.h5"), "-o", tmp("o2")], ["report", tmp("empty.h5")],
                 ["report", tmp("empty.h5"), "--trends"]):
        expect_fail(args, "holds no checkpoints")
    P.runfx(tmp("bare.h5"), [{"op": "ckpt", "name": "ckpt_0", "step": 0}], create="src")
    expect_fail(["plot", tmp("bare.h5"), "-o", tmp("o3")], "nothing to draw")
    # a family asked for by name without its data
    nd = tmp("nd.h5")
    fx = tmp("fx-nd")
    P.fixture(fx, "--layout", "folder", "--checkpoints", 2)
    P.run(["scan", fx, "-o", nd, "--quiet", "--metrics", "norms,drift"], check=0)
    expect_fail(["plot", nd, "-o", tmp("o4"), "--only", "esd"], "no esd plot can be drawn: "
                "the run file has no /spectra")
    expect_fail(["plot", nd, "-o", tmp("o5"), "--only", "eval"], "no eval plot can be drawn")
    expect_fail(["plot", nd, "-o", tmp("o6"), "--only", "evals"], "no /evals group")
    P.run(["plot", nd, "-o", tmp("o7"), "--only", "heatmap,median"], check=0)
    # a run file whose datasets disagree with its tables, or are too large to draw
    bad = tmp("badshape.h5")
    shutil.copy(R.path, bad)
    with h5py.File(bad, "r+") as f:
        del f["norms/rms"]
        f["norms/rms"] = np.zeros((3, 5))
        del f["spectra/lm_head.weight"]
        f.create_dataset("spectra/lm_head.weight", shape=(len(R.names), 2**21), dtype="f4",
                         chunks=(1, 4096))  # a few KiB on disk, 8 MiB per row in memory
    expect_fail(["plot", bad, "-o", tmp("o14"), "--only", "heatmap"],
                "/norms/rms is 3x5, but the run has 7 checkpoints")
    expect_fail(["report", bad], "/norms/rms has 3 rows, but the run has 7 checkpoints")
    expect_fail(["plot", bad, "-o", tmp("o15"), "--only", "esd", "--tensors", "lm_head.weight"],
                "/spectra of lm_head.weight keeps 2097152 eigenvalues per checkpoint, more than "
                "1048576")
    # output folders that cannot be written
    afile = tmp("afile")
    with open(afile, "w") as f:
        f.write("x")
    expect_fail(["plot", R.path, "-o", afile], "is not a folder")
    expect_fail(["plot", R.path, "-o", os.path.join(afile, "sub")], "cannot create the output "
                "folder")
    expect_fail(["plot", R.path, "-o", tmp("no/such/parent")], "cannot create the output folder")
    expect_fail(["report", R.path, "-o", tmp("no/such/x.html")], "cannot write")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp("ro")
        os.mkdir(ro, 0o555)
        expect_fail(["plot", R.path, "-o", ro], "cannot write in the output folder")
    # gnuplot missing, hung
    nogp = {"PATH": "/nonexistent"}
    expect_fail(["plot", R.path, "-o", tmp("o8")], "install the Debian package gnuplot-nox", nogp)
    expect_fail(["report", R.path, "--trends"], "gnuplot-nox", nogp)
    P.run(["report", R.path], env=nogp, check=0)  # a checkpoint report needs no gnuplot
    fake = tmp("fakebin")
    os.mkdir(fake)
    with open(os.path.join(fake, "gnuplot"), "w") as f:
        f.write("#!/bin/sh\nexec sleep 60\n")
    os.chmod(os.path.join(fake, "gnuplot"), 0o755)
    t0 = time.time()
    expect_fail(["plot", R.path, "-o", tmp("o9"), "--timeout", "1", "--only", "alpha"],
                "gnuplot did not finish within 1.0 s", {"PATH": fake + ":/usr/bin:/bin"})
    assert time.time() - t0 < 20
    # usage
    for args, needle in [(["plot", R.path], "-o DIR is required"),
                         (["plot", R.path, "-o", tmp("o10"), "--format", "jpg"], "png or svg"),
                         (["plot", R.path, "-o", tmp("o11"), "--only", "bogus"],
                          "unknown plot family 'bogus'"),
                         (["plot", R.path, "-o", tmp("o12"), "--at", "ckpt_999"],
                          "has no checkpoint 'ckpt_999'"),
                         (["plot", R.path, "-o", tmp("o13"), "--timeout", "0"], "--timeout"),
                         (["report", R.path, "--at", "nope"], "has no checkpoint 'nope'"),
                         (["report", R.path, "--at", "ckpt_000", "--trends"], "exclude"),
                         (["report", R.path, "--trends", "--format", "json"], "HTML only"),
                         (["report", R.path, "--format", "pdf"], "--format must be"),
                         (["report"], "expected one RUN.h5")]:
        code, _, err = P.run(args)
        assert code == 2 and needle in err, (args, code, err)
    for cmd in ("plot", "report"):
        code, out, _ = P.run([cmd, "--help"])
        assert code == 0 and out.startswith("usage: ckptscope " + cmd)


def test_pythia_evals():
    """Real lm-eval results (Pythia-12B, 27 checkpoints, ../shared/data) imported with
    `evals import`: the drawn scores and standard errors are the files' own numbers, read
    here with json; lambada_openai's accuracy and perplexity get a plot each (log y for
    the perplexity, which falls from ~1e7 to ~4)."""
    files = sorted(glob.glob(shared_data("evals", "pythia-12b", "12b_step*.json")))
    need(files, "../shared/data/evals/pythia-12b is absent")
    run = tmp("pythia.h5")
    P.run(["evals", "import", run] + files, check=0)
    out = tmp("pythia-plots")
    P.run(["plot", run, "-o", out, "--only", "evals", "--scripts"], check=0)
    truth = {}
    for f in files:
        step = int(re.search(r"step(\d+)", f).group(1))
        with open(f) as fh:
            truth[step] = json.load(fh)["results"]
    steps = sorted(truth)
    drawn, _ = P.index_entries(out)
    assert "evals_lambada_openai_fraction.png" in drawn
    assert "evals_lambada_openai_perplexity.png" in drawn
    with open(os.path.join(out, "evals_lambada_openai_perplexity.png.gp")) as fh:
        text = fh.read()
    assert "set logscale y" in text and "'100k' 100000" in text  # 1-10-100k step tics
    for task, metric, gp in [("arc_easy", "acc_norm", "evals_arc_easy"),
                             ("lambada_openai", "ppl", "evals_lambada_openai_perplexity")]:
        f = os.path.join(out, gp + ".png.gp")
        i = P.gp_titles(f).index(metric)
        d = np.array(P.gp_blocks(f)["d%d" % i])
        assert list(d[:, 0]) == steps
        P.close(d[:, 1], [truth[s][task][metric] for s in steps], 1e-9, task)
        P.close(d[:, 2], [truth[s][task][metric + "_stderr"] for s in steps], 1e-9, task + " se")
    for f in drawn:
        P.png_ok(os.path.join(out, f))


# ---- the demo run ----

def test_demo_run():
    bundle = os.path.join(SOURCE_DIR, "examples", "demo.bundle")
    assert os.path.exists(bundle), bundle + " is missing from the tree"
    clone = tmp("demo")
    subprocess.run(["git", "clone", "-q", "--mirror", bundle, clone], check=True)
    run = tmp("demo.h5")
    P.run(["scan", clone, "-o", run, "--quiet"], check=0)
    R = P.Run(run)
    out = tmp("demo-png")
    P.run(["plot", run, "-o", out], check=0)
    drawn, skipped = P.index_entries(out)
    for f in drawn:
        P.png_ok(os.path.join(out, f))
    fams = {f.split("_")[0] for f in drawn}
    assert {"median", "heatmap"} <= fams, fams
    with open(os.path.join(out, "index.txt")) as f:
        assert "x axis: log(1 + step)" in f.read()  # 0, 1, 2, 4 ... 1920: uneven steps
    doc = json.loads(P.run(["report", run, "--format", "json"], check=0)[1])
    assert doc["checkpoint"]["name"] == R.newest_complete()
    P.run(["report", run, "--trends", "-o", tmp("demo.html")], check=0)


def main(tests):
    """Runs the tests named after the four paths on the command line (all when none is
    named); exits 1 when one fails, 77 when one was skipped (cks_testlib.run_tests)."""
    run_tests(tests, sys.argv[5:])


if __name__ == "__main__":
    try:
        main([test_plot_png_every_family, test_plot_svg_parses, test_plot_lines_match_run_file,
              test_plot_heatmaps_match_run_file, test_plot_spectra_match_run_file,
              test_report_json_matches_run_file, test_report_text_markdown_html,
              test_trends_page_self_contained, test_pythia_evals,
              test_hostile_names_draw_harmlessly, test_hostile_folder_names_end_to_end,
              test_rejections, test_demo_run])
    finally:
        if not os.environ.get("CKS_KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
