"""The quizzes: one file per notebook, out of the learner's cell; choices shuffled with a
seed of the notebook's own; right answers given away by neither position nor length; the
explanations true (05's about perplexity computed, not asserted)."""

import math
import re
from collections import Counter
from pathlib import Path

import pytest

from labkit import quiz, student

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
NUMBERS = [py.stem[:2] for py in SOURCES]


def right(q: quiz.Question) -> int:
    return next(j for j, c in enumerate(q.choices) if c.correct)


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_each_notebook_asks_its_quiz_file_and_shows_no_answer(py):
    text = py.read_text(encoding="utf-8")
    assert f'quiz.ask("{py.stem[:2]}")' in text
    assert "quiz.Choice(" not in text and "quiz.Question(" not in text
    assert (ROOT / "labkit" / "quizzes" / f"{py.stem[:2]}.toml").exists()


@pytest.mark.parametrize("number", NUMBERS)
def test_each_question_has_one_right_answer_and_plain_explanations(number):
    for q in quiz.load(number):
        assert sum(c.correct for c in q.choices) == 1, q.text
        for c in q.choices:
            # the feedback line says right / not quite; the explanation must not say it again
            assert not re.match(r"(Right|No|Wrong|Correct)\b", c.why), c.why


def test_the_order_is_shuffled_and_stable():
    first = [[c.text for c in q.choices] for n in NUMBERS for q in quiz.load(n)]
    again = [[c.text for c in q.choices] for n in NUMBERS for q in quiz.load(n)]
    assert first == again
    import tomllib
    written = [[c["text"] for c in q["choice"]] for n in NUMBERS for q in
               tomllib.loads((ROOT / "labkit" / "quizzes" / f"{n}.toml").read_text())["question"]]
    assert first != written, "no question was shuffled"


def test_no_letter_holds_more_than_half_of_the_right_answers():
    letters = Counter()
    for n in NUMBERS:
        mine = [right(q) for q in quiz.load(n)]
        assert len(set(mine)) > 1, f"every right answer of quiz {n} is at the same letter"
        letters.update(mine)
    total = sum(letters.values())
    assert max(letters.values()) <= total / 2, letters


def test_right_answers_do_not_stand_out_by_length():
    longest = shortest = total = 0
    for n in NUMBERS:
        for q in quiz.load(n):
            lengths = [len(c.text) for c in q.choices]
            mine = lengths[right(q)]
            others = [x for j, x in enumerate(lengths) if j != right(q)]
            total += 1
            longest += mine > max(others)
            shortest += mine < min(others)
            assert mine <= 1.3 * max(others), (n, q.text)
    assert longest <= 0.4 * total and shortest <= 0.4 * total, (longest, shortest, total)


def test_the_headless_text_and_the_feedback_are_plain():
    q = quiz.Quiz(quiz.load("00"))
    assert "`" not in q.text()
    assert all("`" not in q.feedback(i, j) for i, qq in enumerate(q.questions)
               for j in range(len(qq.choices)))


def test_05_perplexity_explanation_holds():
    """The counterexample in 05's first question: batches of 1 token at loss 1 and 1,000 at
    loss 10. The mean of the batches' perplexities is below the pooled perplexity; with the
    losses swapped it is far above, so neither is always larger."""
    def pooled(batches):
        return math.exp(sum(n * loss for n, loss in batches) / sum(n for n, _ in batches))

    def mean_of_perplexities(batches):
        return sum(math.exp(loss) for _, loss in batches) / len(batches)

    a, b = [(1, 1.0), (1000, 10.0)], [(1, 10.0), (1000, 1.0)]
    assert mean_of_perplexities(a) < pooled(a) and mean_of_perplexities(b) > pooled(b)
    text = " ".join(c.why for q in quiz.load("05") for c in q.choices)
    assert f"{mean_of_perplexities(a):,.0f}" in text and f"{pooled(a):,.0f}" in text
    assert "always at least" not in text


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_no_quiz_gives_away_a_solution_line_of_its_notebook(py):
    """A rough guard (the questions were also chosen so that none answers an exercise of its
    notebook): no solution line of the notebook appears in its quiz."""
    squash = lambda s: re.sub(r"\s+", "", s)  # noqa: E731
    text = squash((ROOT / "labkit" / "quizzes" / f"{py.stem[:2]}.toml").read_text())
    lines = [squash(line) for line in student.solution_lines(py.read_text(), min_chars=16)]
    assert not [line for line in lines if line in text]


def test_an_unknown_notebook_names_the_known_quizzes():
    with pytest.raises(FileNotFoundError, match="known: 00"):
        quiz.load("99")
