"""The CI gate on the embedded demo run (tools/demo_gate.sh): the committed baselines are
what numpy and PyTorch say (tools/make_demo_baseline.py --check); the gate passes on
them; and a baseline whose numbers are moved the way a changed reader or forward pass
would move ckptscope's (one norm beyond its tolerance, one perplexity, a score gone to
null) fails with a report naming each.
usage: test_demo_gate.py CKPTSCOPE SOURCE_DIR"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gate_ref as G  # noqa: E402

CKPTSCOPE, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
TMP = tempfile.mkdtemp(prefix="cks-demogate-")


def gate(out, baselines=None, run=None):
    env = dict(os.environ, CKPTSCOPE=CKPTSCOPE, CKS_GATE_OUT=out)
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("CKS_GATE_RUN", None)
    if baselines:
        env["CKS_GATE_BASELINES"] = baselines
    if run:
        env["CKS_GATE_RUN"] = run
    return subprocess.run([os.path.join(ROOT, "tools", "demo_gate.sh")], env=env,
                          capture_output=True, text=True)


def suites(out, ckpt):
    root = ET.parse(os.path.join(out, ckpt + ".xml")).getroot()
    s = root.findall("testsuite")
    assert len(s) == 1 and " vs baseline " in s[0].get("name")
    return s[0]


def main():
    # the committed baselines are the independent numbers
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_demo_baseline.py"),
                    "--check", "--examples", os.path.join(ROOT, "examples")], check=True)
    base_dir = os.path.join(ROOT, "examples", "baseline")
    ckpts = sorted(f[:-5] for f in os.listdir(base_dir) if f.endswith(".json"))
    assert ckpts == ["ckpt_0960", "ckpt_1920"], ckpts

    out = os.path.join(TMP, "clean")
    p = gate(out)
    assert p.returncode == 0, p.stdout + p.stderr
    with_ppl = "gating the weight norms only" not in p.stderr
    for ck in ckpts:
        base = json.load(open(os.path.join(base_dir, ck + ".json")))
        gated = [m for m in base["metrics"] if with_ppl or m["id"].startswith("norms/")]
        s = suites(out, ck)
        assert int(s.get("tests")) == len(gated) and s.get("failures") == "0", (ck, s.attrib)
    assert p.stdout.count("## ckptscope regress: PASS") == 2, p.stdout

    # tampered copies: what a changed bf16 reader, norm or forward pass would look like
    tampered = os.path.join(TMP, "tampered")
    os.makedirs(tampered)
    moved = {"norms/fro/model.layers.2.mlp.down_proj.weight": 1 + 2e-6,  # twice its tolerance
             "eval/jargon_heldout/nll": 1 + 3e-6}  # three times rel:1e-6
    for ck in ckpts:
        base = json.load(open(os.path.join(base_dir, ck + ".json")))
        for m in base["metrics"]:
            if m["id"] in moved:
                m["value"] *= moved[m["id"]]
            if ck == "ckpt_1920" and m["id"] == "norms/absmax/model.norm.weight":
                m["value"] = None  # a score gone to NaN: a warning, and the gate fails on those
        with open(os.path.join(tampered, ck + ".json"), "w") as f:
            json.dump(base, f)
    # the same scan, gated against the tampered baselines (a second scan would only
    # repeat the first: the scan's own results are checked above and in test_ppl_demo.py)
    p = gate(os.path.join(TMP, "bad"), tampered, run=os.path.join(out, "demo.h5"))
    out = os.path.join(TMP, "bad")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "demo_gate: FAILED" in p.stderr
    reports = p.stdout.split("## ckptscope regress:")[1:]
    assert len(reports) == 2 and all(r.startswith(" FAIL") for r in reports), p.stdout
    for ck, text in zip(ckpts, reports):
        rows = {r["id"]: r for r in G.markdown_rows(text)}
        r = rows["norms/fro/model.layers.2.mlp.down_proj.weight"]
        assert r["section"] == "Regressions" and "beyond the tolerance" in r["why"], r
        want_fail = 1 + (ck == "ckpt_1920")
        if with_ppl:
            assert rows["eval/jargon_heldout/nll"]["section"] == "Regressions"
            want_fail += 1
        if ck == "ckpt_1920":
            w = rows["norms/absmax/model.norm.weight"]
            assert w["section"] == "Warnings" and "no value at the baseline" in w["why"], w
        assert suites(out, ck).get("failures") == str(want_fail), ck
    print("ok demo gate (%s)" % ("norms and perplexity" if with_ppl else "norms; no ppl family yet"))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
