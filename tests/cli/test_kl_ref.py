"""`ppl --vs` and the scan family `kl` against an independent float64 PyTorch computation
(tools/kl_ref.py: tools/family_ref.py's forward pass and windows, tools/make_fstats_refs.py's
per-position statistics and numpy re-implementation of the GSL block bootstrap), on two
checkpoints of the embedded demo run and on a random GQA model (cks-fixture, the shape of
tools/family_ref.py's SMALL cases): per-set values within 1e-4 relative or 1e-6 absolute
(DESIGN's tolerance), token counts exactly. Also: the same JSON from --threads 1 and 2; the
refusals (another vocabulary, another tokenizer, `kl` without `ppl`: exit 2, nothing
written); the scan's kl_prev / kl_ref rows equal to `ppl --vs` of the same pairs and to the
reference, token_kl_prev per token; shards + merge and --resume give the serial file.
usage: test_kl_ref.py CKPTSCOPE CKS_FIXTURE [TEST...]"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch  # noqa: F401  (the reference needs it: missing, this test fails)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scan_support as S  # noqa: E402
from cks_testlib import SOURCE_DIR  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE_DIR, "tools"))
import family_ref as fr  # noqa: E402

S.init(sys.argv)
TMP = tempfile.mkdtemp(prefix="cks-kl-")
EX = os.path.join(SOURCE_DIR, "examples")
HELD = [os.path.join(EX, "heldout", f) for f in ("apache_license.txt", "jargon_heldout.txt",
                                                 "libgit2_log_c.txt")]
KL_REF = os.path.join(SOURCE_DIR, "tools", "kl_ref.py")
VS_KEYS = ("kl", "kl_p50", "kl_p90", "kl_p99", "kl_max", "top1_agree", "forgot", "learned",
           "dnll", "dnll_lo", "dnll_hi")
# the GQA model: tools/family_ref.py's SMALL (4 heads, 2 kv heads, std 0.3), 4
# checkpoints far apart along the fixture's line through weight space
GQA = fr.SMALL[:fr.SMALL.index("--checkpoints")] + ["--checkpoints", "4", "--step-every", "400"]


def near(got, want):
    return abs(got - want) <= 1e-6 or abs(got - want) <= 1e-4 * abs(want)


def ck_json(*args):
    _, out, _ = S.run(["ppl", *args, "--quiet", "--json"], check=0)
    return json.loads(out)


def reference(ckpt, base, *args):
    p = subprocess.run([sys.executable, KL_REF, ckpt, "--vs", base, *args], check=True,
                       capture_output=True, text=True)
    return json.loads(p.stdout)


def compare(got, want, what):
    bad = []
    for g, w in zip(got["sets"], want["sets"]):
        if g["tokens"] != w["tokens"]:
            bad.append("%s: tokens %d, reference %d" % (g["name"], g["tokens"], w["tokens"]))
        for k in ("nll", "top1_acc"):
            if not near(g[k], w[k]):
                bad.append("%s %s: %r, reference %r" % (g["name"], k, g[k], w[k]))
        for k in VS_KEYS:
            if not near(g["vs"][k], w["vs"][k]):
                bad.append("%s vs.%s: %r, reference %r" % (g["name"], k, g["vs"][k], w["vs"][k]))
    if len(got["sets"]) != len(want["sets"]) or bad:
        raise AssertionError("%s differs from tools/kl_ref.py:\n  %s" % (what, "\n  ".join(bad)))
    worst = max(abs(g["vs"]["kl"] - w["vs"]["kl"]) / w["vs"]["kl"]
                for g, w in zip(got["sets"], want["sets"]))
    print("  %s: %d sets agree; worst relative kl difference %.2e" % (what, len(got["sets"]), worst))


def demo():
    """A clone of the demo bundle, and two of its checkpoints as plain folders (the
    reference reads folders)."""
    clone, plain = os.path.join(TMP, "demo"), os.path.join(TMP, "demo-folders")
    if not os.path.exists(clone):
        subprocess.run(["git", "clone", "-q", os.path.join(EX, "demo.bundle"), clone], check=True)
        for b in ("ckpt_0064", "ckpt_0096"):
            os.makedirs(os.path.join(plain, b))
            arch = subprocess.run(["git", "-C", clone, "archive", "origin/" + b], check=True,
                                  capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", os.path.join(plain, b)], input=arch, check=True)
    return clone, plain


def gqa():
    """The random GQA source and its two token sets (family_ref's writer)."""
    src = os.path.join(TMP, "gqa")
    sets_dir = os.path.join(TMP, "gqa-sets")
    if not os.path.exists(src):
        S.fixture(src, *GQA)
        os.makedirs(sets_dir)
        fr.write_sets(fr.family_sets(15, 256), sets_dir)
    return src, [os.path.join(sets_dir, f) for f in ("docs.jsonl", "raw.u16")]


def test_demo_against_torch():
    clone, plain = demo()
    text = []
    for f in HELD:
        text += ["--text", os.path.splitext(os.path.basename(f))[0] + "=" + f]
    got = ck_json(clone + "@ckpt_0096", "--text", *HELD, "--vs", clone + "@ckpt_0064")
    S.close(got["sets"][0]["vs"]["checkpoint"]["step"], 64, 0, "the base's step")
    want = reference(os.path.join(plain, "ckpt_0096"), os.path.join(plain, "ckpt_0064"), *text,
                     "--ctx", str(got["ctx"]), "--stride", str(got["stride"]))
    compare(got, want, "demo ckpt_0096 --vs ckpt_0064")


def test_gqa_against_torch():
    src, files = gqa()
    sets = ["--set", "docs=%s:jsonl" % files[0], "--set", "raw=%s:u16" % files[1]]
    for ctx, stride, bos in ((16, 8, True), (16, 16, False)):
        extra = ["--ctx", str(ctx), "--stride", str(stride)] + ([] if bos else ["--no-bos"])
        got = ck_json(src + "@ckpt_002", "--tokens", *files, "--vs", src + "@ckpt_001", *extra)
        want = reference(os.path.join(src, "ckpt_002"), os.path.join(src, "ckpt_001"), *sets,
                         *extra)
        compare(got, want, "GQA ckpt_002 --vs ckpt_001, ctx %d stride %d bos %s" % (ctx, stride, bos))


def test_threads_same_json():
    clone, _ = demo()
    src, files = gqa()
    for args in ([clone + "@ckpt_0096", "--text", *HELD, "--vs", clone + "@ckpt_0064"],
                 [src + "@ckpt_003", "--tokens", *files, "--vs", src + "@ckpt_000", "--ctx", "16"]):
        one = S.run(["ppl", *args, "--json", "--quiet", "--threads", "1"], check=0)[1]
        two = S.run(["ppl", *args, "--json", "--quiet", "--threads", "2"], check=0)[1]
        if one != two:
            raise AssertionError("ppl --vs: --threads 1 and 2 differ:\n%s\n%s" % (one, two))


def refused(args, names, what, usage=False):
    rc, out, err = S.run(args)
    lines = err.strip().splitlines()
    if usage and len(lines) == 2 and lines[1].startswith("Try "):
        lines = lines[:1]  # a usage error points to --help
    if rc != 2 or out or len(lines) != 1 or any(n not in lines[0] for n in names):
        raise AssertionError("%s: expected exit 2 and one line naming %s; got %d, stdout %r, "
                             "stderr %r" % (what, names, rc, out, err))
    print("  %s: %s" % (what, lines[0]))


def test_refusals():
    clone, plain = demo()
    src, files = gqa()
    other = os.path.join(TMP, "gqa-vocab300")
    S.fixture(other, *[a if a != "256" else "300" for a in GQA])
    refused(["ppl", src + "@ckpt_001", "--tokens", files[0], "--vs", other + "@ckpt_000"],
            ["ckpt_001", "ckpt_000", "vocab_size"], "another vocabulary")
    tok = os.path.join(TMP, "demo-othertok")
    for b in ("ckpt_0064", "ckpt_0096"):
        shutil.copytree(os.path.join(plain, b), os.path.join(tok, b))
    with open(os.path.join(tok, "ckpt_0064", "tokenizer.model"), "ab") as f:
        f.write(b"\0")
    refused(["ppl", tok + "@ckpt_0096", "--text", HELD[0], "--vs", tok + "@ckpt_0064"],
            ["ckpt_0096", "ckpt_0064", "tokenizer"], "another tokenizer")
    out = os.path.join(TMP, "nokl.h5")
    refused(["scan", src, "-o", out, "--metrics", "kl", "--eval", files[0], "--quiet"],
            ["kl", "ppl"], "kl without ppl")
    if os.path.exists(out):
        raise AssertionError("scan --metrics kl without ppl wrote %s" % out)
    refused(["ppl", src + "@ckpt_001", "--tokens", files[0], "--vs"], ["--vs"], "--vs without a value",
            usage=True)


def scan(src, out, files, *extra):
    evals = [a for f in files for a in ("--eval", f)]
    S.run(["scan", src, "-o", out, "--metrics", "ppl,kl", *evals, "--ctx", "16", "--quiet",
           "--threads", "2", *extra], check=0)


def column(k, B):
    """The run file's name of a `vs` field against base B (DESIGN §4)."""
    for stem in ("kl", "dnll"):
        if k.startswith(stem):
            return stem + "_" + B + k[len(stem):]
    return k + "_" + B


def test_scan_rows():
    src, files = gqa()
    run = os.path.join(TMP, "serial.h5")
    scan(src, run, files)
    with h5py.File(run, "r") as f:
        names = S.names(f)
        for s in ("docs", "raw"):
            if not all(np.isnan(f["eval/%s/%s" % (s, column(k, "prev"))][0]) for k in VS_KEYS):
                raise AssertionError("%s: the first row's _prev values are not all NaN" % s)
        for i, name in enumerate(names):
            for B, base in (("prev", names[i - 1]), ("ref", names[0])):
                if i == 0:
                    continue
                got = ck_json(src + "@" + name, "--tokens", *files, "--vs", src + "@" + base,
                              "--ctx", "16", "--threads", "2")
                for s in got["sets"]:
                    g = f["eval/" + s["name"]]
                    for k in VS_KEYS:
                        if g[column(k, B)][i] != s["vs"][k]:
                            raise AssertionError("%s %s %s: run file %r, ppl --vs %r"
                                                 % (name, s["name"], column(k, B),
                                                    g[column(k, B)][i], s["vs"][k]))
                    if g["top1_acc"][i] != s["top1_acc"] or g["nll"][i] != s["nll"]:
                        raise AssertionError("%s %s: nll/top1_acc differ from ppl" % (name, s["name"]))
            if f["eval/docs/kl_ref"][0] != 0 or f["eval/docs/top1_agree_ref"][0] != 1:
                raise AssertionError("the reference against itself: kl_ref %r, top1_agree_ref %r"
                                     % (f["eval/docs/kl_ref"][0], f["eval/docs/top1_agree_ref"][0]))
        # token_kl_prev against the float64 reference, token by token
        want = reference(os.path.join(src, names[2]), os.path.join(src, names[1]),
                         "--set", "docs=%s:jsonl" % files[0], "--set", "raw=%s:u16" % files[1],
                         "--ctx", "16", "--stride", "8")
        for s in want["sets"]:
            row = f["eval/%s/token_kl_prev" % s["name"]][2]
            ref = np.array(s["token_kl"])
            err = np.abs(row.astype(np.float64) - ref) - (1e-6 + 1e-4 * np.abs(ref))
            if row.shape[0] != len(ref) or err.max() > 0:
                raise AssertionError("token_kl_prev of %s: a token past 1e-4 relative + 1e-6 "
                                     "absolute (by %g)" % (s["name"], err.max()))
        print("  %d checkpoints: rows equal ppl --vs; token_kl_prev within 1e-4 of PyTorch"
              % len(names))


def test_shards_and_resume_equal_serial():
    src, files = gqa()
    run = os.path.join(TMP, "serial.h5")
    if not os.path.exists(run):
        scan(src, run, files)
    for n in (2, 3):
        parts = [os.path.join(TMP, "part%d-%d.h5" % (n, i)) for i in range(n)]
        for i, p in enumerate(parts):
            scan(src, p, files, "--shard", "%d/%d" % (i, n))
        merged = os.path.join(TMP, "merged%d.h5" % n)
        S.run(["merge", *parts, "-o", merged], check=0)
        S.same_file(run, merged)
    resumed = os.path.join(TMP, "resumed.h5")
    scan(src, resumed, files, "--branches", "ckpt_00[01]")
    scan(src, resumed, files, "--resume")
    S.same_file(run, resumed)


if __name__ == "__main__":
    try:
        S.main([test_demo_against_torch, test_gqa_against_torch, test_threads_same_json,
                test_refusals, test_scan_rows, test_shards_and_resume_equal_serial])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
