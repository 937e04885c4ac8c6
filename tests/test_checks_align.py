"""The checker of notebook 10's exercise: the DPO loss."""

import torch
import torch.nn.functional as F

from labkit import align, checks


def run(monkeypatch, tmp_path, capsys, fn, times=1):
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "p.json"))
    for _ in range(times):
        got = checks.run("10.1", fn)
    return got, capsys.readouterr().out


def test_the_reference_passes(monkeypatch, tmp_path, capsys):
    got, out = run(monkeypatch, tmp_path, capsys, align.dpo_loss)
    assert got is align.dpo_loss and "passed" in out


def test_a_stub_falls_back_to_the_reference(monkeypatch, tmp_path, capsys):
    def stub(pc, pr, rc, rr, beta):
        raise NotImplementedError
    got, out = run(monkeypatch, tmp_path, capsys, stub)
    assert got is align.dpo_loss and "not attempted" in out


def test_common_mistakes_get_their_hint(monkeypatch, tmp_path, capsys):
    mistakes = {
        "reference model is missing": lambda pc, pr, rc, rr, b: -F.logsigmoid(b * (pc - pr)),
        "sign is flipped": lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pr - rr) - (pc - rc))),
        "beta is missing": lambda pc, pr, rc, rr, b: -F.logsigmoid((pc - rc) - (pr - rr)),
        "one loss per pair": lambda pc, pr, rc, rr, b: align.dpo_loss(pc, pr, rc, rr, b).mean(),
        "returns None": lambda pc, pr, rc, rr, b: None,
    }
    for hint, fn in mistakes.items():
        got, out = run(monkeypatch, tmp_path, capsys, fn)
        assert got is align.dpo_loss and hint in out, (hint, out)


def test_the_second_wrong_attempt_shows_the_stronger_hint(monkeypatch, tmp_path, capsys):
    def wrong(pc, pr, rc, rr, b):
        return torch.log1p(torch.exp(-b * ((pc - rc) - (pr - rr)))) + 0.1
    _, out = run(monkeypatch, tmp_path, capsys, wrong, times=2)
    assert "stronger hint" in out and "show me" in out
