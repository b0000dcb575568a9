#!/usr/bin/python3
"""The outside check of the forward pass on models other people trained (DESIGN §5,
../shared/data/real-models): stories260K and llama2xs500 (llama2.c format, GQA with 8
heads over 4 kv heads, classifier tied to the embedding) are converted to the Hugging
Face layout by tools/llama2c_to_hf.py into a temporary folder, each of the four held-out
TinyStories stories is tokenised by `ckptscope tokenize` (the ids must equal
SentencePiece's, stored in the golden file) and scored as one document by `ckptscope
ppl` with its defaults (BOS at each story's start, ctx = max_position_embeddings = the
model's seq_len, stride ctx/2). The nll must equal the float64 PyTorch computation of
tools/llama2c_ref.py, which reads the llama2.c files itself with llama2.c's interleaved
RoPE (golden file tools/llama2c_ref.json), within 1e-5 relative, and be the published
figures: about 1.19 nats per token for stories260K and 1.9 for llama2xs500.

usage: test_real_models.py CKPTSCOPE DATA_DIR
Exit 77 (a ctest skip) when DATA_DIR is missing outside CI; in CI (CI=true) that fails.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
PY = sys.executable


def run(*args):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("FAIL: %s: exit %d\n%s" % (" ".join(map(str, args)), p.returncode, p.stderr))
    return p.stdout


def main():
    ckptscope, data = sys.argv[1], sys.argv[2]
    if not os.path.exists(os.path.join(data, "stories260K.bin")):
        print("%s: the real models are missing" % data)
        sys.exit(1 if os.environ.get("CI") == "true" else 77)
    with open(os.path.join(ROOT, "tools", "llama2c_ref.json")) as f:
        golden = json.load(f)
    with open(os.path.join(data, "tinystories_valid_4.txt"), encoding="utf-8") as f:
        stories = [s.strip() for s in f.read().split("<|endoftext|>") if s.strip()]
    published = {"stories260K": 1.19, "llama2xs500": 1.91}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="cks-real-") as tmp:
        for m in golden["models"]:
            src = os.path.join(tmp, m["name"])
            run(PY, os.path.join(ROOT, "tools", "llama2c_to_hf.py"),
                os.path.join(data, m["name"] + ".bin"), "--tokenizer",
                os.path.join(data, "tok512.model"), os.path.join(src, "ckpt_000"))
            spec = src + "@ckpt_000"
            docs = os.path.join(tmp, m["name"] + ".jsonl")
            with open(docs, "w") as f:
                for i, s in enumerate(stories):
                    story = os.path.join(tmp, "story%d.txt" % i)
                    with open(story, "w", encoding="utf-8") as g:
                        g.write(s)
                    ids = json.loads(run(ckptscope, "tokenize", spec, "--text", story,
                                         "--json"))["ids"]
                    if ids != golden["stories"][i]:
                        print("FAIL: story %d: ckptscope's ids differ from SentencePiece's" % i)
                        failures += 1
                    f.write(json.dumps({"token_ids": ids}) + "\n")
            doc = json.loads(run(ckptscope, "ppl", spec, "--tokens", docs, "--json", "--threads",
                                 "2", "--quiet"))
            s = doc["sets"][0]
            ok = (doc["ctx"] == m["ctx"] and doc["stride"] == m["stride"] and
                  s["tokens"] == m["tokens"] and abs(s["nll"] - m["nll"]) <= 1e-5 * m["nll"] and
                  abs(s["nll"] - published[m["name"]]) < 0.01)
            print("%s %s: nll %.6f over %d tokens (ctx %d, stride %d); float64 PyTorch %.6f; "
                  "published about %.2f" % ("ok" if ok else "FAIL:", m["name"], s["nll"],
                                            s["tokens"], doc["ctx"], doc["stride"], m["nll"],
                                            published[m["name"]]))
            failures += not ok
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
