"""`labkit run`: notebooks at once, each kernel with its share of the cores, sections and
wall times reported, timings recorded. Toy notebooks keep these tests to seconds."""

import json
import re

import nbformat
import pytest

from labkit import cli, course, ledger, runner


def toy(folder, name, *cells):
    """Write notebook `name` with a title, a section heading per (heading, code) pair."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3",
                                                           "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {name}"))
    for heading, code in cells:
        nb.cells.append(nbformat.v4.new_markdown_cell(f"## {heading}\n\nsome prose"))
        nb.cells.append(nbformat.v4.new_code_cell(code))
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


WORK = """import json, os, time
out = os.environ["TOY_OUT"]
open(os.path.join(out, "{name}.started"), "w").close()
t0 = time.time()
while not os.path.exists(os.path.join(out, "{other}.started")) and time.time() - t0 < 120:
    time.sleep(0.2)
import torch
json.dump({"saw_other": os.path.exists(os.path.join(out, "{other}.started")),
           "torch_threads": torch.get_num_threads(),
           "omp": os.environ.get("OMP_NUM_THREADS"), "cwd": os.getcwd()},
          open(os.path.join(out, "{name}.json"), "w"))"""


def work(name, other):
    """A cell that waits (up to 2 minutes) until notebook `other` has started, then writes
    whether it saw it and its torch threads: two such notebooks finish quickly only
    when they run at the same time."""
    return WORK.replace("{name}", name).replace("{other}", other)


def test_plan_shares_the_machine():
    cpu = runner.plan(10, n_cores=2, gpus=[])
    assert (cpu.jobs, cpu.threads) == (2, 1)
    assert cpu.env(0)["OMP_NUM_THREADS"] == "1" and "CUDA_VISIBLE_DEVICES" not in cpu.env(0)
    alone = runner.plan(10, 1, n_cores=2, gpus=[])
    assert (alone.jobs, alone.threads) == (1, 2)          # one notebook gets every core
    assert runner.plan(1, n_cores=8, gpus=[]).threads == 8  # never more jobs than notebooks
    crowded = runner.plan(10, 4, n_cores=2, gpus=[])       # never more jobs than CPU cores
    assert (crowded.jobs, crowded.threads) == (2, 1)
    gpu = runner.plan(10, n_cores=16, gpus=["0", "1"])
    assert (gpu.jobs, gpu.threads) == (2, 8)
    assert [gpu.env(s)["CUDA_VISIBLE_DEVICES"] for s in range(2)] == ["0", "1"]
    over = runner.plan(10, 4, n_cores=16, gpus=["3", "5"])  # round-robin over the GPUs
    assert [over.env(s)["CUDA_VISIBLE_DEVICES"] for s in range(4)] == ["3", "5", "3", "5"]
    with pytest.raises(ValueError, match="at least 1"):
        runner.plan(3, 0, n_cores=2, gpus=[])
    with pytest.raises(SystemExit, match="-j must be at least 1"):
        cli.main(["run", "-j", "0", "00"])


def test_longest_first_and_sections(tmp_path):
    a, b, c = (tmp_path / f"{n}.ipynb" for n in ("00_a", "01_b", "02_c"))
    assert runner.longest_first([a, b, c], {"00_a": 5, "01_b": 50}) == [c, b, a]
    # a notebook that another waits for counts the reader's time as its own
    timed = {"00_a": 45, "01_b": 50, "02_c": 60}
    assert runner.longest_first([a, b, c], timed) == [c, b, a]
    assert runner.longest_first([a, b, c], timed, {"02_c": ["00_a"]}) == [a, c, b]
    d = tmp_path / "09_d.ipynb"            # 09_d reads 00_a and 02_c: 00_a before 01_b
    order = runner.longest_first([a, b, c, d], {**timed, "09_d": 10},
                                 runner.needs([a, b, c, d], {"09": ("00", "02")}))
    assert [nb.stem for nb in order] == ["02_c", "00_a", "01_b", "09_d"]
    path = toy(tmp_path, "03_d", ("One", "x = 1"), ("Two", "y = 2"))
    heads = runner.sections(json.loads(path.read_text()))
    assert heads == ["03_d", "One", "One", "Two", "Two"]


def test_best_order_closes_the_gap_longest_first_leaves_at_the_end(tmp_path):
    nbs = [tmp_path / f"0{i}_{n}.ipynb" for i, n in enumerate("abcde")]
    secs = dict(zip((nb.stem for nb in nbs), (10, 9, 6, 5, 4)))
    lpt = runner.longest_first(nbs, secs)
    # two slots: a | b, then c (at 9) and d (at 10) end at 15, e alone until 19
    assert runner.makespan(lpt, secs, {}, 2) == 19
    best = runner.best_order(nbs, secs, {}, 2)
    assert runner.makespan(best, secs, {}, 2) == 18       # no split of the work does better
    assert sorted(best) == sorted(nbs)
    # a reader still starts only after what it reads, and one slot changes nothing
    after = {"04_e": ["00_a"]}
    order = runner.best_order(nbs, secs, after, 2)
    assert runner.makespan(order, secs, after, 2) <= runner.makespan(
        runner.longest_first(nbs, secs, after), secs, after, 2)
    assert runner.best_order(nbs, secs, {}, 1) == lpt
    untimed = {k: v for k, v in secs.items() if k != "02_c"}   # no clock: longest first
    assert runner.best_order(nbs, untimed, {}, 2) == runner.longest_first(nbs, untimed)


@pytest.mark.notebook
def test_two_notebooks_at_once_threads_and_a_failure(tmp_path, monkeypatch):
    src, out = tmp_path / "nbs", tmp_path / "out"
    src.mkdir(), out.mkdir()
    monkeypatch.setenv("TOY_OUT", str(out))
    # 01 waits for 03; 02 fails beside 01, and 03 takes the freed place while 01 still runs
    nbs = [toy(src, "01_one", ("Work", work("01_one", "03_two"))),
           toy(src, "02_fail", ("Breaks", "raise RuntimeError('toy failure')")),
           toy(src, "03_two", ("Work", work("03_two", "01_one")))]
    lines = []
    how = runner.plan(3, 2, n_cores=2, gpus=[])
    results = runner.run_many(nbs, out, how, say=lines.append, cwd=src)
    assert [r.stem for r in results] == ["01_one", "02_fail", "03_two"]
    assert [r.ok for r in results] == [True, False, True]            # the others went on
    assert "RuntimeError: toy failure" in results[1].error
    one, two = (json.loads((out / f"{n}.json").read_text()) for n in ("01_one", "03_two"))
    assert one["saw_other"] and two["saw_other"]                    # ran at the same time
    assert one["torch_threads"] == two["torch_threads"] == 1        # the env reached torch
    assert one["omp"] == "1" and one["cwd"] == str(src)
    # CPU time of the worker and its kernel: at least the kernel's start, less than the
    # two wall-clock processes could have used
    assert all(0.2 < r.cpu < 2 * r.seconds + 5 for r in results), [r.cpu for r in results]
    text = "\n".join(lines)
    assert "01_one: Work" in text and "03_two: Work" in text and "02_fail: FAILED" in text
    table = runner.report(results, 4.0)
    assert "FAILED" in table and "total" in table
    assert (out / "02_fail.ipynb").exists()                         # kept to read
    assert "papermill" not in json.loads((out / "01_one.ipynb").read_text())["metadata"]


@pytest.mark.notebook
def test_run_render_records_timings(tmp_path, monkeypatch, capsys, private_runs):
    src = tmp_path / "notebooks"
    src.mkdir()
    nb = toy(src, "00_quick", ("Set-up", "from labkit import course\n"
                                         "course.header('00_quick')\nprint('kept')"),
             ("Only", "import torch; print(torch.get_num_threads())"))
    before = nb.read_text()
    monkeypatch.setattr(runner, "NOTEBOOKS", src)
    monkeypatch.setattr(course, "ROOT", tmp_path)
    monkeypatch.setattr(ledger, "reference_path", lambda: tmp_path / "reference.jsonl")
    for var in ("LABKIT_PROFILE", "LABKIT_LEDGER", "LABKIT_HEADLESS"):   # cmd_run sets them
        monkeypatch.setenv(var, "")
    course.timings_path().parent.mkdir()
    course.timings_path().write_text(json.dumps(
        {"profiles": {"quick": {"machine": "m", "threads": 1, "jobs": 2, "wall_s": 60,
                                "date": "2026-01-01"}},
         "notebooks": {"00_quick": {"quick": 60.0}, "05_other": {"smoke": 9.0}}}))
    assert cli.main(["run", "--profile", "smoke", "--render", "-j", "1"]) == 0
    printed = capsys.readouterr().out
    assert "00_quick" in printed and "total" in printed
    t = course.timings()
    assert t["notebooks"]["00_quick"]["quick"] == 60.0           # other profile kept
    assert t["notebooks"]["05_other"] == {"smoke": 9.0}            # other notebook kept
    assert 0 < t["notebooks"]["00_quick"]["smoke"] < 120
    assert t["profiles"]["smoke"]["jobs"] == 1 and t["profiles"]["quick"]["machine"] == "m"
    assert t["profiles"]["smoke"]["threads"] == runner.cores()
    assert course.estimates("smoke")["00_quick"] == t["notebooks"]["00_quick"]["smoke"]
    rendered = json.loads(nb.read_text())
    assert nb.read_text() != before                                # outputs written back
    assert "".join(rendered["cells"][-1]["outputs"][0]["text"]).strip() == str(runner.cores())
    # the header states this run's own wall time (the kernel printed the old reference's)
    printed = "".join(o["text"] if isinstance(o["text"], str) else "".join(o["text"])
                      for o in rendered["cells"][2]["outputs"])
    head = re.fullmatch(r"Measured time \(this run, (\S+), (.+)\): smoke (\d+) s; other "
                        r"profiles, from their reference runs: quick 60 s \(m, 1 torch "
                        r"thread per notebook, 2 at once\)\nkept\n", printed)
    assert head, printed
    assert head[1] == course._dt.date.today().isoformat()
    assert head[2] == course.where(t["profiles"]["smoke"])
    assert abs(int(head[3]) - t["notebooks"]["00_quick"]["smoke"]) <= 1
    assert [c["source"] for c in rendered["cells"]] == \
        [c["source"] for c in json.loads(before)["cells"]]          # the source is untouched


@pytest.mark.notebook
def test_each_seed_keeps_its_own_executed_copies(tmp_path, monkeypatch, private_runs):
    src = tmp_path / "notebooks"
    src.mkdir()
    toy(src, "00_seeded", ("Only", "import os; print('seed', os.environ['LABKIT_SEED'])"))
    monkeypatch.setattr(runner, "NOTEBOOKS", src)
    monkeypatch.setattr(course, "ROOT", tmp_path)
    for var in ("LABKIT_PROFILE", "LABKIT_LEDGER", "LABKIT_HEADLESS", "LABKIT_SEED"):
        monkeypatch.setenv(var, "")
    for seed in (1, 2):
        assert cli.main(["run", "--profile", "smoke", "-j", "1", "--seed", str(seed)]) == 0
    for seed in (1, 2):
        out = json.loads((private_runs / "notebooks" / f"smoke-seed{seed}" / "00_seeded.ipynb")
                         .read_text())
        assert f"seed {seed}" in "".join(out["cells"][-1]["outputs"][0]["text"])


def test_rendered_line_names_this_run_and_the_others(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "ROOT", tmp_path)
    here = {"machine": "2-core x86_64 CPU", "threads": 1, "jobs": 2, "date": "2026-12-07"}
    assert course.rendered_line("04_a", "quick", 390.2, here) == (
        "Measured time (this run, 2026-12-07, 2-core x86_64 CPU, 1 torch thread per "
        "notebook, 2 at once): quick 6.5 min")
    course.record_timings({"04_a": 100.0}, profile="full", machine="16-core x86_64 CPU + 1x "
                          "H100", threads=16, jobs=1, wall_s=100)
    course.record_timings({"04_a": 30.0}, profile="smoke", machine="2-core x86_64 CPU",
                          threads=1, jobs=2, wall_s=30)
    assert course.rendered_line("04_a", "quick", 390.2, here).endswith(
        "quick 6.5 min; other profiles, from their reference runs: smoke 30 s; full 1.7 min "
        "(16-core x86_64 CPU + 1x H100, 16 torch threads per notebook, one at a time)")


def test_stamp_header_replaces_only_the_header_line(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 00 · a title, course.header( in prose"),
                nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("course.header('00_a')\nprint('b')")]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                  text="Measured time (old run): quick 9 s\nb\n"),
                           nbformat.v4.new_output("stream", name="stderr", text="a warning\n")]
    path = tmp_path / "00_a.ipynb"
    nbformat.write(nb, path)
    assert course.stamp_header(path, "Measured time (this run, ...): smoke 3 s")
    cell = json.loads(path.read_text())["cells"][2]
    texts = ["".join(o["text"]) for o in cell["outputs"]]
    assert texts == ["Measured time (this run, ...): smoke 3 s\nb\n", "a warning\n"]
    data = json.loads(path.read_text())                  # a header that printed nothing
    data["cells"][2]["outputs"] = []
    path.write_text(json.dumps(data))
    assert course.stamp_header(path, "Measured time (this run): quick 1 s")
    assert json.loads(path.read_text())["cells"][2]["outputs"][0]["text"] == \
        ["Measured time (this run): quick 1 s\n"]
    nb.cells = nb.cells[:2]                              # no header cell: nothing changes
    nbformat.write(nb, path)
    before = path.read_text()
    assert not course.stamp_header(path, "Measured time (this run): quick 1 s")
    assert path.read_text() == before


def test_estimates_prefer_this_machines_last_run(tmp_path, monkeypatch, private_runs):
    monkeypatch.setattr(course, "ROOT", tmp_path)
    assert course.estimates("smoke") == {}
    course.record_timings({"00_a": 100.0, "01_b": 300.0, "02_c": 50.0}, profile="quick",
                          machine="m", threads=1, jobs=2, wall_s=450)
    course.record_timings({"02_c": 4.0}, profile="smoke", machine="m", threads=1, jobs=2,
                          wall_s=4)
    # smoke: 02_c's own reference time; the others only have quick's (so they start early)
    assert course.estimates("smoke") == {"00_a": 100.0, "01_b": 300.0, "02_c": 4.0}
    course.record_local_timings({"00_a": 7.04, "01_b": 9.0}, "smoke")
    course.record_local_timings({"01_b": 12.0}, "smoke")        # the latest run wins
    assert course.estimates("smoke") == {"00_a": 7.0, "01_b": 12.0, "02_c": 4.0}
    assert course.estimates("quick") == {"00_a": 100.0, "01_b": 300.0, "02_c": 50.0}
    assert course.local_timings_path().parent == private_runs
    course.local_timings_path().write_text("{broken")              # starts afresh
    assert course.estimates("smoke")["00_a"] == 100.0
    course.record_local_timings({"00_a": 1.0}, "smoke")
    assert course.estimates("smoke")["00_a"] == 1.0


def test_course_table_and_header_from_timings(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(course, "ROOT", tmp_path)
    assert "not timed yet" in course.header("00_setup")
    course.record_timings({"00_setup": 12.0, "04_head_replacement": 300.0}, profile="quick",
                          machine="2-core x86_64 CPU", threads=1, jobs=2, wall_s=1500)
    course.record_timings({"00_setup": 3.0}, profile="smoke", machine="2-core x86_64 CPU",
                          threads=1, jobs=2, wall_s=30)
    line = course.header("00_setup")
    today = course._dt.date.today().isoformat()
    assert line == (f"Measured time (the reference run of {today}, 2-core x86_64 CPU, 1 torch "
                    "thread per notebook, 2 at once): smoke 3 s, quick 12 s")
    text = course.table()
    assert "| 04 | [head replacement](notebooks/04_head_replacement.ipynb) |" in text
    assert "| 5.0 min |" in text and "a run of 2 notebooks took 25.0 min" in text
    # re-rendering one notebook updates its time, not the record of the fuller run
    course.record_timings({"00_setup": 20.0}, profile="quick", machine="1-core x86_64 CPU",
                          threads=1, jobs=1, wall_s=20)
    text = course.table()
    assert "| 20 s |" in text and "a run of 2 notebooks took 25.0 min" in text
    readme = f"# x\n{course.COURSE_START}\nold\n{course.COURSE_END}\nrest\n"
    filled = course.fill_readme(readme)
    assert "old" not in filled and text in filled and filled.endswith("rest\n")
    assert course.fill_readme("no markers") == "no markers"
    course.timings_path().write_text("{broken")
    with pytest.raises(ValueError, match="labkit run --render"):
        course.timings()
