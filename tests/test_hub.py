"""A class on a real JupyterHub: two learners, the student branch pulled by nbgitpuller,
notebook 00 run in the browser, the results collected, and what breaks in class.

The parts are the real ones an instructor runs, started on localhost: JupyterHub with its
configurable-http-proxy (npm), the hub's DummyAuthenticator with a password, a
local-process spawner with a home per learner (SimpleLocalProcessSpawner: this suite runs
as root, and JupyterHub's LocalProcessSpawner needs system users that can reach the
Python install), the project's classroom/jupyterhub_config.py loaded as a config file,
nbgitpuller, JupyterLab and Chromium driven by Playwright. The student edition is
published with `labkit classroom-publish` to a local bare repository, and the link comes
from `labkit classroom-link`. Only the GPUs are absent: the hub config still hands out
CUDA_VISIBLE_DEVICES from a roster, and notebook 00 prints what the kernel got.

Where Chromium, configurable-http-proxy, jupyterhub or nbgitpuller is missing the hub tests
are skipped with what to install; under CI (CI=true) they fail instead, since .ci/run
installs all four. Measured on a 2-core machine shared with other jobs: the hub part took
151-184 s at a load of 8-13 and up to 424 s at a load of 20, most of it the two learners'
kernels running notebook 00 side by side.
"""

import contextlib
import io
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import jupytext
import pytest

from labkit import classroom, cli, student
from labkit.checks._core import BEGIN

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "class-of-2026"
TOKEN = "labkit-hub-test-service-token"
CHROMIUM = os.environ.get("LABKIT_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
ROSTER = "user,gpu\nalice,2\nbob,3\n"
LEARNERS = ("alice", "bob")

hub_part = [pytest.mark.slow, pytest.mark.xdist_group("hub")]


def _missing() -> list[str]:
    missing = []
    for module, how in (("jupyterhub", "pip install -e '.[test]'"),
                        ("nbgitpuller", "pip install -e '.[test]'"),
                        ("playwright", "pip install -e '.[test]'")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module} ({how})")
    if CHROMIUM is None:
        missing.append("Chromium (apt-get install chromium, or set LABKIT_CHROMIUM)")
    if shutil.which("configurable-http-proxy") is None:
        missing.append("configurable-http-proxy (npm install -g configurable-http-proxy)")
    if shutil.which("git") is None:
        missing.append("git")
    return missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, method: str = "GET") -> tuple[int, dict | None]:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            return r.status, (json.loads(body) if body else None)
    except urllib.error.HTTPError as e:
        return e.code, None


def _answer_00_1() -> str:
    """The instructor's cell of exercise 00.1 with its markers dropped: a right answer."""
    nb = jupytext.read(ROOT / "notebooks" / "00_setup.py")
    cell = next(c for c in nb.cells if c.cell_type == "code" and BEGIN in c.source)
    return student.without_markers(cell.source)


HUB_CONFIG = """\
# The test's hub: localhost ports, a password, a home per learner under the test's folder;
# then the project's own classroom config, loaded as TLJH loads it (a config file).
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
c.ConfigurableHTTPProxy.pid_file = r"{root}/proxy.pid"
c.JupyterHub.db_url = r"sqlite:///{root}/hub.sqlite"
c.JupyterHub.cookie_secret_file = r"{root}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "{password}"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = r"{root}/home/jupyter-{{username}}"
c.Spawner.cmd = [r"{python}", "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--allow-root"]            # this suite runs as root
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# A service with the idle culler's permissions, to cull a server as the culler does.
c.JupyterHub.services = [{{"name": "cull", "api_token": "{token}"}}]
c.JupyterHub.load_roles = [{{"name": "cull", "services": ["cull"],
                            "scopes": ["list:users", "read:users:activity", "read:servers",
                                       "delete:servers", "servers"]}}]
load_subconfig(r"{project_config}")  # noqa: F821
"""


def _lab_settings(home: Path) -> None:
    """The learner's JupyterLab settings a fresh account would get, minus two distractions
    for a robot: render every cell (JupyterLab 4 draws only those in view) and no news."""
    settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def _labkit(*argv: str) -> tuple[int, str, str]:
    """A `labkit` command, run in this process (as the console script runs it)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _publish(bare: Path, *ids: str) -> str:
    assert _labkit("classroom-publish", "--repo", str(bare), *ids)[0] == 0
    return subprocess.run(["git", f"--git-dir={bare}", "rev-parse", "student"],
                          capture_output=True, text=True, check=True).stdout.strip()


def _log_in(page, url: str, user: str) -> None:
    """Open `url` as a logged-out learner would: the hub asks for name and password."""
    page.goto(url)
    page.locator("#username_input").fill(user)
    page.locator("#password_input").fill(PASSWORD)
    page.locator("#login_submit").click()


def _wait_for_notebook(page, timeout_s=180) -> None:
    page.locator(".jp-Notebook").first.wait_for(timeout=timeout_s * 1000)
    select = page.locator(".jp-Dialog button", has_text="Select")
    try:                                    # JupyterLab may ask which kernel to start
        select.wait_for(timeout=5_000)
        select.click()
    except Exception:
        pass
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=120_000)


def _run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.locator(".jp-InputPrompt", has_text="[*]").first.wait_for(timeout=30_000)


def _wait_until_run(page, timeout_s=300) -> None:
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'))",
        timeout=timeout_s * 1000, polling=1000)


def _outputs(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for c in nb["cells"] for o in c.get("outputs", []))


def _saved(page, nb_path: Path, needle: str, timeout_s=60) -> str:
    """Save the open notebook (Ctrl+S) and wait until the file on disk holds `needle`."""
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if nb_path.is_file() and needle in nb_path.read_text():
            return nb_path.read_text()
        time.sleep(1)
    raise AssertionError(f"{nb_path} was not saved with {needle!r}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory, playwright):
    """Publish, start the hub, log two learners in through the link, run 00 in both,
    collect; then a second click after a new commit, and a cull. Returns what was seen."""
    missing = _missing()
    if missing:
        message = "the hub test needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " (.ci/run installs them)")
        pytest.skip(message)
    t0 = time.perf_counter()
    root = tmp_path_factory.mktemp("hub")
    seen = {"root": root}
    bare = root / "course.git"                      # the learner-facing repository
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    seen["first_commit"] = _publish(bare, "00")
    (root / "gpus.csv").write_text(ROSTER)
    for user in LEARNERS:
        _lab_settings(root / "home" / f"jupyter-{user}")
    port, hub_port, proxy_port = _free_port(), _free_port(), _free_port()
    (root / "hub_config.py").write_text(HUB_CONFIG.format(
        port=port, hub_port=hub_port, proxy_port=proxy_port, root=root, password=PASSWORD,
        python=sys.executable, token=TOKEN,
        project_config=ROOT / "classroom" / "jupyterhub_config.py"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LABKIT_", "PYTHONPATH", "JUPYTER", "JPY_"))}
    env.update(PATH=f"{Path(sys.executable).parent}:{env['PATH']}", LABKIT_PROFILE="smoke",
               LABKIT_GPU_ROSTER=str(root / "gpus.csv"), LABKIT_GPUS="4",
               LABKIT_LEARNER_THREADS="1")
    log = open(root / "hub.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(root / "hub_config.py")],
                              cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if server.poll() is not None or time.time() > deadline:
                pytest.fail("JupyterHub did not start: " + (root / "hub.log").read_text()[-3000:])
            try:
                urllib.request.urlopen(f"{url}/hub/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        seen["hub_started_s"] = time.perf_counter() - t0
        link = _labkit("classroom-link", "--hub", url, "--repo", bare.as_uri())[1].strip()
        seen["link"] = link
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        pages = {u: browser.new_context().new_page() for u in LEARNERS}
        for page in pages.values():
            page.set_default_timeout(60_000)
        yield _class(seen, pages, link, url, bare, root)
        browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _class(seen, pages, link, url, bare, root):
    homes = {u: root / "home" / f"jupyter-{u}" for u in LEARNERS}
    nb00 = {u: homes[u] / "labkit" / "notebooks" / "00_setup.ipynb" for u in LEARNERS}
    t = time.perf_counter()
    for user, page in pages.items():                 # both click the link and log in
        _log_in(page, link, user)
    for page in pages.values():
        _wait_for_notebook(page)
    seen["landed"] = {u: p.url for u, p in pages.items()}
    seen["clone_head"] = {u: subprocess.run(["git", "-C", str(homes[u] / "labkit"), "rev-parse",
                                             "HEAD"], capture_output=True, text=True).stdout.strip()
                          for u in LEARNERS}
    # alice answers exercise 00.1 in its cell; bob leaves the stub as it is.
    alice = pages["alice"]
    stub_cell = alice.locator(".jp-CodeCell", has_text="NotImplementedError").first
    stub_cell.locator(".cm-content").click()
    alice.keyboard.press("Control+a")
    alice.keyboard.insert_text(_answer_00_1())
    for page in pages.values():                      # both run the whole notebook at once
        _run_all(page)
    for page in pages.values():
        _wait_until_run(page)
    seen["errors"] = {u: p.locator(".jp-OutputArea-output[data-mime-type="
                                   "'application/vnd.jupyter.stderr']",
                                   has_text="Traceback").all_inner_texts() for u, p in pages.items()}
    seen["saved"] = {u: _saved(p, nb00[u], "set-up verified") for u, p in pages.items()}
    seen["run_s"] = time.perf_counter() - t
    # The instructor collects, as root, over the homes.
    seen["collect"] = _labkit("classroom-collect", "--homes", str(root / "home" / "jupyter-*"),
                              "--out", str(root / "collected"))
    # Next week: a new commit on the branch, and alice clicks the same link again.
    seen["second_commit"] = _publish(bare, "01")
    alice.goto(link)
    _wait_for_notebook(alice)
    seen["after_second_click"] = {
        "notebooks": sorted(p.name for p in (homes["alice"] / "labkit" / "notebooks").glob("*.ipynb")),
        "00": nb00["alice"].read_text(),
        "log": subprocess.run(["git", "-C", str(homes["alice"] / "labkit"), "log", "--format=%H"],
                              capture_output=True, text=True).stdout.split(),
    }
    # The idle culler stops alice's server (the same API call it makes); she comes back.
    api = f"{url}/hub/api/users/alice"
    seen["cull_status"] = _api(f"{api}/server", "DELETE")[0]
    for _ in range(60):
        if not (_api(api)[1] or {}).get("servers"):
            break
        time.sleep(1)
    seen["servers_after_cull"] = (_api(api)[1] or {}).get("servers")
    alice.goto(f"{url}/hub/spawn?next=/hub/user-redirect/lab/tree/labkit/notebooks/00_setup.ipynb")
    _wait_for_notebook(alice)
    seen["servers_after_return"] = (_api(api)[1] or {}).get("servers")
    seen["cells_after_return"] = "\n".join(alice.locator(".jp-CodeCell .cm-content").all_inner_texts())
    seen["files_after_return"] = alice.request.get(
        f"{url}/user/alice/api/contents/labkit/runs").json()
    seen["wall_s"] = time.perf_counter() - t + seen["hub_started_s"]
    return seen


class TestHub:
    pytestmark = hub_part

    def test_hub_both_learners_land_on_00_of_the_student_branch(self, hub):
        for user, landed in hub["landed"].items():
            assert landed.endswith(f"/user/{user}/lab/tree/labkit/notebooks/00_setup.ipynb"), landed
            assert hub["clone_head"][user] == hub["first_commit"]
        bob = "".join("".join(c["source"]) for c in json.loads(hub["saved"]["bob"])["cells"])
        assert 'raise NotImplementedError("your turn 00.1' in bob        # the stub, as published
        assert "BEGIN SOLUTION" not in bob

    def test_hub_notebook_00_ran_in_the_browser_with_the_hub_config(self, hub):
        for user, gpu in (("alice", "2"), ("bob", "3")):
            assert not hub["errors"][user], hub["errors"][user]
            out = _outputs(hub["root"] / "home" / f"jupyter-{user}" / "labkit" / "notebooks"
                           / "00_setup.ipynb")
            assert "set-up verified: smoke profile" in out          # LABKIT_PROFILE from the hub
            assert f"CUDA_VISIBLE_DEVICES={gpu}" in out             # the roster's GPU
        assert "Your turn 00.1" in _outputs(hub["root"] / "home" / "jupyter-alice" / "labkit"
                                            / "notebooks" / "00_setup.ipynb")

    def test_hub_collect_gets_both_learners_ledgers_and_progress(self, hub):
        (code, said, warned), out = hub["collect"], hub["root"] / "collected"
        assert code == 0 and not warned, warned
        assert "2 learner(s) with runs, of 2 home(s)" in said and "alice, bob" in said
        rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
        for user in LEARNERS:
            mine = [r for r in rows if r["learner"] == user]
            assert {r["notebook"] for r in mine} == {"00_setup"}
            assert {r["profile"] for r in mine} == {"smoke"}
            assert sum(r.get("metric") == "matmul_gflops" for r in mine) == 1   # one run each
        assert json.loads((out / "alice" / "progress.json").read_text())["00.1"]["passed"] is True
        bob = json.loads((out / "bob" / "progress.json").read_text())["00.1"]
        assert bob["passed"] is False and bob["status"] == "not attempted"

    def test_hub_two_learners_never_share_runs(self, hub):
        runs = {u: hub["root"] / "home" / f"jupyter-{u}" / "labkit" / "runs" for u in LEARNERS}
        assert runs["alice"].resolve() != runs["bob"].resolve()
        # Had they shared runs/, bob's progress would hold alice's pass, and each ledger
        # both runs.
        for user in LEARNERS:
            rows = [json.loads(x) for x in (runs[user] / "ledger.jsonl").read_text().splitlines()]
            assert sum(r.get("metric") == "matmul_gflops" for r in rows) == 1
        assert json.loads((runs["bob"] / "progress.json").read_text())["00.1"]["passed"] is False

    def test_hub_second_click_brings_the_new_notebook_and_keeps_the_edit(self, hub):
        after = hub["after_second_click"]
        assert "01_seq2seq_translator.ipynb" in after["notebooks"]
        assert hub["second_commit"] in after["log"] and hub["first_commit"] in after["log"]
        answer = next(line.strip() for line in _answer_00_1().splitlines() if "feed_forward" in line)
        assert answer in after["00"], "alice's answer to 00.1 was lost in the pull"

    def test_hub_culled_server_comes_back_to_its_files(self, hub):
        assert hub["cull_status"] in (202, 204)
        assert not hub["servers_after_cull"], hub["servers_after_cull"]
        assert "" in hub["servers_after_return"]
        answer = next(line.strip() for line in _answer_00_1().splitlines() if "feed_forward" in line)
        assert answer in hub["cells_after_return"]
        names = {f["name"] for f in hub["files_after_return"]["content"]}
        assert {"ledger.jsonl", "progress.json"} <= names

    def test_hub_wall_time(self, hub):
        print(f"hub test: hub up in {hub['hub_started_s']:.0f} s, two learners landed and ran "
              f"00 in {hub['run_s']:.0f} s, everything in {hub['wall_s']:.0f} s")


# --- what breaks in class, without a hub --------------------------------------------------

def _home(root: Path, user: str, ledger: str, progress: str = '{"00.1": {"passed": true}}') -> Path:
    runs = root / f"jupyter-{user}" / "labkit" / "runs"
    runs.mkdir(parents=True)
    (runs / "ledger.jsonl").write_text(ledger)
    (runs / "progress.json").write_text(progress)
    return runs


def _row(**kw) -> str:
    return json.dumps({"notebook": "00_setup", "metric": "m", "value": 1.0, **kw}) + "\n"


def test_hub_collect_skips_a_corrupt_ledger_with_a_named_warning(tmp_path, capsys):
    homes = tmp_path / "home"
    _home(homes, "alice", _row() + _row(value=2.0))
    _home(homes, "bob", _row() + '{"notebook": "00_setup", "metr')       # cut off mid-write
    _home(homes, "carol", _row(value=3.0), progress="{not json")
    _home(homes, "dan", _row(value=4.0))
    out = tmp_path / "collected"
    assert cli.main(["classroom-collect", "--homes", str(homes / "jupyter-*"), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert f"warning: skipped {homes / 'jupyter-bob'}: runs/ledger.jsonl line 2 is not JSON" in said.err
    assert f"warning: skipped {homes / 'jupyter-carol'}: runs/progress.json is not JSON" in said.err
    assert "2 learner(s) with runs, of 4 home(s)" in said.out and "2 skipped" in said.out
    rows = [json.loads(x) for x in (out / "ledger.jsonl").read_text().splitlines()]
    assert [(r["learner"], r["value"]) for r in rows] == [("alice", 1.0), ("alice", 2.0), ("dan", 4.0)]
    assert sorted(p.name for p in out.iterdir()) == ["alice", "dan", "ledger.jsonl"]


def _collect_as(uid: int, homes: str, out: str, queue) -> None:
    os.setgid(uid)
    os.setuid(uid)
    got = classroom.collect(sorted(Path(homes).parent.glob(Path(homes).name)), Path(out))
    queue.put((got.learners, got.skipped))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to act as two different users")
def test_hub_a_learner_cannot_collect_another_learners_home():
    """Homes as TLJH makes them (each learner's own, mode 0700): a learner who runs the
    course's collect command gets their own runs and a named warning for the other home,
    not its files."""
    base = Path(tempfile.mkdtemp(prefix="labkit-homes-"))   # reachable by any user
    base.chmod(0o755)
    try:
        _collect_as_a_learner(base / "home")
    finally:
        shutil.rmtree(base)


def _collect_as_a_learner(homes: Path) -> None:
    uid = 64123                                     # a user id with no account: a learner
    for user, owner in (("alice", uid), ("bob", uid + 1)):
        _home(homes, user, _row(learner_secret=user))
        for path in [homes / f"jupyter-{user}", *(homes / f"jupyter-{user}").rglob("*")]:
            os.chown(path, owner, owner)
        (homes / f"jupyter-{user}").chmod(0o700)
    homes.chmod(0o755)
    out = homes / "jupyter-alice" / "collected"
    queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(
        target=_collect_as, args=(uid, str(homes / "jupyter-*"), str(out), queue))
    child.start()
    learners, skipped = queue.get(timeout=60)
    child.join(timeout=60)
    assert learners == ["alice"]
    assert [(Path(h).name, re.sub(r" \(.*\)", "", why)) for h, why in skipped] == \
        [("jupyter-bob", "cannot read it: run as root")]
    assert "bob" not in (out / "ledger.jsonl").read_text()
    assert not (out / "bob").exists()
