"""The exercise machinery: verdicts, hints in steps, fallback, progress, random state;
and the quiz."""

import torch

from labkit import checks, quiz
from labkit.checks import _core


def _toy(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "progress.json"))
    # register a toy exercise for this test only: monkeypatch removes it afterwards
    monkeypatch.setitem(_core.EXERCISES, "99.1", None)
    _core.EXERCISES.pop("99.1")

    def double(x):
        return 2 * x

    @checks.exercise("99.1", "doubling", reference=double)
    def check(fn):
        x = torch.randn(5, generator=checks.fresh_generator())
        checks.close(fn(x), double(x), what="the output", hint="multiply by two",
                     stronger="return 2 * x")
    return double


def test_pass_fail_and_stub(monkeypatch, tmp_path, capsys):
    double = _toy(monkeypatch, tmp_path)

    def mine(x):
        return x + x
    assert checks.run("99.1", mine) is mine
    assert "passed" in capsys.readouterr().out

    def stub(x):
        raise NotImplementedError("your turn")
    assert checks.run("99.1", stub) is double
    assert "not attempted" in capsys.readouterr().out

    def wrong(x):
        return 3 * x
    assert checks.run("99.1", wrong) is double
    first = capsys.readouterr().out
    assert "hint: " in first and "multiply by two" in first and "show me" not in first
    checks.run("99.1", wrong)
    second = capsys.readouterr().out
    assert "stronger hint: return 2 * x" in second and "show me" in second

    row = checks.progress()["99.1"]
    assert row["passed"] and row["failures"] == 2 and row["status"] == "wrong"


def test_a_crashing_answer_falls_back(monkeypatch, tmp_path, capsys):
    double = _toy(monkeypatch, tmp_path)
    assert checks.run("99.1", lambda x: x.nonexistent) is double
    assert "AttributeError" in capsys.readouterr().out


def test_checking_leaves_the_global_random_streams_alone(monkeypatch, tmp_path):
    _toy(monkeypatch, tmp_path)

    def noisy(x):
        torch.rand(100)
        return 2 * x
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    checks.run("99.1", noisy)
    assert torch.equal(torch.rand(3), expected)


def test_unknown_exercise_names_the_known_ones():
    try:
        checks.get("98.7")
    except KeyError as e:
        assert "known" in str(e)
    else:
        raise AssertionError("expected KeyError")


def test_quiz_explains_every_answer(capsys):
    q = quiz.ask([quiz.Question("2 + 2?", [quiz.Choice("4", True, "counting"),
                                           quiz.Choice("5", False, "one too many")])])
    text = capsys.readouterr().out
    assert "Q1. 2 + 2?" in text and "counting" not in text      # no answers when headless
    assert q.answer(0, 0) and not q.answer(0, 1)
    out = capsys.readouterr().out
    assert "right: counting" in out and "not quite: one too many" in out
    box = q.widgets()
    buttons = box.children[0].children[1:3]
    buttons[1].click()
    assert "one too many" in box.children[0].children[-1].value


def test_quiz_refuses_a_question_without_explanations():
    import pytest
    with pytest.raises(ValueError, match="explanation"):
        quiz.Question("?", [quiz.Choice("a", True, ""), quiz.Choice("b", False, "no")])
