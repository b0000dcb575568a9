"""CLI test of `ckptscope tokenize`: drives the built executable and checks ids and pieces
against SentencePiece (python3-sentencepiece) and the committed references made by
tools/make_tokenizer_refs.py; then the error paths (exit status 2, one clear line).

usage: test_tokenize.py CKPTSCOPE CKS_FIXTURE SOURCE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import sentencepiece as spm

from cks_testlib import Skip, check, finish, need, shared_data, skip  # noqa: E402

CKPTSCOPE, FIXTURE, SRC = sys.argv[1:4]
TOK = os.path.join(SRC, "tests", "data", "tok")
LLAMA = shared_data("tokenizers", "llama", "tokenizer.model")
REFS = json.load(open(os.path.join(TOK, "refs.json"), encoding="utf-8"))
TEXTS = {e["name"]: e["text"] for e in REFS["corpus"]}
NAMES = [e["name"] for e in REFS["corpus"]]


def run(args, text=None):
    p = subprocess.run([CKPTSCOPE, "tokenize"] + args, input=text, capture_output=True)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def ref_ids(model, name):
    return REFS["models"][model]["ids"][NAMES.index(name)]


def test_json_matches_sentencepiece(tmp):
    model = os.path.join(TOK, "small.model")
    sp = spm.SentencePieceProcessor(model_file=model)
    for name in ("ascii", "newlines", "cjk", "emoji", "control", "paragraph", "empty"):
        path = os.path.join(tmp, name + ".txt")
        with open(path, "wb") as f:
            f.write(TEXTS[name].encode("utf-8"))
        rc, out, err = run(["--tokenizer", model, "--text", path, "--json"])
        check(rc == 0, "tokenize %s: exit %d: %s" % (name, rc, err))
        doc = json.loads(out)
        check(sorted(doc) == ["ids", "pieces"], "JSON fields of %s: %s" % (name, sorted(doc)))
        want = sp.encode(TEXTS[name])
        check(doc["ids"] == want == ref_ids("small", name), "ids of %s" % name)
        check(doc["pieces"] == [sp.id_to_piece(i) for i in want], "pieces of %s" % name)
    # --bos prepends sentencepiece's bos_id; '-' reads standard input.
    rc, out, _ = run(["--tokenizer", model, "-", "--bos", "--json"], TEXTS["ascii"].encode())
    check(rc == 0 and json.loads(out)["ids"] == [sp.bos_id()] + sp.encode(TEXTS["ascii"]),
          "--bos with stdin")


def test_text_table():
    rc, out, _ = run(["--tokenizer", os.path.join(TOK, "small.model")], b"Hello\tworld")
    lines = out.splitlines()
    check(rc == 0 and lines[0].startswith("tokenizer: sentencepiece, 500 pieces"),
          "text header: %r" % lines[:1])
    check(any("POS" in l and "PIECE" in l for l in lines), "table header")
    check("<0x09>" in out or "\\x09" in out, "the tab shows as a byte piece")


def make_source(tmp):
    src = os.path.join(tmp, "run")
    subprocess.run([FIXTURE, src, "--layout", "folder", "--checkpoints", "3"], check=True,
                   capture_output=True)
    shutil.copy(os.path.join(TOK, "small.model"), os.path.join(src, "ckpt_000", "tokenizer.model"))
    shutil.copy(os.path.join(TOK, "small.tokenizer.json"),
                os.path.join(src, "ckpt_001", "tokenizer.json"))
    return src


def test_checkpoint_sources(tmp):
    src = make_source(tmp)
    text = TEXTS["sentence"].encode()
    want = ref_ids("small", "sentence")
    for ckpt in ("ckpt_000", "ckpt_001"):  # tokenizer.model, then tokenizer.json only
        rc, out, err = run([src + "@" + ckpt, "--json"], text)
        check(rc == 0 and json.loads(out)["ids"] == want, "%s: exit %d %s" % (ckpt, rc, err))
    rc, out, err = run([src + "@ckpt_002", "--json"], text)
    check(rc == 2 and src + "@ckpt_002: the checkpoint has no tokenizer.model" in err,
          "missing tokenizer: exit %d: %s" % (rc, err))


def test_errors(tmp):
    model = os.path.join(TOK, "small.model")
    rc, out, err = run(["--tokenizer", model], b"ok \xff\xfe")
    check(rc == 2 and "not valid UTF-8 at byte offset 3" in err and out == "",
          "invalid UTF-8: exit %d: %s" % (rc, err))
    check(len(err.strip().splitlines()) == 1, "one error line: %r" % err)
    broken = os.path.join(tmp, "broken.model")
    with open(model, "rb") as f:
        data = f.read()
    with open(broken, "wb") as f:
        f.write(data[: len(data) // 2])
    rc, _, err = run(["--tokenizer", broken], b"x")
    check(rc == 2 and "broken.model" in err and "protobuf" in err, "truncated model: %s" % err)
    rc, _, err = run([], b"x")
    check(rc == 2 and "SOURCE@REF or --tokenizer" in err, "neither source: %s" % err)
    rc, _, err = run(["--tokenizer", model, "--nope"], b"x")
    check(rc == 2, "unknown option: exit %d" % rc)
    rc, _, err = run(["--tokenizer", model, "--text", os.path.join(tmp, "absent.txt")])
    check(rc == 2 and "absent.txt" in err, "missing text file: %s" % err)
    rc, out, _ = run(["--help"])
    check(rc == 0 and "usage: ckptscope tokenize" in out, "--help")


def test_llama_json_conversion(tmp):
    """LLaMA's tokenizer.model converted with the LlamaConverter recipe gives the same ids."""
    need(os.path.exists(LLAMA), "../shared/data/tokenizers/llama/tokenizer.model is absent")
    sys.path.insert(0, os.path.join(SRC, "tools"))
    import make_tokenizer_refs as mk
    sp = spm.SentencePieceProcessor(model_file=LLAMA)
    path = os.path.join(tmp, "llama.tokenizer.json")
    with open(path, "wb") as f:
        f.write(mk.llama_tokenizer_json(sp))
    for name in ("sentence", "leading_space", "runs_of_spaces", "newlines", "cjk", "emoji",
                 "python", "digits", "repeats", "paragraph", "control", "empty"):
        rc, out, err = run(["--tokenizer", path, "--json"], TEXTS[name].encode())
        check(rc == 0 and json.loads(out)["ids"] == ref_ids("llama", name),
              "LLaMA tokenizer.json, %s: %s" % (name, err))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        test_json_matches_sentencepiece(tmp)
        test_text_table()
        test_checkpoint_sources(tmp)
        test_errors(tmp)
        try:
            test_llama_json_conversion(tmp)
        except Skip as e:
            skip(e)
    finish()


if __name__ == "__main__":
    main()
