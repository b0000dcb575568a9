#!/usr/bin/python3
"""CLI tests of hf://ORG/NAME sources against the loopback stand-in of the hub
(hub_server.py) serving a git repository made by cks-fixture: `list`, `inspect`, `diff`
and `ppl` through the hub equal the same commands on the repository on disk (the
independent reference: libgit2 reading the objects git wrote), the cache left behind has
huggingface_hub's layout (checked with hashlib and os.readlink) and reads back as an
hf-cache source, the token never reaches the storage host, and every fault is a clear
error with exit status 2, nothing written outside the cache, within a time limit.

usage: test_hub.py CKPTSCOPE CKS_FIXTURE CKS_HUB_WALK [TEST...]
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hub_server import Hub  # noqa: E402

EXE = FIXTURE = WALK = None
TOKEN = "hf_test_token_0123"
TIMEOUT = 120  # seconds for any one command: a hang fails the test


def tree_state(root, skip):
    """Paths, kinds and sizes of everything under root except the folder skip."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if os.path.join(d, x) != skip)
        for n in sorted(files):
            p = os.path.join(d, n)
            st = os.lstat(p)
            out.append((p, st.st_mode, st.st_size, st.st_mtime_ns))
    return out


class HubTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cks-hub-")
        cls.repo = os.path.join(cls.tmp, "repo")
        subprocess.run([FIXTURE, cls.repo, "--checkpoints", "3", "--lfs", "--shards", "2",
                        "--std", "0.3", "--eps", "1e-3"], check=True)
        cls.hub = Hub(cls.repo, "org/tiny", TOKEN, page_size=2)
        cls.n = 0
        import scan_support
        scan_support.init([None, EXE, FIXTURE])

    @classmethod
    def tearDownClass(cls):
        cls.hub.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        type(self).n += 1
        self.home = os.path.join(self.tmp, "home%d" % self.n)
        os.makedirs(self.home)
        self.cache = os.path.join(self.home, "hf", "hub")
        self.hub.faults = {}
        self.hub.retry_after = 1
        self.hub.delay = 0
        with self.hub.lock:
            self.hub.log.clear()
            self.hub.violations.clear()
            self.hub.max_in_flight = 0

    def tearDown(self):
        self.assertEqual(self.hub.violations, [], "the token reached the storage host")

    def env(self, **kw):
        e = {k: v for k, v in os.environ.items()
             if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
        e.update(HOME=self.home, HF_HOME=os.path.join(self.home, "hf"), HF_ENDPOINT=self.hub.url,
                 HF_TOKEN=TOKEN, HF_HUB_DOWNLOAD_TIMEOUT="3", no_proxy="*", NO_PROXY="*")
        for k, v in kw.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def run_cks(self, *args, expect=0, env=None):
        p = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=TIMEOUT,
                           env=env or self.env())
        if expect is not None and p.returncode != expect:
            raise AssertionError("ckptscope %s: exit %d, expected %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), p.returncode, expect, p.stdout[-2000:], p.stderr[-2000:]))
        return p

    def json(self, *args, env=None):
        return json.loads(self.run_cks(*args, "--json", env=env).stdout)

    def fails(self, args, *needles, env=None):
        """Exit 2, one line on stderr naming what went wrong, nothing outside the cache."""
        before = tree_state(self.tmp, self.cache)
        p = self.run_cks(*args, expect=2, env=env)
        self.assertEqual(p.stdout, "")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, p.stderr)
        for n in needles:
            self.assertIn(n, p.stderr)
        self.assertNotIn("s3cr3t", p.stderr, "a signed URL's query was printed")
        self.assertEqual(tree_state(self.tmp, self.cache), before,
                         "something was written outside the cache")
        return p.stderr

    def snapshot_dir(self, branch):
        commit = self.hub.repo.branches[branch]
        return os.path.join(self.cache, "models--org--tiny", "snapshots", commit)

    def check_cache(self, branch, weights_only=False):
        """huggingface_hub's layout: relative links to blobs named by their hash, the ref.
        weights_only: only the LFS files must be there (scan reads one config.json)."""
        root = os.path.join(self.cache, "models--org--tiny")
        commit = self.hub.repo.branches[branch]
        with open(os.path.join(root, "refs", branch)) as f:
            self.assertEqual(f.read(), commit)
        for e in self.hub.repo.trees[commit]:
            if e["type"] != "file":
                continue
            link = os.path.join(root, "snapshots", commit, e["path"])
            if weights_only and "lfs" not in e and not os.path.lexists(link):
                continue
            target = os.readlink(link)
            self.assertEqual(target, "../" * (2 + e["path"].count("/")) + "blobs/" +
                             (e["lfs"]["oid"] if "lfs" in e else e["oid"]))
            with open(link, "rb") as f:
                data = f.read()
            if "lfs" in e:
                self.assertEqual(hashlib.sha256(data).hexdigest(), e["lfs"]["oid"])
            else:
                git_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                self.assertEqual(git_id, e["oid"])
        self.assertEqual([n for n in os.listdir(os.path.join(root, "blobs"))
                          if n.endswith(".incomplete")], [])

    def blobs(self):
        d = os.path.join(self.cache, "models--org--tiny", "blobs")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    # ---- equal to the repository on disk ----

    def test_list_equals_git_and_downloads_nothing(self):
        hub = self.json("list", "hf://org/tiny")
        disk = self.json("list", self.repo)
        self.assertEqual(hub["kind"], "hf-hub")
        self.assertEqual(disk["kind"], "git")
        self.assertEqual(hub["checkpoints"], disk["checkpoints"])
        self.assertEqual(self.hub.requests(contains="/resolve/"), [])
        self.assertEqual(self.hub.requests("storage"), [])
        self.assertFalse(os.path.exists(self.cache), "list wrote to the cache")
        # pages of two entries: every listing took several requests joined through Link
        self.assertGreater(len(self.hub.requests(contains="cursor=")), 0)
        # the text table says the kind
        self.assertIn("hf-hub", self.run_cks("list", "hf://org/tiny").stdout)

    def test_inspect_diff_equal_git_and_cache_layout(self):
        self.hub.delay = 0.3  # the two weight shards overlap when fetched at once
        a = self.json("inspect", "hf://org/tiny@ckpt_001")
        b = self.json("inspect", self.repo + "@ckpt_001")
        self.assertEqual(a, b)
        self.check_cache("ckpt_001")
        self.assertGreater(len(self.hub.requests("storage")), 0, "LFS files came from storage")
        self.assertGreaterEqual(self.hub.max_in_flight, 2, "several files in flight")
        self.hub.delay = 0
        d1 = self.json("diff", "hf://org/tiny@ckpt_000", "hf://org/tiny@ckpt_002")
        d2 = self.json("diff", self.repo + "@ckpt_000", self.repo + "@ckpt_002")
        self.assertEqual(d1, d2)
        # the cache is an hf-cache source with the same checkpoints, complete
        root = os.path.join(self.cache, "models--org--tiny")
        cached = self.json("list", root, "--branches", "*")
        disk = self.json("list", self.repo)
        self.assertEqual(cached["kind"], "hf-cache")
        self.assertEqual([c["name"] for c in cached["checkpoints"]],
                         ["ckpt_000", "ckpt_001", "ckpt_002"])
        for c, g in zip(cached["checkpoints"], disk["checkpoints"]):
            for k in ("name", "step", "commit", "status", "format", "files", "bytes"):
                self.assertEqual(c[k], g[k], k)
        self.assertEqual(self.json("inspect", root + "@ckpt_001"), b)
        # used as is: a second inspect fetches no file, offline too
        with self.hub.lock:
            self.hub.log.clear()
        self.assertEqual(self.json("inspect", "hf://org/tiny@ckpt_001"), b)
        self.assertEqual(self.hub.requests(contains="/resolve/"), [])
        off = self.env(HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
        self.assertEqual(self.json("inspect", "hf://org/tiny@ckpt_001", env=off), b)
        lst = self.json("list", "hf://org/tiny", env=off)
        self.assertEqual(lst["kind"], "hf-hub")
        self.assertEqual(len(lst["checkpoints"]), 3)

    def test_ppl_equals_git(self):
        toks = os.path.join(self.tmp, "toks.u16")
        with open(toks, "wb") as f:
            f.write(struct.pack("<200H", *[(i * 37) % 256 for i in range(200)]))
        a = self.json("ppl", "hf://org/tiny@ckpt_002", "--tokens", toks, "--ctx", "32")
        b = self.json("ppl", self.repo + "@ckpt_002", "--tokens", toks, "--ctx", "32")
        self.assertEqual(a["sets"], b["sets"])
        self.assertEqual(a["checkpoint"], b["checkpoint"])
        self.check_cache("ckpt_002")

    def test_scan_equals_git_dataset_by_dataset(self):
        """scan reads hf:// through the same source API (files fetched as they are mapped,
        until the scan engine prefetches): the run file equals the scan of the repository."""
        import h5py
        from scan_support import same_file
        a = os.path.join(self.home, "hub.h5")
        b = os.path.join(self.home, "disk.h5")
        self.run_cks("scan", "hf://org/tiny", "-o", a, "--metrics", "norms,spectral,drift",
                     "--quiet")
        self.run_cks("scan", self.repo, "-o", b, "--metrics", "norms,spectral,drift", "--quiet")
        with h5py.File(a, "r") as f:
            self.assertEqual(f.attrs["source"], "hf://org/tiny")
        with h5py.File(b, "r+") as f:
            f.attrs["source"] = "hf://org/tiny"  # the one attribute that names the source
        same_file(a, b)
        for branch in ("ckpt_000", "ckpt_001", "ckpt_002"):
            self.check_cache(branch, weights_only=True)

    def test_cache_from_another_tool_is_used_as_is(self):
        # a snapshot as transformers leaves it: a regular file in place of a link
        commit = self.hub.repo.branches["ckpt_000"]
        snap = self.snapshot_dir("ckpt_000")
        os.makedirs(snap)
        cfg = next(e for e in self.hub.repo.trees[commit] if e["path"] == "config.json")
        with open(os.path.join(snap, "config.json"), "wb") as f:
            f.write(self.hub.repo.small[cfg["oid"]])
        self.json("inspect", "hf://org/tiny@ckpt_000")
        self.assertEqual(self.hub.requests(contains="config.json"), [])
        self.assertFalse(os.path.islink(os.path.join(snap, "config.json")))

    def test_token_from_hf_home_file(self):
        os.makedirs(os.path.join(self.home, "hf"))
        with open(os.path.join(self.home, "hf", "token"), "w") as f:
            f.write(TOKEN + "\n")
        self.json("list", "hf://org/tiny", env=self.env(HF_TOKEN=None))

    # ---- the network misbehaves, and recovers ----

    def test_retry_after_503(self):
        self.hub.faults = {"503": {"/refs": 2, "/resolve/": 1}}
        p = self.run_cks("inspect", "hf://org/tiny@ckpt_001", "--json")
        self.assertEqual(len(self.hub.requests(contains="/refs")), 3)
        self.assertEqual(json.loads(p.stdout), self.json("inspect", self.repo + "@ckpt_001"))

    def test_retries_run_out(self):
        self.hub.retry_after = 0
        self.hub.faults = {"503": {"/refs": -1}}
        self.fails(["list", "hf://org/tiny"], "hf://org/tiny", "HTTP 503", "5 tries")
        self.assertEqual(len(self.hub.requests(contains="/refs")), 5)

    def test_cut_connection_resumes_with_range(self):
        commit = self.hub.repo.branches["ckpt_001"]
        lfs = [e["lfs"]["oid"] for e in self.hub.repo.trees[commit] if "lfs" in e]
        self.hub.faults = {"cut": {lfs[0]: 1}}
        self.json("inspect", "hf://org/tiny@ckpt_001")
        ranges = [r for r in self.hub.requests("storage", lfs[0]) if r[3]]
        self.assertEqual(len(ranges), 1, self.hub.requests("storage"))
        size = os.path.getsize(self.hub.repo.lfs[lfs[0]])
        self.assertEqual(ranges[0][3], "bytes=%d-" % (size // 2))
        self.check_cache("ckpt_001")

    def test_stalled_transfer_times_out_and_resumes(self):
        commit = self.hub.repo.branches["ckpt_001"]
        sha = next(e["lfs"]["oid"] for e in self.hub.repo.trees[commit] if "lfs" in e)
        self.hub.faults = {"stall": {sha: 1}}
        self.json("inspect", "hf://org/tiny@ckpt_001", env=self.env(HF_HUB_DOWNLOAD_TIMEOUT="1"))
        self.assertEqual(len(self.hub.requests("storage", sha)), 2)
        self.check_cache("ckpt_001")

    def test_corrupt_once_is_fetched_again(self):
        commit = self.hub.repo.branches["ckpt_001"]
        sha = next(e["lfs"]["oid"] for e in self.hub.repo.trees[commit] if "lfs" in e)
        self.hub.faults = {"corrupt": {sha: 1}}
        self.json("inspect", "hf://org/tiny@ckpt_001")
        self.assertEqual(len(self.hub.requests("storage", sha)), 2)
        self.check_cache("ckpt_001")

    def test_corrupt_twice_fails_naming_both_hashes(self):
        commit = self.hub.repo.branches["ckpt_001"]
        e = next(e for e in self.hub.repo.trees[commit] if "lfs" in e)
        sha = e["lfs"]["oid"]
        self.hub.faults = {"corrupt": {sha: -1}}
        err = self.fails(["inspect", "hf://org/tiny@ckpt_001"], "ckpt_001", e["path"], sha,
                         "fetched twice")
        with open(self.hub.repo.lfs[sha], "rb") as f:
            good = bytearray(f.read())
        good[len(good) // 2] ^= 0xFF
        self.assertIn(hashlib.sha256(good).hexdigest(), err)
        self.assertNotIn(sha, self.blobs())
        self.assertEqual([b for b in self.blobs() if b.endswith(".incomplete")], [])

    # ---- refusals ----

    def test_bad_and_missing_token(self):
        self.fails(["list", "hf://org/tiny"], "HTTP 401", "HF_TOKEN", env=self.env(HF_TOKEN="x"))
        self.fails(["list", "hf://org/tiny"], "HTTP 401", "HF_TOKEN", env=self.env(HF_TOKEN=None))
        self.fails(["list", "hf://org/tiny"], "HF_TOKEN", "control character",
                   env=self.env(HF_TOKEN="a b"))
        # offline with nothing cached: named, and no request made
        with self.hub.lock:
            self.hub.log.clear()
        self.fails(["list", "hf://org/tiny"], "hf://org/tiny", "HF_HUB_OFFLINE",
                   env=self.env(HF_HUB_OFFLINE="1"))
        self.assertEqual(self.hub.requests(), [])

    def test_missing_repository_and_revision(self):
        self.fails(["list", "hf://org/absent"], "hf://org/absent", "no repository")
        self.fails(["inspect", "hf://org/tiny@nope"], "nope")
        commit = self.hub.repo.branches["ckpt_002"]
        self.hub.faults = {"tree_404": commit}
        self.fails(["inspect", "hf://org/tiny@ckpt_002"], "hf://org/tiny@ckpt_002",
                   "revision not found")
        self.fails(["list", "hf://../etc"], "hf://../etc", "ORG/NAME")

    def test_malformed_listing(self):
        self.hub.faults = {"bad_json": True}
        self.fails(["list", "hf://org/tiny", "--json"], "hf://org/tiny@ckpt_000",
                   "not valid JSON")

    def test_listing_path_climbing_out(self):
        self.hub.faults = {"dotdot": True}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "../escape.txt",
                   "not a safe relative path")
        self.assertFalse(os.path.exists(os.path.join(self.cache, "escape.txt")))

    def test_sizes_disagree_with_bytes_served(self):
        self.hub.faults = {"size_lie": "model-00001-of-00002.safetensors"}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "model-00001-of-00002.safetensors",
                   "304753 bytes", "the listing")
        shutil.rmtree(self.cache)  # config.json was fetched meanwhile, and would be used
        self.hub.faults = {"size_lie": "config.json"}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "config.json", "the listing")

    def test_absurd_content_length(self):
        commit = self.hub.repo.branches["ckpt_000"]
        sha = next(e["lfs"]["oid"] for e in self.hub.repo.trees[commit] if "lfs" in e)
        self.hub.faults = {"absurd_length": sha}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "Content-Length 100000000000000000")

    def test_redirect_loop_and_other_scheme(self):
        self.hub.faults = {"redirect_loop": True}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "more than 10 redirects")
        self.hub.faults = {"bad_scheme": True}
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "not an http(s) URL")

    def test_cached_symlink_pointing_outside(self):
        secret = os.path.join(self.tmp, "secret%d.txt" % self.n)
        with open(secret, "w") as f:
            f.write("not a model")
        snap = self.snapshot_dir("ckpt_000")
        os.makedirs(snap)
        os.symlink(secret, os.path.join(snap, "config.json"))
        self.fails(["inspect", "hf://org/tiny@ckpt_000"], "config.json", "outside the cache")
        # a folder on the way that is a symlink out of the cache is not written through
        out = os.path.join(self.tmp, "outside%d" % self.n)
        os.makedirs(out)
        snap1 = self.snapshot_dir("ckpt_001")
        os.makedirs(os.path.dirname(snap1), exist_ok=True)
        os.symlink(out, snap1)
        self.fails(["inspect", "hf://org/tiny@ckpt_001"], "not a folder")
        self.assertEqual(os.listdir(out), [])

    # ---- prefetch, wait and evict, as a scan will call them ----

    def test_walk_with_prefetch_and_evict(self):
        """Eight checkpoints walked with prefetch of the next and evict: the blobs on disk
        never exceed four checkpoints' worth; a blob this walk did not download survives."""
        repo8 = os.path.join(self.tmp, "repo8")
        if not os.path.exists(repo8):
            subprocess.run([FIXTURE, repo8, "--checkpoints", "8", "--lfs", "--shards", "2",
                            "--hidden", "128", "--intermediate", "256"], check=True)
        hub8 = Hub(repo8, "org/eight", None, page_size=100)
        try:
            env = self.env(HF_ENDPOINT=hub8.url, HF_TOKEN=None)
            # one checkpoint fetched before by another tool: never deleted by the walk
            self.run_cks("inspect", "hf://org/eight@ckpt_005", env=env)
            root = os.path.join(self.cache, "models--org--eight")
            before = set(os.listdir(os.path.join(root, "blobs")))
            p = subprocess.run([WALK, "hf://org/eight", "--evict", "--ref", "0", "--progress"],
                               env=env, capture_output=True, text=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            prog = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
            self.assertGreater(len(prog), 0)
            for r in prog:
                self.assertLessEqual(r["done"], r["total"])
                self.assertLessEqual(r["files_done"], r["files_total"])
            # every checkpoint fetched came through the callback (ckpt_005 was in the cache),
            # and each batch completed
            self.assertEqual({r["progress"] for r in prog},
                             {"ckpt_%03d" % i for i in range(8) if i != 5})
            ends = [r for r in prog if r["files_done"] == r["files_total"]]
            self.assertTrue(ends and all(r["done"] == r["total"] for r in ends), ends)
            steps = [json.loads(l) for l in p.stdout.splitlines()]
            self.assertEqual([s["ckpt"] for s in steps], ["ckpt_%03d" % i for i in range(8)])
            weights = {}
            for name, commit in hub8.repo.branches.items():
                weights[name] = sum(e["size"] for e in hub8.repo.trees[commit] if "lfs" in e)
            one = max(weights.values())
            peak = max(s["blob_bytes_max"] for s in steps)
            # reference + previous + current + prefetched, plus ckpt_005 (not ours) and the
            # small files (json) that all checkpoints share
            self.assertLessEqual(peak, 5 * one + 65536, steps)
            self.assertGreater(peak, 3 * one, "the walk kept less than it needs")
            self.assertTrue(before <= set(os.listdir(os.path.join(root, "blobs"))),
                            "a blob the walk did not download was deleted")
            self.assertTrue(all(s["ok"] for s in steps), steps)
            self.assertGreater(sum(s["freed"] for s in steps), 0)
            self.assertGreaterEqual(hub8.max_in_flight, 2)
            # local sources: the same calls are no-ops
            p = subprocess.run([WALK, repo8, "--evict", "--ref", "0"], capture_output=True,
                               text=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(sum(json.loads(l)["freed"] for l in p.stdout.splitlines()), 0)
        finally:
            hub8.close()


def main():
    global EXE, FIXTURE, WALK
    EXE, FIXTURE, WALK = sys.argv[1:4]
    argv = [sys.argv[0]] + ["HubTest." + t for t in sys.argv[4:]]
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
