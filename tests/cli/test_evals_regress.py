"""`ckptscope evals import` and `ckptscope regress` end to end.

On the real Pythia-12B series (../shared/data/evals/pythia-12b, 27 checkpoints, 87 tasks,
lm-eval v0.3): the run file read back with h5py against the JSON files, the same series
rewritten here in the v0.4 layout importing to the same numbers, and the gate's verdict
for every score (step 143000 against 133000, and other pairs and policies) against
severities, deltas and z-scores computed here from the JSON files by gate_ref.py, an
independent Python reading of the rules. JUnit XML is parsed with xml.etree, Markdown
tables are parsed back. Bad input: malformed JSON, a result for a checkpoint the run file
does not hold, a baseline of another model (by name and by config.json), NaN values,
unknown directions, hostile names, bad options. scan's import of eval_*.json on each
branch (folder and git sources).
usage: test_evals_regress.py CKPTSCOPE CKS_FIXTURE [TEST...]; exit 77 when a test was
skipped because the shared data is absent (in CI, where it is present, that fails)."""
import glob
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gate_ref as G  # noqa: E402
import scan_support as S  # noqa: E402
from cks_testlib import need, run_tests, shared_data  # noqa: E402

S.init(sys.argv)
TMP = tempfile.mkdtemp(prefix="cks-gate-")
PYTHIA = shared_data("evals", "pythia-12b")


def tmp(*parts):
    return os.path.join(TMP, *parts)


def pythia_files():
    files = sorted(glob.glob(os.path.join(PYTHIA, "12b_step*.json")))
    need(len(files) == 27, "the Pythia-12B eval files are not in %s" % PYTHIA)
    return files


def load(path):
    with open(path) as f:
        return json.load(f)


def step_of(path):
    return int(re.search(r"step(\d+)", os.path.basename(path)).group(1))


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


_pythia_run = None


def pythia_run():
    """The 27 files imported once into a new evals-only run file."""
    global _pythia_run
    if _pythia_run is None:
        files = pythia_files()
        out = tmp("pythia.h5")
        _, so, _ = S.run(["evals", "import", out] + files, check=0)
        assert "created (evals only), 27 files imported" in so, so
        _pythia_run = out
    return _pythia_run


def scores_of(result):
    """{(task, metric): (value, stderr)} of a v0.3 result's "results"."""
    out = {}
    for task, ms in result["results"].items():
        for k, v in ms.items():
            if not k.endswith("_stderr"):
                out[(task, k)] = (v, ms.get(k + "_stderr"))
    return out


def junit(path):
    """{(suite kind, score id): (severity, failure type or None)} and the root."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    out, total, fails = {}, 0, 0
    for suite in root.findall("testsuite"):
        kind = "baseline" if " vs baseline " in suite.get("name") else "previous"
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases), suite.get("name")
        nfail = 0
        for c in cases:
            sev = c.find("system-out").text.split(":", 1)[0]
            f = c.find("failure")
            nfail += f is not None
            key = (kind, c.get("name"))
            assert key not in out, key
            out[key] = (sev, f.get("type") if f is not None else None)
        assert int(suite.get("failures")) == nfail
        total += len(cases)
        fails += nfail
    assert int(root.get("tests")) == total and int(root.get("failures")) == fails
    return root, out


def expected_pythia(at, ref, tol="se:2,rel:0.01", tols=(), dirs=()):
    """Severity and numbers of every score of `at` against `ref` from the JSON files."""
    a = scores_of(load(os.path.join(PYTHIA, "12b_step%d.json" % at)))
    r = scores_of(load(os.path.join(PYTHIA, "12b_step%d.json" % ref)))
    out = {}
    for (task, metric), (va, sa) in a.items():
        sid = "evals/%s/%s" % (task, metric)
        d = G.table_direction(sid)
        for pat, dd in dirs:
            if G.rule_matches(pat, sid):
                d = dd
        t = tol
        for pat, tt in tols:
            if G.rule_matches(pat, sid):
                t = tt
        vr, sr = r[(task, metric)]
        out[sid] = G.judge((va, sa, None), (vr, sr, None), d, metric in G.BINOMIAL,
                           G.parse_tolerance(t))
        out[sid]["direction"] = d
    return out


def check_report(junit_path, md_text, want, kind="previous"):
    """Every score's severity in JUnit and Markdown, and the Markdown's numbers, against
    want (from expected_pythia)."""
    _, cases = junit(junit_path)
    got = {sid: sev for (k, sid), (sev, _) in cases.items() if k == kind}
    assert set(got) == set(want), set(got) ^ set(want)
    bad = [(sid, got[sid], w["severity"]) for sid, w in want.items() if got[sid] != w["severity"]]
    assert not bad, "severities differ (score, ckptscope, expected): %r" % bad[:10]
    rows = [r for r in G.markdown_rows(md_text) if r["against"] == kind]
    assert len(rows) == len(want)
    section = {"regression": "Regressions", "warning": "Warnings", "improvement": "Improvements",
               "unchanged": "Unchanged"}
    for row in rows:
        w = want[row["id"]]
        assert row["section"] == section[w["severity"]], (row, w)
        assert row["better"] == (w["direction"] or "unknown"), row
        delta = float(row["change"].split()[0])
        assert math.isclose(delta, w["delta"], rel_tol=1e-3, abs_tol=1e-12), (row, w)
        if math.isnan(w["z"]):
            assert row["z"] == "—", row
        else:
            assert abs(float(row["z"]) - w["z"]) <= 0.0051, (row, w)
        if not math.isnan(w["worse"]):
            rule, thr = row["tolerance"].split(": ")
            assert rule == w["rule"] and math.isclose(float(thr), w["worse"], rel_tol=1e-3), (row, w)
    # sections in order: regressions first
    heads = re.findall(r"^(?:### |<details><summary>)(\w+)", md_text, re.M)
    order = ["Regressions", "Warnings", "Improvements", "Unchanged"]
    assert heads == [h for h in order if h in heads], heads
    return cases


def regress(run, *args, check):
    j = tmp("r-%d.xml" % abs(hash(args)))
    code, out, err = S.run(["regress", run, "--junit", j] + list(args), check=check)
    return j, out, err


# ---- the tests ----


def test_pythia_import_values():
    run, files = pythia_run(), pythia_files()
    with h5py.File(run, "r") as f:
        assert f.attrs["evals_only"] == "true"
        assert f.attrs["model"] == "EleutherAI/pythia-v1.1-12b"
        assert f.attrs["source"] == os.path.realpath(PYTHIA)
        assert f.attrs["config"] == ""
        names = S.names(f)
        steps = list(f["checkpoints"]["step"])
        assert sorted(names) == sorted("step%d" % step_of(p) for p in files)
        assert steps == [int(n[4:]) for n in names]
        assert all(s == b"complete" for s in f["checkpoints"]["status"])
        nseries = 0
        for p in files:
            row = names.index("step%d" % step_of(p))
            for (task, metric), (v, se) in scores_of(load(p)).items():
                d = f["evals/%s/%s" % (task, metric)]
                assert d.shape == (27,) and d.dtype == np.float64
                assert d[row] == v, (p, task, metric)
                assert f["evals/%s/%s_stderr" % (task, metric)][row] == se
                nseries += 1
        assert nseries == 27 * 172
        acc = f["evals/arc_easy/acc"]
        assert acc.attrs["unit"] == "fraction" and acc.attrs["axes"] == "checkpoint"
        assert "arc_easy" in acc.attrs["description"]
        assert f["evals/lambada_openai/ppl"].attrs["unit"] == "perplexity"
        assert "standard error" in f["evals/arc_easy/acc_stderr"].attrs["description"]
        assert "n_samples" not in f["evals/arc_easy"]  # v0.3 files carry no sample counts
        # the figure quoted in the data's README
        assert round(float(f["evals/lambada_openai/ppl"][names.index("step143000")]), 3) == 3.924


def test_pythia_gate_143000_vs_133000():
    run = pythia_run()
    # the default policy (se:2): nothing regressed between these two
    want = expected_pythia(143000, 133000)
    j, md, err = regress(run, check=0)
    assert "step143000 vs previous step133000: 0 regressions" in err, err
    cases = check_report(j, md, want)
    assert sum(w["severity"] == "warning" for w in want.values()) > 50  # real drops within noise
    assert not any(t for _, t in cases.values())
    assert md.startswith("## ckptscope regress: PASS — 0 regressions")
    # --fail-on warning turns the drops within noise into failures
    j, md, _ = regress(run, "--fail-on", "warning", check=1)
    _, cases = junit(j)
    assert {t for _, t in cases.values()} == {None, "warning"}
    assert md.startswith("## ckptscope regress: FAIL")
    # one standard error: four real drops become regressions
    want = expected_pythia(143000, 133000, tol="se:1")
    j, md, _ = regress(run, "--tolerance", "se:1", check=1)
    check_report(j, md, want)
    regs = sorted(s for s, w in want.items() if w["severity"] == "regression")
    assert regs == ["evals/hendrycksTest-clinical_knowledge/acc",
                    "evals/hendrycksTest-college_medicine/acc",
                    "evals/hendrycksTest-high_school_biology/acc_norm",
                    "evals/hendrycksTest-high_school_psychology/acc"], regs
    _, cases = junit(j)
    assert sorted(s for (_, s), (_, t) in cases.items() if t == "regression") == regs
    # the perplexity rise the data's README quotes (3.876 -> 3.924) against rel:0.01,
    # and a flipped direction for pct_stereotype
    tols, dirs = [("ppl", "rel:0.01")], [("pct_stereotype", "higher")]
    want = expected_pythia(143000, 133000, tol="se:1", tols=tols, dirs=dirs)
    assert want["evals/lambada_openai/ppl"]["severity"] == "regression"
    j, md, _ = regress(run, "--tolerance", "se:1", "--tolerance", "ppl=rel:0.01", "--direction",
                       "pct_stereotype=higher", check=1)
    check_report(j, md, want)
    row = [r for r in G.markdown_rows(md) if r["id"] == "evals/lambada_openai/ppl"][0]
    ppl = [load(os.path.join(PYTHIA, "12b_step%d.json" % s))["results"]["lambada_openai"]["ppl"]
           for s in (143000, 133000)]
    assert row["better"] == "lower", row
    assert row["change"].endswith("(%+.2f%%)" % (100 * (ppl[0] - ppl[1]) / ppl[1])), row  # +1.22%
    # an absolute tolerance, and a glob on the whole id
    tols = [("evals/hendrycksTest-*", "abs:0.05")]
    want = expected_pythia(143000, 133000, tol="abs:0.02", tols=tols)
    j, md, _ = regress(run, "--tolerance", "abs:0.02", "--tolerance",
                       "evals/hendrycksTest-*=abs:0.05", check=None)
    check_report(j, md, want)


def test_pythia_other_pairs_and_baseline():
    run = pythia_run()
    # early training: step 64 against step 32 (the previous one by step)
    want = expected_pythia(64, 32)
    j, md, err = regress(run, "--at", "step64", check=None)
    assert "step64 vs previous step32" in err
    check_report(j, md, want)
    # a baseline pinned at step133000, then the newest checkpoint judged against it: the
    # baseline comparison must equal the previous-checkpoint one
    base = tmp("pythia-133000.json")
    S.run(["regress", run, "--at", "step133000", "--write-baseline", base], check=None)
    b = load(base)
    assert b["format"] == "ckptscope-baseline" and b["format_version"] == 1
    assert b["run"]["model"] == "EleutherAI/pythia-v1.1-12b" and b["run"]["config"] is None
    assert b["checkpoint"] == {"name": "step133000", "step": 133000}
    ref = scores_of(load(os.path.join(PYTHIA, "12b_step133000.json")))
    assert len(b["metrics"]) == len(ref)
    for m in b["metrics"]:
        _, task, metric = m["id"].split("/", 2)
        assert (m["value"], m["stderr"]) == ref[(task, metric)], m
        assert m["n"] is None and m["tolerance"] == "se:2,rel:0.01"
        assert m["direction"] == G.table_direction(m["id"])
    want = expected_pythia(143000, 133000)
    j, md, err = regress(run, "--baseline", base, check=0)
    assert "vs baseline step133000" in err
    check_report(j, md, want, kind="baseline")
    check_report(j, md, want, kind="previous")
    # --no-previous: the baseline suite only
    j, md, _ = regress(run, "--baseline", base, "--no-previous", check=0)
    root, cases = junit(j)
    assert len(root.findall("testsuite")) == 1 and {k for k, _ in cases} == {"baseline"}
    # --include selects scores by id; baseline scores it leaves out are counted
    j, md, _ = regress(run, "--baseline", base, "--include", "evals/arc_*", check=0)
    _, cases = junit(j)
    assert sorted({s for _, s in cases}) == ["evals/arc_challenge/acc", "evals/arc_challenge/acc_norm",
                                             "evals/arc_easy/acc", "evals/arc_easy/acc_norm"]
    assert "168 scores of the baseline are not selected by --include" in md, md[:800]
    _, _, err = S.run(["regress", run, "--include", "norms/*"], check=2)
    assert "holds no scores that --include selects" in err, err
    # the baseline's recorded direction and tolerance are used unless an option overrides
    b["metrics"] = [dict(m, tolerance="abs:0") for m in b["metrics"]]
    with open(tmp("strict.json"), "w") as f:
        json.dump(b, f)
    want = expected_pythia(143000, 133000, tol="abs:0")
    j, md, _ = regress(run, "--baseline", tmp("strict.json"), "--no-previous", check=1)
    check_report(j, md, want, kind="baseline")
    # the same model's baseline of another run file is fine; another model's is not
    other = tmp("other-model")
    os.makedirs(other)
    for p in pythia_files()[:3]:
        d = load(p)
        d["config"]["model_args"] = d["config"]["model_args"].replace("pythia-v1.1-12b", "pythia-v1.1-6.9b")
        with open(os.path.join(other, os.path.basename(p)), "w") as f:
            json.dump(d, f)
    S.run(["evals", "import", tmp("other.h5")] + sorted(glob.glob(other + "/*.json")), check=0)
    _, _, err = S.run(["regress", tmp("other.h5"), "--baseline", base], check=2)
    assert "baseline %s is for model 'EleutherAI/pythia-v1.1-12b', but" % base in err, err
    assert "holds model 'EleutherAI/pythia-v1.1-6.9b'" in err, err
    # importing the other model's results into the 12B file is refused too
    before = digest(run)
    _, _, err = S.run(["evals", "import", run, glob.glob(other + "/*.json")[0]], check=2)
    assert "is a result of model 'EleutherAI/pythia-v1.1-6.9b'" in err, err
    assert digest(run) == before


def v04(result, n_of):
    """A v0.3 result rewritten in the v0.4 layout: "metric,none" keys, "alias", sample
    counts, higher_is_better, model_args kept."""
    res, hib, ns = {}, {}, {}
    for task, ms in result["results"].items():
        out = {"alias": " - " + task}
        for k, v in ms.items():
            if k.endswith("_stderr"):
                out[k[:-len("_stderr")] + "_stderr,none"] = v
            else:
                out[k + ",none"] = v
        res[task] = out
        hib[task] = {k: k not in G.LOWER for k in ms if not k.endswith("_stderr")}
        if task in n_of:
            ns[task] = {"original": n_of[task], "effective": n_of[task]}
    return {"results": res, "groups": {}, "higher_is_better": hib, "n-samples": ns,
            "configs": {}, "versions": result["versions"], "config": result["config"],
            "lm_eval_version": "0.4.2"}


def test_v03_and_v04_same_numbers():
    files = pythia_files()
    # lm-eval's acc stderr is sqrt(p(1-p)/(n-1)): n comes back from the files themselves
    n_of = {}
    for task, ms in load(files[-1])["results"].items():
        if "acc" in ms and ms["acc_stderr"] > 0:
            p, se = ms["acc"], ms["acc_stderr"]
            n_of[task] = round(p * (1 - p) / se ** 2 + 1)
    d4 = tmp("v04")
    os.makedirs(d4)
    for p in files:
        with open(os.path.join(d4, os.path.basename(p)), "w") as f:
            json.dump(v04(load(p), n_of), f)
    run4 = tmp("pythia-v04.h5")
    _, so, _ = S.run(["evals", "import", run4] + sorted(glob.glob(d4 + "/*.json")), check=0)
    assert "(lm-eval v0.4)" in so and "(lm-eval v0.3)" not in so
    run3 = pythia_run()
    with h5py.File(run3, "r") as f3, h5py.File(run4, "r") as f4:
        assert S.names(f3) == S.names(f4)
        assert list(f3["checkpoints"]["step"]) == list(f4["checkpoints"]["step"])
        l3, l4 = [], []
        f3["evals"].visit(l3.append)
        f4["evals"].visit(l4.append)
        extra = sorted(set(l4) - set(l3))
        assert extra == sorted("%s/n_samples" % t for t in n_of), extra[:5]
        for name in l3:
            if isinstance(f3["evals"][name], h5py.Dataset):
                a, b = f3["evals"][name][()], f4["evals"][name][()]
                assert np.array_equal(a, b, equal_nan=True), name
                assert a.tobytes() == b.tobytes(), name  # the very same doubles
        for task, n in n_of.items():
            assert list(f4["evals/%s/n_samples" % task][()]) == [n] * 27
        assert f4["evals/arc_easy/acc"].attrs["higher_is_better"] == "true"
        assert f4["evals/crows_pairs_english/pct_stereotype"].attrs["higher_is_better"] == "false"
    # and the gate says the same of both (equal sample counts: no warning from n)
    j3, md3, _ = regress(run3, check=0)
    j4, md4, _ = regress(run4, check=0)
    assert junit(j3)[1] == junit(j4)[1]


def test_wilson_path_and_groups():
    """v0.4 results without stderr ("N/A") but with sample counts: the binomial standard
    error and Wilson/Newcombe decide; groups are imported like tasks."""
    d = tmp("wilson")
    os.makedirs(d)
    accs = {"ckpt_10": (0.80, 0.61, 1.0), "ckpt_20": (0.60, 0.60, 0.95)}
    for name, (acc, mmlu, perfect) in accs.items():
        doc = {"results": {"boolq": {"alias": "boolq", "acc,none": acc, "acc_stderr,none": "N/A"},
                           "easy": {"alias": "easy", "acc,none": perfect, "acc_stderr,none": "N/A"}},
               "groups": {"mmlu": {"alias": "mmlu", "acc,none": mmlu, "acc_stderr,none": 0.004}},
               "n-samples": {"boolq": {"original": 100, "effective": 100},
                             "easy": {"original": 40, "effective": 40}},
               "config": {"model_args": "pretrained=/ckpts/%s,dtype=bfloat16" % name}}
        with open(os.path.join(d, "eval_%s.json" % name), "w") as f:
            json.dump(doc, f)
    run = tmp("wilson.h5")
    _, so, _ = S.run(["evals", "import", run] + sorted(glob.glob(d + "/*.json")), check=0)
    assert "-> ckpt_10, row 0 (new)" in so, so  # the checkpoint from pretrained=.../ckpt_10
    with h5py.File(run, "r") as f:
        assert "model" not in f.attrs  # a pretrained= path does not name the model
        assert list(f["evals/boolq/n_samples"][()]) == [100, 100]
        assert "acc_stderr" not in f["evals/boolq"]
        assert list(f["evals/mmlu/acc"][()]) == [0.61, 0.60]
    j, md, _ = regress(run, check=1)
    rows = {r["id"]: r for r in G.markdown_rows(md)}
    for sid, a, r, n in [("evals/boolq/acc", 0.6, 0.8, 100), ("evals/easy/acc", 0.95, 1.0, 40)]:
        w = G.judge((a, None, n), (r, None, n), "higher", True, [("se", 2.0)])
        assert rows[sid]["tolerance"].startswith("wilson:2: "), rows[sid]
        assert math.isclose(float(rows[sid]["tolerance"].split(": ")[1]), w["worse"], rel_tol=1e-3)
        assert abs(float(rows[sid]["z"]) - w["z"]) <= 0.0051
        assert rows[sid]["section"] == {"regression": "Regressions", "warning": "Warnings"}[w["severity"]]
    # 0.8 -> 0.6 of 100 is beyond noise; 1.0 -> 0.95 of 40 is not (binomial SE is 0 at 1.0,
    # the Wilson interval is not)
    assert rows["evals/boolq/acc"]["section"] == "Regressions"
    assert rows["evals/easy/acc"]["section"] == "Warnings"
    assert rows["evals/mmlu/acc"]["tolerance"].startswith("se:2: ")


def test_nan_and_unknown_direction_warn():
    d = tmp("nan")
    os.makedirs(d)
    for step, acc, weird in [(1, 0.5, 1.0), (2, float("nan"), 2.0)]:
        doc = {"results": {"arc_easy": {"acc": acc, "acc_stderr": 0.01, "weird_score": weird}},
               "config": {"model_args": "pretrained=org/m,revision=step%d" % step}}
        with open(os.path.join(d, "r%d.json" % step), "w") as f:
            f.write(json.dumps(doc))  # Python writes a bare NaN, as lm-eval does
    assert "NaN" in open(os.path.join(d, "r2.json")).read()
    run = tmp("nan.h5")
    S.run(["evals", "import", run, os.path.join(d, "r1.json"), os.path.join(d, "r2.json")], check=0)
    with h5py.File(run, "r") as f:
        assert math.isnan(f["evals/arc_easy/acc"][1])
    j, md, err = regress(run, check=0)  # warnings do not fail by default ...
    rows = {r["id"]: r for r in G.markdown_rows(md)}
    assert rows["evals/arc_easy/acc"]["section"] == "Warnings"
    assert "no value at step2 (NaN): cannot compare" in rows["evals/arc_easy/acc"]["why"]
    assert rows["evals/arc_easy/weird_score"]["section"] == "Warnings"
    assert rows["evals/arc_easy/weird_score"]["better"] == "unknown"
    assert "direction unknown" in rows["evals/arc_easy/weird_score"]["why"]
    assert "2 warnings" in md.splitlines()[0]
    _, cases = junit(j)
    assert cases[("previous", "evals/arc_easy/acc")][0] == "warning"
    regress(run, "--fail-on", "warning", check=1)  # ... but are never a silent pass
    # a direction given: weird_score rose, an improvement
    j, md, _ = regress(run, "--direction", "weird_score=higher", check=0)
    rows = {r["id"]: r for r in G.markdown_rows(md)}
    assert rows["evals/arc_easy/weird_score"]["section"] == "Improvements"
    # writing a baseline leaves the NaN score out, and says so
    _, _, err = S.run(["regress", run, "--write-baseline", tmp("nan-base.json")], check=0)
    assert "some without a value left out" in err
    assert [m["id"] for m in load(tmp("nan-base.json"))["metrics"]] == ["evals/arc_easy/weird_score"]
    # judged against that baseline, the score missing from it is counted, not dropped
    j, md, _ = regress(run, "--baseline", tmp("nan-base.json"), check=0)
    assert "1 scores of the run file are not in the baseline" in md


def test_bad_input():
    src = tmp("fx")
    S.fixture(src, "--layout", "folder", "--checkpoints", 2)
    scanned = tmp("scanned.h5")
    S.run(["scan", src, "-o", scanned, "--metrics", "norms", "--quiet"], check=0)
    good = tmp("good.json")
    with open(good, "w") as f:
        json.dump({"results": {"arc_easy": {"acc": 0.5, "acc_stderr": 0.01}},
                   "config": {"model_args": "pretrained=org/m,revision=ckpt_999"}}, f)
    bad = tmp("bad.json")
    with open(bad, "w") as f:
        f.write('{"results": {"arc_easy": {"acc": 0.5,,}}}')
    # malformed JSON: named, nothing created, an existing file untouched
    _, _, err = S.run(["evals", "import", tmp("new.h5"), bad], check=2)
    assert bad in err and "line 1" in err, err
    assert not os.path.exists(tmp("new.h5"))
    before = digest(scanned)
    _, _, err = S.run(["evals", "import", scanned, good, bad], check=2)
    assert digest(scanned) == before
    # a result for a checkpoint the scanned run file does not hold
    _, _, err = S.run(["evals", "import", scanned, good], check=2)
    assert ("%s belongs to checkpoint 'ckpt_999', which %s does not hold (it holds ckpt_000, "
            "ckpt_001)" % (good, scanned)) in err, err
    assert digest(scanned) == before
    # ... named with --ckpt it lands in that row
    S.run(["evals", "import", scanned, good, "--ckpt", "ckpt_001", "--quiet"], check=0)
    with h5py.File(scanned, "r") as f:
        acc = f["evals/arc_easy/acc"][()]
        assert S.names(f) == ["ckpt_000", "ckpt_001"]
        assert math.isnan(acc[0]) and acc[1] == 0.5
        assert "evals_only" not in f.attrs
    # no checkpoint in model_args and none in the file name
    noname = tmp("results.json")
    with open(noname, "w") as f:
        json.dump({"results": {"t": {"acc": 0.1}}}, f)
    _, _, err = S.run(["evals", "import", tmp("x.h5"), noname], check=2)
    assert "cannot tell which checkpoint" in err and "--ckpt" in err, err
    # the run file's reserved name; not an lm-eval file; missing file
    res = tmp("reserved_ckpt_1.json")
    with open(res, "w") as f:
        json.dump({"results": {"t": {"n_samples": 3}}}, f)
    _, _, err = S.run(["evals", "import", tmp("x.h5"), res], check=2)
    assert "'n_samples'" in err, err
    notlm = tmp("ckpt_1.json")
    with open(notlm, "w") as f:
        json.dump({"hello": 1}, f)
    _, _, err = S.run(["evals", "import", tmp("x.h5"), notlm], check=2)
    assert "not an lm-eval result file" in err, err
    S.run(["evals", "import", tmp("x.h5"), tmp("missing_1.json")], check=2)
    assert not os.path.exists(tmp("x.h5"))
    # usage
    S.run(["evals"], check=2)
    S.run(["evals", "export", scanned, good], check=2)
    S.run(["evals", "import", scanned], check=2)
    assert "--ckpt NAME" in S.run(["evals", "--help"], check=0)[1]
    # regress: a run file without scores, nothing to compare, unknown --at, bad options,
    # a missing or malformed baseline
    _, _, err = S.run(["regress", tmp("fx-only.h5")], check=2)
    shutil.copy(scanned, tmp("noscores.h5"))
    with h5py.File(tmp("noscores.h5"), "a") as f:
        del f["evals"]
    _, _, err = S.run(["regress", tmp("noscores.h5")], check=2)
    assert "holds no scores" in err, err
    one = tmp("one.h5")
    S.run(["evals", "import", one, good, "--quiet"], check=0)
    _, _, err = S.run(["regress", one], check=2)
    assert "nothing to compare" in err, err
    _, _, err = S.run(["regress", scanned, "--at", "ckpt_7"], check=2)
    assert "no checkpoint 'ckpt_7'" in err
    for opts in (["--tolerance", "se:0"], ["--tolerance", "x=se"], ["--direction", "acc=up"],
                 ["--direction", "higher"], ["--fail-on", "improvement"], ["--bogus"],
                 ["--no-previous"]):
        _, _, err = S.run(["regress", scanned] + opts, check=2)
        assert "Try 'ckptscope regress --help'" in err, (opts, err)
    _, _, err = S.run(["regress", scanned, "--baseline", tmp("nope.json")], check=2)
    assert "nope.json" in err
    _, _, err = S.run(["regress", scanned, "--baseline", bad], check=2)
    assert bad in err
    help_text = S.run(["regress", "--help"], check=0)[1]
    for word in ("--direction", "--tolerance", "abs:X", "rel:X", "se:K", "Wilson", "equal",
                 "pct_stereotype", "--fail-on", "--no-previous", "Exit status"):
        assert word in help_text, word


def write_evals_into(folder, name, arc, mmlu):
    with open(os.path.join(folder, "eval_arc.json"), "w") as f:
        json.dump({"results": {"arc_challenge": {"acc": arc, "acc_stderr": 0.01}},
                   "config": {"model_args": "pretrained=/x/%s" % name}}, f)
    with open(os.path.join(folder, "eval_mmlu.json"), "w") as f:
        json.dump({"results": {"mmlu": {"acc,none": mmlu, "acc_stderr,none": 0.003}},
                   "n-samples": {"mmlu": {"original": 14042, "effective": 14042}}}, f)


def test_scan_imports_eval_files():
    # a folder source: eval files beside the weights, one malformed
    src = tmp("fxe")
    S.fixture(src, "--layout", "folder", "--checkpoints", 3)
    vals = {"ckpt_000": (0.25, 0.26), "ckpt_001": (0.30, 0.27), "ckpt_002": (0.29, 0.31)}
    for name, (arc, mmlu) in vals.items():
        write_evals_into(os.path.join(src, name), name, arc, mmlu)
    with open(os.path.join(src, "ckpt_001", "eval_bad.json"), "w") as f:
        f.write("{not json")
    os.makedirs(os.path.join(src, "ckpt_002", "sub"))
    with open(os.path.join(src, "ckpt_002", "sub", "eval_deep.json"), "w") as f:
        json.dump({"results": {"deep": {"acc": 1}}}, f)  # not at the top: not imported
    run = tmp("scan-evals.h5")
    _, _, err = S.run(["scan", src, "-o", run, "--metrics", "norms"], check=0)
    assert "warning: ckpt_001: eval_bad.json skipped: %s@ckpt_001:eval_bad.json" % src in err, err
    with h5py.File(run, "r") as f:
        names = S.names(f)
        for name, (arc, mmlu) in vals.items():
            r = names.index(name)
            assert f["evals/arc_challenge/acc"][r] == arc
            assert f["evals/mmlu/acc"][r] == mmlu
            assert f["evals/mmlu/n_samples"][r] == 14042
        assert "deep" not in f["evals"]
        assert f["norms/fro"].shape[0] == 3
    # the gate on a scanned run: identity by config.json
    j, md, _ = regress(run, check=None)
    rows = {r["id"]: r for r in G.markdown_rows(md)}
    w = G.judge((0.29, 0.01, None), (0.30, 0.01, None), "higher", True, [("se", 2.0)])
    assert rows["evals/arc_challenge/acc"]["section"] == "Warnings" == {"warning": "Warnings"}[w["severity"]]
    S.run(["regress", run, "--write-baseline", tmp("scan-base.json")], check=None)
    assert load(tmp("scan-base.json"))["run"]["config"]["hidden_size"] > 0
    other = tmp("fxo")
    S.fixture(other, "--layout", "folder", "--checkpoints", 2, "--hidden", 32)
    for name in ("ckpt_000", "ckpt_001"):
        write_evals_into(os.path.join(other, name), name, 0.3, 0.3)
    orun = tmp("scan-other.h5")
    S.run(["scan", other, "-o", orun, "--metrics", "norms", "--quiet"], check=0)
    _, _, err = S.run(["regress", orun, "--baseline", tmp("scan-base.json")], check=2)
    assert "is for another model: its config.json differs from %s's in 'hidden_size'" % orun in err, err
    # a git source: eval files committed on two branches (read from the blobs)
    repo = tmp("fxg")
    S.fixture(repo, "--checkpoints", 2)
    for i, name in enumerate(("ckpt_000", "ckpt_001")):
        wt = tmp("wt%d" % i)
        subprocess.run(["git", "-C", repo, "worktree", "add", "-q", wt, name], check=True,
                       capture_output=True)
        write_evals_into(wt, name, 0.4 + i / 10, 0.5)
        subprocess.run(["git", "-C", wt, "add", "eval_arc.json", "eval_mmlu.json"], check=True)
        subprocess.run(["git", "-C", wt, "-c", "user.name=t", "-c", "user.email=t@t", "commit",
                        "-qm", "evals"], check=True)
        shutil.rmtree(wt)
    subprocess.run(["git", "-C", repo, "worktree", "prune"], check=True)
    grun = tmp("scan-git.h5")
    S.run(["scan", repo, "-o", grun, "--metrics", "norms", "--quiet"], check=0)
    with h5py.File(grun, "r") as f:
        assert list(f["evals/arc_challenge/acc"][()]) == [0.4, 0.5]
        assert list(f["evals/mmlu/acc"][()]) == [0.5, 0.5]


def test_junit_markdown_format():
    """Hostile names stay well-formed XML and one Markdown cell each; --markdown appends."""
    d = tmp("hostile")
    os.makedirs(d)
    task = 'x|y<z>&"q\' ü`*_'
    for step, v in ((1, 0.9), (2, 0.5)):
        with open(os.path.join(d, "h%d.json" % step), "w") as f:
            json.dump({"results": {task: {"acc,none": v, "acc_stderr,none": 0.01},
                                   "plain": {"acc,none": v, "acc_stderr,none": 0.01}},
                       "config": {"model_args": "pretrained=o/m,revision=step%d" % step}}, f)
    run = tmp("hostile.h5")
    S.run(["evals", "import", run] + sorted(glob.glob(d + "/*.json")), check=0)
    md_file = tmp("summary.md")
    with open(md_file, "w") as f:
        f.write("# CI summary\n\n")
    j = tmp("hostile.xml")
    for _ in range(2):
        code, out, _ = S.run(["regress", run, "--junit", j, "--markdown", md_file], check=1)
        assert out == ""
    text = open(md_file).read()
    assert text.startswith("# CI summary\n\n## ckptscope regress: FAIL — 2 regressions")
    assert text.count("## ckptscope regress:") == 2
    rows = G.markdown_rows(text.split("## ckptscope regress:")[1])
    assert {r["id"] for r in rows} == {"evals/%s/acc" % task, "evals/plain/acc"}
    root, cases = junit(j)
    assert ("previous", "evals/%s/acc" % task) in cases
    assert cases[("previous", "evals/plain/acc")] == ("regression", "regression")
    assert root.get("tests") == "2" and root.get("failures") == "2"
    fail = root.find("testsuite/testcase/failure")
    assert "beyond the tolerance" in fail.get("message")


TESTS = [test_pythia_import_values, test_pythia_gate_143000_vs_133000,
         test_pythia_other_pairs_and_baseline, test_v03_and_v04_same_numbers,
         test_wilson_path_and_groups, test_nan_and_unknown_direction_warn, test_bad_input,
         test_scan_imports_eval_files, test_junit_markdown_format]

if __name__ == "__main__":
    try:
        run_tests(TESTS, sys.argv[3:])
    finally:
        if not os.environ.get("CKS_KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
