"""The exercise machinery: verdicts, hints in steps, fallback, progress, random state;
and the quiz."""

import pytest
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
    assert "✓ right. counting" in out and "✗ not quite. one too many" in out
    assert "Right:" not in out
    box = q.widgets()
    buttons = box.children[0].children[1:3]
    buttons[1].click()
    assert "one too many" in box.children[0].children[-1].value


def test_quiz_refuses_a_question_without_explanations():
    import pytest
    with pytest.raises(ValueError, match="explanation"):
        quiz.Question("?", [quiz.Choice("a", True, ""), quiz.Choice("b", False, "no")])


def test_two_processes_recording_at_once_lose_no_exercise(monkeypatch, tmp_path):
    """`labkit run -j 2` runs two notebooks at once: both records survive."""
    import multiprocessing as mp

    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "progress.json"))
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_record_many, args=(k,)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(checks.progress()) == 2 * 25


def _record_many(k):
    for i in range(25):
        _core._record(_core.Exercise(f"9{k}.{i}", "toy", lambda fn: None), "passed")


# ----------------------------------------------------------------- the reference is out of reach
checks.load_all()


@pytest.mark.parametrize("ex_id", sorted(checks.EXERCISES))
def test_an_answer_that_calls_the_reference_does_not_pass(ex_id, monkeypatch, tmp_path, capsys):
    """For every exercise of the course: a function that hands the work to labkit's own
    version (imported under any name) gets the kind message and is not recorded as passed;
    the checker still compares against the reference itself."""
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "progress.json"))
    ex = checks.get(ex_id)
    reference = ex.reference

    def lazy(*args, **kwargs):
        return reference(*args, **kwargs)

    assert checks.run(ex_id, lazy) is reference
    out = capsys.readouterr().out
    assert "calls labkit's own version" in out and "write it yourself" in out, out
    assert "passed" not in out
    row = checks.progress()[ex_id]
    assert not row["passed"] and row["status"] == "wrong"


def test_calling_the_reference_fails_even_when_the_call_is_caught(monkeypatch, tmp_path, capsys):
    double = _toy(monkeypatch, tmp_path)

    def sly(x):
        try:
            return double(x)
        except Exception:
            return 2 * x
    checks.run("99.1", sly)
    assert "calls labkit's own version" in capsys.readouterr().out
    assert not checks.progress()["99.1"]["passed"]


def test_a_blocked_helper_is_out_of_reach_too(monkeypatch, tmp_path, capsys):
    """08.3's merge is W + lora_delta(...): calling lora_delta is calling the answer."""
    from labkit import peft

    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "progress.json"))

    def merge(W, A, B, alpha):
        return W + peft.lora_delta(A, B, alpha)
    checks.run("08.3", merge)
    assert "calls labkit's own version" in capsys.readouterr().out


def test_the_instructor_solution_is_checked_but_never_recorded(monkeypatch, tmp_path, capsys):
    """Running the instructor edition (as `labkit run` does) leaves progress alone; the same
    code written by a learner (no markers) is recorded."""
    _toy(monkeypatch, tmp_path)

    def instructors(x):
        ### BEGIN SOLUTION
        return 2 * x
        ### END SOLUTION

    def learners(x):
        return 2 * x

    assert checks.run("99.1", instructors) is instructors
    assert "instructor edition" in capsys.readouterr().out
    assert checks.progress() == {}
    assert checks.run("99.1", learners) is learners
    assert checks.progress()["99.1"]["passed"]


def test_show_me_names_a_page_and_a_colab_link():
    path = checks.solution_path("08.2")
    assert path.startswith("solutions/08_") and path.endswith(".md#exercise-08-2")
    url = _core.solution_url("08.2")
    assert url.startswith("https://colab.research.google.com/github/") and "#scrollTo=" in url
