#!/usr/bin/python3
"""Reference token ids for the built-in tokenizer, made by SentencePiece itself.

Run with Debian's python3 (package python3-sentencepiece), from anywhere:

    /usr/bin/python3 tools/make_tokenizer_refs.py [--retrain]

Writes into tests/data/tok/:
  small.model        a BPE model this script trains with SentencePiece on license texts
                     shipped by Debian (LLaMA-like options: bpe, byte_fallback,
                     split_digits, identity normalization, no whitespace removal, vocab 500,
                     one thread). Trained only when missing or with --retrain; the committed
                     file is what the references are computed from.
  nows.model         as small.model but trained with split_by_whitespace off, so pieces
                     hold "▁" after other characters (no cutting of the text at word starts).
  nows.tokenizer.json  nows.model converted like small.tokenizer.json.
  uds.model          user-defined and control symbols, no byte fallback (unknown runs
                     become one <unk>), remove_extra_whitespaces on.
  small_unused.model small.model with some pieces marked UNUSED (SentencePiece's
                     set_vocabulary), which SentencePiece re-splits after merging.
  small_nodummy.model small.model with add_dummy_prefix off, given as a second
                     normalizer_spec record that protobuf merges into the first.
  small_noescape.model  small.model with escape_whitespaces off, the same way.
  small.tokenizer.json  small.model converted to Hugging Face tokenizer.json with
                     transformers' LlamaConverter recipe ("legacy" normalizer: Prepend "▁"
                     + Replace " " -> "▁"; merges as "a b" strings).
  small.metaspace.tokenizer.json  the same vocabulary and merges with the newer layout:
                     no normalizer, Metaspace pre-tokenizer (prepend_scheme "first",
                     split false), merges as ["a", "b"] pairs.
  small.metasplit.tokenizer.json  the same with the older Metaspace: prepend_scheme
                     "always", split true (every "▁" starts a word, encoded on its own).
  refs.json          the corpus and, per model, the ids SentencePiece gives for every entry
                     (sp.encode(text): no BOS). The LLaMA model from
                     ../shared/data/tokenizers/llama/tokenizer.model is included when present.

Expected ids for the tokenizer.json files follow from Hugging Face's documented pipeline and
are computed here with SentencePiece too: the text is first split at added tokens
(<unk>, <s>, </s>: matched in the raw text), then each remaining part is normalized on its
own. For the legacy layout a part encodes as sp.encode(part) of small.model; for the
Metaspace layout as small_nodummy's encoding of "▁" + part when the part starts the text
(and does not already start with a space or "▁"), else of the part. For a text without
added-token strings the legacy layout must give exactly small.model's ids.
"""
import hashlib
import json
import os
import random
import sys
import tempfile

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "tok")
LLAMA = os.path.join(ROOT, "..", "shared", "data", "tokenizers", "llama", "tokenizer.model")
SPACE = "\u2581"
ADDED = ["<unk>", "<s>", "</s>"]

TALE = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
    "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it "
    "was the season of Light, it was the season of Darkness, it was the spring of hope, it "
    "was the winter of despair, we had everything before us, we had nothing before us, we "
    "were all going direct to Heaven, we were all going direct the other way--in short, the "
    "period was so far like the present period, that some of its noisiest authorities "
    "insisted on its being received, for good or for evil, in the superlative degree of "
    "comparison only. There were a king with a large jaw and a queen with a plain face, on "
    "the throne of England; there were a king with a large jaw and a queen with a fair face, "
    "on the throne of France. In both countries it was clearer than crystal to the lords of "
    "the State preserves of loaves and fishes, that things in general were settled for ever."
)


def stress_text():
    """A fixed pseudo-random mix of every kind of character the corpus names."""
    alphabet = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                + list(" " * 12) + ["\n", "\t", "\r", "\x00", "\x01", "\x7f", SPACE]
                + list(".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`")
                + list("éèêëàâäôöûüçñßÅØæœ") + list("日本語中文한국어テキスト")
                + ["😀", "🎉", "👩\u200d👩\u200d👧", "❤️", "\U0001F680", "\u00a0", "\u3000"]
                + ["the", " the", "ing", " and", "tion", "<s>", "</s>", "<unk>"])
    rng = random.Random(20240601)
    return "".join(rng.choice(alphabet) for _ in range(1200))


CORPUS = [
    ("empty", ""),
    ("ascii", "Hello world"),
    ("sentence", "The quick brown fox jumps over the lazy dog."),
    ("leading_space", " leading space"),
    ("single_space", " "),
    ("spaces_only", "     "),
    ("runs_of_spaces", "a  b   c    d     e"),
    ("trailing_spaces", "end   "),
    ("newlines", "line one\nline two\n\n\nline five\n"),
    ("newline_only", "\n"),
    ("crlf", "windows\r\nline\r\n"),
    ("tabs", "\tindented\t\ttabs\t and\t spaces"),
    ("control", "bell\x07 esc\x1b[0m del\x7f nul\x00 end\x01\x02\x1f"),
    ("accented", "Café naïve façade Ångström crème brûlée, señor, smörgåsbord"),
    ("german", "Größenwahn und Übermut: Straße"),
    ("cjk", "日本語のテキストと中文文本，한국어 텍스트。"),
    ("emoji", "I ❤️ emoji 😀🎉 family 👩\u200d👩\u200d👧 rocket \U0001F680!"),
    ("python", "def f(x):\n    if x > 0:\n        return x ** 2  # square\n    return -x\n"),
    ("c_code", "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n"),
    ("digits", "1234567890 3.14159 2024-01-01 42 007 1e-5 0x1F"),
    ("mixed", "Visit https://example.org/a?b=c&d=e or mail me@example.com (really!)"),
    ("repeats", "aaaaaaaaaaaaaaaaaaaa bbbb!!!!!!!!!! ==========--------"),
    ("space_mark", SPACE + "x " + SPACE + SPACE + "y" + SPACE),
    ("unicode_spaces", "ideographic\u3000space and nbsp\u00a0here"),
    ("specials", "<s> not a control </s> and <unk> inside text<s>"),
    ("uds_symbols", "a<sep>b [MASK] c about<sep>"),
    ("paragraph", TALE),
    ("paragraph_newlines", TALE.replace(", ", ",\n")),
    ("stress", stress_text()),
]


def train(path, **options):
    text = []
    for name in ("GPL-3", "Apache-2.0", "MPL-2.0"):
        with open(os.path.join("/usr/share/common-licenses", name), encoding="utf-8") as f:
            text.extend(line.rstrip("\n") for line in f)
    text.extend(t for _, t in CORPUS[:20] if t)
    with tempfile.TemporaryDirectory() as d:
        inp = os.path.join(d, "train.txt")
        with open(inp, "w", encoding="utf-8") as f:
            f.write("\n".join(line for line in text if line.strip()) + "\n")
        prefix = os.path.join(d, "m")
        spm.SentencePieceTrainer.train(input=inp, model_prefix=prefix, model_type="bpe",
                                       num_threads=1, normalization_rule_name="identity",
                                       shuffle_input_sentence=False, minloglevel=2, **options)
        with open(prefix + ".model", "rb") as f:
            data = f.read()
    with open(path, "wb") as f:
        f.write(data)


def processor(data):
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(data)
    return sp


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def mark_unused(model, ids):
    """Rewrites the top-level ModelProto records, appending type = 5 to the chosen pieces."""
    out, i, piece = bytearray(), 0, 0
    while i < len(model):
        key, j = read_varint(model, i)
        assert key & 7 == 2, "top-level ModelProto fields are all length-delimited"
        n, j = read_varint(model, j)
        body = model[j:j + n]
        if key >> 3 == 1:
            if piece in ids:
                body = body + b"\x18\x05"
            piece += 1
        out += varint(key) + varint(len(body)) + body
        i = j + n
    return bytes(out)


def llama_tokenizer_json(sp, metaspace=False, scheme="first", split=False):
    """transformers' LlamaConverter + SentencePieceExtractor, without transformers."""
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]
    vocab_scores = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0)]
    vocab_scores += [(pieces[i], sp.get_score(i)) for i in range(3, n)]
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for merge, score in dict(vocab_scores).items():
        local = []
        for k in range(1, len(merge)):
            left, right = merge[:k], merge[k:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda x: x[2], reverse=True)
    bpe_vocab = {w: i for i, (w, _) in enumerate(vocab_scores)}
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(ADDED)]
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>",
             "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
             "byte_fallback": True, "vocab": bpe_vocab}
    doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added}
    if metaspace:
        doc["normalizer"] = None
        doc["pre_tokenizer"] = {"type": "Metaspace", "replacement": SPACE,
                                "prepend_scheme": scheme, "split": split}
        model["ignore_merges"] = False
        model["merges"] = [[a, b] for a, b, _ in merges]
    else:
        doc["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]}
        doc["pre_tokenizer"] = None
        model["merges"] = [a + " " + b for a, b, _ in merges]
    doc["post_processor"] = {"type": "TemplateProcessing", "single": [
        {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    doc["decoder"] = None
    doc["model"] = model
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


def split_added(text):
    """AddedVocabulary: leftmost-longest matches of the added tokens in the raw text."""
    parts, b, i = [], 0, 0
    while i < len(text):
        hit = max((a for a in ADDED if text.startswith(a, i)), key=len, default=None)
        if hit is None:
            i += 1
            continue
        if i > b:
            parts.append((b, text[b:i]))
        parts.append((i, ADDED.index(hit)))
        i += len(hit)
        b = i
    if b < len(text):
        parts.append((b, text[b:]))
    return parts


def hf_legacy_ids(sp, text):
    out = []
    for _, p in split_added(text):
        out.extend([p] if isinstance(p, int) else sp.encode(p))
    return out


def hf_metaspace_ids(sp_nodummy, text, scheme="first", split=False):
    out = []
    for off, p in split_added(text):
        if isinstance(p, int):
            out.append(p)
            continue
        q = p.replace(" ", SPACE)
        if (scheme == "always" or (scheme == "first" and off == 0)) and not q.startswith(SPACE):
            q = SPACE + q
        words = [q]
        if split:  # MergedWithNext: every mark starts a new word
            starts = [0] + [i for i, c in enumerate(q) if c == SPACE and i > 0] + [len(q)]
            words = [q[a:b] for a, b in zip(starts, starts[1:])]
        for w in words:
            out.extend(sp_nodummy.encode(w))
    return out


def model_entry(path, sp, data):
    return {"file": os.path.relpath(path, ROOT), "sha256": hashlib.sha256(data).hexdigest(),
            "vocab_size": sp.get_piece_size(), "bos": sp.bos_id(), "eos": sp.eos_id(),
            "ids": [sp.encode(t) for _, t in CORPUS]}


def main():
    retrain = "--retrain" in sys.argv[1:]
    os.makedirs(OUT, exist_ok=True)
    small_path = os.path.join(OUT, "small.model")
    uds_path = os.path.join(OUT, "uds.model")
    if retrain or not os.path.exists(small_path):
        train(small_path, vocab_size=500, byte_fallback=True, split_digits=True,
              add_dummy_prefix=True, remove_extra_whitespaces=False,
              allow_whitespace_only_pieces=True, character_coverage=0.9995)
    nows_path = os.path.join(OUT, "nows.model")
    if retrain or not os.path.exists(nows_path):
        train(nows_path, vocab_size=500, byte_fallback=True, split_digits=True,
              add_dummy_prefix=True, remove_extra_whitespaces=False, split_by_whitespace=False,
              character_coverage=0.9995)
    if retrain or not os.path.exists(uds_path):
        train(uds_path, vocab_size=300, byte_fallback=False, character_coverage=0.98,
              user_defined_symbols=["<sep>", "[MASK]", "ab"], control_symbols=["<ctl>"],
              pad_id=3, unk_id=0, bos_id=1, eos_id=2)

    small = read(small_path)
    sp_small = processor(small)
    # UNUSED pieces: every third multi-character NORMAL piece, marked by appending
    # "type = UNUSED" to its record (a later scalar field wins in protobuf).
    # (SentencePiece's set_vocabulary would also retype the byte pieces.)
    unused_ids = [i for i in range(sp_small.get_piece_size())
                  if i % 3 == 0 and len(sp_small.id_to_piece(i)) > 1 and not sp_small.is_byte(i)
                  and not sp_small.is_control(i) and not sp_small.is_unknown(i)]
    unused = mark_unused(small, set(unused_ids))
    unused_path = os.path.join(OUT, "small_unused.model")
    write(unused_path, unused)
    # add_dummy_prefix off: a second normalizer_spec (field 3) holding add_dummy_prefix = 0.
    patch = b"\x18\x00"
    nodummy = small + b"\x1a" + varint(len(patch)) + patch
    nodummy_path = os.path.join(OUT, "small_nodummy.model")
    write(nodummy_path, nodummy)
    sp_nodummy = processor(nodummy)
    # escape_whitespaces off (field 5 = 0): spaces stay spaces.
    patch = b"\x28\x00"
    noescape = small + b"\x1a" + varint(len(patch)) + patch
    noescape_path = os.path.join(OUT, "small_noescape.model")
    write(noescape_path, noescape)
    legacy_path = os.path.join(OUT, "small.tokenizer.json")
    write(legacy_path, llama_tokenizer_json(sp_small))
    meta_path = os.path.join(OUT, "small.metaspace.tokenizer.json")
    write(meta_path, llama_tokenizer_json(sp_small, metaspace=True))
    write(os.path.join(OUT, "small.metasplit.tokenizer.json"),
          llama_tokenizer_json(sp_small, metaspace=True, scheme="always", split=True))

    nows = read(nows_path)
    sp_nows = processor(nows)
    assert any(SPACE in p[1:].lstrip(SPACE) for p in map(sp_nows.id_to_piece,
                                                          range(sp_nows.get_piece_size())))
    write(os.path.join(OUT, "nows.tokenizer.json"), llama_tokenizer_json(sp_nows))
    models = {"small": model_entry(small_path, sp_small, small),
              "nows": model_entry(nows_path, sp_nows, nows),
              "uds": model_entry(uds_path, processor(read(uds_path)), read(uds_path)),
              "small_unused": model_entry(unused_path, processor(unused), unused),
              "small_nodummy": model_entry(nodummy_path, sp_nodummy, nodummy),
              "small_noescape": model_entry(noescape_path, processor(noescape), noescape)}
    n_unused = sum(processor(unused).is_unused(i) for i in range(sp_small.get_piece_size()))
    assert n_unused == len(unused_ids) > 0
    models["small_unused"]["unused_pieces"] = n_unused
    if os.path.exists(LLAMA):
        llama = read(LLAMA)
        entry = model_entry(LLAMA, processor(llama), llama)
        entry["file"] = "../shared/data/tokenizers/llama/tokenizer.model"
        models["llama"] = entry
    else:
        print("make_tokenizer_refs: %s absent: no LLaMA references" % LLAMA, file=sys.stderr)
    hf = {"small.tokenizer.json": [hf_legacy_ids(sp_small, t) for _, t in CORPUS],
          "nows.tokenizer.json": [hf_legacy_ids(sp_nows, t) for _, t in CORPUS],
          "small.metaspace.tokenizer.json": [hf_metaspace_ids(sp_nodummy, t) for _, t in CORPUS],
          "small.metasplit.tokenizer.json": [hf_metaspace_ids(sp_nodummy, t, "always", True)
                                             for _, t in CORPUS]}
    doc = {"generated_by": "tools/make_tokenizer_refs.py",
           "sentencepiece_version": spm.__version__,
           "corpus": [{"name": n, "text": t} for n, t in CORPUS],
           "models": models, "hf": hf}
    with open(os.path.join(OUT, "refs.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print("make_tokenizer_refs: wrote %s (%d texts, models: %s; %d unused pieces)"
          % (os.path.relpath(OUT, ROOT), len(CORPUS), ", ".join(sorted(models)), n_unused))


if __name__ == "__main__":
    main()
