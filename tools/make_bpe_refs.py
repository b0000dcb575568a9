#!/usr/bin/python3
"""Reference token ids for the byte-level BPE tokenizers, made by Hugging Face's own Rust
library (npm package `tokenizers`) and, for GPT-2, by `tiktoken` as a second, independent
implementation.

    /usr/bin/python3 tools/make_bpe_refs.py [--check] [--npm-dir DIR]

Writes into tests/data/bpe/:
  qwen2_style.tokenizer.json   a small tokenizer laid out like Qwen2's: NFC normalizer, a
                               Sequence of Split (Qwen2's pattern, Isolated) and ByteLevel
                               (use_regex false), merges as ["a", "b"] pairs, added tokens
                               <|endoftext|>, <|im_start|>, <|im_end|>.
  llama3_style.tokenizer.json  the same vocabulary laid out like Llama 3's / OLMo 2's: no
                               normalizer, Split with the \\p{N}{1,3} pattern, ignore_merges
                               true, merges as "a b" strings, and a few whole words that
                               only ignore_merges can produce.
                               Both take GPT-2's 256 byte characters and its first 3000
                               merges (their results renumbered) from
                               ../shared/data/tokenizers/gpt2/tokenizer.json.
  tiny_qwen2.tokenizer.json    qwen2_style with GPT-2's first 200 merges only, on one line: a
                               seed for the tokenizer.json fuzz target (tests/fuzz).
  bytes_nfc.tokenizer.json     GPT-2's 256 byte characters with id = byte value and no
                               merges; NFC normalizer; ByteLevel with add_prefix_space true
                               and use_regex true: its ids are the bytes of the normalized,
                               space-prefixed text (the NFC check of tests/cli/test_tokenize.py).
  refs.json                    the corpus below and, for each tokenizer (those two and the
                               real GPT-NeoX-20B and GPT-2 files in ../shared/data), the ids
                               `tokenizers` gives (encode(text, null, {addSpecialTokens:
                               false})) and its decode(ids, false); tiktoken's gpt2 ids.

The npm packages (pinned below) are installed into DIR (default: build/npm-refs, ignored by
git) when missing. --check recomputes everything and exits 1 when a committed file differs;
a missing prerequisite (node, npm, the packages, ../shared/data) is exit 1 in CI (CI=true)
and 77 (a ctest skip) elsewhere.
"""
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "bpe")
SHARED = os.path.join(ROOT, "..", "shared", "data", "tokenizers")
NPM_PACKAGES = ["tokenizers@0.23.2", "tiktoken@1.0.22"]
QWEN2_PATTERN = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}"
                 "\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
LLAMA3_PATTERN = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s"
                  "\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
N_MERGES = 3000
WHOLE_WORDS = ["Ġtokenization", "Ġunbelievable", "Ġcheckpoints", "2024", "Ġ!!!"]

TALE = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
    "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it "
    "was the season of Light, it was the season of Darkness, it was the spring of hope, it "
    "was the winter of despair, we had everything before us, we had nothing before us.")


def stress_text(seed, n):
    """A fixed pseudo-random mix of every kind of character the corpus names."""
    alphabet = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                + [" "] * 14 + ["\n", "\t", "\r", "\r\n", "\x00", "\x1b", "\x7f"]
                + list(".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`")
                + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "\u2019s"]
                + list("éèêëàâäôöûüçñßÅØæœ") + ["e\u0301", "a\u0308", "o\u0302\u0323"]
                + list("日本語中文한국어テキスト") + ["\u1100\u1161\u11a8"]
                + list("مرحبا بالعالم") + list("नमस्ते") + list("สวัสดี")
                + ["😀", "🎉", "👩\u200d👩\u200d👧", "❤️", "👍🏽", "\U0001F680", "🇩🇪"]
                + ["\u0085", "\u00a0", "\u1680", "\u2003", "\u2009", "\u200b", "\u2028",
                   "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", "\u180e"]
                + ["the", " the", "ing", " and", "tion", "  ", "   ", "      ", "\n\n",
                   "<|endoftext|>", "<|padding|>", "<|im_start|>", "<|im_end|>", "<|end"]
                + ["123", "4567", "89", "3.14", "1,000"])
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


CORPUS = [
    ("empty", ""),
    ("ascii", "Hello world"),
    ("prose", TALE),
    ("prose_newlines", TALE.replace(", ", ",\n")),
    ("contractions", "I'm sure you'll see they've gone; we'd say it's John's, isn't it? "
                     "I'M SURE YOU'LL SEE THEY'VE GONE; WE'D SAY IT'S JOHN'S. 'tis 'S 'Ll"),
    ("case_folding", "it'\u017f he'LL X'\u212a x'\u212aa 'ST \u00df'SS '\u0130 \u0130'S"),
    ("apostrophes", "don\u2019t won\u2019t it\u2019s ''quoted'' ' s 'x"),
    ("long_digits", "1234567890123456789012345678901234567890 3.14159265358979323846 "
                    "2024-01-01T12:34:56Z 1,000,000.00 0x1F2E3D 007 ٠١٢٣٤٥ ①②③ ½"),
    ("space_runs", "a b  c   d    e     f      g       h        i         j"
                   + "".join(" " * k + str(k) for k in range(10, 31))),
    ("space_only_runs", " " * 24 + "|" + " " * 25 + "|" + " " * 48 + "|" + " " * 100),
    ("leading_trailing", "   leading and trailing   "),
    ("single_space", " "),
    ("whitespace_mix", "tab\there\t\ttwo tabs\n\nnewlines\r\nCRLF\n \n  \n\t\n  x  \n"),
    ("newline_runs", "\n\n\n\nend\n\n"),
    ("code_python", "def f(x):\n    if x > 0:\n        return x ** 2  # square\n    return -x\n\n"
                    "class A(B):\n\tpass\n"),
    ("code_c", "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n"),
    ("code_json", "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}"),
    ("urls", "Visit https://example.org/a/b?c=d&e=f#frag or http://www.x.co.uk:8080/path_"
             "(1).html; mail me@example.com, ftp://files.example.net/~user/file.tar.gz"),
    ("emoji", "I ❤️ emoji 😀🎉👍🏽 family 👩\u200d👩\u200d👧\u200d👦 flags 🇩🇪🇯🇵 "
              "rocket \U0001F680!"),
    ("cjk", "日本語のテキストと中文文本，한국어 텍스트。東京タワー"),
    ("arabic", "مرحبا بالعالم! هذا نص عربي مع أرقام ١٢٣ وعلامات ترقيم؟"),
    ("indic_thai", "नमस्ते दुनिया — สวัสดีชาวโลก"),
    ("combining", "Cafe\u0301 nai\u0308ve A\u030angstro\u0308m n\u0303 o\u0302\u0323 "
                  "q\u0307\u0323 \u1100\u1161\u11a8 e\u0301\u0301 \u0301start"),
    ("precomposed", "Café naïve Ångström ñ ộ ḍ̇ 각 crème brûlée"),
    ("nfc_exclusions", "\u0958\u0959 \u2126 \u212b \u0344 \u0f73 \u1f71 \u00c5\u0301"),
    ("unicode_version_probes", "\U00011347\U0001133e \U00011935\U00011930 "
                               "a\U0001e944\u0323 a\u1df6\u0323"),
    ("unicode_whitespace", "a\u0085b c\u00a0d e\u1680f g\u2000h\u2003i\u200aj k\u2028l "
                           "m\u2029n o\u202fp q\u205fr s\u3000t u\ufeffv w\u180ex y\u200bz "
                           "\u0085\u0085 \u3000\u3000x \ufeff"),
    ("control", "bell\x07 esc\x1b[0m del\x7f nul\x00 end\x01\x02\x1f"),
    ("added_tokens", "<|endoftext|>text<|endoftext|> <|padding|>x <|im_start|>user\nhi"
                     "<|im_end|>\n<|endoftext|><|endoftext|> <|endoftext <|im_end"),
    ("whole_words", " tokenization unbelievable checkpoints 2024 !!! tokenizations"),
    ("long_word", "a" * 300 + " " + "xyz" * 100 + " " + "!" * 200),
    ("mixed_case", "HTTPServer getHTTPResponseCode iPhone McDonald's ÉCOLE ΣΊΣΥΦΟΣ"),
    ("stress", stress_text(20240601, 2000)),
    ("stress2", stress_text(7, 2000)),
]


def fail(msg):
    """A missing prerequisite: exit 1 in CI, 77 (ctest skip) elsewhere."""
    print("make_bpe_refs: " + msg, file=sys.stderr)
    sys.exit(1 if os.environ.get("CI") == "true" else 77)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def small_vocab(gpt2, n_merges=N_MERGES):
    """GPT-2's byte characters and its first n_merges merges, renumbered."""
    vocab_in = gpt2["model"]["vocab"]
    inv = sorted(vocab_in, key=vocab_in.get)
    vocab = {tok: i for i, tok in enumerate(inv[:256])}
    merges = []
    for m in gpt2["model"]["merges"][:n_merges]:
        a, b = m.split(" ") if isinstance(m, str) else m
        assert a in vocab and b in vocab, "GPT-2's merges are built in order"
        merges.append([a, b])
        vocab.setdefault(a + b, len(vocab))
    return vocab, merges


def added(tokens, start):
    return [{"id": start + i, "content": c, "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
            for i, c in enumerate(tokens)]


def style_file(vocab, merges, qwen2, indent=1):
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
          "use_regex": False}
    vocab = dict(vocab)
    if not qwen2:
        for w in WHOLE_WORDS:
            vocab.setdefault(w, len(vocab))
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] if qwen2 else \
        ["<|begin_of_text|>", "<|end_of_text|>", "<|endoftext|>"]
    doc = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": added(specials, len(vocab)),
           "normalizer": {"type": "NFC"} if qwen2 else None,
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
               {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN if qwen2 else LLAMA3_PATTERN},
                "behavior": "Isolated", "invert": False}, bl]},
           "post_processor": bl, "decoder": bl,
           "model": {"type": "BPE", "dropout": None, "unk_token": None,
                     "continuing_subword_prefix": "", "end_of_word_suffix": "",
                     "fuse_unk": False, "byte_fallback": False, "ignore_merges": not qwen2,
                     "vocab": vocab,
                     "merges": merges if qwen2 else [a + " " + b for a, b in merges]}}
    return (json.dumps(doc, ensure_ascii=False, indent=indent) + "\n").encode("utf-8")


def bytes_file(gpt2):
    vocab_in = gpt2["model"]["vocab"]
    chars = sorted(vocab_in, key=vocab_in.get)[:256]
    # GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for
    # U+0100 + k in byte order.
    kept = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    other = [b for b in range(256) if b not in kept]
    byte_of = {chr(b): b for b in kept}
    byte_of.update({chr(256 + k): b for k, b in enumerate(other)})
    assert sorted(byte_of) == sorted(chars)
    bl = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
           "normalizer": {"type": "NFC"}, "pre_tokenizer": bl, "post_processor": bl,
           "decoder": bl,
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "fuse_unk": False,
                     "byte_fallback": False, "vocab": {c: byte_of[c] for c in chars},
                     "merges": []}}
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def npm_modules(npm_dir):
    """Installs the pinned packages into npm_dir when missing; returns its node_modules."""
    if not shutil.which("node") or not shutil.which("npm"):
        fail("node and npm are needed (Debian packages nodejs, npm)")
    mods = os.path.join(npm_dir, "node_modules")
    want = {p.split("@")[0]: p.split("@")[1] for p in NPM_PACKAGES}
    have = {}
    for name in want:
        pj = os.path.join(mods, name, "package.json")
        if os.path.exists(pj):
            have[name] = read_json(pj)["version"]
    if have != want:
        os.makedirs(npm_dir, exist_ok=True)
        p = subprocess.run(["npm", "install", "--prefix", npm_dir, "--no-audit", "--no-fund",
                            "--no-save", "--loglevel=error"] + NPM_PACKAGES,
                           capture_output=True, text=True)
        if p.returncode != 0:
            fail("npm install %s failed: %s" % (" ".join(NPM_PACKAGES), p.stderr.strip()[-500:]))
    return mods


def npm_versions(mods):
    return {name: read_json(os.path.join(mods, name, "package.json"))["version"]
            for name in ("tokenizers", "tiktoken")}


def node_refs(mods, request):
    env = dict(os.environ, NODE_PATH=mods, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    p = subprocess.run(["node", os.path.join(ROOT, "tools", "bpe_ref.js")],
                       input=json.dumps(request), capture_output=True, text=True, env=env)
    if p.returncode != 0:
        fail("tools/bpe_ref.js failed: " + p.stderr.strip()[-1000:])
    return json.loads(p.stdout)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def build(npm_dir, tmp):
    """Everything this script writes, as {relative path: bytes}."""
    gpt2_path = os.path.join(SHARED, "gpt2", "tokenizer.json")
    neox_path = os.path.join(SHARED, "gpt-neox-20b", "tokenizer.json")
    for p in (gpt2_path, neox_path):
        if not os.path.exists(p):
            fail("%s is absent" % os.path.relpath(p, ROOT))
    gpt2 = read_json(gpt2_path)
    vocab, merges = small_vocab(gpt2)
    files = {"tests/data/bpe/qwen2_style.tokenizer.json": style_file(vocab, merges, True),
             "tests/data/bpe/llama3_style.tokenizer.json": style_file(vocab, merges, False),
             "tests/data/bpe/bytes_nfc.tokenizer.json": bytes_file(gpt2),
             "tests/data/bpe/tiny_qwen2.tokenizer.json": style_file(*small_vocab(gpt2, 200),
                                                                    True, None)}
    paths = {"gpt-neox-20b": neox_path, "gpt2": gpt2_path}
    for rel, data in files.items():
        name = os.path.basename(rel).split(".")[0]
        paths[name] = os.path.join(tmp, os.path.basename(rel))
        with open(paths[name], "wb") as f:
            f.write(data)
    texts = [t for _, t in CORPUS]
    mods = npm_modules(npm_dir)
    ans = node_refs(mods, {"files": paths, "texts": texts, "tiktoken": True})
    toks = {}
    for name, path in paths.items():
        shared = name in ("gpt-neox-20b", "gpt2")
        toks[name] = {
            "file": ("../shared/data/tokenizers/%s/tokenizer.json" % name if shared
                     else "tests/data/bpe/%s.tokenizer.json" % name),
            "sha256": sha256(path), "ids": ans["ids"][name], "decoded": ans["decoded"][name]}
    doc = {"generated_by": "tools/make_bpe_refs.py", "versions": npm_versions(mods),
           "corpus": [{"name": n, "text": t} for n, t in CORPUS], "tokenizers": toks,
           "tiktoken_gpt2": ans["tiktoken_gpt2"]}
    files["tests/data/bpe/refs.json"] = (json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
                                         + "\n").encode("utf-8")
    return files


def main():
    args = sys.argv[1:]
    npm_dir = os.path.join(ROOT, "build", "npm-refs")
    if "--npm-dir" in args:
        npm_dir = os.path.abspath(args[args.index("--npm-dir") + 1])
    with tempfile.TemporaryDirectory() as tmp:
        files = build(npm_dir, tmp)
    if "--check" in args:
        stale = []
        for rel, data in files.items():
            path = os.path.join(ROOT, rel)
            if not os.path.exists(path) or open(path, "rb").read() != data:
                stale.append(rel)
        if stale:
            print("make_bpe_refs: not current (rerun tools/make_bpe_refs.py): " + ", ".join(stale))
            sys.exit(1)
        print("make_bpe_refs: %d files current (tokenizers %s, tiktoken %s)"
              % (len(files), *(json.loads(files["tests/data/bpe/refs.json"])["versions"][k]
                               for k in ("tokenizers", "tiktoken"))))
        return
    os.makedirs(OUT, exist_ok=True)
    for rel, data in files.items():
        with open(os.path.join(ROOT, rel), "wb") as f:
            f.write(data)
    print("make_bpe_refs: wrote %s (%d texts)" % (", ".join(sorted(files)), len(CORPUS)))


if __name__ == "__main__":
    main()
