"""`mpirun -n P ckptscope scan` (the -DCKPTSCOPE_MPI=ON build) against the same binary's
single-process scan: the run files are equal dataset by dataset (h5py, ignoring
analysed_at) for P = 1, 2, 3, with incomplete, failed and late-appearing tensors; a
checkpoint a worker cannot read is recorded failed and the others complete; a job killed
on rank 0 or on a worker, or interrupted, leaves a file that --resume under MPI
completes; --resume after a re-uploaded checkpoint re-analyses what the serial
--resume does; and the kl family, whose ranks recompute the bases they did not evaluate,
gives the serial file.
usage: test_mpi.py CKPTSCOPE CKS_FIXTURE MPIEXEC [TEST...]"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scan_support as S  # noqa: E402

MPIEXEC = sys.argv[3]
del sys.argv[3]  # S.main reads the test names after the two tool paths
S.init(sys.argv)
TMP = tempfile.mkdtemp(prefix="cks-mpi-")
ENV = {}
if os.geteuid() == 0:  # CI runs as root; Open MPI refuses that unless told
    ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
ARGS = ["--threads", "1"]


def tmp(name):
    return os.path.join(TMP, name)


def mpi(n, args, env=None, check=None):
    """Runs `mpirun -n N ckptscope ARGS`; returns (returncode, stderr)."""
    e = dict(os.environ, **ENV)
    e.update(env or {})
    cmd = [MPIEXEC, "--oversubscribe", "-n", str(n), S.CKPTSCOPE] + args
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=300)
    if check is not None and p.returncode != check:
        raise AssertionError("%s: exit %d, expected %d\n%s" % (" ".join(cmd), p.returncode, check,
                                                              p.stderr))
    return p.returncode, p.stderr


def single(src, name, *extra, check=0):
    out = tmp(name)
    if not os.path.exists(out):
        S.run(["scan", src, "-o", out, "--quiet"] + ARGS + list(extra), check=check)
    return out


def test_same_file_1_2_3_ranks():
    for src, code in ((S.lfs_gap_source(tmp("lfs7")), 0), (S.failed_tensor_source(tmp("failed6")), 2)):
        ref = single(src, os.path.basename(src) + "-single.h5", check=code)
        for n in (1, 2, 3):
            out = tmp("%s-mpi%d.h5" % (os.path.basename(src), n))
            _, err = mpi(n, ["scan", src, "-o", out] + ARGS, check=code)
            if n > 1:
                assert re.search(r"ckpt_001 \(step 1\): complete, 21 tensors, .* on rank [12]", err), err
            S.same_file(out, ref)


def test_memorization_same_file():
    """The memorization family (uint8 /memo/<set>/full rows on the wire) from 3 ranks."""
    src = S.lfs_gap_source(tmp("lfs7"))
    train = tmp("train.jsonl")
    rs = np.random.RandomState(5)
    with open(train, "w") as f:
        for i in range(22):
            f.write('{"token_ids": [%s]}\n' % ", ".join(map(str, rs.randint(0, 256, 70))))
    memo = ["--metrics", "norms,memorization", "--train-data", train, "--samples", "12"]
    ref = single(src, "memo-single.h5", *memo)
    out = tmp("memo-mpi3.h5")
    mpi(3, ["scan", src, "-o", out] + ARGS + memo, check=0)
    S.same_file(out, ref)


def test_failing_rank():
    src = S.failed_tensor_source(tmp("failed6"))
    out = tmp("failing.h5")
    _, err = mpi(3, ["scan", src, "-o", out] + ARGS, check=2)
    assert re.search(r"error: ckpt_003 failed on rank [12]: .*ckpt_003.*model.safetensors", err), err
    assert "6 checkpoints: 6 analysed (5 complete, 0 incomplete, 1 failed)" in err, err
    assert S.statuses(out) == ["complete"] * 3 + ["failed"] + ["complete"] * 2


def test_resume_after_kills():
    src = S.lfs_gap_source(tmp("lfs7"))
    ref = single(src, "lfs7-single.h5")
    # rank 0 killed once its third checkpoint is saved: the job ends, the file holds three
    for where, env in (("rank 0", {"CKS_TEST_KILL_AT": "committed:3"}),
                       ("a worker", {"CKS_TEST_KILL_AT": "tensor:30"})):
        out = tmp("killed.h5")
        if os.path.exists(out):
            os.unlink(out)
        code, err = mpi(3, ["scan", src, "-o", out] + ARGS, env=env)
        assert code != 0, (where, err)
        with h5py.File(out, "r") as f:
            held = S.names(f)
        if where == "rank 0":
            assert held == ["ckpt_000", "ckpt_001", "ckpt_002"], held
        assert len(held) < 7, (where, held)
        _, err = mpi(3, ["scan", src, "-o", out, "--resume"] + ARGS, check=0)
        assert err.count("already complete") == sum(s == "complete" for s in S.statuses(ref)[:len(held)]), err
        S.same_file(out, ref)
        assert not os.path.exists(out + ".tmp") and not os.path.exists(out + ".lock"), where


def test_interrupted_job():
    # SIGTERM to mpirun once the first checkpoint is written; Open MPI forwards it to the
    # ranks about a second later, so each tensor is slowed down by the test hook (7
    # checkpoints take ~3.5 s) to be in the middle of the scan then
    src = S.lfs_gap_source(tmp("lfs7"))
    ref = single(src, "lfs7-single.h5")
    out = tmp("term.h5")
    e = dict(os.environ, CKS_TEST_TENSOR_DELAY_MS="40", **ENV)
    p = subprocess.Popen([MPIEXEC, "--oversubscribe", "-n", "3", S.CKPTSCOPE, "scan", src, "-o", out]
                         + ARGS, stderr=subprocess.PIPE, text=True, env=e)
    first = p.stderr.readline()
    p.send_signal(signal.SIGTERM)
    err = first + p.communicate(timeout=120)[1]
    assert p.returncode != 0, err
    with h5py.File(out, "r") as f:  # opens, and holds what was finished, in order
        held = S.names(f)
    assert 1 <= len(held) < 7 and held == ["ckpt_%03d" % k for k in range(len(held))], (held, err)
    mpi(2, ["scan", src, "-o", out, "--resume"] + ARGS, check=0)
    S.same_file(out, ref)
    print("  SIGTERM after the first checkpoint: exit %d, %d of 7 checkpoints kept%s"
          % (p.returncode, len(held), ", 'interrupted' reported" if "interrupted" in err else ""))


def test_resume_replans_like_serial():
    src = tmp("git5")
    if not os.path.exists(src):
        S.fixture(src, "--checkpoints", 5)
    ref = single(src, "git5-single.h5")
    a, b = tmp("git5-serial.h5"), tmp("git5-mpi.h5")
    shutil.copy(ref, a)
    shutil.copy(ref, b)
    S.git_recommit(src, "ckpt_001")  # same content, new commit
    _, _, err_a = S.run(["scan", src, "-o", a, "--resume"] + ARGS, check=0)
    _, err_b = mpi(3, ["scan", src, "-o", b, "--resume"] + ARGS, check=0)
    assert S.reported(err_a) == ["ckpt_001", "ckpt_002"], err_a
    assert S.reported(err_b) == ["ckpt_001", "ckpt_002"], err_b
    assert err_b.count("already complete") == 3, err_b
    S.same_file(a, b)
    # an MPI scan refuses --shard (that is for separate jobs)
    _, err = mpi(2, ["scan", src, "-o", tmp("x.h5"), "--shard", "0/2"], check=2)
    assert "drop --shard" in err, err


def test_setup_errors():
    src = S.lfs_gap_source(tmp("lfs7"))
    ref = single(src, "lfs7-single.h5")
    # rank 0 cannot start (the file exists): one message, every rank stops, file unchanged
    before = open(ref, "rb").read()
    code, err = mpi(3, ["scan", src, "-o", ref] + ARGS)
    assert code == 2 and err.count("exists: pass --resume") == 1, (code, err)
    assert open(ref, "rb").read() == before
    # a worker that sees other checkpoints than rank 0 (another mount, say): refused before
    # anything is analysed (MPMD launch: the third rank is given another source)
    other = tmp("git5")
    if not os.path.exists(other):
        S.fixture(other, "--checkpoints", 5)
    out = tmp("mixed.h5")
    e = dict(os.environ, **ENV)
    p = subprocess.run([MPIEXEC, "--oversubscribe", "-n", "2", S.CKPTSCOPE, "scan", src, "-o", out,
                        ":", "-n", "1", S.CKPTSCOPE, "scan", other, "-o", out], capture_output=True,
                       text=True, env=e, timeout=120)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "rank 2: error: %s: this rank sees other checkpoints than rank 0 (5 vs 7)" % other in p.stderr, \
        p.stderr
    assert "a rank could not set up (its error is above); nothing was analysed" in p.stderr, p.stderr
    with h5py.File(out, "r") as f:
        assert S.names(f) == []


def test_kl_family_same_file():
    """The kl family under MPI: a rank's first checkpoint has no kept logits of its previous
    one (or of the reference) and recomputes them from the weights; the file is the
    serial scan's."""
    src = tmp("kl5")
    S.fixture(src, "--layout", "folder", "--checkpoints", 5, "--std", "0.3", "--step-every", 400)
    toks = tmp("kl-set.jsonl")
    with open(toks, "w") as f:
        for n in (30, 7, 50):
            f.write('{"token_ids": [%s]}\n' % ", ".join(str((i * 37 + n) % 64) for i in range(n)))
    extra = ["--metrics", "ppl,kl", "--eval", toks, "--ctx", "16"]
    ref = single(src, "kl5-single.h5", *extra)
    for n in (2, 3):
        out = tmp("kl5-mpi%d.h5" % n)
        mpi(n, ["scan", src, "-o", out, "--quiet"] + ARGS + extra, check=0)
        S.same_file(out, ref)


if __name__ == "__main__":
    try:
        S.main([test_same_file_1_2_3_ranks, test_memorization_same_file, test_failing_rank,
                test_resume_after_kills, test_interrupted_job, test_resume_replans_like_serial,
                test_setup_errors, test_kl_family_same_file])
    finally:
        if not os.environ.get("CKS_KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
