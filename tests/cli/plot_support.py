"""Helpers for the plot/report CLI tests: run files made by `ckptscope scan` over generated
fixtures plus series written through the store (cks-runfx, as the forward pass and
`evals import` will write them), checks of PNG/SVG files, and readers for the gnuplot
scripts that `plot --scripts` keeps (their inline data blocks hold exactly what was drawn).
Values are recomputed here with h5py and numpy, independently of ckptscope."""
import json
import math
import os
import re
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib

import h5py
import numpy as np

from cks_testlib import assert_close as close  # noqa: F401

CKPTSCOPE = FIXTURE = RUNFX = None


def init(argv):
    global CKPTSCOPE, FIXTURE, RUNFX
    CKPTSCOPE, FIXTURE, RUNFX = argv[1], argv[2], argv[3]


def run(args, env=None, check=None, **kw):
    """Runs ckptscope; returns (returncode, stdout, stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([CKPTSCOPE] + [str(a) for a in args], capture_output=True, text=True,
                       env=e, **kw)
    if check is not None and p.returncode != check:
        raise AssertionError("ckptscope %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
                             % (" ".join(map(str, args)), p.returncode, check, p.stdout[-3000:],
                                p.stderr[-3000:]))
    return p.returncode, p.stdout, p.stderr


def fixture(path, *opts):
    subprocess.run([FIXTURE, path] + [str(o) for o in opts], check=True, capture_output=True)


def runfx(path, ops, create=None):
    """Applies store operations (dicts, see tests/support/runfx_main.c) in one transaction."""
    args = [RUNFX, path] + (["--create", create] if create is not None else [])
    text = "".join(json.dumps(op, allow_nan=False) + "\n" for op in ops)
    p = subprocess.run(args, input=text, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("cks-runfx failed: " + p.stderr)


def spectral_built_in():
    return "spectral" in run(["scan", "--help"])[1].split("here '")[1].split("'")[0]


def nan_to_none(x):
    return None if x is None or not math.isfinite(x) else float(x)


# ---- the run file, read with h5py ----

class Run:
    """A run file as a user reads it: checkpoints sorted by step (rows keep their order on
    ties), tensors, datasets."""

    def __init__(self, path):
        self.path = path
        with h5py.File(path, "r") as f:
            ck = f["checkpoints"][()]
            self.names = [n.decode() for n in ck["name"]]
            self.steps = ck["step"].astype(np.int64)
            self.status = [s.decode() for s in ck["status"]]
            t = f["tensors"][()]
            self.tnames = [n.decode() for n in t["name"]]
            self.layer = t["layer"].astype(int)
            self.kind = [k.decode() for k in t["kind"]]
            self.rows, self.cols = t["rows"].astype(int), t["cols"].astype(int)
        self.order = np.argsort(self.steps, kind="stable")

    def data(self, path):
        with h5py.File(self.path, "r") as f:
            return f[path][()].astype(np.float64) if path in f else None

    def has(self, path):
        with h5py.File(self.path, "r") as f:
            return path in f

    def by_step(self, path):
        d = self.data(path)
        return None if d is None else d[self.order]

    def row(self, name):
        return self.names.index(name)

    def newest_complete(self):
        for i in reversed(self.order):
            if self.status[i] == "complete":
                return self.names[i]
        return self.names[self.order[-1]]


# ---- files ----

def png_ok(path):
    """Checks the PNG signature, the IHDR chunk (CRC included) and IEND; returns (w, h)."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", path + ": not a PNG"
    (n,) = struct.unpack(">I", b[8:12])
    assert n == 13 and b[12:16] == b"IHDR", path + ": no IHDR first"
    assert struct.unpack(">I", b[29:33])[0] == zlib.crc32(b[12:29]), path + ": IHDR CRC"
    w, h = struct.unpack(">II", b[16:24])
    assert 100 <= w <= 4000 and 100 <= h <= 4000, "%s: size %dx%d" % (path, w, h)
    assert b[-8:-4] == b"IEND", path + ": does not end with IEND"
    return w, h


def png_pixels(path):
    """Decodes an 8-bit RGB/RGBA PNG (the filters of the PNG spec §9) into rows of tuples."""
    with open(path, "rb") as f:
        b = f.read()
    pos, idat, w = 8, b"", None
    while pos < len(b):
        (n,) = struct.unpack(">I", b[pos:pos + 4])
        kind, body = b[pos + 4:pos + 8], b[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), "only 8-bit RGB(A) PNGs"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    out = []
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            up = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ft == 1:
                line[x] = (line[x] + a) & 255
            elif ft == 2:
                line[x] = (line[x] + up) & 255
            elif ft == 3:
                line[x] = (line[x] + (a + up) // 2) & 255
            elif ft == 4:
                p = a + up - c
                pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
        out.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return out


def svg_ok(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg"), path + ": root is " + root.tag
    return root


def svg_text(root):
    return " ".join("".join(e.itertext()) for e in root.iter() if e.tag.endswith("text"))


# ---- gnuplot scripts kept by --scripts ----

def gp_blocks(path):
    """{block name: [[float...]...]} of the script's inline data blocks."""
    blocks, cur, name = {}, None, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\$(\w+) << EOD$", line.rstrip("\n"))
            if m:
                name, cur = m.group(1), []
                continue
            if cur is not None:
                if line.rstrip("\n") == "EOD":
                    blocks[name], cur = cur, None
                else:
                    cur.append([float(x) for x in line.split()])
    return blocks


def gp_titles(path):
    """Key titles of the plot command, in order."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    plot = text[text.rindex("\nplot "):]
    return [t.replace("''", "'") for t in re.findall(r"title '((?:[^']|'')*)'", plot)]


def index_entries(outdir):
    """(drawn files, [(family, text)] skipped) from index.txt."""
    with open(os.path.join(outdir, "index.txt"), encoding="utf-8") as f:
        text = f.read()
    drawn_part = text.split("\ndrawn (")[1].split("\nskipped (")[0]
    skipped_part = text.split("\nskipped (")[1]
    drawn = [l.split()[0] for l in drawn_part.splitlines()[1:] if l.strip()]
    skipped = [l.split(None, 2)[1:] for l in skipped_part.splitlines()[1:] if l.strip()]
    return drawn, skipped
