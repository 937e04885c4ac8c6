"""Named datasets: small real data bundled in `data/`, and hub sources for `full`.

    >>> from labkit import data
    >>> reviews = data.load("movie_reviews")          # a datasets.DatasetDict
    >>> reviews["train"][0]
    {'text': '...', 'label': 1}
    >>> few = data.sample(reviews["train"], 32, seed=0)   # 16 per class

Every bundled file is loaded with `datasets.load_dataset("json", ...)` from `data/`, the
same code path as any local dataset. Splits are fixed files (made by
`scripts/build_data.py`, recorded with sha256 in `data/manifest.json`), so a split never
changes under a learner. Where the source, licence and counts come from: `data/README.md`.

Every bundled file is checked against its sha256 in the manifest when it is loaded: a
changed file is refused (`DataFileChanged`, naming the file, both hashes and how to
restore it), since every number in the course rests on these files. A file that passed is
remembered by its size and modification time (in `runs/verified-data.json`, untracked),
so the second load costs nothing.

Your own labelled text: `from_file(path, text_column=..., label_column=...)` reads a CSV,
JSON/JSONL or Parquet file and gives it the course's splits (see its docstring).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import hub


@dataclass(frozen=True)
class DatasetSpec:
    """What a named dataset is, where its bundled files are, and its hub twin (if any)."""

    description: str
    columns: tuple[str, ...]
    splits: tuple[str, ...] = ("train", "validation", "test")
    label_names: tuple[str, ...] = ()
    hub_id: str | None = None           # used in the `full` profile when reachable
    hub_config: str | None = None
    hub_note: str = ""                  # how the hub version differs
    extra: dict = field(default_factory=dict)


DATASETS: dict[str, DatasetSpec] = {
    "en_fr_bible": DatasetSpec(
        "English-French verse pairs: Bible in Basic English (1949) and Louis Segond (1910)",
        ("en", "fr"),
        hub_id="Helsinki-NLP/opus_books", hub_config="en-fr",
        hub_note="novels (OPUS books), columns mapped from translation.en/.fr"),
    "sotu": DatasetSpec(
        "State of the Union addresses 1790-2021, passages of about 60+ words (raw English)",
        ("text",),
        hub_id="Salesforce/wikitext", hub_config="wikitext-103-raw-v1",
        hub_note="Wikipedia articles instead of speeches"),
    "movie_reviews": DatasetSpec(
        "Rotten Tomatoes review sentences, positive/negative (Pang & Lee sentence polarity)",
        ("text", "label"), label_names=("negative", "positive"),
        hub_id="cornell-movie-review-data/rotten_tomatoes",
        hub_note="the same corpus with its own 8,530/1,066/1,066 split"),
    "movie_plots": DatasetSpec(
        "Movie plot summaries from the same source, unlabelled in-domain text",
        ("text",), splits=("train", "validation")),
    "tweets_sentiment": DatasetSpec(
        "Tweets about airlines, brands and products, positive/negative",
        ("text", "label"), label_names=("negative", "positive")),
    "bbc_news": DatasetSpec(
        "BBC news articles in five topics",
        ("text", "label"),
        label_names=("business", "entertainment", "politics", "sport", "tech")),
}


def data_dir() -> Path:
    """Where the bundled data lives: $LABKIT_DATA, else the repository's `data/`."""
    env = os.environ.get("LABKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "data"


def spec(name: str) -> DatasetSpec:
    """The spec of a named dataset; an unknown name lists the known ones."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def files(name: str, root: Path | None = None) -> dict[str, Path]:
    """The bundled file of each split of `name`."""
    root = Path(root) if root else data_dir()
    return {split: root / name / f"{split}.jsonl.gz" for split in spec(name).splits}


def load(name: str, *, profile: str = "quick", source: str = "auto", root: Path | None = None):
    """Load a named dataset as a `datasets.DatasetDict`.

    `source`: "bundled" (the files in data/), "hub" (the hub twin; fails if unreachable)
    or "auto" (the hub twin in the `full` profile when the hub answers, else bundled,
    with a one-line message saying which).
    """
    s = spec(name)
    if source not in {"auto", "bundled", "hub"}:
        raise ValueError(f"unknown source {source!r}; use 'auto', 'bundled' or 'hub'")
    if source == "hub" or (source == "auto" and profile == "full" and s.hub_id):
        if hub.reachable():
            return _load_hub(name, s)
        if source == "hub":
            raise ConnectionError(f"dataset {name!r}: the hub is not reachable (or "
                                  "HF_HUB_OFFLINE=1); use source='bundled'")
        print(f"[labkit] hub not reachable: using the bundled {name!r} ({s.description})")
    return _load_bundled(name, s, root)


def _load_bundled(name: str, s: DatasetSpec, root: Path | None):
    import datasets

    paths = files(name, root)
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"dataset {name!r}: missing {', '.join(missing)}. The files ship with the "
            "repository; run from a full clone, set LABKIT_DATA to its data/ folder, or "
            "rebuild them with `python scripts/build_data.py`")
    for p in paths.values():
        verified(p, root)
    dsd = datasets.load_dataset("json", data_files={k: str(v) for k, v in paths.items()})
    check(dsd, s.columns, name)
    return dsd


def _load_hub(name: str, s: DatasetSpec):
    import datasets

    dsd = datasets.load_dataset(s.hub_id, s.hub_config)
    if name == "en_fr_bible":
        dsd = dsd.map(lambda r: {"en": r["translation"]["en"], "fr": r["translation"]["fr"]},
                      remove_columns=dsd["train"].column_names)
        if "test" not in dsd:   # opus_books ships one split: make ours, fixed by seed
            first = dsd["train"].train_test_split(test_size=2000, seed=0)
            second = first["test"].train_test_split(test_size=0.5, seed=0)
            dsd = datasets.DatasetDict(train=first["train"], validation=second["train"],
                                       test=second["test"])
    if name == "sotu":
        dsd = dsd.filter(lambda r: len(r["text"].split()) >= 8)
    print(f"[labkit] {name!r} from the hub: {s.hub_id} ({s.hub_note})")
    check(dsd, s.columns, name)
    return dsd


def check(dsd, columns, name: str = "dataset") -> None:
    """Fail with one clear message if a split is empty or lacks a needed column."""
    for split, ds in dsd.items():
        lacking = [c for c in columns if c not in ds.column_names]
        if lacking:
            raise ValueError(f"{name}[{split!r}] lacks column(s) {lacking}; it has "
                             f"{ds.column_names}. Rename them with ds.rename_column(old, new)")
        if len(ds) == 0:
            raise ValueError(f"{name}[{split!r}] is empty: check the file and any filter")


_LABELS: dict = {}


def _label_array(ds, column: str):
    """`ds[column]` as a NumPy array, read once per dataset (by its fingerprint): reading
    a column of 9,751 rows takes a quarter of a second, and a learning curve draws from
    the same pool for every budget and seed."""
    import numpy as np

    key = (getattr(ds, "_fingerprint", None), column, len(ds))
    if key[0] is None:
        return np.asarray(ds[column])
    if key not in _LABELS:
        if len(_LABELS) >= 16:
            _LABELS.clear()
        _LABELS[key] = np.asarray(ds[column])
    return _LABELS[key]


def sample(ds, n: int, *, seed: int = 0, label_column: str = "label"):
    """`n` examples drawn with `seed`, balanced across labels (the label budget of a
    few-shot experiment). Without a label column: a plain random sample."""
    if n > len(ds):
        raise ValueError(f"asked for {n} examples but the split has only {len(ds)}")
    if label_column not in ds.column_names:
        return ds.shuffle(seed=seed).select(range(n))
    import numpy as np

    labels = _label_array(ds, label_column)
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    per_class = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    picked = []
    for c, k in zip(classes, per_class):
        idx = np.flatnonzero(labels == c)
        if k > len(idx):
            raise ValueError(f"label {c} has only {len(idx)} examples, {k} needed")
        picked.extend(rng.choice(idx, size=k, replace=False).tolist())
    rng.shuffle(picked)
    return ds.select(picked)


def manifest(root: Path | None = None) -> dict:
    root = Path(root) if root else data_dir()
    path = root / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: it holds the sha256 of every bundled file. "
                                "Restore it with `git checkout -- data/manifest.json`, or point "
                                "LABKIT_DATA at a full clone's data/ folder")
    return json.loads(path.read_text())


class DataFileChanged(ValueError):
    """A bundled data file whose sha256 is not the one in data/manifest.json."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified_cache() -> Path:
    from .ledger import runs_dir   # untracked state lives under runs/ (or $LABKIT_RUNS)

    return runs_dir() / "verified-data.json"


def verified(path: Path | str, root: Path | None = None) -> Path:
    """`path` (a bundled file) after checking its sha256 against the manifest; raises
    `DataFileChanged` if it differs. A file that passed is remembered by its absolute
    path, size and modification time, so checking it again costs one `stat`. Files the
    manifest does not list are returned unchecked."""
    root = Path(root) if root else data_dir()
    path = Path(path)
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path                      # not a bundled file
    meta = manifest(root)["files"].get(rel)
    if meta is None:
        return path
    st = path.stat()
    key, stamp = str(path.resolve()), [st.st_size, st.st_mtime_ns, meta["sha256"]]
    cache = _verified_cache()
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if known.get(key) == stamp:
        return path
    found = _sha256(path)
    if found != meta["sha256"]:
        raise DataFileChanged(
            f"bundled data file {path} has changed: its sha256 is {found}, "
            f"data/manifest.json expects {meta['sha256']}. Every result of the course rests "
            f"on this file; restore it with `git checkout -- data/{rel}` (or copy it from a "
            f"fresh clone). To work with data of your own, load it with "
            f"`data.from_file(path, text_column=..., label_column=...)` instead")
    known[key] = stamp
    try:                                 # a read-only checkout simply checks every time
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        pass
    return path


def verify(root: Path | None = None) -> list[str]:
    """Recompute the sha256 of every bundled file; return the problems (empty if none)."""
    root = Path(root) if root else data_dir()
    problems = []
    for rel, meta in manifest(root)["files"].items():
        path = root / rel
        if not path.exists():
            problems.append(f"missing: {rel}")
        elif _sha256(path) != meta["sha256"]:
            problems.append(f"sha256 mismatch: {rel}")
    return problems


# --------------------------------------------------------------------------- your own data
FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json",
           ".parquet": "parquet"}


class DataFileError(ValueError):
    """A file of your own that cannot become the course's splits; the message names the
    file and what to do."""


def from_file(path, *, text_column: str = "text", label_column: str = "label",
              encoding: str = "utf-8", validation_size: float = 0.1, test_size: float = 0.1,
              seed: int = 0):
    """Your own labelled text (CSV/TSV, JSON or JSON lines, Parquet) as the course's
    splits: a `DatasetDict` with train/validation/test, stratified by label and fixed by
    `seed`, with the columns `text` and `label` (0..K-1, a `ClassLabel` that keeps your
    label names), read through `datasets.load_dataset` like the bundled data.

    Labels that are strings or not 0..K-1 are mapped to 0..K-1 in sorted order, and the
    mapping is printed. A file that cannot work gets a `DataFileError` naming the fix: an
    empty file, bytes that are not `encoding` (the line is named), missing columns (the
    columns found are listed), a single class, or too few rows for the splits."""
    import datasets

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataFileError(f"{path}: from_file reads {', '.join(FORMATS)} files, not "
                            f"{path.suffix or 'a file without a suffix'}; save it in one of "
                            "those formats")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFileError(f"{path} is empty: write a header line and one row per example, "
                            f"e.g. `{text_column},{label_column}`")
    options = {}
    if kind != "parquet":
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8") and raw[:3] == b"\xef\xbb\xbf":
            encoding = "utf-8-sig"         # a byte-order mark, as spreadsheets write it
        _check_encoding(path, raw, encoding)
        options["encoding"] = encoding
    if path.suffix.lower() == ".tsv":
        options["sep"] = "\t"
    if kind == "csv" and len([x for x in raw.splitlines() if x.strip()]) < 2:
        raise DataFileError(f"{path} has a header line and no rows: add one row per example")
    quiet = datasets.is_progress_bar_enabled()
    if quiet:
        datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(kind, data_files=str(path), split="train", **options)
    except Exception as e:
        raise DataFileError(f"{path} could not be read as {kind} ({type(e).__name__}: "
                            f"{str(e).strip().splitlines()[-1][:200] if str(e).strip() else e})"
                            ) from e
    finally:
        if quiet:
            datasets.enable_progress_bars()
    if len(ds) == 0:
        raise DataFileError(f"{path} has no rows (only a header?): add one row per example")
    missing = [c for c in (text_column, label_column) if c not in ds.column_names]
    if missing:
        raise DataFileError(f"{path} has no column(s) {missing}; the columns found are "
                            f"{ds.column_names}. Pass text_column=... and label_column=...")
    texts, values = ds[text_column], ds[label_column]
    blank = [i for i, (t, y) in enumerate(zip(texts, values))
             if y is None or y != y or not isinstance(t, str) or not t.strip()]
    if blank:
        raise DataFileError(f"{path}: {len(blank)} row(s) lack a text or a label (the first: "
                            f"data row {blank[0] + 1}); drop or fill them")
    classes = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    if len(classes) < 2:
        raise DataFileError(f"{path}: every one of its {len(ds)} rows has the label "
                            f"{classes[0]!r}; a classifier needs at least two classes. Check "
                            f"label_column={label_column!r}")
    if classes != list(range(len(classes))):
        print(f"[labkit] {path.name}: labels mapped to 0..{len(classes) - 1}: "
              + ", ".join(f"{v!r} -> {i}" for i, v in enumerate(classes)))
    index = {v: i for i, v in enumerate(classes)}
    counts = {v: values.count(v) for v in classes}
    _check_split_sizes(path, len(ds), counts, validation_size, test_size)
    names = [str(v) for v in classes]
    ds = datasets.Dataset.from_dict(
        {"text": texts, "label": [index[v] for v in values]},
        features=datasets.Features({"text": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=names)}))
    first = ds.train_test_split(test_size=test_size, stratify_by_column="label", seed=seed)
    second = first["train"].train_test_split(test_size=validation_size / (1 - test_size),
                                             stratify_by_column="label", seed=seed)
    out = datasets.DatasetDict(train=second["train"], validation=second["test"],
                               test=first["test"])
    print(f"[labkit] {path.name}: {len(ds)} rows, {len(classes)} classes ("
          + ", ".join(f"{n} {counts[v]}" for n, v in zip(names, classes)) + ") -> "
          + " / ".join(f"{k} {len(v)}" for k, v in out.items()) + f" (stratified, seed {seed})")
    return out


def _check_encoding(path: Path, raw: bytes, encoding: str) -> None:
    try:
        raw.decode(encoding)
        return
    except LookupError:
        raise DataFileError(f"{path}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError:
        pass
    for n, line in enumerate(raw.split(b"\n"), 1):
        try:
            line.decode(encoding)
        except UnicodeDecodeError as e:
            raise DataFileError(
                f"{path}, line {n}: bytes that are not {encoding} ({line[e.start:e.end]!r} at "
                f"byte {e.start + 1} of the line). Pass the file's encoding, e.g. "
                f"from_file(..., encoding=\"latin-1\") (or \"cp1252\" for a file saved on "
                f"Windows), or save it as UTF-8") from None


def _check_split_sizes(path: Path, n: int, counts: dict, validation_size: float,
                       test_size: float) -> None:
    """Refuse a file too small for stratified train/validation/test splits: each split
    needs a row of every class, so every class needs at least three rows."""
    import math

    if not (0 < validation_size < 1 and 0 < test_size < 1 and validation_size + test_size < 1):
        raise ValueError(f"validation_size={validation_size} and test_size={test_size} must "
                         "be fractions that leave rows to train on")
    k = len(counts)
    n_test = math.ceil(test_size * n)
    n_val = math.ceil(validation_size / (1 - test_size) * (n - n_test))
    n_train = n - n_test - n_val
    rare = {v: c for v, c in counts.items() if c < 3}
    if rare or min(n_test, n_val, n_train) < k:
        need = max(3 * k, math.ceil(k / min(test_size, validation_size)))
        raise DataFileError(
            f"{path}: {n} rows are too few for stratified splits of {k} classes "
            f"(train {n_train} / validation {n_val} / test {n_test} rows; each split needs a "
            f"row of every class, so every class needs at least 3 rows"
            + (f"; too rare: {', '.join(f'{v!r} ({c})' for v, c in rare.items())}" if rare
               else "")
            + f"). Add rows (about {need} at these sizes), or raise test_size=/validation_size=")
