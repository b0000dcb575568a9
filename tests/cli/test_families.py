#!/usr/bin/python3
"""CLI tests of the model families (DESIGN §2, §5) through the built executable:

- `ppl --json` on every family's fixture (tools/family_ref.json's cases: F32 and BF16,
  safetensors and .bin, sharded and not) against the float64 PyTorch reference, with the
  family's BOS default and with --no-bos; `ppl --precision bf16` on every family within
  1e-2 of that reference, and `scan --precision bf16` (GPT-NeoX, OLMo 2) equal to ppl;
- GPT-NeoX's fused query_key_value as the three row-block tensors <name>:q/:k/:v in
  `inspect --json --spectral`, `diff --json` and `scan`'s /tensors, their norms, singular
  values and drift against numpy on the rows sliced out of the stored fused tensor;
  Pythia's buffers listed by inspect, skipped by every metric;
- the rejections, each a one-line error naming the checkpoint and file, exit 2: unknown
  model_type (naming the families), a missing size, a fused qkv that does not split,
  rope_scaling / pretraining_tp / mlp_bias / attention_bias / hidden_act at values not
  implemented, a sliding window that would apply, BOS on without a BOS id;
- what only the forward pass needs (head_dim 5, heads not dividing hidden_size, an unknown
  model_type) stops ppl alone: diff and scan's norms, spectra and drift still run.

usage: test_families.py CKPTSCOPE CKS_FIXTURE [TEST...]
"""
import json
import os
import struct
import sys
import unittest
import zipfile

import h5py
import numpy as np

from cks_testlib import Tool, close, numpy_norms, read_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "tools", "family_ref.json")
TOOL = None


def golden_cases():
    with open(GOLDEN) as f:
        return json.load(f)["cases"]


def write_set(s, path):
    if s["format"] == "jsonl":
        with open(path, "w") as f:
            for doc in s["docs"]:
                f.write(json.dumps({"token_ids": doc}) + "\n")
    else:
        with open(path, "wb") as f:
            f.write(struct.pack("<%d%s" % (len(s["docs"][0]), "H" if s["format"] == "u16" else "I"),
                                *s["docs"][0]))


def edit_config(ckdir, **changes):
    p = os.path.join(ckdir, "config.json")
    with open(p) as f:
        cfg = json.load(f)
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    with open(p, "w") as f:
        json.dump(cfg, f)


def qkv_part(fused, heads, part):
    """Rows of q (0), k (1) or v (2): per head h rows [3hd + part*d, 3hd + part*d + d)."""
    d = fused.shape[0] // (3 * heads)
    return np.concatenate([fused[(3 * h + part) * d:(3 * h + part + 1) * d] for h in range(heads)])


class Families(unittest.TestCase):
    def test_ppl_every_family_against_pytorch(self):
        """Each family case's run 1 (family's BOS default via config.json) and run 2
        (--no-bos, stride = ctx) through `ckptscope ppl`: per-set nll within 1e-5."""
        n = 0
        for case in golden_cases():
            if case["name"].startswith(("protocol-", "cli-")):
                continue
            src = TOOL.make(case["name"], *case["fixture"])
            files = []
            for s in case["sets"]:
                files.append(os.path.join(TOOL.tmp, "%s.%s" % (s["name"], s["format"])))
                write_set(s, files[-1])
            for run in case["runs"][:2]:
                if run["bos"] and case["name"].startswith("olmo-"):
                    continue  # OLMo's config.json has no BOS id: refused (test_rejections)
                args = ["ppl", "%s@%s" % (src, case["ckpt"]), "--tokens", *files, "--ctx",
                        str(run["ctx"]), "--stride", str(run["stride"]), "--threads", "2",
                        "--bos" if run["bos"] else "--no-bos"]
                doc = TOOL.json(*args)
                for got, want in zip(doc["sets"], run["sets"]):
                    self.assertEqual(got["tokens"], want["tokens"], (case["name"], run))
                    self.assertTrue(close(got["nll"], want["nll"], 1e-5),
                                    "%s %s: %r vs torch %r" % (case["name"], run, got["nll"],
                                                               want["nll"]))
                n += 1
        self.assertGreaterEqual(n, 38)  # 21 cases x 2 runs, less F16's one and OLMo's 3 BOS runs

    def test_bf16_every_family(self):
        """`ppl --precision bf16` (DESIGN §5) on each family case's no-BOS run: the same
        tokens as f32, nll within 1e-2 relative of the float64 PyTorch reference (the bound
        of the bf16 CLI tests) and not the f32 value (the products were rounded); `scan
        --precision bf16` on GPT-NeoX and OLMo 2 gives ppl's numbers and records bf16."""
        n = 0
        for case in golden_cases():
            if case["name"].startswith(("protocol-", "cli-")):
                continue
            src = TOOL.make(case["name"] + "-bf16", *case["fixture"])
            files = []
            for s in case["sets"]:
                files.append(os.path.join(TOOL.tmp, "%s-bf16.%s" % (s["name"], s["format"])))
                write_set(s, files[-1])
            run = next((r for r in case["runs"] if not r["bos"]), None)  # stride = ctx
            if run is None:
                continue
            args = ["ppl", "%s@%s" % (src, case["ckpt"]), "--tokens", *files, "--ctx",
                    str(run["ctx"]), "--stride", str(run["stride"]), "--threads", "2", "--no-bos"]
            f32 = TOOL.json(*args)
            bf = TOOL.json(*args, "--precision", "bf16")
            self.assertEqual(bf["precision"], "bf16")
            for got, g32, want in zip(bf["sets"], f32["sets"], run["sets"]):
                self.assertEqual(got["tokens"], want["tokens"], case["name"])
                self.assertNotEqual(got["nll"], g32["nll"], case["name"])
                self.assertTrue(close(got["nll"], want["nll"], 1e-2),
                                "%s bf16: %r vs torch %r" % (case["name"], got["nll"], want["nll"]))
            n += 1
            if case["name"] not in ("gpt_neox-f32-parallel", "olmo2-f32-bin-2shards"):
                continue
            out = os.path.join(TOOL.tmp, case["name"] + "-bf16.h5")
            evals = [a for f in files for a in ("--eval", f)]
            TOOL.run("scan", src, "-o", out, "--metrics", "ppl", *evals, "--ctx", str(run["ctx"]),
                     "--stride", str(run["stride"]), "--no-bos", "--precision", "bf16",
                     "--quiet", "--threads", "2")
            with h5py.File(out) as h:
                self.assertEqual(json.loads(h.attrs["eval"])["precision"], "bf16")
                names = [x.decode() for x in h["checkpoints"]["name"]]
                i = names.index(case["ckpt"])
                for got in bf["sets"]:
                    self.assertTrue(close(h["eval/%s/nll" % got["name"]][i], got["nll"], 1e-9),
                                    "%s scan bf16 %s" % (case["name"], got["name"]))
        self.assertGreaterEqual(n, 20)  # every case with a no-BOS run

    def neox(self, name, *extra):
        return TOOL.make(name, "--family", "gpt_neox", "--layout", "folder", "--checkpoints",
                         "2", "--std", "0.3", *extra)

    def test_fused_qkv_views_in_inspect_diff_scan(self):
        src = self.neox("neox-views")
        heads = 4
        st = []
        for k in range(2):
            with open(os.path.join(src, "ckpt_%03d" % k, "model.safetensors"), "rb") as f:
                st.append(read_safetensors(f.read()))
        base = "gpt_neox.layers.1.attention.query_key_value"
        doc = TOOL.json("inspect", src + "@ckpt_000", "--spectral", "--threads", "2")
        t = {x["name"]: x for x in doc["tensors"]}
        self.assertNotIn(base + ".weight", t)
        for part, c in enumerate("qkv"):
            w = qkv_part(st[0][base + ".weight"], heads, part)
            v = t["%s.weight:%s" % (base, c)]
            self.assertEqual((v["kind"], v["layer"], v["shape"]), (c, 1, [64, 64]))
            want = numpy_norms(w)
            for key in ("fro", "rms", "mean", "std", "absmax"):
                self.assertTrue(close(v["norms"][key], want[key], 1e-9, 1e-12), (c, key))
            sv = np.linalg.svd(w, compute_uv=False)
            self.assertTrue(close(v["spectral"]["sigma_max"], float(sv[0]), 1e-9), c)
            self.assertTrue(close(v["spectral"]["stable_rank"],
                                  float((sv ** 2).sum() / sv[0] ** 2), 1e-9), c)
            b = t["%s.bias:%s" % (base, c)]
            self.assertEqual(b["kind"], c + "_bias")
            bw = qkv_part(st[0][base + ".bias"], heads, part)
            self.assertTrue(close(b["norms"]["fro"], float(np.sqrt((bw ** 2).sum())), 1e-9))
        self.assertEqual(t["gpt_neox.layers.1.attention.dense.bias"]["kind"], "o_bias")
        self.assertEqual(t["gpt_neox.layers.1.mlp.dense_h_to_4h.weight"]["kind"], "up")
        self.assertEqual(t["embed_out.weight"]["kind"], "lm_head")
        # diff: the views of two checkpoints
        doc = TOOL.json("diff", src + "@ckpt_000", src + "@ckpt_001")
        d = {x["name"]: x for x in doc["tensors"]}
        for part, c in enumerate("qkv"):
            a = qkv_part(st[0][base + ".weight"], heads, part)
            b = qkv_part(st[1][base + ".weight"], heads, part)
            want = np.linalg.norm(b - a) / np.linalg.norm(a)
            self.assertTrue(close(d["%s.weight:%s" % (base, c)]["rel_fro"], float(want), 1e-9))
        # scan: the views are the run file's tensors, with their values
        out = os.path.join(TOOL.tmp, "neox.h5")
        TOOL.run("scan", src, "-o", out, "--metrics", "norms,drift", "--quiet", "--threads", "2")
        with h5py.File(out, "r") as f:
            names = [n.decode() for n in f["tensors"]["name"]]
            kinds = [k.decode() for k in f["tensors"]["kind"]]
            i = names.index(base + ".weight:k")
            self.assertEqual(kinds[i], "k")
            w = qkv_part(st[1][base + ".weight"], heads, 1)
            row = [r for r, n in enumerate(f["checkpoints"]["name"]) if n == b"ckpt_001"][0]
            self.assertTrue(close(f["norms/fro"][row, i], float(np.linalg.norm(w)), 1e-9))

    def test_forward_checks_only_where_a_forward_pass_runs(self):
        """A config only the forward pass cannot use (issue 14: head_dim 5; heads that do
        not divide hidden_size; an unknown model_type) leaves diff and scan's norms,
        spectra and drift working, with values equal to numpy's; ppl refuses it by name."""
        tokens = os.path.join(TOOL.tmp, "fwd-only.u16")
        with open(tokens, "wb") as f:
            f.write(struct.pack("<40H", *range(40)))
        q = "model.layers.1.self_attn.q_proj.weight"
        for i, (change, needle) in enumerate([({"head_dim": 5}, "head_dim = 5"),
                                              ({"num_attention_heads": 3}, "does not divide"),
                                              ({"model_type": "bert"}, "model_type \"bert\"")]):
            src = TOOL.make("fwd-only-%d" % i, "--layout", "folder", "--checkpoints", "2",
                            "--std", "0.3")
            st = []
            for k in range(2):
                ck = os.path.join(src, "ckpt_%03d" % k)
                edit_config(ck, **change)
                with open(os.path.join(ck, "model.safetensors"), "rb") as f:
                    st.append(read_safetensors(f.read()))
            a, b = st[0][q].astype(np.float64), st[1][q].astype(np.float64)
            d = {x["name"]: x for x in TOOL.json("diff", src + "@ckpt_000", src + "@ckpt_001",
                                                 "--json")["tensors"]}
            self.assertTrue(close(d[q]["rel_fro"], np.linalg.norm(b - a) / np.linalg.norm(a),
                                  1e-9), change)
            out = os.path.join(TOOL.tmp, "fwd-only-%d.h5" % i)
            TOOL.run("scan", src, "-o", out, "--metrics", "norms,spectral,drift", "--quiet",
                     "--threads", "2")
            with h5py.File(out, "r") as f:
                names = [n.decode() for n in f["tensors"]["name"]]
                j = names.index(q)
                self.assertTrue(close(f["norms/fro"][1, j], float(np.linalg.norm(b)), 1e-9))
                smax = float(np.linalg.svd(b, compute_uv=False)[0])
                self.assertTrue(close(f["spectral/sigma_max"][1, j], smax, 1e-6), change)
                self.assertTrue(close(f["drift/ref/rel_fro"][1, j],
                                      np.linalg.norm(b - a) / np.linalg.norm(a), 1e-9))
            self.expect_ppl_error(src + "@ckpt_000", tokens, "ckpt_000", "config.json", needle)

    def test_pythia_buffers_listed_and_skipped(self):
        src = self.neox("neox-buffers", "--bin", "--shards", "2", "--buffers", "--dtype", "bf16")
        doc = TOOL.json("inspect", src + "@ckpt_000")
        buf = [x for x in doc["tensors"] if x.get("buffer")]
        self.assertEqual(sorted({x["name"].split(".", 3)[3] for x in buf}),
                         ["attention.bias", "attention.masked_bias",
                          "attention.rotary_emb.inv_freq"])
        for x in buf:
            self.assertEqual(x["kind"], "other")
            self.assertIsNone(x["norms"])
        # the .bin holds them (torch's zip entries), and scan leaves them out
        with zipfile.ZipFile(os.path.join(src, "ckpt_000", "pytorch_model-00001-of-00002.bin")) as z:
            self.assertTrue(any(n.endswith("data.pkl") for n in z.namelist()))
        out = os.path.join(TOOL.tmp, "buffers.h5")
        TOOL.run("scan", src, "-o", out, "--metrics", "norms", "--quiet")
        with h5py.File(out, "r") as f:
            names = [n.decode() for n in f["tensors"]["name"]]
        self.assertFalse([n for n in names if "masked_bias" in n or "inv_freq" in n])
        self.assertIn("gpt_neox.layers.0.attention.query_key_value.weight:v", names)

    def expect_ppl_error(self, spec, tokens, *needles, extra=()):
        p = TOOL.run("ppl", spec, "--tokens", tokens, "--ctx", "16", *extra, expect=2)
        self.assertEqual(p.stdout, "")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, p.stderr)
        for n in needles:
            self.assertIn(n, p.stderr)

    def test_rejections(self):
        tokens = os.path.join(TOOL.tmp, "rej.u16")
        with open(tokens, "wb") as f:
            f.write(struct.pack("<40H", *range(40)))
        cases = [
            ("llama", {"model_type": "bert"}, ["model_type \"bert\"",
                                               "llama, mistral, qwen2, gpt_neox, olmo, olmo2"]),
            ("llama", {"model_type": None}, ["no model_type"]),
            ("llama", {"intermediate_size": None}, ["\"intermediate_size\" is missing"]),
            ("llama", {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}},
             ["rope_scaling of type \"yarn\""]),
            ("llama", {"pretraining_tp": 2}, ["pretraining_tp = 2"]),
            ("llama", {"mlp_bias": True}, ["mlp_bias = true"]),
            ("llama", {"attention_bias": True}, ["attention_bias = true"]),
            ("llama", {"hidden_act": "gelu"}, ["hidden_act = \"gelu\""]),
            ("llama", {"head_dim": 5}, ["head_dim = 5"]),
            ("gpt_neox", {"hidden_act": "gelu_fast"}, ["gelu_fast"]),
            ("qwen2", {"use_sliding_window": True, "max_window_layers": 1, "sliding_window": 8},
             ["sliding_window = 8", "ctx of 8 or less"]),
            ("mistral", {"sliding_window": 8}, ["sliding_window = 8"]),
        ]
        for fam, change, needles in cases:
            src = TOOL.make("rej-%s-%d" % (fam, cases.index((fam, change, needles))), "--family",
                            fam, "--layout", "folder", "--checkpoints", "1")
            edit_config(os.path.join(src, "ckpt_000"), **change)
            self.expect_ppl_error(src + "@ckpt_000", tokens, "ckpt_000", *needles)
            if "sliding_window" not in change:
                self.assertIn("config.json", TOOL.run("ppl", src + "@ckpt_000", "--tokens",
                                                      tokens, expect=2).stderr)
        # BOS on without an id (OLMo: bos_token_id null, no tokenizer)
        src = TOOL.make("rej-olmo-bos", "--family", "olmo", "--layout", "folder",
                        "--checkpoints", "1")
        self.expect_ppl_error(src + "@ckpt_000", tokens, "--no-bos", "ckpt_000", extra=["--bos"])
        TOOL.run("ppl", src + "@ckpt_000", "--tokens", tokens, "--ctx", "16")  # off by default
        # a fused qkv whose rows are not heads x 3 x head size: refused by every command
        src = self.neox("rej-neox")
        edit_config(os.path.join(src, "ckpt_000"), num_attention_heads=5)
        for args in (["inspect", src + "@ckpt_000"], ["diff", src + "@ckpt_001", src + "@ckpt_000"]):
            p = TOOL.run(*args, expect=2)
            self.assertIn("query_key_value", p.stderr)
            self.assertIn("num_attention_heads (5) x 3 x head size", p.stderr)
            self.assertIn("ckpt_000", p.stderr)
        # (ppl refuses heads that do not divide hidden_size first; a hidden_size the fused
        # rows disagree with reaches the split)
        edit_config(os.path.join(src, "ckpt_000"), num_attention_heads=4, hidden_size=32)
        p = TOOL.run("ppl", src + "@ckpt_000", "--tokens", tokens, expect=2)
        self.assertIn("has 192 rows, not num_attention_heads (4) x 3 x head size", p.stderr)
        self.assertIn("ckpt_000", p.stderr)


def main():
    global TOOL
    TOOL = Tool(sys.argv[1], sys.argv[2])
    names = sys.argv[3:]
    suite = unittest.TestSuite()
    loader = unittest.defaultTestLoader
    if names:
        for n in names:
            suite.addTest(Families(n))
    else:
        suite = loader.loadTestsFromTestCase(Families)
    ok = unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
