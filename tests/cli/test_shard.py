"""`scan --shard I/N` and `ckptscope merge` end to end: parts merged for N = 1, 2, 3 equal
the single-process scan of the same source dataset by dataset (h5py, ignoring
analysed_at), with incomplete and failed checkpoints among them and tensor sets that
change between checkpoints; every refusal of merge and of --shard; resuming a killed
shard; extending a finished run with --extend and merge.
The reference is always the single-process `scan` of the same source (its values are
checked against numpy by test_scan.py), so what is tested here is that splitting and
joining changes nothing.
usage: test_shard.py CKPTSCOPE CKS_FIXTURE [TEST...]"""
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scan_support as S  # noqa: E402

S.init(sys.argv)
TMP = tempfile.mkdtemp(prefix="cks-shard-")
ARGS = ["--threads", "2", "--quiet"]


def tmp(name):
    return os.path.join(TMP, name)


def lfs_source(name):
    return S.lfs_gap_source(tmp(name))


def failed_source(name):
    return S.failed_tensor_source(tmp(name))


def scan(src, out, *extra, check=0):
    return S.run(["scan", src, "-o", out] + ARGS + list(extra), check=check)


def shards(src, prefix, n, *extra, check=0):
    parts = []
    for i in range(n):
        p = tmp("%s-%d-of-%d.h5" % (prefix, i, n))
        if os.path.exists(p):
            os.unlink(p)
        scan(src, p, "--shard", "%d/%d" % (i, n), *extra, check=check)
        parts.append(p)
    return parts


def merge(parts, out, *extra, check=0):
    return S.run(["merge"] + parts + ["-o", out] + list(extra), check=check)


statuses = S.statuses


def test_parts_equal_single_scan():
    src = lfs_source("lfs7")
    single = tmp("lfs-single.h5")
    scan(src, single)
    assert statuses(single) == ["complete", "complete", "incomplete", "complete", "complete",
                                "complete", "incomplete"], statuses(single)
    for n in (1, 2, 3):
        parts = shards(src, "lfs", n)
        for i, p in enumerate(parts):  # each part holds exactly its positions
            with h5py.File(p, "r") as f:
                assert S.names(f) == ["ckpt_%03d" % k for k in range(i, 7, n)], (n, i, S.names(f))
                assert f.attrs["part_shard"] == str(i) and f.attrs["part_count"] == str(n)
                assert f.attrs["part_ref"] == "ckpt_000"
        out = tmp("lfs-merged-%d.h5" % n)
        _, _, err = merge(parts, out)
        assert "7 checkpoints (7 from %d parts" % n in err, err
        S.same_file(out, single)
    # the drift of ckpt_003 (shard 0 of 3) was measured against ckpt_001 (shard 1), past
    # the incomplete ckpt_002 (shard 2): a neighbour found by its files
    with h5py.File(tmp("lfs-0-of-3.h5"), "r") as f:
        assert S.names(f)[1] == "ckpt_003" and f["part/prev"][1] == 1
    # the memorization family: the same sample of training sequences in every part, its
    # uint8 /memo/<set>/full rows (255 in the incomplete checkpoints' rows) merged as such
    train = memo_train_data(tmp("train.jsonl"))
    single = tmp("memo-single.h5")
    memo = ["--metrics", "norms,memorization", "--train-data", train, "--samples", "12",
            "--seed", "3"]
    scan(src, single, *memo)
    with h5py.File(single, "r") as f:
        full = f["memo/train/full"]
        assert full.dtype == np.uint8 and full.shape == (7, 12), (full.dtype, full.shape)
        assert (full[2] == 255).all() and (full[0] <= 1).all(), full[...]
        assert f["memo/train/sequences"][0] == 12 and np.isnan(f["memo/train/sequences"][2])
    for n in (2, 3):
        out = tmp("memo-merged-%d.h5" % n)
        merge(shards(src, "memo", n, *memo), out)
        S.same_file(out, single)
    # --every and --ref select and refer the same way in every part
    single = tmp("every-single.h5")
    scan(src, single, "--every", "2", "--ref", "ckpt_004")
    out = tmp("every-merged.h5")
    merge(shards(src, "every", 2, "--every", "2", "--ref", "ckpt_004"), out)
    S.same_file(out, single)


def memo_train_data(path):
    """20 random sequences of 70 ids below the fixture's vocabulary of 256, and 2 short."""
    if not os.path.exists(path):
        rs = np.random.RandomState(5)
        with open(path, "w") as f:
            for i in range(22):
                n = 70 if i not in (4, 9) else 40
                f.write('{"token_ids": [%s]}\n' % ", ".join(map(str, rs.randint(0, 256, n))))
    return path


def test_failed_and_new_tensors():
    src = failed_source("failed6")
    single = tmp("failed-single.h5")
    _, _, err = scan(src, single, check=2)  # a failed checkpoint: exit 2, the rest done
    assert statuses(single) == ["complete"] * 3 + ["failed"] + ["complete"] * 2
    with h5py.File(single, "r") as f:  # ckpt_004's new tensors are appended last
        names = [n.decode() for n in f["tensors"]["name"]]
        assert set(names[-2:]) == {"zz.extra.weight", "aa.extra.bias"}, names
        assert np.all(np.isnan(f["norms/fro"][4, names.index("model.norm.weight")]))
    for n in (1, 2, 3):
        parts = []
        for i in range(n):
            p = tmp("failed-%d-of-%d.h5" % (i, n))
            code, _, err = scan(src, p, "--shard", "%d/%d" % (i, n), check=None)
            holds3 = 3 % n == i
            assert code == (2 if holds3 else 0), (n, i, code, err)
            if holds3:
                assert re.search(r"error: ckpt_003 failed: .*model.safetensors", err), err
            parts.append(p)
        out = tmp("failed-merged-%d.h5" % n)
        merge(parts, out)
        S.same_file(out, single)


def test_merge_refusals():
    src = lfs_source("lfs7")
    parts = shards(src, "lfs", 3)
    single = tmp("lfs-single.h5")
    if not os.path.exists(single):
        scan(src, single)
    out = tmp("refused.h5")

    def refused(inputs, words, *extra):
        _, _, e = merge(inputs, out, *extra, check=2)
        assert words in e, (words, e)
        assert not os.path.exists(out) and not os.path.exists(out + ".tmp"), words
        return e

    # overlap: a part given twice under two names, and parts of different N
    twin = tmp("twin.h5")
    shutil.copy(parts[1], twin)
    e = refused(parts + [twin], "ckpt_001, ckpt_004 are in more than one part (ckpt_001 is in %s and %s)"
                % (parts[1], twin))
    other_n = shards(src, "lfs", 2)
    refused(parts + [other_n[0]], "in more than one part")
    refused([parts[0], parts[0], parts[1], parts[2]], "are the same file")
    # gaps, named; accepted with --allow-gaps, which keeps the other rows as they are
    refused(parts[:2], "no input holds ckpt_002, ckpt_005 (2 of 7 checkpoints): pass every part, or "
            "--allow-gaps")
    _, _, e = merge(parts[:2], out, "--allow-gaps", check=0)
    assert "note: no input holds ckpt_002, ckpt_005: left out (--allow-gaps)" in e, e
    assert "5 checkpoints" in e and "2 left out" in e, e
    with h5py.File(out, "r") as f, h5py.File(single, "r") as g:
        keep = [0, 1, 3, 4, 6]
        assert S.names(f) == [S.names(g)[k] for k in keep]
        for d in ("norms/fro", "drift/prev/rel_fro", "drift/ref/cos"):
            assert np.array_equal(f[d][()], g[d][()][keep], equal_nan=True), d
    os.unlink(out)
    # parts of another scan: another source path, another config, families, reference
    copy = tmp("lfs7-copy")
    if not os.path.exists(copy):
        shutil.copytree(src, copy, symlinks=True)
    refused(parts[:2] + shards(copy, "copy", 3)[2:], "differ in 'source'")
    cfg = tmp("wide7")
    if not os.path.exists(cfg):
        S.fixture(cfg, "--checkpoints", 7, "--hidden", 96)
    refused(parts[:2] + shards(cfg, "wide", 3)[2:], "differ in 'config' (")
    refused(parts[:2] + [shards(src, "norms", 3, "--metrics", "norms")[2]],
            "differ in 'metrics' ('%s' vs 'norms')" % parts_metrics(parts[0]))
    refused(parts[:2] + [shards(src, "ref1", 3, "--ref", "ckpt_001")[2]],
            "measure drift against different references ('ckpt_000' vs 'ckpt_001')")
    fewer = shards(src, "fewer", 3, "--branches", "ckpt_00[0-5]")
    refused(parts[:2] + fewer[2:], "parts of scans of different checkpoints (ckpt_006 (step 6) is only in")
    # whole run files: at most one, and at least one part
    other = tmp("lfs-single-copy.h5")
    shutil.copy(single, other)
    refused([single, other] + parts, "are both whole run files")
    refused([single], "no part file among the inputs")
    # the output: exists, is an input, is not a run file
    open(out, "w").write("keep")
    _, _, e = merge(parts, out, check=2)
    assert "already exists" in e and open(out).read() == "keep", e
    os.unlink(out)
    before = open(parts[0], "rb").read()
    _, _, e = merge(parts, parts[0], check=2)
    assert "-o %s is one of the inputs" % parts[0] in e, e
    assert open(parts[0], "rb").read() == before
    notes = tmp("notes.txt")
    open(notes, "w").write("hello")
    refused(parts + [notes], "not a ckptscope run file (not HDF5)")
    # damaged parts: a bad list, a row the list does not hold, a count out of range
    bad = tmp("bad-part.h5")
    for attr, value, words in (("part_checkpoints", "[{\"name\": 3}]", "part_checkpoints[0]"),
                               ("part_checkpoints", "not json", "attribute part_checkpoints"),
                               ("part_count", "0", "attribute 'part_count' is '0', not an integer in [1,"),
                               ("part_shard", "3", "attribute 'part_shard' is '3', not an integer in [0, 2]")):
        shutil.copy(parts[2], bad)
        with h5py.File(bad, "a") as f:
            f.attrs[attr] = value
        refused(parts[:2] + [bad], words)
    shutil.copy(parts[2], bad)
    with h5py.File(bad, "a") as f:
        lst = f.attrs["part_checkpoints"].replace('"ckpt_005"', '"ckpt_105"')
        f.attrs["part_checkpoints"] = lst
    refused([bad], "damaged part: it holds ckpt_005, which is not in its part_checkpoints")
    # a full disk while merging (RLIMIT_FSIZE, SIGXFSZ ignored -> EFBIG): nothing appears
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.RLIM_INFINITY))
    p = subprocess.run([S.CKPTSCOPE, "merge"] + parts + ["-o", out], capture_output=True, text=True,
                       preexec_fn=limit)
    assert p.returncode == 2 and "File too large" in p.stderr, (p.returncode, p.stderr)
    for leftover in (out, out + ".tmp", out + ".lock"):
        assert not os.path.exists(leftover), leftover
    # usage
    _, _, e = S.run(["merge", parts[0]], check=2)
    assert "-o RUN.h5" in e
    _, _, e = S.run(["merge", "-o", out], check=2)
    assert "expected one or more PART.h5" in e
    code, text, _ = S.run(["merge", "--help"], check=0)
    assert "--allow-gaps" in text and "Exit status" in text


def parts_metrics(path):
    with h5py.File(path, "r") as f:
        return f.attrs["metrics"]


def test_shard_rejections():
    src = lfs_source("lfs7")
    out = tmp("rej.h5")
    for args, words in ((["--shard", "3/3"], "the I of --shard I/N must be an integer in [0, 2], not '3'"),
                        (["--shard", "1/0"], "the N of --shard I/N must be an integer in [1, 100000]"),
                        (["--shard", "x"], "--shard must be I/N with 0 <= I < N, not 'x'"),
                        (["--shard", "-1/2"], "the I of --shard I/N must be an integer in [0, 1]"),
                        (["--extend", tmp("lfs-single.h5")], "--extend goes with --shard I/N")):
        _, _, e = scan(src, out, *args, check=2)
        assert words in e, (args, e)
        assert not os.path.exists(out), args
    part = tmp("rej-part.h5")
    scan(src, part, "--shard", "1/3")
    before = open(part, "rb").read()
    for args, words in ((["--resume"], "is part 1/3 of a sharded scan: resume it with --shard 1/3"),
                        (["--resume", "--shard", "2/3"], "is part 1/3; --shard 2/3 would mix shards"),
                        (["--resume", "--shard", "1/3", "--metrics", "norms"],
                         "holds the metric families"),
                        (["--resume", "--shard", "1/3", "--ref", "ckpt_001"], "measures drift against 'ckpt_000'"),
                        (["--shard", "1/3"], "exists: pass --resume")):
        _, _, e = scan(src, part, *args, check=2)
        assert words in e, (args, e)
        assert open(part, "rb").read() == before, args
    whole = tmp("rej-whole.h5")
    scan(src, whole)
    _, _, e = scan(src, whole, "--resume", "--shard", "0/2", check=2)
    assert "is a whole run file, not a part" in e, e
    _, _, e = scan(src, tmp("rej-ext.h5"), "--shard", "0/2", "--extend", part, check=2)
    assert "is a part file: --extend takes a finished run" in e, e
    # the source changed under a part: its rows would not match the others'
    moved = tmp("lfs7-moved")
    shutil.copytree(src, moved, symlinks=True)
    p = tmp("moved-part.h5")
    scan(moved, p, "--shard", "0/2")
    S.git_recommit(moved, "ckpt_004")
    _, _, e = scan(moved, p, "--resume", "--shard", "0/2", check=2)
    assert re.search(r"the checkpoints changed since %s was started \(ckpt_004 has commit '[0-9a-f]+' "
                     r"\(step 4\) in %s but '[0-9a-f]+'" % (re.escape(p), re.escape(p)), e), e


def test_resume_killed_shard():
    src = lfs_source("lfs7")
    single = tmp("lfs-single.h5")
    if not os.path.exists(single):
        scan(src, single)
    parts = shards(src, "kill", 2)
    p = parts[0]  # ckpt_000, 002, 004, 006: killed after its second checkpoint is saved
    os.unlink(p)
    code, _, err = S.run(["scan", src, "-o", p, "--shard", "0/2"],
                         env={"CKS_TEST_KILL_AT": "committed:2"})
    assert code == -signal.SIGKILL, (code, err)
    with h5py.File(p, "r") as f:
        assert S.names(f) == ["ckpt_000", "ckpt_002"]
    _, _, err = S.run(["scan", src, "-o", p, "--shard", "0/2", "--resume"], check=0)
    assert "ckpt_000 (step 0): already complete in %s: skipped" % p in err, err
    # ckpt_002 is incomplete (its row is analysed again), ckpt_000 complete (skipped)
    assert "shard 0/2: 4 of 7 checkpoints: 3 analysed (1 complete, 2 incomplete, 0 failed), 1 skipped" \
        in err, err
    out = tmp("kill-merged.h5")
    merge(parts, out)
    S.same_file(out, single)
    # again: only the incomplete checkpoints are looked at again (as a single scan does)
    _, _, err = S.run(["scan", src, "-o", p, "--shard", "0/2", "--resume"], check=0)
    assert "2 analysed (0 complete, 2 incomplete, 0 failed), 2 skipped" in err, err


def test_extend_finished_run():
    # a finished run of ckpt_000..004 with ckpt_002's LFS object missing; then the object
    # is fetched, ckpt_003 re-uploaded (new commit) and ckpt_005, ckpt_006 appear
    src = tmp("grow")
    S.fixture(src, "--checkpoints", 7, "--lfs")
    obj = S.lfs_object(src, "ckpt_002")
    os.rename(obj, obj + ".away")
    old = tmp("grow-old.h5")
    scan(src, old, "--branches", "ckpt_00[0-4]")
    assert statuses(old) == ["complete", "complete", "incomplete", "complete", "complete"]
    os.rename(obj + ".away", obj)
    S.git_recommit(src, "ckpt_004")
    parts = []
    reported = []
    for i in range(3):
        p = tmp("grow-new-%d.h5" % i)
        _, _, err = S.run(["scan", src, "-o", p, "--shard", "%d/3" % i, "--extend", old], check=0)
        reported += S.reported(err)
        if i == 0:
            assert "ckpt_000 (step 0): already in %s: left out of this part" % old in err, err
        parts.append(p)
    # ckpt_002 was incomplete, ckpt_003's previous checkpoint is now ckpt_002, ckpt_004 has
    # a new commit, ckpt_005 and ckpt_006 are new; ckpt_000 and ckpt_001 are left to RUN
    assert sorted(reported) == ["ckpt_002", "ckpt_003", "ckpt_004", "ckpt_005", "ckpt_006"], reported
    single = tmp("grow-single.h5")
    scan(src, single)
    out = tmp("grow-merged.h5")
    _, _, err = merge([old] + parts, out)
    assert "note: ckpt_002: the row of %s replaces the one of %s" % (parts[2], old) in err, err
    assert "7 checkpoints (5 from 3 parts, 2 from the run extended, 3 replaced" in err, err
    S.same_file(out, single)
    # the new parts alone leave the old run's checkpoints out, and say where they are
    _, _, err = merge(parts, tmp("grow-alone.h5"), check=2)
    assert "no input holds ckpt_000, ckpt_001 (2 of 7 checkpoints) (the parts extend %s: pass it too)" \
        % os.path.realpath(old) in err, err
    # a row of the old run at an old commit that no part analysed again is refused
    fresh = shards(src, "grow-fresh", 3)  # ckpt_004 (new commit) is in part 1
    _, _, err = merge([old, fresh[0], fresh[2]], tmp("grow-stale.h5"), check=2)
    assert re.search(r"holds ckpt_004 at commit '[0-9a-f]+' but the parts list it at '[0-9a-f]+', "
                     r"and no part analysed it again", err), err


if __name__ == "__main__":
    try:
        S.main([test_parts_equal_single_scan, test_failed_and_new_tensors, test_merge_refusals,
                test_shard_rejections, test_resume_killed_shard, test_extend_finished_run])
    finally:
        if not os.environ.get("CKS_KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
