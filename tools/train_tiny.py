#!/usr/bin/python3
"""Makes the embedded demo run (DESIGN §9): trains a LLaMA-style SentencePiece BPE
tokenizer and a tiny LLaMA-architecture model on the public-domain Jargon File (Debian
package jargon-text), saves ~30 checkpoints dense early and sparse late as branches
ckpt_NNNN of a git repository packed into examples/demo.bundle, writes held-out texts
(in-domain Jargon entries never trained on, the Apache-2.0 license text, libgit2's CC0
example log.c) and the PyTorch reference losses of every checkpoint under the exact
protocol of DESIGN §5 into examples/reference_losses.json, and the training sequences each
checkpoint interval consumed, in LLM360's data release format (JSONL "token_ids"), into
examples/train_data/ beside the 8 duplicated sequences every batch repeats (DUPLICATES, so
that the model memorises them as models memorise repeated text) and a held-out control
file (TRAIN_DATA_README below).

  /usr/bin/python3 tools/train_tiny.py              # remake examples/ (a few minutes)
  /usr/bin/python3 tools/train_tiny.py --check      # remake in a temp dir, compare with examples/
  /usr/bin/python3 tools/train_tiny.py --train-data # only examples/train_data/, by replaying
                                                    # the sampler (seconds; no training)

Deterministic: fixed seed, one torch thread, deterministic algorithms, sentencepiece with
one thread on input in file order, git commits with fixed names and dates. Bit-identical
results need the same CPU kernels (OPENBLAS_CORETYPE, torch build) as the run recorded.
"""

import argparse
import collections
import gzip
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyllama as tl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---- data sources (Debian packages) ----
JARGON = "/usr/share/doc/jargon-text/jargon.txt.gz"          # jargon-text, public domain
APACHE = "/usr/share/common-licenses/Apache-2.0"              # base-files
LOG_C = "/usr/share/doc/libgit2-dev/examples/log.c"           # libgit2-dev, CC0-1.0
HELDOUT_FIRST_ENTRY = ":M:"      # the in-domain held-out set starts at this lexicon entry
HELDOUT_MIN_BYTES = 12000        # ... and takes whole entries until at least this size

# ---- tokenizer: LLaMA's trainer_spec, smaller vocabulary ----
PIECES = 750

# ---- model (LlamaConfig fields); vocab padded past the tokenizer like K2's 32032 ----
MODEL = dict(vocab_size=768, hidden_size=56, intermediate_size=144, num_hidden_layers=4,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
             rms_norm_eps=1e-6, rope_theta=20000.0, initializer_range=0.02)

# ---- optimisation ----
TRAIN = dict(seed=1234, steps=1920, batch=16, ctx=128, lr=3e-3, min_lr=3e-4, warmup=64,
             beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, grad_clip=1.0)
BIN_STEP = 960          # this checkpoint is stored as pytorch_model.bin, the rest safetensors
TRAIN_DATA_PER_STEP = 1  # sequences of each step's batch recorded in train_data/ (the first)
# Duplicated training sequences, as real corpora hold them (boilerplate, licences, repeated
# pages; Biderman et al. 2023 find memorisation concentrated on them): the opening window
# of DUPLICATES documents of the training text, evenly spaced through it, fills the last
# slot of every step's batch in turn (step s takes duplicate (s - 1) % DUPLICATES), so each
# is trained on steps // DUPLICATES times, spread evenly over the run. The sampler still
# draws that slot's window (and discards it), so the other windows are the same draws.
DUPLICATES = 8
PER_TOKEN_SETTINGS = [(128, 64), (128, 128)]   # (ctx, stride) with per-token losses recorded

GIT_NAME, GIT_EMAIL = "ckptscope demo", "demo@ckptscope.invalid"
GIT_EPOCH = 1704067200  # 2024-01-01T00:00:00Z; checkpoint k is committed an hour later each


def log(msg):
    print("train_tiny: " + msg, file=sys.stderr, flush=True)


def checkpoint_steps(total):
    """0, 1, 2, 4, ..., 64 (dense early, as Pythia), then every 96 to the end."""
    steps, s = [0], 1
    while s <= 64:
        steps.append(s)
        s *= 2
    steps += list(range(96, total + 1, 96))
    if steps[-1] != total:
        steps.append(total)
    return steps


# ---------------------------------------------------------------------------------------
# Corpus


def read_sources():
    for path in (JARGON, APACHE, LOG_C):
        if not os.path.exists(path):
            sys.exit("train_tiny: %s is missing: run tools/setup-deps.sh --train" % path)
    with gzip.open(JARGON, "rb") as f:
        jargon = f.read().decode("utf-8")
    with open(APACHE, "rb") as f:
        apache = f.read().decode("utf-8")
    with open(LOG_C, "rb") as f:
        log_c = f.read().decode("utf-8")
    return jargon, apache, log_c


def split_jargon(text):
    """Returns (training lines, held-out in-domain text). The Jargon File's lines are
    indented by three spaces, which are removed; the glossary's bare list of headwords
    (between the 'Glossary' heading and the first entry) is dropped. The held-out set is
    whole lexicon entries from HELDOUT_FIRST_ENTRY on, at least HELDOUT_MIN_BYTES."""
    lines = [ln[3:] if ln.startswith("   ") else ln for ln in text.split("\n")]
    first_entry = next(i for i, ln in enumerate(lines) if ln.startswith(":(TM):"))
    glossary = max(i for i in range(first_entry) if lines[i] == "Glossary")
    lines = lines[:glossary] + lines[first_entry:]
    h0 = next(i for i, ln in enumerate(lines) if ln.startswith(HELDOUT_FIRST_ENTRY))
    h1, size = h0 + 1, len(lines[h0].encode()) + 1
    while size < HELDOUT_MIN_BYTES or not lines[h1].startswith(":"):
        size += len(lines[h1].encode()) + 1
        h1 += 1
    held = "\n".join(lines[h0:h1]).rstrip("\n") + "\n"
    return lines[:h0] + lines[h1:], held


def documents(lines):
    """Training documents: each lexicon entry, and the prose around them in pieces of
    about 2 KB cut at blank lines."""
    docs, cur, size = [], [], 0
    for ln in lines:
        if (ln.startswith(":") or (ln == "" and size >= 2000)) and cur:
            docs.append(cur)
            cur, size = [], 0
        cur.append(ln)
        size += len(ln) + 1
    docs.append(cur)
    out = ["\n".join(d).strip("\n") + "\n" for d in docs]
    return [d for d in out if d.strip()]


# ---------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(lines):
    """LLaMA's trainer_spec (model_type BPE, byte_fallback, split_digits, identity
    normalisation, dummy prefix, whitespace kept, whitespace-only pieces allowed, unk/bos/eos
    = 0/1/2, no pad), with PIECES pieces, one thread, input in file order."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([ln for ln in lines if ln.strip()]), model_writer=model,
        model_type="bpe", vocab_size=PIECES, character_coverage=0.99995,
        byte_fallback=True, split_digits=True, split_by_unicode_script=True,
        split_by_whitespace=True, split_by_number=True, max_sentencepiece_length=16,
        add_dummy_prefix=True, remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, normalization_rule_name="identity",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, input_sentence_size=0,
        shuffle_input_sentence=False, max_sentence_length=4192, num_threads=1,
        vocabulary_output_piece_score=True, hard_vocab_limit=True, minloglevel=2)
    return model.getvalue()


# ---------------------------------------------------------------------------------------
# Training


def lr_at(step):
    """Learning rate of update number `step` (1-based): linear warm-up, cosine to min_lr."""
    t = TRAIN
    if step <= t["warmup"]:
        return t["lr"] * step / t["warmup"]
    frac = (step - t["warmup"]) / (t["steps"] - t["warmup"])
    return t["min_lr"] + 0.5 * (t["lr"] - t["min_lr"]) * (1 + math.cos(math.pi * frac))


def train(cfg, stream, on_checkpoint, offsets=None, batch_hook=None, dups=None):
    """AdamW on random windows of the token stream; calls on_checkpoint(step, params,
    train_loss) at every checkpoint step (0 = the initialisation). When offsets is a list,
    each step's window offsets are appended to it (what the sampler drew; recording them
    draws nothing). dups ([DUPLICATES, ctx + 1], duplicate_windows()) fills the last slot
    of every batch in turn. batch_hook(step, seq) may return another [batch, ctx + 1]
    batch for the step (tools/memo_probe.py's canaries; the demo passes none, and the
    sampler draws the same either way)."""
    t = TRAIN
    gen = torch.Generator().manual_seed(t["seed"])
    params = tl.init_params(cfg, gen)
    for p in params.values():
        p.requires_grad_(True)
    decay = [p for n, p in params.items() if p.dim() == 2]
    no_decay = [p for n, p in params.items() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=t["lr"], betas=(t["beta1"], t["beta2"]), eps=t["eps"])
    wanted = set(checkpoint_steps(t["steps"]))
    on_checkpoint(0, params, None)
    ctx, n = t["ctx"], len(stream)
    idx = torch.arange(ctx + 1)
    ema, t0 = None, time.time()
    for step in range(1, t["steps"] + 1):
        off = torch.randint(0, n - ctx - 1, (t["batch"],), generator=gen)
        if offsets is not None:
            offsets.append(off.tolist())
        seq = stream[off[:, None] + idx]
        if dups is not None:
            seq[t["batch"] - 1] = dups[(step - 1) % len(dups)]
        if batch_hook is not None:
            seq = batch_hook(step, seq)
        logits = tl.forward(cfg, params, seq[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size),
                                                 seq[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), t["grad_clip"])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.step()
        lv = loss.item()
        ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        if step % 64 == 0:
            log("step %d/%d loss %.4f (ema %.4f) lr %.2e, %.0f s"
                % (step, t["steps"], lv, ema, lr_at(step), time.time() - t0))
        if step in wanted:
            on_checkpoint(step, params, lv)


def duplicate_windows(stream):
    """The duplicated sequences: the first ctx + 1 tokens ([BOS] + ids) of DUPLICATES
    documents of the training stream long enough to fill them, evenly spaced among those
    documents. Returns (offsets into the stream, [DUPLICATES, ctx + 1] tensor)."""
    width = TRAIN["ctx"] + 1
    starts = (stream == 1).nonzero().flatten().tolist() + [len(stream)]
    long = [a for a, b in zip(starts, starts[1:]) if b - a >= width]
    offs = [long[(2 * i + 1) * len(long) // (2 * DUPLICATES)] for i in range(DUPLICATES)]
    return offs, torch.stack([stream[o:o + width] for o in offs])


def replay_offsets(cfg, n):
    """The window offsets of every training step, [steps][batch], drawn as train() draws
    them: the same generator, seeded the same, after the same initialisation draws. No
    model is trained; run() checks that the replay equals what training recorded."""
    t = TRAIN
    gen = torch.Generator().manual_seed(t["seed"])
    tl.init_params(cfg, gen)
    return [torch.randint(0, n - t["ctx"] - 1, (t["batch"],), generator=gen).tolist()
            for _ in range(t["steps"])]


# ---------------------------------------------------------------------------------------
# Training data as LLM360 releases it (JSONL "token_ids"), per checkpoint interval

TRAIN_DATA_README = """# Training sequences of the demo run

LLM360's data release format: JSONL, one JSON object per line with `token_ids` (the ids of
one training sequence as the model saw it, BOS included where the window holds one).
Written by tools/train_tiny.py, which replays the training's sampler (the checkpoints are
not changed; `--check` remakes everything and compares).

- `ckpt_NNNN.jsonl.gz`: the sequences consumed between the previous checkpoint and
  `ckpt_NNNN`, i.e. by training steps (previous step + 1) ... NNNN, in training order:
  of each step's batch of %(batch)d windows of %(width)d tokens (random offsets into the
  %(tokens)s-token training stream) the first %(per_step)s. Each line also has `step` (the
  training step) and `offset` (the window's start in the training stream).
- `heldout.jsonl.gz`: the control: the in-domain held-out text (`heldout/jargon_heldout.txt`,
  never trained on), `[BOS] + ids` cut into consecutive windows of %(width)d tokens (the
  last partial window dropped), in the same format (`step` null, `offset` the start in that
  stream).

- `duplicated.jsonl.gz`: the duplicated sequences, as real corpora hold them
  (boilerplate, licences, pages crawled twice): the first %(width)d tokens of %(ndup)d
  training documents (`[BOS] + ids`, evenly spaced through the training text), which fill
  the last slot of every step's batch in turn, so each was trained on %(repeats)d times,
  spread evenly over the run, besides the few times random windows cover it. Each line
  has `offset` (its start in the training stream), `duplicate` (its index i),
  `first_step` (i + 1), `every` (%(ndup)d: the steps between repetitions) and `repeats`.

Every sequence has %(width)d tokens, so any prompt k and continuation l with k + l <= %(width)d
fit (Analysis360's k = l = 32 by default).

## What the demo model memorises

Memorisation at Analysis360's k = l = 32 (DESIGN §3; PyTorch greedy generation on the
stored bf16 weights, `tools/demo_fs_ref.py`, which also gives the KL divergence of each
checkpoint's next-token distributions from the previous checkpoint's on
`heldout/jargon_heldout.txt`, ctx 128, stride 64):

| step | duplicated token_match | full_match | prefix_match | ckpt_0096 (seen once) token_match | heldout token_match | KL to previous (nats) | top-1 agreement |
|-----:|------:|------:|------:|------:|------:|-------:|------:|
|    0 | 0.000 | 0.000 | 0.000 | 0.001 | 0.001 |      - |     - |
|   96 | 0.027 | 0.000 | 0.000 | 0.049 | 0.044 | 0.3502 | 0.304 |
|  192 | 0.023 | 0.000 | 0.016 | 0.019 | 0.010 | 0.6088 | 0.359 |
|  384 | 0.074 | 0.000 | 0.062 | 0.029 | 0.018 | 0.3317 | 0.482 |
|  576 | 0.184 | 0.000 | 0.176 | 0.037 | 0.020 | 0.3085 | 0.520 |
|  672 | 0.223 | 0.000 | 0.223 | 0.027 | 0.020 | 0.2904 | 0.533 |
|  768 | 0.355 | 0.125 | 0.328 | 0.026 | 0.028 | 0.2956 | 0.541 |
|  864 | 0.867 | 0.625 | 0.867 | 0.023 | 0.018 | 0.2690 | 0.570 |
|  960 | 0.957 | 0.750 | 0.957 | 0.025 | 0.016 | 0.2468 | 0.579 |
| 1152 | 1.000 | 1.000 | 1.000 | 0.029 | 0.027 | 0.1959 | 0.641 |
| 1536 | 1.000 | 1.000 | 1.000 | 0.030 | 0.025 | 0.0948 | 0.733 |
| 1920 | 1.000 | 1.000 | 1.000 | 0.029 | 0.025 | 0.0439 | 0.805 |

The duplicated sequences go from chance to reproduced verbatim between steps 384 and
1152 (about 48 to 144 repetitions each); sequences seen once (`ckpt_0096`, steps 65-96)
and the held-out control stay at 0.01-0.05 token_match, never a full match: a model of
0.2 M parameters memorises what it sees many times, not what it sees once (Biderman et
al. 2023; before the duplicates were added, 64 repetitions of a held-out window left it at
the control's level). The KL divergence to the previous checkpoint peaks at step 192 and
shrinks as the learning rate decays (cosine to 3e-4), ten-fold by step 1920.
"""


def gz_bytes(text):
    """gzip with no name and mtime 0: the same bytes for the same text."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as f:
        f.write(text.encode())
    return buf.getvalue()


def write_train_data(out_dir, stream, offsets, held_ids, dup_offsets):
    """examples/train_data/: one file per checkpoint interval, the duplicated sequences and
    the held-out control."""
    d = os.path.join(out_dir, "train_data")
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    width, steps = TRAIN["ctx"] + 1, checkpoint_steps(TRAIN["steps"])
    width_name = max(3, len(str(TRAIN["steps"])))
    for a, b in zip(steps, steps[1:]):
        lines = []
        for step in range(a + 1, b + 1):
            for off in offsets[step - 1][:TRAIN_DATA_PER_STEP]:
                lines.append(json.dumps({"token_ids": stream[off:off + width].tolist(),
                                         "step": step, "offset": off}))
        with open(os.path.join(d, "ckpt_%0*d.jsonl.gz" % (width_name, b)), "wb") as f:
            f.write(gz_bytes("\n".join(lines) + "\n"))
    steps_total = TRAIN["steps"]
    lines = [json.dumps({"token_ids": stream[o:o + width].tolist(), "offset": o,
                         "duplicate": i, "repeats": len(range(i + 1, steps_total + 1, len(dup_offsets))),
                         "first_step": i + 1, "every": len(dup_offsets)})
             for i, o in enumerate(dup_offsets)]
    with open(os.path.join(d, "duplicated.jsonl.gz"), "wb") as f:
        f.write(gz_bytes("\n".join(lines) + "\n"))
    lines = [json.dumps({"token_ids": held_ids[o:o + width], "step": None, "offset": o})
             for o in range(0, len(held_ids) - width + 1, width)]
    with open(os.path.join(d, "heldout.jsonl.gz"), "wb") as f:
        f.write(gz_bytes("\n".join(lines) + "\n"))
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write(TRAIN_DATA_README % {"batch": TRAIN["batch"], "width": width,
                                     "tokens": "{:,}".format(len(stream)),
                                     "per_step": TRAIN_DATA_PER_STEP,
                                     "ndup": len(dup_offsets),
                                     "repeats": TRAIN["steps"] // len(dup_offsets)})
    log("train_data: %d intervals, %d sequences per step recorded, %d held-out sequences"
        % (len(steps) - 1, TRAIN_DATA_PER_STEP, len(lines)))


# ---------------------------------------------------------------------------------------
# Checkpoint files and the git repository


def config_json(cfg):
    d = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
         "hidden_act": "silu", "attention_bias": False, "pretraining_tp": 1,
         "rope_scaling": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
         "bos_token_id": 1, "eos_token_id": 2, "use_cache": True}
    d.update(MODEL)
    return (json.dumps(d, indent=2, sort_keys=True) + "\n").encode()


def tokenizer_config_json():
    d = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
         "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
         "clean_up_tokenization_spaces": False, "legacy": True,
         "model_max_length": MODEL["max_position_embeddings"], "sp_model_kwargs": {},
         "tokenizer_class": "LlamaTokenizer"}
    return (json.dumps(d, indent=2, sort_keys=True) + "\n").encode()


def weight_file(cfg, params, as_bin):
    """bf16 weights in HF order: (file name, bytes)."""
    sd = collections.OrderedDict(
        (name, params[name].detach().to(torch.bfloat16)) for name, _ in tl.tensor_shapes(cfg))
    if as_bin:
        # torch names the zip records after the file name; save to a real path so the
        # archive matches what save_pretrained writes ("pytorch_model/data.pkl", ...).
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "pytorch_model.bin")
            torch.save(sd, path)
            with open(path, "rb") as f:
                return "pytorch_model.bin", f.read()
    return "model.safetensors", tl.safetensors_bytes(list(sd.items()))


def git(repo, *args, stdin=None, date=None):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": repo, "LC_ALL": "C",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_AUTHOR_NAME": GIT_NAME, "GIT_AUTHOR_EMAIL": GIT_EMAIL,
           "GIT_COMMITTER_NAME": GIT_NAME, "GIT_COMMITTER_EMAIL": GIT_EMAIL}
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = "@%d +0000" % date
    r = subprocess.run(["git", "-C", repo] + list(args), input=stdin, env=env,
                       stdout=subprocess.PIPE, check=True)
    return r.stdout.decode().strip()


def git_commit_files(repo, files, parent, message, date):
    """Commits files ({path: bytes}, top-level only) as a tree; returns the commit id."""
    entries = []
    for path in sorted(files):
        blob = git(repo, "hash-object", "-w", "--stdin", stdin=files[path])
        entries.append("100644 blob %s\t%s" % (blob, path))
    tree = git(repo, "mktree", stdin=("\n".join(entries) + "\n").encode())
    args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
    return git(repo, *args, date=date)


REPO_README = b"""# ckptscope demo run

Checkpoints of a tiny LLaMA-architecture model trained by ckptscope's tools/train_tiny.py
on the Jargon File. One branch per checkpoint, `ckpt_NNNN` (NNNN = training step), each
holding config.json, tokenizer.model, tokenizer_config.json and bf16 weights
(model.safetensors, or pytorch_model.bin for one checkpoint), laid out like LLM360's K2.
"""


def build_repo(repo, ckpts):
    """ckpts: list of (name, files, message). main holds a README; each checkpoint branch is
    one commit on top of it. Returns {name: commit}."""
    os.makedirs(repo)
    git(repo, "init", "-q", "--initial-branch=main")
    main = git_commit_files(repo, {"README.md": REPO_README}, None,
                            "ckptscope demo run", GIT_EPOCH)
    git(repo, "update-ref", "refs/heads/main", main)
    commits = {}
    for k, (name, files, message) in enumerate(ckpts):
        files = dict(files, **{"README.md": REPO_README})
        c = git_commit_files(repo, files, main, message, GIT_EPOCH + 3600 * (k + 1))
        git(repo, "update-ref", "refs/heads/" + name, c)
        commits[name] = c
    return commits


def make_bundle(repo, path):
    # One pack thread so the bundle's bytes do not depend on scheduling.
    git(repo, "-c", "pack.threads=1", "-c", "pack.compression=9", "bundle", "create", "-q",
        path, "--all")


# ---------------------------------------------------------------------------------------
# Evaluation (DESIGN §5) of the files as stored


def load_weights(name, data):
    """f32 tensors from a stored weight file's bytes: bf16 widened exactly."""
    if name == "model.safetensors":
        return tl.read_safetensors_f32(data)
    sd = torch.load(io.BytesIO(data), map_location="cpu")
    return {k: v.float() for k, v in sd.items()}


def ids_sha256(ids):
    return hashlib.sha256(np.asarray(ids, dtype="<u4").tobytes()).hexdigest()


def short(v):
    """The shortest decimal that reads back as the same float32 (per-token losses)."""
    return float(repr(np.float32(v)))


def evaluate(cfg, weights, sets, ctx, stride):
    """{set: per-token NLL list} for documents sets[name]['doc'] (BOS included)."""
    return {s["name"]: tl.score_document(cfg, weights, s["doc"], ctx, stride) for s in sets}


# ---------------------------------------------------------------------------------------


def prepare(out_dir):
    """Reads the sources, trains the tokenizer, writes the held-out texts. Returns the
    tokenizer bytes, its processor, the training token stream (a document at a time, each
    [BOS] + ids) with its document and byte counts, and the held-out sets."""
    jargon, apache, log_c = read_sources()
    train_lines, held = split_jargon(jargon)
    t0 = time.time()
    tok_bytes = train_tokenizer(train_lines)
    sp = spm.SentencePieceProcessor(model_proto=tok_bytes)
    assert sp.get_piece_size() == PIECES and sp.bos_id() == 1 and sp.eos_id() == 2
    log("tokenizer: %d pieces in %.1f s" % (PIECES, time.time() - t0))

    docs = documents(train_lines)
    stream = []
    for d in docs:
        stream += [sp.bos_id()] + sp.encode(d)
    text_bytes = sum(len(d.encode()) for d in docs)
    log("training text: %d documents, %d bytes, %d tokens" % (len(docs), text_bytes, len(stream)))

    os.makedirs(os.path.join(out_dir, "heldout"), exist_ok=True)
    sets = []
    for name, text, desc in [
            ("jargon_heldout", held, "in-domain: Jargon File 4.4.7 entries never trained on"),
            ("apache_license", apache, "out-of-domain legal text: the Apache License 2.0"),
            ("libgit2_log_c", log_c, "out-of-domain C source: libgit2's examples/log.c")]:
        raw = text.encode("utf-8")
        with open(os.path.join(out_dir, "heldout", name + ".txt"), "wb") as f:
            f.write(raw)
        ids = sp.encode(text)
        sets.append({"name": name, "file": "heldout/%s.txt" % name, "description": desc,
                     "bytes": len(raw), "sha256": tl.sha256_hex(raw), "token_count": len(ids),
                     "token_ids_sha256": ids_sha256(ids), "token_ids": ids,
                     "doc": [sp.bos_id()] + ids})
    corpus = {"documents": len(docs), "text_bytes": text_bytes, "tokens": len(stream)}
    return tok_bytes, sp, torch.tensor(stream, dtype=torch.int64), corpus, sets


def make_checkpoints(cfg, tok_bytes, stream, offsets=None, dups=None):
    """Trains; returns [(name, {file: bytes}, commit message, training loss)]."""
    ckpts = []
    width = max(3, len(str(TRAIN["steps"])))
    fixed = {"config.json": config_json(cfg), "tokenizer.model": tok_bytes,
             "tokenizer_config.json": tokenizer_config_json()}

    def on_checkpoint(step, params, loss):
        name = "ckpt_%0*d" % (width, step)
        wname, wbytes = weight_file(cfg, params, step == BIN_STEP)
        msg = "%s: step %d of %d" % (name, step, TRAIN["steps"])
        if loss is not None:
            msg += ", training loss %.4f" % loss
        ckpts.append((name, dict(fixed, **{wname: wbytes}), msg, loss))

    train(cfg, stream, on_checkpoint, offsets, dups=dups)
    return ckpts


def evaluate_all(cfg, ckpts, commits, sets):
    """Reference losses of every checkpoint, read back from its stored weight file, and
    per-token losses of the last one under PER_TOKEN_SETTINGS."""
    ctx, stride = TRAIN["ctx"], TRAIN["ctx"] // 2
    results, per_token = [], []
    for name, files, _, train_loss in ckpts:
        wname = "pytorch_model.bin" if "pytorch_model.bin" in files else "model.safetensors"
        weights = load_weights(wname, files[wname])
        losses = evaluate(cfg, weights, sets, ctx, stride)
        results.append({
            "name": name, "step": int(name.split("_")[1]), "commit": commits[name],
            "format": "pytorch" if wname.endswith(".bin") else "safetensors",
            "train_loss": train_loss,
            "files": {f: tl.sha256_hex(b) for f, b in sorted(files.items())},
            "sets": [dict({"name": s["name"]}, **tl.summarize(losses[s["name"]], s["bytes"]))
                     for s in sets]})
        log("%s: %s" % (name, "  ".join("%s nll %.4f" % (r["name"], r["nll"])
                                         for r in results[-1]["sets"])))
        if name != ckpts[-1][0]:
            continue
        for c, st in PER_TOKEN_SETTINGS:
            pl = losses if (c, st) == (ctx, stride) else evaluate(cfg, weights, sets, c, st)
            per_token.append({
                "checkpoint": name, "ctx": c, "stride": st, "bos": True,
                "sets": [dict({"name": s["name"]}, **tl.summarize(pl[s["name"]], s["bytes"]),
                              token_nll=[short(v) for v in pl[s["name"]]]) for s in sets]})
    return results, per_token


def run(out_dir, work):
    t_start = time.time()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tok_bytes, sp, stream, corpus, sets = prepare(out_dir)
    cfg = tl.Config(**MODEL)

    t0 = time.time()
    drawn = []
    dup_offsets, dups = duplicate_windows(stream)
    ckpts = make_checkpoints(cfg, tok_bytes, stream, drawn, dups)
    train_seconds = time.time() - t0
    log("trained %d steps in %.0f s" % (TRAIN["steps"], train_seconds))
    if replay_offsets(cfg, len(stream)) != drawn:
        sys.exit("train_tiny: the sampler's replay differs from what training drew")
    write_train_data(out_dir, stream, drawn, sets[0]["doc"], dup_offsets)

    repo = os.path.join(work, "repo")
    commits = build_repo(repo, [(n, f, m) for n, f, m, _ in ckpts])
    make_bundle(repo, os.path.join(out_dir, "demo.bundle"))

    t0 = time.time()
    results, per_token = evaluate_all(cfg, ckpts, commits, sets)
    eval_seconds = time.time() - t0

    ref = {
        "format": "ckptscope-demo-reference", "format_version": 1,
        "made_by": "tools/train_tiny.py", "protocol": "DESIGN.md section 5",
        "computed_with": "PyTorch %s, float32 arithmetic on the stored bf16 weights widened "
                         "exactly; per-token NLL in float32, sums in float64" % torch.__version__,
        "ctx": TRAIN["ctx"], "stride": TRAIN["ctx"] // 2, "bos": True, "bos_id": sp.bos_id(),
        "tokenizer_pieces": PIECES, "vocab_size": MODEL["vocab_size"],
        "tokenizer_sha256": tl.sha256_hex(tok_bytes),
        "model": dict(MODEL, parameters=tl.count_params(cfg)),
        "training": dict(TRAIN, checkpoint_steps=checkpoint_steps(TRAIN["steps"]),
                         pytorch_bin_step=BIN_STEP, torch_threads=1,
                         duplicates=DUPLICATES, duplicate_offsets=dup_offsets, **corpus),
        "token_ids_encoding": "sha256 of the ids (no BOS) as little-endian uint32",
        "sets": [{k: v for k, v in s.items() if k != "doc"} for s in sets],
        "checkpoints": results,
        "per_token": per_token,
    }
    write_json(os.path.join(out_dir, "reference_losses.json"), ref)
    log("trained in %.0f s, evaluated %d checkpoints in %.0f s; whole run %.0f s"
        % (train_seconds, len(ckpts), eval_seconds, time.time() - t_start))
    return ref


def write_json(path, obj):
    """Indented JSON, but every list of numbers on one line (token ids, losses)."""
    def enc(o, ind):
        pad = "  " * ind
        if isinstance(o, dict):
            if not o:
                return "{}"
            items = ['%s  %s: %s' % (pad, json.dumps(k), enc(v, ind + 1)) for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, list) and o and all(isinstance(x, (dict, list)) for x in o):
            return "[\n" + ",\n".join(pad + "  " + enc(x, ind + 1) for x in o) + "\n" + pad + "]"
        return json.dumps(o, separators=(", ", ": "))
    with open(path, "w") as f:
        f.write(enc(obj, 0) + "\n")


def compare(new_dir, old_dir):
    """The --check verdict: same files, same commits, same tokenizer, same weights."""
    bad = []

    def listing(d, sub):
        p = os.path.join(d, sub)
        return {sub + "/" + f for f in os.listdir(p)} if os.path.isdir(p) else set()
    rels = ["demo.bundle", "reference_losses.json"] + sorted(
        listing(old_dir, "heldout") | listing(new_dir, "heldout")) + sorted(
        listing(old_dir, "train_data") | listing(new_dir, "train_data"))
    for rel in rels:
        a, b = os.path.join(new_dir, rel), os.path.join(old_dir, rel)
        ha = tl.sha256_hex(open(a, "rb").read()) if os.path.exists(a) else "missing"
        hb = tl.sha256_hex(open(b, "rb").read()) if os.path.exists(b) else "missing"
        print("%s  %s  %s" % ("same" if ha == hb else "DIFF", hb[:16], rel))
        if ha != hb:
            bad.append(rel)
    new = json.load(open(os.path.join(new_dir, "reference_losses.json")))
    old = json.load(open(os.path.join(old_dir, "reference_losses.json")))
    if new["tokenizer_sha256"] != old["tokenizer_sha256"]:
        bad.append("tokenizer.model")
    for a, b in zip(new["checkpoints"], old["checkpoints"]):
        if a["files"] != b["files"] or a["commit"] != b["commit"]:
            bad.append(a["name"])
    print("tokenizer.model %s; %d checkpoints, weights %s"
          % ("same" if new["tokenizer_sha256"] == old["tokenizer_sha256"] else "DIFF",
             len(old["checkpoints"]),
             "same" if not [x for x in bad if x.startswith("ckpt_")] else "DIFF"))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "examples"),
                    help="output folder (default: examples/ of this checkout)")
    ap.add_argument("--check", action="store_true",
                    help="remake everything in a temporary folder and compare it, byte for "
                         "byte, with --out; exit 1 on any difference")
    ap.add_argument("--train-data", action="store_true",
                    help="write only --out/train_data/, replaying the sampler without training")
    args = ap.parse_args()
    t0 = time.time()
    if args.train_data:
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory(prefix="train_tiny.") as work:
            _, _, stream, _, sets = prepare(work)
        write_train_data(args.out, stream, replay_offsets(tl.Config(**MODEL), len(stream)),
                         sets[0]["doc"], duplicate_windows(stream)[0])
        print("train_tiny: wrote %s/train_data in %.0f s" % (args.out, time.time() - t0))
        return 0
    with tempfile.TemporaryDirectory(prefix="train_tiny.") as work:
        if args.check:
            new = os.path.join(work, "out")
            os.makedirs(new)
            run(new, work)
            bad = compare(new, args.out)
            print("check: %s in %.0f s" % ("identical" if not bad else "DIFFERENT: " + ", ".join(bad),
                                           time.time() - t0))
            return 1 if bad else 0
        os.makedirs(args.out, exist_ok=True)
        stale = os.path.join(args.out, "heldout")
        if os.path.isdir(stale):
            shutil.rmtree(stale)
        run(args.out, work)
    print("train_tiny: wrote %s in %.0f s" % (args.out, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
