"""`data.from_file`: a learner's own labelled text as the course's splits, a clear error
for each kind of bad file, and the README's "Your own data" recipe run as written."""

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

from labkit import data

ROOT = Path(__file__).resolve().parent.parent
POS = ["a warm, funny and moving film", "the cast is wonderful", "I loved every minute",
       "a delight from start to finish", "sharp writing and great acting"]
NEG = ["a dull, lifeless mess", "the plot makes no sense", "I was bored throughout",
       "badly acted and far too long", "a waste of a good cast"]


def reviews(n=120):
    """`n` rows with the columns review/sentiment, the labels as words."""
    return [{"review": f"{(POS if i % 2 else NEG)[i % 5]} ({i})",
             "sentiment": "positive" if i % 2 else "negative"} for i in range(n)]


def write_csv(path, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def tree_untouched():
    """Nothing from_file does may add or change a file of the project."""
    def status():
        return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                              text=True).stdout
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    before = status()
    yield
    assert status() == before


def test_csv_with_word_labels_gives_stratified_seeded_splits(tmp_path, capsys, tree_untouched):
    path = write_csv(tmp_path / "mine.csv", reviews(120))
    ds = data.from_file(path, text_column="review", label_column="sentiment")
    assert "'negative' -> 0, 'positive' -> 1" in capsys.readouterr().out     # the mapping
    assert {k: len(v) for k, v in ds.items()} == {"train": 96, "validation": 12, "test": 12}
    assert ds["train"].column_names == ["text", "label"]
    assert ds["train"].features["label"].names == ["negative", "positive"]
    for split in ds.values():                                     # stratified: 50/50 each
        assert sorted(split["label"]).count(1) == len(split) // 2
    texts = [t for split in ds.values() for t in split["text"]]
    assert sorted(texts) == sorted(r["review"] for r in reviews(120))   # each row once
    row = next(r for r in reviews(120) if r["review"] == ds["test"][0]["text"])
    assert ds["test"][0]["label"] == ["negative", "positive"].index(row["sentiment"])
    again = data.from_file(path, text_column="review", label_column="sentiment")
    assert again["test"]["text"] == ds["test"]["text"]                   # seeded
    other = data.from_file(path, text_column="review", label_column="sentiment", seed=1)
    assert other["test"]["text"] != ds["test"]["text"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.csv"]    # nothing beside it


def test_json_jsonl_and_parquet(tmp_path, capsys, tree_untouched):
    rows = [{"text": r["review"], "label": 7 if r["sentiment"] == "positive" else 3}
            for r in reviews(60)]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    import pandas as pd
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    for name in ("a.json", "a.jsonl", "a.parquet"):
        ds = data.from_file(tmp_path / name)
        assert "3 -> 0, 7 -> 1" in capsys.readouterr().out          # not 0..K-1: mapped
        assert sum(len(v) for v in ds.values()) == 60 and set(ds["test"]["label"]) == {0, 1}
    zero_one = [{"text": r["text"], "label": int(r["label"] == 7)} for r in rows]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in zero_one))
    data.from_file(tmp_path / "b.jsonl")
    assert "mapped" not in capsys.readouterr().out                   # already 0..K-1


def bad(tmp_path, content: bytes, name="bad.csv", **kwargs):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(data.DataFileError) as err:
        data.from_file(path, text_column="review", label_column="sentiment", **kwargs)
    assert str(path) in str(err.value)                          # every error names the file
    return str(err.value)


def test_an_empty_file(tmp_path, tree_untouched):
    assert "is empty" in bad(tmp_path, b"")
    assert "is empty" in bad(tmp_path, b"\n  \n")
    assert "a header line and no rows" in bad(tmp_path, b"review,sentiment\n")


def test_bytes_that_are_not_utf8_name_the_line_and_encoding(tmp_path, tree_untouched):
    rows = reviews(30)
    rows[4]["review"] = "un film très réussi"
    path = write_csv(tmp_path / "latin.csv", rows, encoding="latin-1")
    text = bad(tmp_path, path.read_bytes(), name="latin.csv")
    assert "line 6" in text and "not utf-8" in text and 'encoding="latin-1"' in text
    ds = data.from_file(path, text_column="review", label_column="sentiment",
                        encoding="latin-1")
    assert "un film très réussi" in [t for s in ds.values() for t in s["text"]]


def test_missing_columns_list_the_columns_found(tmp_path, tree_untouched):
    path = write_csv(tmp_path / "cols.csv", reviews(30))
    with pytest.raises(data.DataFileError) as err:
        data.from_file(path)                                   # text/label by default
    assert "no column(s) ['text', 'label']" in str(err.value)
    assert "the columns found are ['review', 'sentiment']" in str(err.value)


def test_a_single_class(tmp_path, tree_untouched):
    rows = [dict(r, sentiment="positive") for r in reviews(30)]
    text = bad(tmp_path, write_csv(tmp_path / "one.csv", rows).read_bytes(), name="one.csv")
    assert "has the label 'positive'" in text and "at least two classes" in text


def test_too_few_rows_for_the_splits(tmp_path, tree_untouched):
    text = bad(tmp_path, write_csv(tmp_path / "few.csv", reviews(8)).read_bytes(),
               name="few.csv")
    assert "8 rows are too few for stratified splits of 2 classes" in text
    assert "test 1 rows" in text
    rows = reviews(40) + [{"review": "meh", "sentiment": "mixed"}]
    text = bad(tmp_path, write_csv(tmp_path / "rare.csv", rows).read_bytes(), name="rare.csv")
    assert "too rare: 'mixed' (1)" in text


def readme_recipe() -> str:
    """The code block of the README's "Your own data" section, as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own data", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_the_readme_recipe_runs_as_written(tmp_path, monkeypatch, capsys, tree_untouched):
    code = readme_recipe()
    for step in ("data.from_file(", "finetune.build_classifier(", "finetune.tokenize(",
                 "data.sample(", "finetune.fit_classifier(", "protocol.score("):
        assert step in code
    assert len(code.strip().splitlines()) <= 14
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "my_reviews.csv", reviews(160))
    assert code.count('"quick"') == 1
    exec(compile(code.replace('"quick"', '"smoke"'), "README.md", "exec"), {})  # smoke-sized
    out = capsys.readouterr().out
    assert re.search(r"test accuracy \d+\.\d% on 16 rows", out), out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_reviews.csv"]
