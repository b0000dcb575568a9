"""`ckptscope memorize` against PyTorch: the float64 greedy generation of
tools/memo_ref.py (its golden file tools/memo_ref.json, kept current by the test
memo_ref_current) on two checkpoints of the real demo run and on a random LLaMA model
with GQA (the fixture generator's): sequences built to be reproduced exactly (the prompt
and the model's own continuation), partly (one token changed) and not at all, short lines
skipped and counted, a --samples/--seed sample of the demo's recorded training sequences
(gsl_ran_choose, re-implemented in numpy by the reference) and random sequences. Every
per-token match must equal the reference's, except in a sequence whose generation had a
top-1 logit margin under 1e-4 in float64 (float32 rounding may pick either there; the
reference records each sequence's smallest margin); 1 and 2 threads give the same output.
The scan family memorization gives the same numbers in /memo/<set>/ (uint8 full rows).
Then every refusal: ids past the vocabulary (file and line), lines without token_ids,
truncated .gz and .zst, bad options; exit 2 with one line on stderr and nothing on stdout.

usage: test_memorize.py CKPTSCOPE CKS_FIXTURE SOURCE_DIR"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

CK, FX, SRC = sys.argv[1], sys.argv[2], sys.argv[3]
GOLDEN = json.load(open(os.path.join(SRC, "tools", "memo_ref.json")))
TMP = tempfile.mkdtemp(prefix="cks-memorize-")
DEMO = os.path.join(TMP, "demo")
GQA = os.path.join(TMP, "gqa")
TIE_MARGIN = 1e-4
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cks_testlib import check, close, finish  # noqa: E402


def ck(*args, rc=0):
    p = subprocess.run([CK, *args], capture_output=True, text=True)
    check(p.returncode == rc, "exit %d for %s (got %d: %s)" % (rc, args, p.returncode,
                                                               p.stderr.strip()[-400:]))
    return p


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def jsonl(lines):
    return "".join(json.dumps({"token_ids": q}) + "\n" for q in lines).encode()


def zstd(path):
    subprocess.run(["zstd", "-q", "-f", path, "-o", path + ".zst"], check=True)
    return path + ".zst"


def source_of(case):
    if case["source"] == "demo":
        return DEMO + "@" + case["ckpt"]
    return GQA + "@" + case["ckpt"]


def data_files(case):
    """The case's sets as files: built lines gzip'd (demo) or zstd'd (fixture)."""
    files = []
    for s in case["sets"]:
        if "file" in s:
            files.append(os.path.join(SRC, s["file"]))
            continue
        path = write("%s-%s.jsonl" % (case["name"], s["name"]), jsonl(s["lines"]))
        if case["source"] == "demo":
            files.append(write(os.path.basename(path) + ".gz", gzip.compress(jsonl(s["lines"]))))
        else:
            files.append(zstd(path))
    return files


def compare_set(case, want, got):
    name = "%s/%s" % (case["name"], want["name"])
    r = want["result"]
    check(got["sequences"] == r["sequences"] and got["skipped"] == r["skipped"],
          "%s: sequences/skipped %s/%s, want %s/%s" % (name, got["sequences"], got["skipped"],
                                                      r["sequences"], r["skipped"]))
    if len(got["match"]) != len(r["match"]):
        check(False, "%s: %d match rows, want %d" % (name, len(got["match"]), len(r["match"])))
        return 0
    near = 0
    for i, (g, w) in enumerate(zip(got["match"], r["match"])):
        if g == w:
            continue
        if r["margin"][i] < TIE_MARGIN:
            near += 1
            continue
        check(False, "%s: sequence %d matches %s, PyTorch %s (margin %g)" % (name, i, g, w,
                                                                          r["margin"][i]))
    if near == 0:
        for m in ("token_match", "full_match", "prefix_match"):
            check(close(got[m], r[m], atol=1e-12), "%s: %s %s, PyTorch %s" % (name, m, got[m],
                                                                               r[m]))
    return near


def test_matches_pytorch():
    near = total = 0
    for case in GOLDEN["cases"]:
        files = data_files(case)
        args = ["memorize", source_of(case), "--data", *files, "--prompt", str(case["prompt"]),
                "--continuation", str(case["continuation"]), "--json", "--quiet"]
        samples = [s for s in case["sets"] if "samples" in s]
        if samples:  # the sample of the file; the built sets have fewer lines: all kept
            args += ["--samples", str(samples[0]["samples"]), "--seed", str(samples[0]["seed"])]
        p = ck(*args, "--threads", "2")
        if p.returncode != 0:
            continue
        doc = json.loads(p.stdout)
        check(doc["prompt"] == case["prompt"] and doc["continuation"] == case["continuation"],
              "prompt/continuation echoed")
        check(doc["checkpoint"]["name"] == case["ckpt"], "checkpoint name")
        for want, got in zip(case["sets"], doc["sets"]):
            check(got["name"] == os.path.basename(files[case["sets"].index(want)]).split(".")[0],
                  "set name %s" % got["name"])
            near += compare_set(case, want, got)
            total += want["result"]["sequences"]
        one = ck(*args, "--threads", "1")
        check(one.stdout == p.stdout, "%s: 1 and 2 threads differ" % case["name"])
    print("# %d sequences against PyTorch, %d differed at a near tie" % (total, near))
    check(total >= 100, "at least 100 sequences compared")
    check(near <= 2, "at most 2 near ties")


def test_text_output_and_help():
    case = GOLDEN["cases"][-1]
    files = data_files(case)
    p = ck("memorize", source_of(case), "--data", *files, "--prompt", "16", "--continuation",
           "16", "--quiet")
    want = case["sets"][0]["result"]
    check("TOKEN_MATCH" in p.stdout and ("%.4f" % want["token_match"]) in p.stdout,
          "text table with token_match %.4f: %s" % (want["token_match"], p.stdout))
    h = ck("memorize", "--help")
    check("--continuation" in h.stdout and "--samples" in h.stdout, "--help")
    top = ck("--help")
    check("memorize" in top.stdout + top.stderr, "memorize in the command list")


def expect_error(args, *words):
    p = ck("memorize", GQA + "@ckpt_000", *args, "--quiet", rc=2)
    lines = p.stderr.strip().split("\n")
    line = lines[0]
    check(p.stdout == "", "nothing on stdout for %s" % (args,))
    # one line; a usage error adds the --help hint
    check(len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Try ")),
          "one line: %r" % lines)
    for w in words:
        check(w in line, "%r names %r" % (line, w))


def test_refusals():
    good = [list(range(40)) for _ in range(3)]
    f = write("past_vocab.jsonl", jsonl(good[:1] + [list(range(39)) + [256]] + good[1:]))
    expect_error(["--data", f, "--prompt", "16", "--continuation", "16"], f, "line 2", "256")
    # in a short (skipped) line, and past the kept width: still data for another tokenizer
    f = write("past_vocab_short.jsonl", jsonl(good + [[1, 2, 999]]))
    expect_error(["--data", f, "--prompt", "16", "--continuation", "16"], f, "line 4", "999")
    f = write("no_ids.jsonl", jsonl(good[:2]) + b'{"text": "words"}\n')
    expect_error(["--data", f, "--prompt", "16", "--continuation", "16"], f, "line 3",
                 "token_ids")
    f = write("not_json.jsonl", jsonl(good[:1]) + b"{token_ids: [1, 2]\n")
    expect_error(["--data", f, "--prompt", "16", "--continuation", "16"], f, "line 2")
    whole = gzip.compress(jsonl(good * 50))
    f = write("cut.jsonl.gz", whole[:len(whole) // 2])
    expect_error(["--data", f, "--prompt", "16", "--continuation", "16"], f)
    z = zstd(write("cutz.jsonl", jsonl(good * 50)))
    data = open(z, "rb").read()
    f = write("cutz2.jsonl.zst", data[:len(data) // 2])
    expect_error(["--data", f, "--prompt", "16", "--continuation", "16"], f)
    ok = write("ok.jsonl", jsonl(good))
    expect_error(["--data", os.path.join(TMP, "missing.jsonl")], "missing.jsonl")
    expect_error(["--data", ok, "--prompt", "100", "--continuation", "29"],
                 "max_position_embeddings")
    expect_error(["--data", ok, "--prompt", "0"], "--prompt")
    expect_error(["--data", ok, "--samples", "x"], "--samples")
    expect_error(["--data", ok, "--precision", "f16"], "--precision")
    expect_error(["--data", ok, "--bogus"], "--bogus")
    expect_error(["--data"], "--data")
    expect_error([], "--data")
    expect_error(["--data", ok, write("ok.jsonl.gz", gzip.compress(jsonl(good)))], "'ok'")


def test_short_sequences_counted():
    f = write("short.jsonl", jsonl([list(range(31)), list(range(20)), []]))
    p = ck("memorize", GQA + "@ckpt_000", "--data", f, "--json", "--quiet")
    if p.returncode == 0:
        s = json.loads(p.stdout)["sets"][0]
        check(s["sequences"] == 0 and s["skipped"] == 3, "all skipped: %s" % s)
        check(s["token_match"] is None and s["full_match"] is None and s["match"] == [],
              "no sequence: null means, no rows: %s" % s)


def test_scan_family():
    """scan --train-data on the two demo checkpoints: /memo/<set>/ rows as PyTorch's."""
    import h5py
    import numpy as np
    demo = [c for c in GOLDEN["cases"] if c["source"] == "demo"]
    files, want = [], {}
    for case in demo:
        built = data_files(case)[0]
        files.append(built)
        want[(case["ckpt"], os.path.basename(built).split(".")[0])] = case["sets"][0]
        want[(case["ckpt"], "ckpt_1920")] = case["sets"][1]
    train = os.path.join(SRC, demo[0]["sets"][1]["file"])
    out = os.path.join(TMP, "memo.h5")
    args = ["scan", DEMO, "-o", out, "--branches", "ckpt_*9[2]*", "--metrics", "memorization",
            "--samples", "24", "--seed", "7", "--quiet", "--threads", "2"]
    for f in files + [train]:
        args += ["--train-data", f]
    if ck(*args).returncode != 0:
        return
    with h5py.File(out, "r") as f:
        names = [n.decode() for n in f["checkpoints"]["name"]]
        check(sorted(names) == ["ckpt_0192", "ckpt_1920"], "scanned %s" % names)
        attr = json.loads(f.attrs["memorization"])
        check(attr["samples"] == 24 and attr["seed"] == 7 and attr["prompt"] == 32,
              "memorization attribute %s" % attr)
        for (ckpt, name), w in want.items():
            row = names.index(ckpt)
            r = w["result"]
            full = f["memo/%s/full" % name][row]
            check(full.dtype == np.uint8, "uint8 flags")
            if min(r["margin"]) < TIE_MARGIN and list(full) != [int(all(m)) for m in r["match"]]:
                continue  # a near tie (test_matches_pytorch counts them)
            check(list(full) == [int(all(m)) for m in r["match"]],
                  "%s %s: full %s" % (ckpt, name, list(full)))
            for m in ("token_match", "full_match", "prefix_match", "sequences"):
                got = float(f["memo/%s/%s" % (name, m)][row])
                check(close(got, r[m], atol=1e-12), "%s %s: %s %s, PyTorch %s" % (ckpt, name, m,
                                                                                  got, r[m]))
    # the inputs are the file's: a resumed scan with another sample is refused
    p = ck(*[a if a != "7" else "8" for a in args], "--resume", rc=2)
    check("memorization" in p.stderr, "resume with another --seed refused: %s" % p.stderr)
    p = ck("scan", DEMO, "-o", os.path.join(TMP, "x.h5"), "--metrics", "memorization", rc=2)
    check("--train-data" in p.stderr, "memorization without --train-data: %s" % p.stderr)
    p = ck("scan", DEMO, "-o", os.path.join(TMP, "x.h5"), "--samples", "3", rc=2)
    check("--train-data" in p.stderr, "--samples without --train-data: %s" % p.stderr)


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    try:
        subprocess.run(["git", "clone", "-q", os.path.join(SRC, "examples", "demo.bundle"), DEMO],
                       check=True)
        fx = [c for c in GOLDEN["cases"] if c["source"] == "fixture"][0]
        subprocess.run([FX, GQA] + fx["fixture"], check=True)
        for t in (test_matches_pytorch, test_text_output_and_help, test_refusals,
                  test_short_sequences_counted, test_scan_family):
            print(t.__name__)
            t()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    finish()
    print("ok")


if __name__ == "__main__":
    main()
