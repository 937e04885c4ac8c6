"""`labkit run` under signals and dependencies, with real kernels: a notebook that reads
another's results starts after it; Ctrl-C / SIGTERM stops every kernel it started, says
which notebooks finished, and leaves no half-rendered notebook and no counted half-run."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from test_runner import toy

from labkit import course, ledger, runner

ROOT = Path(__file__).resolve().parent.parent


def test_needs_come_from_one_declaration():
    nbs = runner.find_notebooks([])
    after = runner.needs(nbs)
    nine = next(nb.stem for nb in nbs if nb.stem.startswith("09"))
    assert {s[:2] for s in after[nine]} == {nb.stem[:2] for nb in nbs} & set(course.READS["09"])
    assert {"04", "05", "06", "07", "08"} <= {s[:2] for s in after[nine]}
    assert all(not v for k, v in after.items() if k[:2] not in course.READS)
    eleven = next(nb.stem for nb in nbs if nb.stem.startswith("11"))
    assert [s[:2] for s in after[eleven]] == ["10"]          # 11 loads what 10 saved
    a, b = Path("01_a.ipynb"), Path("02_b.ipynb")
    with pytest.raises(ValueError, match="waits for itself"):
        runner.run_many([a, b], Path("."), runner.plan(2, 1, n_cores=1, gpus=[]),
                        reads={"01": ("02",), "02": ("01",)})


STAMP = """import os, time
out = os.environ["TOY_OUT"]
open(os.path.join(out, "{name}.start"), "w").write(repr(time.time()))
time.sleep({sleep})
{fail}
open(os.path.join(out, "{name}.end"), "w").write(repr(time.time()))"""


def stamp(name, sleep=0.0, fail=False):
    return (STAMP.replace("{name}", name).replace("{sleep}", str(sleep))
            .replace("{fail}", "raise RuntimeError('toy failure')" if fail else ""))


@pytest.mark.notebook
def test_a_reader_starts_after_what_it_reads(tmp_path, monkeypatch):
    src, out = tmp_path / "nbs", tmp_path / "out"
    src.mkdir(), out.mkdir()
    monkeypatch.setenv("TOY_OUT", str(out))
    # two places: without the declaration 09 would start beside 04 (it comes first)
    nbs = [toy(src, "09_reads", ("Read", stamp("09_reads"))),
           toy(src, "04_writes", ("Write", stamp("04_writes", sleep=3))),
           toy(src, "05_fails", ("Write", stamp("05_fails", fail=True))),
           toy(src, "10_reads_a_failure", ("Read", stamp("10_reads_a_failure")))]
    lines = []
    results = runner.run_many(nbs, out, runner.plan(4, 2, n_cores=2, gpus=[]),
                              say=lines.append, cwd=src,
                              reads={"09": ("04",), "10": ("04", "05")})
    assert [r.state for r in results] == ["ok", "ok", "FAILED", "not started"]
    read = lambda f: float((out / f).read_text())           # noqa: E731
    assert read("09_reads.start") > read("04_writes.end")
    assert not (out / "10_reads_a_failure.start").exists()
    assert any("10_reads_a_failure: not started (05_fails did not finish" in x for x in lines)


DRIVER = """
import sys
from pathlib import Path
from labkit import cli, course, runner
root = Path(sys.argv[1])
runner.NOTEBOOKS = root / "notebooks"
course.ROOT = root
course.READS = {"03": ("02",)}
sys.exit(cli.main(["run", "--render", "--profile", "smoke", "-j", "2"]))
"""

SLOW = """import os, time
from labkit import ledger
run = ledger.Run("02_slow", profile="smoke")
run.log("half_done", 1.0)
open(os.path.join(os.environ["TOY_OUT"], "kernel.pid"), "w").write(str(os.getpid()))
time.sleep(600)
run.finish()"""


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.notebook
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_run_stops_every_kernel_and_renders_only_finished(tmp_path, how):
    folder, out = tmp_path / "notebooks", tmp_path / "out"
    folder.mkdir(), out.mkdir()
    fast = toy(folder, "01_fast", ("Quick", "print('fast done')"))
    slow = toy(folder, "02_slow", ("Slow", SLOW))
    after = toy(folder, "03_after", ("Reads 02", "print('should not run')"))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    ref = tmp_path / "reference.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOY_OUT": str(out), "PYTHONUNBUFFERED": "1",
           "LABKIT_REFERENCE": str(ref), "LABKIT_RUNS": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)   # its own terminal group
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")))
    reader.start()
    try:
        t0 = time.time()
        while not (out / "kernel.pid").exists() or not any("01_fast: done" in x for x in seen):
            assert time.time() - t0 < 240, "".join(seen)
            assert proc.poll() is None, "".join(seen)
            time.sleep(0.2)
        time.sleep(1)
        kernel = psutil.Process(int((out / "kernel.pid").read_text()))
        tree = psutil.Process(proc.pid).children(recursive=True)
        assert kernel in tree and alive(kernel)
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)       # what the terminal does on Ctrl-C
        else:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        reader.join(10)
        text = "".join(seen)
    finally:
        if proc.poll() is None:
            for p in psutil.Process(proc.pid).children(recursive=True):
                p.kill()
            proc.kill()
    assert code == 128 + (signal.SIGINT if how == "ctrl-c" else signal.SIGTERM), text
    assert "stopped 02_slow and their kernels" in text, text
    assert "finished: 01_fast (rendered into notebooks/)" in text, text
    assert "left as they were in notebooks/: 02_slow, 03_after" in text, text
    assert "not started" in text and "should not run" not in fast.read_text()
    time.sleep(1)
    assert not [p for p in tree if alive(p)], "a worker or kernel outlived labkit run"
    # notebooks/: the finished one rendered, the others byte for byte as they were,
    # no temporary file left behind
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)
    assert "fast done" in fast.read_text()
    assert slow.read_bytes() == before[slow.name] and after.read_bytes() == before[after.name]
    # the killed notebook's row is in the ledger but is not a result
    every = ledger.read(ref, completed=False, quiet=True)
    assert [r["metric"] for r in every] == ["half_done"]
    rows = ledger.read(ref, quiet=True)
    assert rows == [] and [s["notebook"] for s in rows.skipped] == ["02_slow"]
    timings = json.loads((tmp_path / "results" / "timings.json").read_text())
    assert list(timings["notebooks"]) == ["01_fast"]


@pytest.mark.notebook
def test_a_killed_labkit_run_leaves_no_kernel_behind(tmp_path):
    """SIGKILL cannot be caught: each worker notices its parent is gone and stops its kernel."""
    folder, out = tmp_path / "notebooks", tmp_path / "out"
    folder.mkdir(), out.mkdir()
    slow = toy(folder, "02_slow", ("Slow", SLOW))
    before = slow.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOY_OUT": str(out),
           "LABKIT_REFERENCE": str(tmp_path / "reference.jsonl"),
           "LABKIT_RUNS": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        t0 = time.time()
        while not (out / "kernel.pid").exists():
            assert time.time() - t0 < 240 and proc.poll() is None
            time.sleep(0.2)
        time.sleep(1)
        tree = psutil.Process(proc.pid).children(recursive=True)
        kernel = psutil.Process(int((out / "kernel.pid").read_text()))
        assert kernel in tree and alive(kernel)
        proc.kill()
        proc.wait(timeout=30)
        t0 = time.time()
        while any(alive(p) for p in tree) and time.time() - t0 < 30:
            time.sleep(0.5)
        assert not [p for p in tree if alive(p)], "a kernel outlived a killed labkit run"
    finally:
        for p in psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []:
            p.kill()
        if proc.poll() is None:
            proc.kill()
    assert slow.read_bytes() == before
