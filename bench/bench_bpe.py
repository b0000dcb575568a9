#!/usr/bin/python3
"""Byte-level BPE throughput: ckptscope's tokenizer beside Hugging Face's Rust library (npm
package `tokenizers`) and `tiktoken` (npm, Rust compiled to WebAssembly), one thread each,
on the same few MiB of mixed text (bench/make_bpe_text.py), measured in the same run.

    /usr/bin/python3 bench/bench_bpe.py [--bench BENCH_TOKENIZER] [--npm-dir DIR] [--mib 4]

BENCH_TOKENIZER defaults to build-release/bench/bench_tokenizer (cmake --preset release).
The npm packages are those tools/make_bpe_refs.py pins, installed into DIR (default
build/npm-refs) when missing. Each figure is the best of 5 encodings of the whole text as one
string, after loading (load time apart). The token counts are printed too: the three must
agree (tiktoken only has GPT-2). Report `uptime` with the figures.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_bpe_refs  # noqa: E402  (npm install and the node helper)

TOKENIZERS = {"gpt2": "../shared/data/tokenizers/gpt2/tokenizer.json",
              "gpt-neox-20b": "../shared/data/tokenizers/gpt-neox-20b/tokenizer.json",
              "qwen2_style": "tests/data/bpe/qwen2_style.tokenizer.json"}


def arg(name, default):
    a = sys.argv[1:]
    return a[a.index(name) + 1] if name in a else default


def main():
    bench = arg("--bench", os.path.join(ROOT, "build-release", "bench", "bench_tokenizer"))
    npm_dir = os.path.abspath(arg("--npm-dir", os.path.join(ROOT, "build", "npm-refs")))
    mib = float(arg("--mib", "4"))
    paths = {k: os.path.normpath(os.path.join(ROOT, v)) for k, v in TOKENIZERS.items()}
    for p in paths.values():
        if not os.path.exists(p):
            sys.exit("bench_bpe: %s is absent" % p)
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "mixed.txt")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_bpe_text.py"), text,
                        str(mib)], check=True)
        size = os.path.getsize(text)
        p = subprocess.run([bench, "--text", text] + list(paths.values()), capture_output=True,
                           text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        if p.returncode != 0:
            sys.exit("bench_bpe: %s failed: %s" % (bench, p.stderr))
        ours = {}
        for line in p.stdout.splitlines():
            if line.startswith("RESULT\t"):
                _, path, best, ntok, load, cpu = line.split("\t")
                ours[path] = (float(best), int(ntok), float(load), float(cpu))
        mods = make_bpe_refs.npm_modules(npm_dir)
        ans = make_bpe_refs.node_refs(mods, {"files": paths, "texts": [],
                                             "bench": {"text": text, "repeat": 5}})
        versions = make_bpe_refs.npm_versions(mods)
    print("byte-level BPE encode, %.2f MiB of mixed text (bench/make_bpe_text.py), one thread, "
          "best of 5" % (size / 2 ** 20))
    print("load: %s" % open("/proc/loadavg").read().strip())
    print()
    print("MB/s of wall-clock time (CPU time: the process's own, which other load does not "
          "inflate); ratio = their time / ckptscope's")
    print("%-13s %-26s %9s %7s %9s %7s %9s" % ("tokenizer", "implementation", "MB/s wall", "ratio",
                                              "MB/s CPU", "ratio", "tokens"))
    for name, path in paths.items():
        best, ntok, load, cpu = ours[path]
        rows = [("ckptscope", best, cpu, ntok),
                ("tokenizers %s (Rust)" % versions["tokenizers"], ans["bench"][name],
                 ans["bench"]["cpu"][name], ans["bench"]["tokens"][name])]
        if name == "gpt2":
            rows.append(("tiktoken %s (wasm)" % versions["tiktoken"],
                         ans["bench"]["tiktoken_gpt2"], ans["bench"]["cpu"]["tiktoken_gpt2"],
                         ans["bench"]["tokens"]["tiktoken_gpt2"]))
        for impl, secs, csecs, n in rows:
            us = impl == "ckptscope"
            print("%-13s %-26s %9.2f %7s %9.2f %7s %9d" % (
                name, impl, size / secs / 1e6, "-" if us else "%.1fx" % (secs / best),
                size / csecs / 1e6, "-" if us else "%.1fx" % (csecs / cpu), n))
        print("%-13s ckptscope load %.0f ms" % ("", load * 1e3))


if __name__ == "__main__":
    main()
