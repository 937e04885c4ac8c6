""""Check your understanding" questions, each answer with its explanation.

Each notebook's questions live in a file of their own, labkit/quizzes/NN.toml, out of the
learner's cell (the cell shows only `quiz.ask("08")`, not which choice is right):

    from labkit import quiz
    q = quiz.ask("08")

The choices are shown shuffled, with a seed of the notebook's own, so the order is the
same on every run and the right answer's position says nothing. Questions can also be
written inline (for a quick experiment):

    quiz.ask([
        quiz.Question("Why does the decoder read <s> first?", [
            quiz.Choice("It marks the start, so the first word has something to follow", True,
                        "Right: at step 0 there is no previous word; <s> stands in for it."),
            quiz.Choice("It tells the model which language to translate into", False,
                        "No: the model only ever translates English to French here."),
        ]),
    ])

In JupyterLab and Colab every question is a set of buttons (ipywidgets, which both
ship); a click shows whether that answer is right and why, for wrong answers too.
Headless (papermill, CI, a terminal) the questions and choices are printed without the
answers, and `answer(question, choice)` on the returned object prints the explanation.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from .progress import in_notebook, is_headless

QUIZZES = Path(__file__).resolve().parent / "quizzes"


@dataclass
class Choice:
    text: str
    correct: bool
    why: str            # the explanation shown when this choice is picked


@dataclass
class Question:
    text: str
    choices: list[Choice]

    def __post_init__(self):
        if len(self.choices) < 2:
            raise ValueError(f"{self.text!r}: a question needs at least two choices")
        if not any(c.correct for c in self.choices):
            raise ValueError(f"{self.text!r}: mark at least one choice correct=True")
        if not all(c.why.strip() for c in self.choices):
            raise ValueError(f"{self.text!r}: every choice needs an explanation (why)")


class Quiz:
    """Questions asked together; `answer(i, j)` checks choice j of question i."""

    def __init__(self, questions: list[Question]):
        self.questions = list(questions)

    def feedback(self, i: int, j: int) -> str:
        q = self._question(i)
        if not 0 <= j < len(q.choices):
            raise IndexError(f"question {i + 1} has choices 0..{len(q.choices) - 1}, not {j}")
        c = q.choices[j]
        return f"{'✓ right.' if c.correct else '✗ not quite.'} {plain(c.why)}"

    def answer(self, i: int, j: int) -> bool:
        """Print the explanation of choice `j` (0-based) of question `i` (0-based)."""
        print(self.feedback(i, j))
        return self._question(i).choices[j].correct

    def _question(self, i: int) -> Question:
        if not 0 <= i < len(self.questions):
            raise IndexError(f"there are questions 0..{len(self.questions) - 1}, not {i}")
        return self.questions[i]

    def text(self) -> str:
        lines = []
        for i, q in enumerate(self.questions):
            lines.append(f"Q{i + 1}. {plain(q.text)}")
            lines += [f"   ({chr(97 + j)}) {plain(c.text)}" for j, c in enumerate(q.choices)]
        lines.append("Run this cell in JupyterLab or Colab to click an answer, or call "
                     "answer(question, choice) on the returned quiz, e.g. q.answer(0, 1) "
                     "for Q1 (b).")
        return "\n".join(lines)

    def widgets(self):
        """One box per question: a button per choice and a line for the explanation."""
        import ipywidgets as w

        boxes = []
        for i, q in enumerate(self.questions):
            out = w.HTML(value="")
            buttons = []
            for j, c in enumerate(q.choices):
                b = w.Button(description=f"({chr(97 + j)}) {plain(c.text)}",
                             layout=w.Layout(width="auto", min_width="60%"),
                             tooltip=plain(c.text))
                b.on_click(lambda _b, i=i, j=j, out=out: setattr(out, "value",
                                                                 self._html(i, j)))
                buttons.append(b)
            boxes.append(w.VBox([w.HTML(f"<b>Q{i + 1}.</b> {_code_html(q.text)}"), *buttons,
                                 out]))
        return w.VBox(boxes)

    def _html(self, i: int, j: int) -> str:
        import html

        c = self.questions[i].choices[j]
        color = "#1a7f37" if c.correct else "#b35900"
        mark = "✓ right." if c.correct else "✗ not quite."
        return f'<span style="color:{color}">{mark} {_code_html(c.why)}</span>'


def plain(text: str) -> str:
    """Text for a terminal or a button: Markdown's `code` marks dropped."""
    return text.replace("`", "")


def _code_html(text: str) -> str:
    """Text for an HTML widget: escaped, with `code` shown as code."""
    import html

    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def load(notebook: str, folder: Path | None = None) -> list[Question]:
    """The questions of a notebook ("08", or "08_lora_and_peft"), from quizzes/NN.toml,
    each question's choices shuffled with the notebook's own seed (the same order on
    every run)."""
    try:
        import tomllib
    except ImportError:          # Python 3.10
        import tomli as tomllib
    number = str(notebook)[:2]
    path = (folder or QUIZZES) / f"{number}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in (folder or QUIZZES).glob("*.toml"))) or "none"
        raise FileNotFoundError(f"no quiz for notebook {notebook!r} ({path}); known: {known}")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path} is not valid TOML ({e}); fix the line it names") from None
    rng = random.Random(f"notebook {number} quiz")
    questions = []
    for k, q in enumerate(table.get("question", [])):
        try:
            choices = [Choice(c["text"], bool(c["correct"]), c["why"]) for c in q["choice"]]
            question = Question(q["text"], choices)
        except KeyError as e:
            raise ValueError(f"{path}: question {k + 1} lacks {e}; each question needs text "
                             "and [[question.choice]] tables with text, correct, why") from None
        rng.shuffle(question.choices)
        questions.append(question)
    if not questions:
        raise ValueError(f"{path} has no [[question]]")
    return questions


def ask(questions: "list[Question] | str") -> Quiz:
    """Show the questions (buttons in a notebook, text when headless) and return the
    Quiz, whose `answer(i, j)` works everywhere. `questions` is a notebook's number
    ("08": its quiz file) or a list of Question."""
    if isinstance(questions, str):
        questions = load(questions)
    quiz = Quiz(questions)
    if in_notebook() and not is_headless():
        try:
            from IPython.display import display

            display(quiz.widgets())
            return quiz
        except ImportError:       # no ipywidgets: fall back to text
            pass
    print(quiz.text())
    return quiz
