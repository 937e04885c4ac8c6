"""What a newcomer reads: no library report that looks like an error, one plain sentence."""

import json

from labkit import cli, models


def test_new_head_is_explained_once_in_plain_words(capfd, monkeypatch):
    monkeypatch.setattr(models, "_EXPLAINED", set())
    models.load("minilm", task="sequence-classification", num_labels=2)
    models.load("minilm", task="sequence-classification", num_labels=2)
    out, err = capfd.readouterr()
    assert "LOAD REPORT" not in err and "MISSING" not in err, err
    assert out.count("starts from random weights") == 1, out
    assert "classifier.weight" in out


def test_a_checkpoint_with_every_weight_says_nothing(capfd, monkeypatch):
    monkeypatch.setattr(models, "_EXPLAINED", set())
    models.load("tiny-mlm", task="masked-lm")
    out, err = capfd.readouterr()
    assert "random" not in out and "LOAD REPORT" not in err


def test_labkit_run_has_no_kernel_transport_warning(tmp_path, capfd):
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "a", "metadata": {},
                     "outputs": [], "source": ["print('hello')"]}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                      "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    src = tmp_path / "tiny.ipynb"
    src.write_text(json.dumps(nb))
    cli.run_notebook(src, tmp_path / "out.ipynb")
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err
    executed = json.loads((tmp_path / "out.ipynb").read_text())
    assert executed["cells"][0]["outputs"][0]["text"] == ["hello\n"]
