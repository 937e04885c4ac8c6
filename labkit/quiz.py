""""Check your understanding" questions, each answer with its explanation.

    from labkit import quiz
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

from dataclasses import dataclass

from .progress import in_notebook, is_headless


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
        return f"{'✓ right' if c.correct else '✗ not quite'}: {c.why}"

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
            lines.append(f"Q{i + 1}. {q.text}")
            lines += [f"   ({chr(97 + j)}) {c.text}" for j, c in enumerate(q.choices)]
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
                b = w.Button(description=f"({chr(97 + j)}) {c.text}",
                             layout=w.Layout(width="auto", min_width="60%"),
                             tooltip=c.text)
                b.on_click(lambda _b, i=i, j=j, out=out: setattr(out, "value",
                                                                 self._html(i, j)))
                buttons.append(b)
            boxes.append(w.VBox([w.HTML(f"<b>Q{i + 1}.</b> {q.text}"), *buttons, out]))
        return w.VBox(boxes)

    def _html(self, i: int, j: int) -> str:
        import html

        c = self.questions[i].choices[j]
        color = "#1a7f37" if c.correct else "#b35900"
        return f'<span style="color:{color}">{html.escape(self.feedback(i, j))}</span>'


def ask(questions: list[Question]) -> Quiz:
    """Show the questions (buttons in a notebook, text when headless) and return the
    Quiz, whose `answer(i, j)` works everywhere."""
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
