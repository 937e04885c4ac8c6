"""A stronger hint narrows the mistake; it is never the solution line (the "show me" page
gives that). Checked two ways: no stronger hint contains a solution line of a notebook,
and none of 08's, run as Python, computes the answer."""

import ast
import re
from pathlib import Path

import pytest
import torch

from labkit import peft, student

ROOT = Path(__file__).resolve().parent.parent
CHECKERS = sorted((ROOT / "labkit" / "checks").glob("[a-z]*.py"))


def stronger_hints(path: Path) -> list[str]:
    """Every literal given as a checker's stronger hint (Wrong's second argument, a
    stronger= keyword, or the third item of a (scale, hint, stronger) table row)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            args = [node.args[1]] if name == "Wrong" and len(node.args) > 1 else []
            args += [k.value for k in node.keywords if k.arg == "stronger"]
            found += [a.value for a in args if isinstance(a, ast.Constant)
                      and isinstance(a.value, str)]
        if isinstance(node, ast.Tuple) and len(node.elts) == 3 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts[1:]):
            found.append(node.elts[2].value)
    return found


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


SOLUTION_LINES = {squash(line) for py in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")
                  for line in student.solution_lines(py.read_text(encoding="utf-8"), 16)}


@pytest.mark.parametrize("path", CHECKERS, ids=lambda p: p.stem)
def test_no_stronger_hint_holds_a_solution_line(path):
    hints = [squash(h) for h in stronger_hints(path)]
    assert not [(line, h) for line in SOLUTION_LINES for h in hints if line in h]


def test_no_lora_hint_computes_the_answer():
    """08.2 and 08.3: evaluate every hint of the LoRA checkers that parses as an expression
    over the exercise's names; none may give the layer's output or the merged weight."""
    g = torch.Generator().manual_seed(0)
    x, W, b = torch.randn(4, 6, generator=g), torch.randn(5, 6, generator=g), torch.randn(5)
    A, B, alpha, r = torch.randn(3, 6, generator=g), torch.randn(5, 3, generator=g), 16.0, 3
    answers = [peft.lora_forward(x, W, b, A, B, alpha), peft.lora_merge(W, A, B, alpha)]
    names = dict(x=x, W=W, b=b, A=A, B=B, alpha=alpha, r=r, torch=torch,
                 F=torch.nn.functional)
    hints = stronger_hints(ROOT / "labkit" / "checks" / "peft.py")
    assert hints
    for hint in hints:
        for candidate in [hint, *re.split(r"[:;,] ", hint)]:
            candidate = candidate.replace("^T", ".T").split("=")[-1].strip()
            try:
                value = eval(candidate, {}, dict(names))  # noqa: S307 (our own literals)
            except Exception:
                continue
            for want in answers:
                assert not (isinstance(value, torch.Tensor) and value.shape == want.shape
                            and torch.allclose(value, want)), hint
