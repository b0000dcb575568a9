"""Helpers for the scan/diff CLI tests, on top of cks_testlib: running the tools, the
DESIGN §3 drift formulas in numpy, fixture sources with gaps and failures, and comparing
run files with h5py as a user would."""
import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np

from cks_testlib import git_recommit, lfs_object, read_safetensors, run_tests, write_safetensors  # noqa: F401
from cks_testlib import assert_close as close  # noqa: F401

CKPTSCOPE = FIXTURE = None


def init(argv):
    global CKPTSCOPE, FIXTURE
    CKPTSCOPE, FIXTURE = argv[1], argv[2]


def run(args, env=None, check=None, **kw):
    """Runs ckptscope; returns (returncode, stdout, stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([CKPTSCOPE] + args, capture_output=True, text=True, env=e, **kw)
    if check is not None and p.returncode != check:
        raise AssertionError("ckptscope %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
                             % (" ".join(args), p.returncode, check, p.stdout, p.stderr))
    return p.returncode, p.stdout, p.stderr


def fixture(path, *opts):
    subprocess.run([FIXTURE, path] + [str(o) for o in opts], check=True)


def drift(t, r):
    """DESIGN §3 in float64: rel_fro, cos, absmax_delta of W_t against W_r."""
    d = t - r
    nr, nt = np.linalg.norm(r), np.linalg.norm(t)
    return (np.linalg.norm(d) / nr, float(np.sum(t * r)) / (nt * nr), float(np.max(np.abs(d))))


def names(f):
    return [n.decode() for n in f["checkpoints"]["name"]]


def reported(stderr):
    """Checkpoints the scan reported finished (complete) on stderr."""
    return re.findall(r"\] (\S+) \(step -?\d+\): complete", stderr)


def same_file(a, b):
    """Dataset by dataset and attribute by attribute, ignoring analysed_at."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        la, lb = [], []
        fa.visit(la.append)
        fb.visit(lb.append)
        if sorted(la) != sorted(lb):
            raise AssertionError("%s and %s hold different objects:\n%s\n%s" % (a, b, sorted(la), sorted(lb)))
        for obj in [""] + la:
            oa, ob = fa[obj] if obj else fa, fb[obj] if obj else fb
            if dict(oa.attrs) != dict(ob.attrs):
                raise AssertionError("%s: attributes differ: %r vs %r" % (obj or "/", dict(oa.attrs), dict(ob.attrs)))
            if not isinstance(oa, h5py.Dataset):
                continue
            da, db = oa[()], ob[()]
            if da.dtype.names:
                if da.dtype != db.dtype:
                    raise AssertionError("%s: dtypes differ" % obj)
                for field in da.dtype.names:
                    if field == "analysed_at":
                        continue
                    if list(da[field]) != list(db[field]):
                        raise AssertionError("%s.%s differs: %r vs %r" % (obj, field, da[field], db[field]))
            elif da.shape != db.shape or not np.array_equal(da, db, equal_nan=True):
                raise AssertionError("%s differs:\n%r\n%r" % (obj, da, db))


def statuses(path):
    with h5py.File(path, "r") as f:
        return [s.decode() for s in f["checkpoints"]["status"]]


def lfs_gap_source(src):
    """7 checkpoints through Git LFS: ckpt_006's object never written (--lfs-missing-from)
    and ckpt_002's removed, so ckpt_003's previous complete checkpoint is ckpt_001, which
    a shard or an MPI rank must find by looking at its neighbours' files."""
    if not os.path.exists(src):
        fixture(src, "--checkpoints", 7, "--lfs", "--lfs-missing-from", 6)
        os.unlink(lfs_object(src, "ckpt_002"))
    return src


def failed_tensor_source(src):
    """A folder of 6 checkpoints where ckpt_003's weights are truncated (failed) and
    ckpt_004 holds two extra tensors and lacks model.norm.weight (columns appended late).
    Some checkpoints carry lm-eval files (eval_*.json, imported by scan into /evals): one
    with a stderr, later ones without, one on the failed checkpoint."""
    if os.path.exists(src):
        return src
    fixture(src, "--layout", "folder", "--checkpoints", 6)
    evals = {"ckpt_001": {"arc_challenge": {"acc": 0.30, "acc_stderr": 0.01}},
             "ckpt_003": {"arc_challenge": {"acc": 0.32}},
             "ckpt_004": {"arc_challenge": {"acc": 0.35}, "mmlu": {"acc": 0.41}}}
    for name, results in evals.items():
        with open(os.path.join(src, name, "eval_tasks.json"), "w") as f:
            json.dump({"results": results}, f)
    st = os.path.join(src, "ckpt_003", "model.safetensors")
    with open(st, "r+b") as f:
        f.truncate(os.path.getsize(st) // 2)
    p = os.path.join(src, "ckpt_004", "model.safetensors")
    t = read_safetensors(p)
    del t["model.norm.weight"]
    t = {"zz.extra.weight": np.arange(12.0).reshape(3, 4), "aa.extra.bias": np.ones(5), **t}
    write_safetensors(p, t)
    return src


def main(tests):
    """Runs the tests named after the two tool paths on the command line (all when none
    is named), and exits non-zero when one fails."""
    run_tests(tests, sys.argv[3:])
