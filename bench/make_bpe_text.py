#!/usr/bin/python3
"""Writes the mixed text the byte-level tokenizer benchmark encodes (bench/bench_bpe.py):
about SIZE MiB (default 4), the same bytes on every Debian 12 machine for a given size.

    /usr/bin/python3 bench/make_bpe_text.py OUT [SIZE_MIB]

Paragraphs drawn with a fixed seed from five kinds, in proportion:
  prose 50 %     sentences of words drawn with Zipf-like weights from the words of the
                 license texts in /usr/share/common-licenses (package base-files), with
                 capitals, contractions, commas and numbers
  code 20 %      consecutive lines of C headers from /usr/include (libc6-dev), indentation
                 and all
  other scripts 15 %   words of Chinese, Japanese, Korean, Russian, Greek, Arabic, Hindi and
                 Thai with accents and emoji (some with ZWJ and skin tones)
  numbers 10 %   digit runs, dates, decimals, hexadecimal, tables
  whitespace 5 % runs of spaces, tabs and newlines, URLs
No file is repeated as a whole, so the encoders' word caches see a realistic spread of words.
"""
import os
import random
import re
import sys

LICENSES = "/usr/share/common-licenses"
HEADERS = ["stdio.h", "stdlib.h", "string.h", "math.h", "unistd.h", "fcntl.h", "signal.h",
           "pthread.h", "time.h", "wchar.h", "locale.h", "regex.h", "elf.h", "zlib.h"]
SCRIPTS = [
    "的 一 是 不 了 人 我 在 有 他 这 中 大 来 上 国 个 到 说 们 为 子 和 你 地 出 道 也 时 年",
    "日本語 の テキスト を 東京 で 書きました カタカナ ひらがな 漢字 今日 は 天気 が いい",
    "한국어 텍스트 서울 에서 안녕하세요 감사합니다 대한민국 사람 학교 컴퓨터",
    "Москва русский язык текст пример слово машина обучение модель данные",
    "Ελληνικά κείμενο παράδειγμα λέξη μηχανή μάθηση δεδομένα Αθήνα",
    "العربية نص مثال كلمة تعلم الآلة البيانات القاهرة مرحبا",
    "हिन्दी पाठ उदाहरण शब्द मशीन सीखना डेटा दिल्ली नमस्ते",
    "ภาษาไทย ข้อความ ตัวอย่าง คำ เครื่อง การเรียนรู้ ข้อมูล กรุงเทพ",
    "café naïve façade Ångström crème brûlée señor smörgåsbord Größe déjà",
    "😀 🎉 👍🏽 ❤️ 🚀 👩\u200d💻 👨\u200d👩\u200d👧\u200d👦 🇩🇪 🇯🇵 ✨ 🔥",
]


def words_with_weights():
    counts = {}
    for name in sorted(os.listdir(LICENSES)):
        path = os.path.join(LICENSES, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                for w in re.findall(r"[A-Za-z]+(?:'[a-z]+)?", f.read()):
                    counts[w.lower()] = counts.get(w.lower(), 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))
    return words, [1.0 / (r + 1) for r in range(len(words))]


def prose(rng, words, weights):
    out = []
    for _ in range(rng.randint(2, 6)):
        s = rng.choices(words, weights, k=rng.randint(6, 24))
        s[0] = s[0].capitalize()
        for k in range(1, len(s)):
            r = rng.random()
            if r < 0.08:
                s[k - 1] += ","
            elif r < 0.10:
                s[k] = str(rng.randint(0, 10 ** rng.randint(1, 5)))
            elif r < 0.13:
                s[k] = s[k].capitalize()
            elif r < 0.15:
                s[k] = rng.choice(["don't", "it's", "we'll", "they've", "I'm", "you'd"])
        out.append(" ".join(s) + rng.choice([".", ".", ".", "?", "!", ";"]))
    return " ".join(out)


def code(rng, lines):
    start = rng.randrange(len(lines))
    return "\n".join(lines[start:start + rng.randint(5, 40)])


def other(rng):
    out = []
    for _ in range(rng.randint(5, 30)):
        out.append(rng.choice(rng.choice(SCRIPTS).split()))
    return " ".join(out) + rng.choice(["。", ".", "!", "؟", " ", "\n"])


def numbers(rng):
    kinds = [lambda: str(rng.randint(0, 10 ** rng.randint(1, 18))),
             lambda: "%04d-%02d-%02d" % (rng.randint(1900, 2100), rng.randint(1, 12),
                                          rng.randint(1, 28)),
             lambda: "%.*f" % (rng.randint(1, 8), rng.uniform(-1e4, 1e4)),
             lambda: hex(rng.getrandbits(rng.randint(8, 64))),
             lambda: " | ".join(str(rng.randint(0, 9999)).rjust(6) for _ in range(6))]
    return " ".join(rng.choice(kinds)() for _ in range(rng.randint(3, 15)))


def whitespace(rng):
    parts = []
    for _ in range(rng.randint(2, 8)):
        parts.append(rng.choice([" " * rng.randint(2, 40), "\t" * rng.randint(1, 4),
                                 "\n" * rng.randint(1, 4), " \n ",
                                 "https://example.org/%s?id=%d" % (rng.choice(
                                     ["a/b", "docs/index.html", "x_y-z"]), rng.randint(0, 999)),
                                 "word"]))
    return "".join(parts)


def make(size):
    words, weights = words_with_weights()
    lines = []
    for h in HEADERS:
        path = os.path.join("/usr/include", h)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                lines.extend(f.read().splitlines())
    rng = random.Random(16)
    out, n = [], 0
    while n < size:
        r = rng.random()
        if r < 0.50:
            p = prose(rng, words, weights)
        elif r < 0.70:
            p = code(rng, lines)
        elif r < 0.85:
            p = other(rng)
        elif r < 0.95:
            p = numbers(rng)
        else:
            p = whitespace(rng)
        p += "\n\n"
        out.append(p)
        n += len(p.encode("utf-8"))
    return "".join(out)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: make_bpe_text.py OUT [SIZE_MIB]")
    size = int(float(sys.argv[2]) * (1 << 20)) if len(sys.argv) == 3 else 4 << 20
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write(make(size))


if __name__ == "__main__":
    main()
