#!/usr/bin/python3
"""`ckptscope ppl` at --precision f32 and bf16 beside llama.cpp's `llama-perplexity` on the
same weights (GGUF F16, bench/make_gguf.py) and the same text, in one run: whole-process
wall time, tokens per second and peak RSS, at each thread count. It measures; it never
passes or fails.

The three programs run in turn within each repetition (so they share the machine's load);
the best of --reps counts. Tokens per second = the text's tokens (ckptscope's count of
scored tokens + 1 for the first) / wall seconds of the whole process (start-up, reading
the weights, tokenising and evaluating). Both evaluate the text in windows of --ctx tokens
(ckptscope --stride ctx; llama-perplexity -c ctx -b ctx, which scores the second half of
each window but runs all of it). llama.cpp is not part of ckptscope: build llama-perplexity
outside the repository (README, "Benchmarks").

    /usr/bin/python3 bench/bench_vs_llamacpp.py --ckptscope build-release/analyze/ckptscope \\
        --llama-perplexity LLAMA_CPP/build/bin/llama-perplexity --model CKPT_DIR \\
        --gguf MODEL-f16.gguf --text FILE [--threads 1,2] [--reps 3] [--ctx 512]
"""
import argparse
import json
import os
import re
import subprocess
import time


def timed(cmd, env):
    """(wall seconds, peak RSS MiB, stdout, stderr) of one process; RSS from wait4."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status != 0:
        raise SystemExit("bench_vs_llamacpp: %s failed:\n%s" % (cmd[0], err.decode()[-2000:]))
    return wall, ru.ru_maxrss / 1024.0, out.decode(), err.decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckptscope", required=True)
    ap.add_argument("--llama-perplexity", required=True)
    ap.add_argument("--model", required=True, help="checkpoint folder with tokenizer.model")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ctx", type=int, default=512)
    a = ap.parse_args()
    env = dict(os.environ)
    size = os.path.getsize(a.text)
    print("ckptscope ppl vs llama.cpp llama-perplexity: %s (%d bytes), ctx %d; %s / %s; "
          "load %.2f" % (a.text, size, a.ctx, a.model, a.gguf, os.getloadavg()[0]))
    print("%-8s %7s %9s %10s %9s %12s %14s" % ("program", "threads", "tokens", "wall s",
                                               "tok/s", "peak RSS MiB", "llama.cpp / it"))
    for th in [int(t) for t in a.threads.split(",")]:
        best = {}
        ntok = None
        loads = []
        for _ in range(a.reps):
            for prec in ("f32", "bf16"):
                cmd = [a.ckptscope, "ppl", a.model, "--text", a.text, "--ctx", str(a.ctx),
                       "--stride", str(a.ctx), "--threads", str(th), "--precision", prec,
                       "--quiet", "--json"]
                wall, rss, out, _ = timed(cmd, env)
                doc = json.loads(out)
                ntok = doc["sets"][0]["tokens"] + 1
                key = "ckptscope " + prec
                if key not in best or wall < best[key][0]:
                    best[key] = (wall, rss, doc["sets"][0]["nll"])
            cmd = [a.llama_perplexity, "-m", a.gguf, "-f", a.text, "-c", str(a.ctx), "-b",
                   str(a.ctx), "-t", str(th), "-tb", str(th)]
            wall, rss, out, err = timed(cmd, env)
            m = re.search(r"Final estimate: PPL = ([0-9.]+)", out + err)
            if "llama.cpp" not in best or wall < best["llama.cpp"][0]:
                best["llama.cpp"] = (wall, rss, float(m.group(1)) if m else float("nan"))
            loads.append(os.getloadavg()[0])
        ref = best["llama.cpp"][0]
        for key in ("ckptscope f32", "ckptscope bf16", "llama.cpp"):
            wall, rss, _ = best[key]
            print("%-15s %2d %9d %10.2f %9.1f %12.1f %14.2f" % (key, th, ntok, wall, ntok / wall,
                                                               rss, ref / wall))
        print("   nll: f32 %.6f, bf16 %.6f (|Δ|/nll %.2e); llama.cpp PPL %.4f; load during: %s"
              % (best["ckptscope f32"][2], best["ckptscope bf16"][2],
                 abs(best["ckptscope bf16"][2] - best["ckptscope f32"][2]) /
                 best["ckptscope f32"][2], best["llama.cpp"][2],
                 " ".join("%.2f" % x for x in loads)))


if __name__ == "__main__":
    main()
