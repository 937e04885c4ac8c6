"""Only completed runs count: a run killed part-way (a real process, SIGKILL) leaves rows
that no reader shows as a result, and every reader says it left them out."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import cli, compare, ledger, protocol

ROOT = Path(__file__).resolve().parent.parent

# One notebook's worth of ledger calls in a separate process: a baseline and one accuracy
# on the protocol's test rows, then either `finish()` or a long sleep (killed part-way).
RUN = """
import sys, time
from labkit import ledger, protocol
run = ledger.Run("06_behavioural_finetuning", profile="quick", seed=0)
protocol.log_baseline(run)
protocol.log_accuracy(run, "acc_behavioural@128", [i % {mod} > 0 for i in range(2000)],
                      budget=128, model="minilm")
if "{finish}" == "yes":
    run.finish()
else:
    print("logged", flush=True)
    time.sleep(300)
"""


def run_process(ledger_file, *, mod, finish):
    env = {**os.environ, "LABKIT_LEDGER": str(ledger_file), "PYTHONPATH": str(ROOT)}
    code = RUN.replace("{mod}", str(mod)).replace("{finish}", "yes" if finish else "no")
    if finish:
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT,
                       capture_output=True)
        return
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "logged"         # its rows are written ...
    proc.send_signal(signal.SIGKILL)                          # ... and then it dies
    assert proc.wait(timeout=30) == -signal.SIGKILL


@pytest.fixture
def reference(tmp_path, monkeypatch):
    """A reference ledger with a completed run (67% right) and, after it, the same
    notebook killed part-way (50% right)."""
    ref = tmp_path / "reference.jsonl"
    monkeypatch.setenv("LABKIT_REFERENCE", str(ref))
    monkeypatch.setenv("LABKIT_LEDGER", str(ref))
    run_process(ref, mod=3, finish=True)
    run_process(ref, mod=2, finish=False)
    return ref


def test_a_killed_run_is_left_out_and_named(reference, capsys):
    every = ledger.read(reference, completed=False, quiet=True)
    assert [r["value"] for r in every if r["metric"].startswith("acc_behav")] == \
        [pytest.approx(2 / 3, abs=1e-3), 0.5]                # both runs wrote their rows
    rows = ledger.read(reference)
    said = capsys.readouterr().out
    assert "left out 2 row(s) of 1 run(s) that did not finish: 06_behavioural_finetuning" in said
    assert [s["notebook"] for s in rows.skipped] == ["06_behavioural_finetuning"]
    assert [r["value"] for r in rows if r["metric"].startswith("acc_behav")] == \
        [pytest.approx(2 / 3, abs=1e-3)]
    # the newest *completed* run is the one the readers keep
    kept = ledger.last_runs(rows)
    assert {r["run"] for r in kept} == {rows[0]["run"]}
    # summary and the table (`labkit ledger` / `labkit results`)
    (acc,) = [s for s in ledger.summary(profile="quick") if s["metric"].startswith("acc_behav")]
    assert acc["mean"] == pytest.approx(2 / 3, abs=1e-3)
    assert "did not finish" in capsys.readouterr().out
    assert cli.main(["results", "--profile", "quick"]) == 0
    out = capsys.readouterr().out
    assert "did not finish" in out
    (line,) = [x for x in out.splitlines() if x.startswith("06_") and "acc_behav" in x]
    assert line.split()[4] == "0.6665", line   # 1,333 of 2,000 right


def test_notebook_09s_reading_and_the_readme_leave_it_out(reference, tmp_path, monkeypatch,
                                                           capsys):
    # what notebook 09 does with the reference ledger
    srows = compare.strategy_rows(ledger.last_runs(ledger.read(ledger.reference_path())),
                                  profile="quick")
    assert "did not finish" in capsys.readouterr().out
    values = [r["mean"] for r in srows if r["strategy"] != "majority"]
    assert values == [pytest.approx(2 / 3, abs=1e-3)]
    # `labkit readme`
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{cli.README_START}\nold\n{cli.README_END}\n")
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    assert cli.main(["readme"]) == 0
    text = readme.read_text()
    assert "2 row(s) of 1 run(s) that did not finish are left out: " \
           "06_behavioural_finetuning" in text
    (line,) = [x for x in text.splitlines() if x.startswith("| related task first")]
    assert "| 66.6 |" in line and "| 50.0 |" not in line, line   # the killed run's 0.5 is not


def test_finish_closes_a_run_and_open_runs_of_this_process_are_read(tmp_path, monkeypatch,
                                                                    capsys):
    path = tmp_path / "mine.jsonl"
    monkeypatch.setenv("LABKIT_LEDGER", str(path))
    run = ledger.Run("10_alignment", profile="smoke", seed=0)
    run.log("kl_dpo", 0.1)
    assert [r["metric"] for r in ledger.read()] == ["kl_dpo"]      # a notebook reads itself
    run.finish()
    assert "finished: 1 row(s)" in capsys.readouterr().out
    closing = json.loads(path.read_text().splitlines()[-1])
    assert closing["event"] == "finished" and closing["rows"] == 1
    assert closing["run"] == run.id
    monkeypatch.setattr(ledger, "_OPEN", [])               # as seen from another process
    assert [r["metric"] for r in ledger.read()] == ["kl_dpo"]
    assert ledger.read().skipped == []


def test_rows_from_before_closing_records_count(tmp_path):
    """The reference ledger's rows written before `finish()` existed have no
    `ledger_format`: they are read as complete (see the ledger's docstring)."""
    path = tmp_path / "old.jsonl"
    row = {"notebook": "02_word2vec", "metric": "wordsim_spearman", "value": 0.3,
           "profile": "quick", "seed": 0, "device": "cpu", "wall_s": 1.0, "run": "r1"}
    path.write_text(json.dumps(row) + "\n")
    assert ledger.read(path) == [row] and ledger.read(path).skipped == []


def test_every_notebook_closes_its_run():
    for py in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        text = py.read_text(encoding="utf-8")
        if "ledger.Run(" not in text:
            continue
        cells = [c.strip() for c in re.split(r"^# %%.*$", text, flags=re.M) if c.strip()]
        last_code = [c for c in cells if not c.startswith("#")][-1]
        assert last_code.startswith("run.finish()"), f"{py.name} does not end with run.finish()"
