"""The student edition (`labkit student`) and a learner's progress (`labkit progress`)."""

import json

import nbformat
import pytest

from checker_helpers import own_copy
from labkit import checks, cli, course, student

TOY = '''# %% [markdown]
# # 42 · A toy notebook

# %% tags=["parameters"]
PROFILE = "smoke"

# %% [markdown]
# ### Your turn 42.1 · Double it

# %%
def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    # the secret comment
    return x + x
    ### END SOLUTION


double = checks.run("42.1", double)

# %%
print(double(21))

# %% [markdown]
# ### Your turn 42.2 · Two regions, deeper

# %%
class Box:
    def area(self, w, h):
        if w < 0:
            ### BEGIN SOLUTION
            raise ValueError("negative width")
            ### END SOLUTION
        ### BEGIN SOLUTION
        return w * h
        ### END SOLUTION
'''


@pytest.fixture
def toy(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    (src / "42_toy.py").write_text(TOY)
    (src / "43_plain.py").write_text("# %%\nx = 1\n")
    return src


def test_student_build_on_a_toy_notebook(toy, tmp_path):
    out = tmp_path / "student"
    built = student.build(out, toy)
    assert built == {"42_toy": ["42.1", "42.2"], "43_plain": []}
    nb = nbformat.read(out / "42_toy.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert code[0].metadata["tags"] == ["parameters"]
    assert "jupytext" not in nb.metadata
    assert 'double = checks.run("42.1", double)' in code[1].source   # the checker cell kept
    assert "print(double(21))" == code[2].source
    text = "\n".join(c.source for c in nb.cells)
    for secret in ("return x + x", "the secret comment", "negative width", "return w * h",
                   student.BEGIN, student.END):
        assert secret not in text
    assert '    # TODO (your turn 42.1)' in code[1].source              # indentation kept
    assert '            raise NotImplementedError("your turn 42.2' in code[3].source
    assert '        raise NotImplementedError("your turn 42.2' in code[3].source
    # the stubs are valid Python and raise only when the function runs
    space = {"checks": type("C", (), {"run": staticmethod(lambda i, f: f)})}
    exec(code[1].source, space)
    exec(code[3].source, space)
    with pytest.raises(NotImplementedError, match="42.1"):
        space["double"](2)
    with pytest.raises(NotImplementedError, match="42.2"):
        space["Box"]().area(-1, 2)
    page = (out / "solutions" / "42_toy.md").read_text()
    assert '<a id="exercise-42-1"></a>' in page and '<a id="exercise-42-2"></a>' in page
    assert "return x + x" in page and student.BEGIN not in page
    assert page.index("exercise-42-1") < page.index("return x + x") < page.index("exercise-42-2")
    assert "no \"your turn\" exercise" in (out / "solutions" / "43_plain.md").read_text()
    assert student.solution_lines(TOY) == ["# the secret comment", "return x + x",
                                           'raise ValueError("negative width")',
                                           "return w * h"]


@pytest.mark.parametrize("source, message", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "without a ### BEGIN"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "inside a function body"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n", "inside another"),
])
def test_student_build_refuses_broken_markers(source, message):
    with pytest.raises(ValueError, match=message):
        student.regions(source, "x.py")


def test_student_edition_leaks_no_solution(tmp_path):
    """Every non-trivial line of every solution region of the real notebooks is absent
    from the student edition (cell sources and outputs)."""
    out = tmp_path / "student"
    built = student.build(out)
    assert set(built) == {py.stem for py in student.NOTEBOOKS.glob("[0-9][0-9]_*.py")}
    for py in sorted(student.NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        secrets = student.solution_lines(py.read_text(encoding="utf-8"))
        nb = nbformat.read(out / f"{py.stem}.ipynb", as_version=4)
        text = "\n".join([c.source for c in nb.cells] + [json.dumps(o) for c in nb.cells
                                                         for o in c.get("outputs", [])])
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{py.stem}: solution lines in the student edition: {leaked}"
        assert student.BEGIN not in text and student.END not in text


def test_cli_student_and_progress(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "progress.json"))
    assert cli.main(["student", "--out", str(tmp_path / "s")]) == 0
    assert "student edition" in capsys.readouterr().out
    assert (tmp_path / "s" / "solutions" / "00_setup.md").exists()

    def stub(config):
        raise NotImplementedError

    def off_by_one(config):
        return own_copy(checks.get("00.1").reference)(config) + 1

    checks.run("00.1", stub)
    assert "00.1      not attempted" in course.progress_report()
    checks.run("00.1", off_by_one)
    checks.run("00.1", off_by_one)
    capsys.readouterr()
    assert cli.main(["progress"]) == 0
    out = capsys.readouterr().out
    assert "00.1      tried          parameters of a BERT encoder (2 wrong attempt(s))" in out
    checks.run("00.1", own_copy(checks.get("00.1").reference))
    report = course.progress_report()
    assert "00.1      passed" in report and "1 passed" in report
    assert str(tmp_path / "progress.json") in report


def test_progress_reset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "progress.json"))
    checks.run("00.1", own_copy(checks.get("00.1").reference))
    assert checks.progress()["00.1"]["passed"]
    assert cli.main(["progress", "--reset"]) == 0
    assert "progress reset" in capsys.readouterr().out and checks.progress() == {}


def test_solution_links_exist_in_the_student_edition(tmp_path):
    """The page and the anchor that "show me" names exist beside the student notebooks."""
    student.build(tmp_path)
    checks.load_all()
    for ex_id in checks.EXERCISES:
        page, anchor = checks.solution_path(ex_id).split("#")
        assert (tmp_path / page).exists(), page
        assert f'<a id="{anchor}"></a>' in (tmp_path / page).read_text(encoding="utf-8")


def test_the_student_edition_defaults_to_quick(tmp_path):
    student.build(tmp_path)
    for ipynb in sorted(tmp_path.glob("[0-9][0-9]_*.ipynb")):
        cells = nbformat.read(ipynb, as_version=4).cells
        params = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
        assert 'os.environ.get("LABKIT_PROFILE", "quick")' in params.source, ipynb.name


def test_asking_for_smoke_says_its_numbers_mean_nothing(monkeypatch, capsys):
    from labkit import profile
    monkeypatch.setattr(profile, "_noticed", False)
    profile.check("quick")
    assert capsys.readouterr().out == ""
    profile.choose("smoke", smoke=1, quick=2)
    profile.check("smoke")
    out = capsys.readouterr().out
    assert out.count("numbers mean nothing") == 1
