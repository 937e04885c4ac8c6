"""Bundled data is verified when it is loaded: a changed file is refused with its name,
both hashes and how to restore it; a verified file is not hashed again."""

import gzip
import json
import shutil
import subprocess

import pytest

from labkit import data, word2vec


@pytest.fixture
def copy_of_data(tmp_path, monkeypatch):
    """The bundled movie reviews and word sets, copied under LABKIT_DATA with the manifest."""
    root = tmp_path / "data"
    for folder in ("movie_reviews", "word_eval"):
        shutil.copytree(data.data_dir() / folder, root / folder)
    shutil.copy(data.data_dir() / "manifest.json", root / "manifest.json")
    monkeypatch.setenv("LABKIT_DATA", str(root))
    return root


def flip_one_label(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows[17]["label"] = 1 - rows[17]["label"]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return len(rows)


def test_a_flipped_label_is_refused_with_the_file_named(copy_of_data):
    assert len(data.load("movie_reviews")["train"]) == 9751          # the copy is intact
    path = copy_of_data / "movie_reviews" / "train.jsonl.gz"
    expected = data.manifest()["files"]["movie_reviews/train.jsonl.gz"]["sha256"]
    assert flip_one_label(path) == 9751
    with pytest.raises(data.DataFileChanged) as err:
        data.load("movie_reviews")
    text = str(err.value)
    assert str(path) in text and expected in text and data._sha256(path) in text
    assert "git checkout -- data/movie_reviews/train.jsonl.gz" in text


def test_a_changed_word_set_is_refused(copy_of_data):
    path = copy_of_data / "word_eval" / "wordsim353.tsv"
    assert len(word2vec.load_word_pairs(path)) == 353
    path.write_text(path.read_text().replace("\t7.35", "\t9.35", 1))
    with pytest.raises(data.DataFileChanged, match="data/word_eval/wordsim353.tsv"):
        word2vec.load_word_pairs(path)


def test_a_verified_file_is_not_hashed_again(copy_of_data, monkeypatch):
    data.load("movie_reviews")
    cache = json.loads(data._verified_cache().read_text())
    assert len(cache) == 3 and all(str(copy_of_data) in k for k in cache)

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed a second time")

    monkeypatch.setattr(data, "_sha256", no_hashing)
    assert len(data.load("movie_reviews")["test"]) == 2000           # stat only
    # a changed modification time (the same bytes) means: hash again
    path = copy_of_data / "movie_reviews" / "test.jsonl.gz"
    path.touch()
    with pytest.raises(AssertionError, match="hashed a second time"):
        data.load("movie_reviews")


def test_the_cache_is_untracked(monkeypatch):
    monkeypatch.delenv("LABKIT_RUNS")
    cache = data._verified_cache()                      # runs/verified-data.json
    repo = data.data_dir().parent
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(cache)], cwd=repo)
    assert ignored.returncode == 0, f"{cache} would be tracked by git"
