#!/usr/bin/python3
"""Writes metrics/tok_nfc_{index,props,decomp,comp}.c: the Unicode data the tokenizer's NFC
normalizer needs, one file per table concept.

Run with Debian's python3, from anywhere (the data come from Debian's package unicode-data,
files in /usr/share/unicode):

    /usr/bin/python3 tools/make_unicode_tables.py [--check] [--data DIR] [--age 9.0]

Hugging Face tokenizers normalizes NFC with the Rust crate unicode-normalization-alignments
0.1.12, whose tables are Unicode 9.0 (probed through the npm package `tokenizers`: it
composes U+11347 U+1133E (Unicode 7.0) but not U+11935 U+11930 (13.0), and reorders the
Unicode 9.0 mark U+1E944 before U+0323 but not the 10.0 mark U+1DF6). To give the same ids,
the tables here are Unicode 9.0 too: Debian's Unicode 15.0.0 files restricted, by
DerivedAge.txt, to the characters assigned in 9.0 or earlier. Unicode's stability policies
make that restriction exact: an assigned character never changes its canonical
decomposition or combining class, and new composition exclusions only name new characters.

The tables (used by metrics/tok_nfc.c):
  cks_nfc_stage1[cp >> 7]         block number of each 128-code-point block
  cks_nfc_stage2[block][cp & 127] info: bits 0-7 canonical combining class, bit 8 "safe"
                                  (a normalization boundary: NFC starts afresh before it),
                                  bit 9 the character has a canonical decomposition
  cks_nfc_dcp[], cks_nfc_dval[]   the decomposable characters, sorted, and for each
                                  (offset << 3 | length) of its full canonical decomposition
                                  in cks_nfc_decomp[]
  cks_nfc_comp[]                  primary composites: ((first << 21) | second, composite),
                                  sorted by key
Hangul syllables are decomposed and composed by arithmetic (Unicode 3.12) and are not listed.

--check compares the file with what would be written (exit 1 when it differs). Without
the data: exit 1 in CI (CI=true), 77 (a ctest skip) elsewhere.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SBASE, LBASE, VBASE, TBASE = 0xAC00, 0x1100, 0x1161, 0x11A7
LCOUNT, VCOUNT, TCOUNT = 19, 21, 28
SCOUNT = LCOUNT * VCOUNT * TCOUNT


def ranges(path):
    """Lines 'XXXX..YYYY ; value # ...' as (lo, hi, value)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cps, value = (x.strip() for x in line.split(";")[:2])
            lo, _, hi = cps.partition("..")
            yield int(lo, 16), int(hi or lo, 16), value


def load(data_dir, age):
    version = open(os.path.join(data_dir, "DerivedAge.txt"), encoding="utf-8").readline()
    version = version.strip("# \n").replace("DerivedAge-", "").replace(".txt", "")
    assigned = set()
    for lo, hi, v in ranges(os.path.join(data_dir, "DerivedAge.txt")):
        if tuple(int(x) for x in v.split(".")) <= age:
            assigned.update(range(lo, hi + 1))
    ccc, decomp = {}, {}
    with open(os.path.join(data_dir, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fields = line.split(";")
            cp = int(fields[0], 16)
            if cp not in assigned:
                continue  # (ranges such as CJK ideographs have ccc 0 and no decomposition)
            if int(fields[3]):
                ccc[cp] = int(fields[3])
            d = fields[5]
            if d and not d.startswith("<"):
                decomp[cp] = [int(x, 16) for x in d.split()]
    excluded = set()
    for lo, hi in ranges_plain(os.path.join(data_dir, "CompositionExclusions.txt")):
        excluded.update(c for c in range(lo, hi + 1) if c in assigned)
    return version, ccc, decomp, excluded


def ranges_plain(path):
    """CompositionExclusions.txt: one code point (or range) per line, no value."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                lo, _, hi = line.partition("..")
                yield int(lo, 16), int(hi or lo, 16)


def full_decomp(cp, decomp):
    if cp not in decomp:
        return [cp]
    out = []
    for c in decomp[cp]:
        out.extend(full_decomp(c, decomp))
    return out


def build(ccc, decomp, excluded):
    # Full composition exclusion: listed exclusions, singletons, non-starter decompositions.
    full_excl = set(excluded)
    for cp, d in decomp.items():
        if len(d) == 1 or ccc.get(cp, 0) or ccc.get(d[0], 0):
            full_excl.add(cp)
    comp = {}
    for cp, d in decomp.items():
        if cp not in full_excl:
            assert len(d) == 2, hex(cp)
            comp[(d[0] << 21) | d[1]] = cp
    seconds = {k & 0x1FFFFF for k in comp} | set(range(VBASE, VBASE + VCOUNT)) \
        | set(range(TBASE + 1, TBASE + TCOUNT))
    decomp_data, offsets, info, dlist = [], {}, {}, []
    for cp in sorted(set(ccc) | set(decomp) | seconds):
        fd = full_decomp(cp, decomp) if cp in decomp else []
        if fd:
            if tuple(fd) not in offsets:
                offsets[tuple(fd)] = len(decomp_data)
                decomp_data.extend(fd)
            assert len(fd) <= 7
            dlist.append((cp, offsets[tuple(fd)] << 3 | len(fd)))
        first = fd[0] if fd else cp
        # Safe: a starter that nothing before it can compose with, whose NFC is itself.
        safe = (not ccc.get(cp, 0) and cp not in seconds and cp not in full_excl
                and not ccc.get(first, 0) and first not in seconds)
        info[cp] = ccc.get(cp, 0) | safe << 8 | bool(fd) << 9
    assert len(decomp_data) < 1 << 13
    return info, decomp_data, dlist, comp


def render(version, age, info, decomp_data, dlist, comp):
    """The tables, one file per concept: {path relative to ROOT: text}."""
    default = 1 << 8  # ccc 0, safe, no decomposition
    blocks, stage1 = {}, []
    for b in range(0x110000 >> 7):
        row = tuple(info.get((b << 7) | k, default) for k in range(128))
        stage1.append(blocks.setdefault(row, len(blocks)))
    assert len(blocks) < 1 << 8

    def head(what):
        return ["/* %s." % what,
                " * For the tokenizer's NFC normalizer (metrics/tok_nfc.c): Unicode %d.%d,"
                % age,
                " * as Hugging Face tokenizers normalizes. Generated by tools/make_unicode_tables.py",
                " * from Debian's unicode-data (%s) restricted to the characters of Unicode %d.%d;"
                % (version, age[0], age[1]),
                " * do not edit. */",
                "/* clang-format off */",
                '#include "tok_nfc.h"', ""]

    index = head("Which block of properties each run of 128 code points uses")
    index += ["const uint8_t cks_nfc_stage1[%d] = {" % len(stage1)]
    index += wrap(["%d" % x for x in stage1]) + ["};", ""]
    props = head("Blocks of 128 code points' properties: combining class | safe << 8 |"
                 " decomposes << 9")
    props += ["const uint16_t cks_nfc_stage2[%d][128] = {" % len(blocks)]
    items = []
    for row in sorted(blocks, key=blocks.get):
        cells = ["%d" % x for x in row]
        cells[0], cells[-1] = "{" + cells[0], cells[-1] + "}"
        items += cells
    props += wrap(items) + ["};", ""]
    dec = head("Canonical decompositions, fully applied")
    dec += ["const uint32_t cks_nfc_decomp[%d] = {" % len(decomp_data)]
    dec += wrap(["0x%x" % x for x in decomp_data])
    dec += ["};", "", "const uint32_t cks_nfc_dcp[%d] = {" % len(dlist)]
    dec += wrap(["0x%x" % cp for cp, _ in dlist])
    dec += ["};", "", "const uint16_t cks_nfc_dval[%d] = {" % len(dlist)]
    dec += wrap(["%d" % v for _, v in dlist])
    dec += ["};", "", "const size_t cks_nfc_ndecomp = %d;" % len(dlist), ""]
    com = head("Canonical compositions (first << 21 | second -> composite)")
    com += ["const cks_nfc_pair cks_nfc_comp[%d] = {" % len(comp)]
    com += wrap(["{0x%xull, 0x%x}" % (k, comp[k]) for k in sorted(comp)])
    com += ["};", "", "const size_t cks_nfc_ncomp = %d;" % len(comp), ""]
    return {os.path.join("metrics", name): "\n".join(text) for name, text in (
        ("tok_nfc_index.c", index), ("tok_nfc_props.c", props),
        ("tok_nfc_decomp.c", dec), ("tok_nfc_comp.c", com))}


def wrap(items, indent=4, width=100):
    lines, cur = [], " " * indent
    for it in items:
        if len(cur) + len(it) + 2 > width and cur.strip():
            lines.append(cur.rstrip())
            cur = " " * indent
        cur += it + ", "
    if cur.strip():
        lines.append(cur.rstrip())
    return lines


def main():
    args = sys.argv[1:]
    data_dir = "/usr/share/unicode"
    age = (9, 0)
    if "--data" in args:
        data_dir = args[args.index("--data") + 1]
    if "--age" in args:
        age = tuple(int(x) for x in args[args.index("--age") + 1].split("."))
    if not os.path.exists(os.path.join(data_dir, "UnicodeData.txt")):
        # a missing prerequisite: a failure in CI (CI=true), a ctest skip (77) elsewhere
        print("make_unicode_tables: %s has no UnicodeData.txt (Debian package unicode-data)"
              % data_dir, file=sys.stderr)
        sys.exit(1 if os.environ.get("CI") == "true" else 77)
    version, ccc, decomp, excluded = load(data_dir, age)
    files = render(version, age, *build(ccc, decomp, excluded))
    if "--check" in args:
        for rel, text in files.items():
            path = os.path.join(ROOT, rel)
            if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
                sys.exit("make_unicode_tables: %s is not current: rerun the script" % rel)
        print("make_unicode_tables: %s are current" % ", ".join(sorted(files)))
        return
    for rel, text in files.items():
        with open(os.path.join(ROOT, rel), "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
