"""CLI test of `ckptscope tokenize`: drives the built executable and checks ids and pieces
against SentencePiece (python3-sentencepiece) and the committed references made by
tools/make_tokenizer_refs.py; byte-level tokenizers against the ids of npm's `tokenizers`
(Hugging Face's Rust library) committed by tools/make_bpe_refs.py; the NFC normalizer
against Unicode's own NormalizationTest.txt (Debian's unicode-data); then the error paths
(exit status 2, one clear line).

usage: test_tokenize.py CKPTSCOPE CKS_FIXTURE SOURCE_DIR
"""
import bz2
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
BPE = os.path.join(SRC, "tests", "data", "bpe")
BPE_REFS = json.load(open(os.path.join(BPE, "refs.json"), encoding="utf-8"))
UNICODE = "/usr/share/unicode"
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
        check(sorted(doc) == ["ids", "pieces", "text"], "JSON fields of %s: %s" % (name, sorted(doc)))
        want = sp.encode(TEXTS[name])
        check(doc["ids"] == want == ref_ids("small", name), "ids of %s" % name)
        check(doc["pieces"] == [sp.id_to_piece(i) for i in want], "pieces of %s" % name)
        # the pieces' text, SentencePiece's dummy-prefix space kept
        check(doc["text"] == (" " + TEXTS[name] if TEXTS[name] else ""),
              "text of %s: %r" % (name, doc["text"][:80]))
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


def missing(path, why):
    """A reference file from outside the tree: a failure in CI, a skip (exit 77) elsewhere."""
    if os.path.exists(path):
        return False
    if os.environ.get("CI") == "true":
        check(False, "%s is absent (%s; CI has it)" % (path, why))
    else:
        skip("%s is absent (%s)" % (path, why))
    return True


def test_byte_level_matches_hf_tokenizers(tmp):
    """The whole corpus in one run per tokenizer: documents joined by the added token
    <|endoftext|>, at which tokenizers splits the text before anything else, so each
    document is encoded on its own."""
    names = [e["name"] for e in BPE_REFS["corpus"]]
    eot = "<|endoftext|>"
    for tok, ref in BPE_REFS["tokenizers"].items():
        path = os.path.join(SRC, ref["file"])
        if tok == "bytes_nfc" or missing(path, "../shared/data"):
            continue  # (bytes_nfc has no added token: test_nfc_matches_normalization_test)
        rc, out, err = run(["--tokenizer", path, "--json"], eot.encode())
        check(rc == 0 and len(json.loads(out)["ids"]) == 1, "%s: %s is one token" % (tok, eot))
        eot_id = json.loads(out)["ids"][0]
        want_ids = []
        for ids in ref["ids"]:
            want_ids += ids + [eot_id]
        text = eot.join(e["text"] for e in BPE_REFS["corpus"]) + eot
        rc, out, err = run(["--tokenizer", path, "--json"], text.encode("utf-8"))
        check(rc == 0, "%s: exit %d: %s" % (tok, rc, err))
        if rc:
            continue
        doc = json.loads(out)
        if doc["ids"] != want_ids:
            k = next((k for k in range(min(len(doc["ids"]), len(want_ids)))
                      if doc["ids"][k] != want_ids[k]), None)
            check(False, "%s: ids differ from tokenizers' at %s of %d" % (tok, k, len(want_ids)))
        check(doc["text"] == eot.join(ref["decoded"]) + eot, "%s: text differs from decode" % tok)
        check(len(doc["pieces"]) == len(doc["ids"]), "%s: pieces" % tok)
    # A checkpoint whose only tokenizer is a byte-level tokenizer.json.
    src = os.path.join(tmp, "bl")
    subprocess.run([FIXTURE, src, "--layout", "folder", "--checkpoints", "1"], check=True,
                   capture_output=True)
    shutil.copy(os.path.join(BPE, "qwen2_style.tokenizer.json"),
                os.path.join(src, "ckpt_000", "tokenizer.json"))
    i = names.index("prose")
    rc, out, err = run([src + "@ckpt_000", "--json"], BPE_REFS["corpus"][i]["text"].encode())
    check(rc == 0 and json.loads(out)["ids"] == BPE_REFS["tokenizers"]["qwen2_style"]["ids"][i],
          "byte-level tokenizer.json in a checkpoint: exit %d %s" % (rc, err))
    rc, out, _ = run(["--tokenizer", os.path.join(BPE, "qwen2_style.tokenizer.json")], b"Hi")
    check(rc == 0 and "hf (byte-level BPE)" in out, "text header: %r" % out[:80])


def assigned_by(version):
    """Code points assigned in Unicode `version` or earlier (DerivedAge.txt)."""
    out = set()
    with open(os.path.join(UNICODE, "DerivedAge.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cps, age = (x.strip() for x in line.split(";"))
            if tuple(map(int, age.split("."))) <= version:
                lo, _, hi = cps.partition("..")
                out.update(range(int(lo, 16), int(hi or lo, 16) + 1))
    return out


def test_nfc_matches_normalization_test(tmp):
    """Column 2 of Unicode's NormalizationTest.txt is NFC(column 1). The tables are Unicode
    9.0 (as tokenizers'): lines using later characters are left out. bytes_nfc's ids are the
    bytes of the space-prefixed NFC text, so its decoded text is ' ' + NFC(input)."""
    path = os.path.join(UNICODE, "NormalizationTest.txt.bz2")
    if missing(path, "Debian unicode-data"):
        return
    old = assigned_by((9, 0))
    src, want = [], []
    with bz2.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith(("#", "@")) or not line.strip():
                continue
            cols = [[int(x, 16) for x in c.split()] for c in line.split(";")[:2]]
            if all(c in old for c in cols[0] + cols[1]):
                src.append("".join(map(chr, cols[0])))
                want.append("".join(map(chr, cols[1])))
    check(len(src) > 15000, "NormalizationTest lines for Unicode 9.0: %d" % len(src))
    doc = "\n".join(src)
    txt = os.path.join(tmp, "nfc.txt")
    with open(txt, "w", encoding="utf-8") as f:
        f.write(doc)
    rc, out, err = run(["--tokenizer", os.path.join(BPE, "bytes_nfc.tokenizer.json"), "--text",
                        txt, "--json"])
    check(rc == 0, "NFC: exit %d: %s" % (rc, err))
    if rc == 0:
        got = json.loads(out)["text"][1:].split("\n")
        bad = [i for i in range(len(src)) if got[i] != want[i]] if len(got) == len(src) else [-1]
        check(not bad, "NFC differs from NormalizationTest on %d lines, e.g. %s" % (
            len(bad), [src[i].encode("unicode_escape") for i in bad[:3]]))


def test_byte_level_errors(tmp):
    doc = json.load(open(os.path.join(BPE, "bytes_nfc.tokenizer.json"), encoding="utf-8"))
    cases = [
        ({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "[\\p{L}"}, "behavior": "Isolated",
             "invert": False}, doc["pre_tokenizer"]]},
         "is refused by PCRE2 at offset 6: missing terminating ] for character class"),
        ({"type": "Whitespace"}, "pre_tokenizer 'Whitespace' is not supported"),
    ]
    for pre, needle in cases:
        bad = dict(doc, pre_tokenizer=pre)
        path = os.path.join(tmp, "bad.tokenizer.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(bad, f)
        rc, out, err = run(["--tokenizer", path], b"x")
        check(rc == 2 and needle in err and "bad.tokenizer.json" in err and out == "",
              "refusal %r: exit %d: %s" % (needle, rc, err))
        check(len(err.strip().splitlines()) == 1, "one error line: %r" % err)
    bad = dict(doc, model=dict(doc["model"], merges=["a \u0100\u0100"]))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(bad, f)
    rc, _, err = run(["--tokenizer", path], b"x")
    check(rc == 2 and "names unknown token" in err, "merge of unknown token: %d %s" % (rc, err))


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
        test_byte_level_matches_hf_tokenizers(tmp)
        test_nfc_matches_normalization_test(tmp)
        test_byte_level_errors(tmp)
    finish()


if __name__ == "__main__":
    main()
