"""Held-out data as corpora ship it, through `ckptscope ppl` on the real demo run
(examples/): the three held-out texts as JSONL lines with a "text" field (the layout of
the Pile), plain, gzip and zstd, give the losses PyTorch computed for the files
(examples/reference_losses.json, tools/train_tiny.py): one set pooled over the three
documents, or one set per `meta.pile_set_name` with --split-by-meta; the same documents
as `token_ids` JSONL give the same numbers; and every refusal (truncated and corrupt
compressed files, trailing data, a decompression bomb, lines without the field asked
for, --split-by-meta without meta, text that is not UTF-8, a line over 256 MiB) exits 2
with one line naming the file and the line.

usage: test_heldout_formats.py CKPTSCOPE SOURCE_DIR"""
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

CK, SRC = sys.argv[1], sys.argv[2]
EX = os.path.join(SRC, "examples")
REF = json.load(open(os.path.join(EX, "reference_losses.json")))
LAST = REF["checkpoints"][-1]
TMP = tempfile.mkdtemp(prefix="cks-heldout-")
RUN = os.path.join(TMP, "run")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cks_testlib import check, finish  # noqa: E402

SUBSET = {"jargon_heldout": "Jargon", "apache_license": "Pile-CC", "libgit2_log_c": "Github"}


def ck(*args, rc=0):
    p = subprocess.run([CK, *args], capture_output=True, text=True)
    check(p.returncode == rc, "exit %d for %s (got %d: %s)" % (rc, args[-3:], p.returncode,
                                                               p.stderr.strip()[-400:]))
    return p


def ppl(*args):
    p = ck("ppl", RUN + "@" + LAST["name"], *args, "--json", "--quiet")
    return json.loads(p.stdout)["sets"] if p.returncode == 0 else []


def texts():
    return [(s["name"], open(os.path.join(EX, s["file"]), encoding="utf-8").read())
            for s in REF["sets"]]


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def zstd(path):
    """A .zst beside path with the zstd program (Debian's zstd; tools/setup-deps.sh)."""
    subprocess.run(["zstd", "-q", "-f", "-19", path, "-o", path + ".zst"], check=True)
    return path + ".zst"


def pooled(names):
    """The recorded per-file losses of the last checkpoint pooled as one set."""
    want = {s["name"]: s for s in LAST["sets"]}
    tok = sum(want[n]["tokens"] for n in names)
    nll_sum = sum(want[n]["nll"] * want[n]["tokens"] for n in names)
    nbytes = sum(want[n]["bytes"] for n in names)
    return {"tokens": tok, "nll": nll_sum / tok, "bpb": nll_sum / (math.log(2) * nbytes),
            "bytes": nbytes}


def close(a, b, tol=1e-6):
    return abs(a - b) <= tol * abs(b)


def test_text_jsonl_plain_gzip_zstd():
    lines = "".join(json.dumps({"text": t, "meta": {"pile_set_name": SUBSET[n]}}) + "\n"
                    for n, t in texts())
    plain = write("stories.jsonl", lines.encode())
    os.makedirs(os.path.join(TMP, "gz"))  # the same set name in other folders
    os.makedirs(os.path.join(TMP, "zst"))
    gz = write("gz/stories.jsonl.gz", gzip.compress(lines.encode(), mtime=0))
    zs = zstd(write("zst/stories.jsonl", lines.encode()))
    want = pooled([n for n, _ in texts()])
    results = [ppl("--text", f) for f in (plain, gz, zs)]
    for path, sets in zip((plain, gz, zs), results):
        check(len(sets) == 1 and sets[0]["name"] == "stories", "%s: one set 'stories'" % path)
        if sets:
            s = sets[0]
            check(s["tokens"] == want["tokens"] and s["bytes"] == want["bytes"],
                  "%s: %s tokens, %s bytes (want %d, %d)" % (path, s["tokens"], s["bytes"],
                                                            want["tokens"], want["bytes"]))
            check(close(s["nll"], want["nll"]) and close(s["bpb"], want["bpb"]),
                  "%s: nll %.9f bpb %.9f, PyTorch %.9f %.9f" % (path, s["nll"], s["bpb"],
                                                               want["nll"], want["bpb"]))
    check(all(r == results[0] for r in results), "plain, gzip and zstd give the same JSON")
    print("  pooled JSONL set: nll %.9f (PyTorch %.9f), gzip and zstd identical"
          % (results[0][0]["nll"] if results[0] else float("nan"), want["nll"]))

    # one set per meta.pile_set_name, in order of first appearance, each the file's numbers
    sets = ppl("--text", zs, "--split-by-meta")
    check([s["name"] for s in sets] == ["stories:" + SUBSET[n] for n, _ in texts()],
          "split sets: %s" % [s["name"] for s in sets])
    for s, (n, _) in zip(sets, texts()):
        w = pooled([n])
        check(s["tokens"] == w["tokens"] and close(s["nll"], w["nll"]) and close(s["bpb"], w["bpb"]),
              "%s: nll %.9f, PyTorch on %s %.9f" % (s["name"], s["nll"], n, w["nll"]))


def test_token_ids_jsonl_compressed():
    """The recorded token ids as LLM360-style JSONL: the numbers of the text."""
    lines = "".join(json.dumps({"token_ids": s["token_ids"]}) + "\n" for s in REF["sets"])
    zs = zstd(write("ids.jsonl", lines.encode()))
    gz = write("ids2.jsonl.gz", gzip.compress(lines.encode(), mtime=0))
    want = pooled([s["name"] for s in REF["sets"]])
    for f in (zs, gz):
        sets = ppl("--tokens", f)
        check(len(sets) == 1 and sets[0]["tokens"] == want["tokens"] and sets[0]["bytes"] is None
              and close(sets[0]["nll"], want["nll"]), "%s: token ids give the text's nll" % f)


def expect_error(args, *needles):
    p = ck("ppl", RUN + "@" + LAST["name"], *args, "--quiet", rc=2)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    check(p.stdout == "" and len(lines) == 1, "one error line, nothing on stdout: %r" % p.stderr)
    for n in needles:
        check(n in p.stderr, "%r in the error for %s: %r" % (n, args, p.stderr))


def test_refusals():
    good = "".join(json.dumps({"text": t}) + "\n" for _, t in texts()).encode()
    gz = gzip.compress(good, mtime=0)
    # compressed-stream errors name the line being decoded: the number of lines the
    # Python decoder gets out of the readable part, plus one
    f = write("cut.jsonl.gz", gz[:len(gz) // 2])
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    expect_error(["--text", f], f, "line %d: truncated gzip"
                 % (1 + d.decompress(gz[:len(gz) // 2]).count(b"\n")))
    zs = open(zstd(write("z.jsonl", good)), "rb").read()
    f = write("cut.jsonl.zst", zs[:-7])
    expect_error(["--text", f], f, "truncated zstd", "line ")
    f = write("trail.jsonl.gz", gz + b"\0\0\0\0")
    expect_error(["--text", f], f, "line %d: 4 bytes after the end of the gzip data"
                 % (1 + good.count(b"\n")))
    bad = bytearray(zs)
    bad[len(bad) // 2] ^= 0xff
    f = write("flip.jsonl.zst", bytes(bad))
    expect_error(["--text", f], f, "corrupt zstd", "line ")
    bad = bytearray(gz)
    bad[len(bad) // 2] ^= 0xff
    f = write("flip.jsonl.gz", bytes(bad))
    expect_error(["--text", f], f, "corrupt gzip", "line ")
    # not UTF-8: in a JSONL line (jansson refuses it) and in plain text, plain or gzip
    f = write("latin1.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    expect_error(["--text", f], f, "line 2: not valid JSON")
    for name, data in [("latin1.txt", b"plain text\ncaf\xe9 au lait\n"),
                       ("latin1.txt.gz", gzip.compress(b"plain text\ncaf\xe9 au lait\n", mtime=0))]:
        f = write(name, data)
        expect_error(["--text", f], f, "line 2: not valid UTF-8 at byte offset 14")
    # a line longer than 256 MiB (a sparse file: no newline after line 1), plain and as
    # token ids: refused when the limit is passed, without reading on
    for kind, first in [("--text", b'{"text": "ok"}\n'), ("--tokens", b'{"token_ids": [1]}\n')]:
        f = os.path.join(TMP, "huge.jsonl")
        with open(f, "wb") as h:
            h.write(first)
            h.truncate(300 << 20)
        expect_error([kind, f], f, "line 2 is longer than 268435456 bytes")
        os.unlink(f)
    # 100 MiB of newlines from 100 KB: past 64 MiB and 1000:1 it stops
    f = write("bomb.jsonl.gz", gzip.compress(b"\n" * (100 << 20), compresslevel=9, mtime=0))
    expect_error(["--text", f], f, "decompression bomb")
    f = write("nometa.jsonl", (json.dumps({"text": "a", "meta": {"pile_set_name": "X"}}) + "\n" +
                               json.dumps({"text": "b", "meta": {}}) + "\n").encode())
    expect_error(["--text", f, "--split-by-meta"], f, "line 2", "pile_set_name")
    f = write("notext.jsonl", b'{"text": "a"}\n\n{"token_ids": [1]}\n')
    expect_error(["--text", f], f, "line 3", '"text"')
    f = write("ids_only.jsonl", b'{"token_ids": [1, 2, 3]}\n')
    expect_error(["--text", f], f, "line 1", "token ids")
    f = write("words.jsonl", b'{"text": "some words"}\n')
    expect_error(["--tokens", f], f, "line 1", "token_ids")
    expect_error(["--text", os.path.join(EX, "heldout", "jargon_heldout.txt"), "--split-by-meta"],
                 "jargon_heldout.txt", "--split-by-meta needs JSONL")
    f = write("big.jsonl", b'{"token_ids": [1, 2, 768]}\n')
    expect_error(["--tokens", f], f, "768", LAST["name"])


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    if not shutil.which("zstd"):
        print("FAIL: the zstd program is missing (tools/setup-deps.sh installs it)")
        sys.exit(1)
    try:
        subprocess.run(["git", "clone", "-q", os.path.join(EX, "demo.bundle"), RUN], check=True)
        for t in (test_text_jsonl_plain_gzip_zstd, test_token_ids_jsonl_compressed, test_refusals):
            print(t.__name__)
            t()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    finish()
    print("ok")


if __name__ == "__main__":
    main()
