#!/usr/bin/python3
"""CLI test of `ckptscope ppl`: the JSON and table outputs over fixture checkpoints, the
numbers against the float64 PyTorch reference tools/family_ref.py (its golden file
tools/family_ref.json, cases cli-ckpt_001 and cli-ckpt_000: the same fixture and token
sets), and every rejection (exit status 2 with a one-line message naming the
file/checkpoint and what was wrong).

usage: test_ppl.py CKPTSCOPE CKS_FIXTURE
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "tools", "family_ref.json")

from cks_testlib import check, finish  # noqa: E402


def run(*args):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def golden_case(name):
    with open(GOLDEN) as f:
        return next(c for c in json.load(f)["cases"] if c["name"] == name)


def write_set(s, path):
    """A golden set's token file, as tools/family_ref.py wrote it."""
    if s["format"] == "jsonl":
        with open(path, "w") as f:
            for doc in s["docs"]:
                f.write(json.dumps({"token_ids": doc}) + "\n")
    else:
        with open(path, "wb") as f:
            f.write(struct.pack("<%d%s" % (len(s["docs"][0]), "H" if s["format"] == "u16" else "I"),
                                *s["docs"][0]))


def reference(case):
    """The golden results of a case's one run, by set name."""
    return {s["name"]: s for s in case["runs"][0]["sets"]}


def expect_error(ckptscope, args, *needles):
    rc, out, err = run(ckptscope, "ppl", *args)
    check(rc == 2, "exit 2 for %s (got %d: %s)" % (args, rc, err.strip()))
    check(out == "", "nothing on stdout for %s" % (args,))
    lines = [l for l in err.splitlines() if l.strip()]
    check(len(lines) >= 1 and lines[0].startswith("ckptscope ppl"),
          "one error line for %s: %r" % (args, err))
    for n in needles:
        check(n in err, "%r in the error for %s: %r" % (n, args, err))


def main():
    ckptscope, fixture = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="cks-ppl-cli-")
    try:
        case1, case0 = golden_case("cli-ckpt_001"), golden_case("cli-ckpt_000")
        src = os.path.join(tmp, "src")
        subprocess.run([fixture, src] + case1["fixture"], check=True)
        val = os.path.join(tmp, "val.jsonl")
        raw = os.path.join(tmp, "long.u16")
        raw32 = os.path.join(tmp, "other.bin")
        write_set(case1["sets"][0], val)
        write_set(case1["sets"][1], raw)
        write_set(case0["sets"][0], raw32)

        # JSON output, defaults: ctx = max_position_embeddings (128), stride = ctx/2, BOS on
        rc, out, err = run(ckptscope, "ppl", src + "@ckpt_001", "--tokens", val, raw, "--json",
                           "--threads", "2")
        check(rc == 0, "ppl --json exits 0 (%s)" % err)
        doc = json.loads(out)
        check(doc["ctx"] == 128 and doc["stride"] == 64, "default ctx/stride: %s" % doc)
        check(doc["checkpoint"]["name"] == "ckpt_001", "checkpoint name")
        check([s["name"] for s in doc["sets"]] == ["val", "long"], "set names from files")
        for s in doc["sets"]:
            check(s["bytes"] is None and s["bpb"] is None, "bytes/bpb null for tokens")
            check(abs(s["ppl"] - math.exp(s["nll"])) <= 1e-9 * s["ppl"], "ppl = exp(nll)")
        ref = reference(case1)  # ctx 128, stride 64, BOS: the defaults
        for s in doc["sets"]:
            r = ref[s["name"]]
            check(s["tokens"] == r["tokens"], "tokens of %s: %d vs %d" %
                  (s["name"], s["tokens"], r["tokens"]))
            check(abs(s["nll"] - r["nll"]) <= 1e-5 * abs(r["nll"]),
                  "nll of %s: %.9g vs torch %.9g" % (s["name"], s["nll"], r["nll"]))
        # no BOS, stride = ctx, a forced ctx past max_position_embeddings
        rc, out, err = run(ckptscope, "ppl", src + "@ckpt_000", "--tokens", raw32,
                           "--token-format", "u32", "--no-bos", "--ctx", "160", "--stride",
                           "160", "--force", "--json", "--threads", "1")
        check(rc == 0, "forced ctx exits 0 (%s)" % err)
        s = json.loads(out)["sets"][0]
        r = reference(case0)["other"]
        check(s["tokens"] == r["tokens"] == 89, "tokens no-bos: %d" % s["tokens"])
        check(abs(s["nll"] - r["nll"]) <= 1e-5 * abs(r["nll"]), "nll no-bos forced ctx")

        # --precision (DESIGN §5): f32 by default; bf16 rounds the weight products'
        # operands, so it is near f32 but not equal; the emulated bf16 kernel (what a CPU
        # without AVX512_BF16 runs, forced by CKS_BF16_KERNEL) differs from the default
        # kernel only in the order of its f32 sums
        check(doc["precision"] == "f32", "precision f32 by default: %s" % doc.get("precision"))
        bf = {}
        for kern in ("", "emulated"):
            env = dict(os.environ, CKS_BF16_KERNEL=kern) if kern else None
            p = subprocess.run([ckptscope, "ppl", src + "@ckpt_001", "--tokens", val, raw,
                                "--json", "--threads", "2", "--precision", "bf16"],
                               capture_output=True, text=True, env=env)
            check(p.returncode == 0, "ppl --precision bf16 exits 0 (%s)" % p.stderr)
            bf[kern] = json.loads(p.stdout)
            check(bf[kern]["precision"] == "bf16", "JSON records bf16")
        for s32, s16, se in zip(doc["sets"], bf[""]["sets"], bf["emulated"]["sets"]):
            d = abs(s16["nll"] - s32["nll"]) / s32["nll"]
            check(s16["tokens"] == s32["tokens"], "bf16 scores the same tokens")
            check(0 < d < 1e-2, "bf16 nll of %s within 1e-2 of f32 and not equal: %.3g" %
                  (s32["name"], d))
            check(abs(se["nll"] - s16["nll"]) <= 1e-5 * s16["nll"],
                  "emulated bf16 kernel: %.9g vs %.9g" % (se["nll"], s16["nll"]))
            print("  %s: bf16 vs f32 |dnll|/nll = %.2e" % (s32["name"], d))
        rc, out, err = run(ckptscope, "ppl", src + "@ckpt_000", "--tokens", raw, "--ctx", "32",
                           "--quiet", "--precision", "bf16")
        check(rc == 0 and "precision bf16" in out, "table names the precision: %r" % out)
        rc, out, err = run(ckptscope, "ppl", "--help")
        check(rc == 0 and "--precision" in out and "bf16" in out, "--help documents --precision")

        # the table
        rc, out, err = run(ckptscope, "ppl", src + "@ckpt_000", "--tokens", raw, "--ctx", "32",
                           "--quiet")
        check(rc == 0 and "long" in out and "ctx 32, stride 16" in out and "NLL" in out,
              "table output: %r" % out)

        # rejections
        bad = os.path.join(tmp, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"token_ids": [1, 2, 3]}\n{"token_ids": [4, 256]}\n')
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", bad], bad, "line 2",
                     "token_ids[1]", "256", "ckpt_000")
        bad16 = os.path.join(tmp, "bad.u16")
        with open(bad16, "wb") as f:
            f.write(struct.pack("<3H", 1, 2, 300))
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", bad16], bad16, "token 2", "300")
        empty = os.path.join(tmp, "empty.jsonl")
        open(empty, "w").close()
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", empty], empty, "nothing to score")
        ones = os.path.join(tmp, "ones.jsonl")
        with open(ones, "w") as f:
            f.write('{"token_ids": [7]}\n{"token_ids": []}\n')
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", ones, "--no-bos"], ones,
                     "nothing to score")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", raw, "--ctx", "129"],
                     "max_position_embeddings", "ckpt_000")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", raw, "--ctx", "16", "--stride",
                                 "17"], "stride")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", raw, "--ctx", "1"], "ctx")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", raw, "--ctx", "x"], "--ctx")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", raw, "--precision", "fp16"],
                     "--precision must be f32 or bf16")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", raw, "--precision"],
                     "--precision must be f32 or bf16")
        expect_error(ckptscope, [src + "@ckpt_000"], "--tokens")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens"], "FILE")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", raw, "--text", raw], "not both")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", os.path.join(tmp, "nope.u16")],
                     "nope.u16")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", raw32], raw32, ".jsonl")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", raw, raw], "long", "rename")
        expect_error(ckptscope, [src + "@ckpt_009", "--tokens", raw], "ckpt_009")
        odd = os.path.join(tmp, "odd.u16")
        with open(odd, "wb") as f:
            f.write(b"\x01\x00\x02")
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", odd], odd, "3 bytes")
        notjson = os.path.join(tmp, "notjson.jsonl")
        with open(notjson, "w") as f:
            f.write('{"token_ids": [1]}\n\n{"token_ids": [1,}\n')
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", notjson], notjson, "line 3")
        noids = os.path.join(tmp, "noids.jsonl")
        with open(noids, "w") as f:
            f.write('{"text": "hello"}\n')
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", noids], noids, "token_ids")
        negid = os.path.join(tmp, "neg.jsonl")
        with open(negid, "w") as f:
            f.write('{"token_ids": [1, -4]}\n')
        expect_error(ckptscope, [src + "@ckpt_000", "--tokens", negid], negid, "token_ids[1]")
        # a git source whose weights are a missing LFS object: the fetch command is named
        gsrc = os.path.join(tmp, "git")
        subprocess.run([fixture, gsrc, "--layout", "git", "--lfs", "--lfs-missing-from", "1",
                        "--checkpoints", "2"], check=True)
        rc, out, err = run(ckptscope, "ppl", gsrc + "@ckpt_000", "--tokens", raw, "--ctx", "32",
                           "--json")
        check(rc == 0 and json.loads(out)["checkpoint"]["commit"], "git source evaluates")
        expect_error(ckptscope, [gsrc + "@ckpt_001", "--tokens", raw], "lfs fetch", "ckpt_001")
        # the same weights in three safetensors shards (hf-cache layout): the same numbers
        hsrc = os.path.join(tmp, "hf")
        subprocess.run([fixture, hsrc, "--layout", "hf", "--shards", "3", "--checkpoints", "2",
                        "--std", "0.3", "--eps", "1e-3", "--rope-theta", "50000", "--kv-heads",
                        "2"], check=True)
        rc, out, err = run(ckptscope, "ppl", hsrc + "@ckpt_001", "--tokens", val, raw, "--json",
                           "--threads", "2")
        check(rc == 0, "sharded hf-cache source evaluates (%s)" % err)
        if rc == 0:
            for a, b in zip(json.loads(out)["sets"], doc["sets"]):
                check(a["nll"] == b["nll"] and a["tokens"] == b["tokens"],
                      "shards give the same nll: %s vs %s" % (a, b))
        # a config this forward pass does not implement
        scaled = os.path.join(tmp, "scaled")
        shutil.copytree(os.path.join(src, "ckpt_000"), os.path.join(scaled, "ckpt_000"))
        cfgp = os.path.join(scaled, "ckpt_000", "config.json")
        with open(cfgp) as f:
            cfg = json.load(f)
        cfg["rope_scaling"] = {"type": "linear", "factor": 2.0}
        with open(cfgp, "w") as f:
            json.dump(cfg, f)
        expect_error(ckptscope, [scaled + "@ckpt_000", "--tokens", raw], "rope_scaling",
                     "config.json")
        # a model whose tensors disagree with its config
        cfg.pop("rope_scaling")
        cfg["intermediate_size"] = 96
        with open(cfgp, "w") as f:
            json.dump(cfg, f)
        expect_error(ckptscope, [scaled + "@ckpt_000", "--tokens", raw], "gate_proj", "[96x64]")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish()
    print("ok")


if __name__ == "__main__":
    main()
