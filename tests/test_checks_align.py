"""The checkers of the Bradley-Terry loss (notebook 10) and the DPO loss (notebook 11)."""

import torch
import torch.nn.functional as F

from checker_helpers import own_copy
from labkit import align, checks


def run(monkeypatch, tmp_path, capsys, fn, times=1, ex="11.1"):
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "p.json"))
    for _ in range(times):
        got = checks.run(ex, fn)
    return got, capsys.readouterr().out


def test_the_reference_passes(monkeypatch, tmp_path, capsys):
    mine = own_copy(align.dpo_loss)
    got, out = run(monkeypatch, tmp_path, capsys, mine)
    assert got is mine and "passed" in out


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
        "one loss per pair": lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pc - rc) - (pr - rr))).mean(),
        "returns None": lambda pc, pr, rc, rr, b: None,
        "cut off from the graph": lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pc - rc) - (pr - rr))).detach(),
    }
    for hint, fn in mistakes.items():
        got, out = run(monkeypatch, tmp_path, capsys, fn)
        assert got is align.dpo_loss and hint in out, (hint, out)


def test_the_second_wrong_attempt_shows_the_stronger_hint(monkeypatch, tmp_path, capsys):
    def wrong(pc, pr, rc, rr, b):
        return torch.log1p(torch.exp(-b * ((pc - rc) - (pr - rr)))) + 0.1
    _, out = run(monkeypatch, tmp_path, capsys, wrong, times=2)
    assert "stronger hint" in out and "show me" in out


def test_bradley_terry_reference_passes_and_mistakes_get_their_hint(monkeypatch, tmp_path, capsys):
    mine = own_copy(align.bradley_terry_loss)
    got, out = run(monkeypatch, tmp_path, capsys, mine, ex="10.1")
    assert got is mine and "passed" in out
    mistakes = {
        "sign is flipped": lambda c, r: -F.logsigmoid(r - c).mean(),
        "log is missing": lambda c, r: -torch.sigmoid(c - r).mean(),
        "return one number": lambda c, r: -F.logsigmoid(c - r),
        "returns None": lambda c, r: None,
        "cut off from the graph": lambda c, r: -F.logsigmoid(c - r).mean().detach(),
        # right on the checker's rewards, wrong once they are all shifted by 100
        "DIFFERENCE": lambda c, r: -F.logsigmoid(c - r).mean() + (c.mean() > 50) * 1.0,
    }
    for hint, fn in mistakes.items():
        got, out = run(monkeypatch, tmp_path, capsys, fn, ex="10.1")
        assert got is align.bradley_terry_loss and hint in out, (hint, out)
