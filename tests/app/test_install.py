"""The package as a learner installs it (issue 12): the wheel, the `backprop-lab` command,
and the pages served from an installed copy far from the checkout."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from importlib import metadata
from pathlib import Path

import httpx

from app.settings import Settings
from tests.conftest import ROOT, free_port
from tests.routes import get_paths

# what the wheel is built from: the package folders and the pages' folders
SOURCES = ("pyproject.toml", "README.md", "app", "engine", "jobs", "templates", "static")


def clean_environment() -> dict[str, str]:
    """The environment without this checkout on the path and without the app's settings."""
    return {key: value for key, value in os.environ.items()
            if key != "PYTHONPATH" and not key.startswith("BACKPROP_LAB_")}


def setuptools_major() -> int:
    """This environment's setuptools major version (0 when there is none)."""
    try:
        return int(metadata.version("setuptools").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return 0


def wait_until_serving(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 40
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"backprop-lab exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"not serving after 40 s:\n{log.read_text()}"
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # as Ctrl+C
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_package_list_holds_every_package_of_the_checkout():
    # pyproject.toml lists the packages (two of them are the mapped page folders): a new
    # package folder missing from the list would be missing from the wheel
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("app", "engine", "jobs") for init in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
    assert setup["package-dir"] == {"app.templates": "templates", "app.static": "static"}


def test_help_lists_every_setting_with_its_variable_and_default():
    from app.cli import build_parser

    for argv in (["--help"], ["serve", "--help"]):
        result = subprocess.run([sys.executable, "-m", "app.cli", *argv], cwd=ROOT,
                                env={**clean_environment(), "PYTHONPATH": str(ROOT)},
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        for name, field in Settings.model_fields.items():
            variable = f"BACKPROP_LAB_{name.upper()}"
            line = next((line for line in lines if variable in line.split()), None)
            assert line is not None, f"{variable} missing from {argv}"
            assert f"--{name.replace('_', '-')}" in line
            default = field.get_default(call_default_factory=True)
            shown = "unset" if default is None else (",".join(default) or "none") if isinstance(
                default, list) else str(default)
            assert f"(default {shown})" in line, line
    serve = build_parser().parse_args(["serve"])
    assert (serve.host, serve.port, serve.workers, serve.scheduler) == ("127.0.0.1", 8000, 1, None)


def test_version_and_a_bad_setting():
    run = [sys.executable, "-m", "app.cli"]
    env = {**clean_environment(), "PYTHONPATH": str(ROOT)}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = subprocess.run([*run, "--version"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.startswith(f"backprop-lab {version}")
    result = subprocess.run([*run, "serve", "--max-points", "1", "--port", str(free_port())],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "--max-points (BACKPROP_LAB_MAX_POINTS)" in result.stderr
    assert "greater than or equal to 2" in result.stderr


def test_serve_passes_settings_to_every_worker_process(tmp_path):
    """Options become the environment uvicorn's worker processes start with."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2",
             "--max-points", "321", "--scheduler", "tcp://127.0.0.1:9", "--log-level",
             "warning"],
            cwd=tmp_path, env={**clean_environment(), "PYTHONPATH": str(ROOT)},
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, url, log)
        assert f"open {url}/ in a browser" in log.read_text()
        assert "job cluster: tcp://127.0.0.1:9" in log.read_text()
        # new connections each time: the two processes share the socket, and both must know
        for _ in range(8):
            limits = httpx.get(f"{url}/api/schema", timeout=10).json()["limits"]
            assert limits["max_points"] == 321
    finally:
        stop(process)


def test_the_wheel_installed_elsewhere_serves_every_page(tmp_path):
    """Build the wheel, install it into a new virtual environment outside the checkout and
    serve from there: every page, the static modules they load, and plotly."""
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, source / name)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
             str(source)]
    if setuptools_major() >= 68:  # pyproject's build requirement: this one, no download
        build.insert(5, "--no-build-isolation")
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("backprop_lab-*.whl")

    # a new environment; its third-party packages (fastapi, numpy, ...) are this one's, seen
    # through a .pth line. A plain path line is not a site directory, so this environment's
    # own .pth files (the editable install's finder, which would import the checkout) do not run.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    (site / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=300)
    command = venv / "bin" / "backprop-lab"
    assert command.exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_environment()
    where = subprocess.run(
        [python, "-c", "import app, app.assets as a; print(app.__file__); "
         "print(a.folder('templates')); print(a.folder('static'))"],
        cwd=elsewhere, env=env, check=True, capture_output=True, text=True).stdout.split()
    for path in where:  # the installed copy, with its pages inside it
        assert Path(path).is_relative_to(venv) and not Path(path).is_relative_to(ROOT), where
    version = subprocess.run([command, "--version"], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"backprop-lab {wheel.name.split('-')[1]}"

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([command, "serve", "--port", str(port)], cwd=elsewhere,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, url, log)
        assert f"open {url}/" in log.read_text()
        from app.main import create_app

        pages = get_paths(create_app())  # the app's own list: /labs once it exists
        assert {"/", "/step", "/jobs", "/docs"} <= set(pages)
        loaded: set[str] = set()
        with httpx.Client(base_url=url, timeout=30) as client:
            for path in pages:
                response = client.get(path)
                assert response.status_code == 200, (path, response.text[:300])
                assert client.head(path).status_code == 200, path
                if response.headers["content-type"].startswith("text/html"):
                    loaded.update(re.findall(r'(?:src|href)="(/(?:static|vendor)/[^"#?]+)"',
                                             response.text))
            # every file a page loads, and the modules the playground imports
            loaded.update({"/static/js/playground.js", "/static/js/socket.js",
                           "/vendor/plotly.min.js", "/favicon.ico"})
            for path in sorted(loaded):
                response = client.get(path)
                assert response.status_code == 200, path
                assert len(response.content) > 0, path
            assert "Backprop Lab" in client.get("/").text
    finally:
        stop(process)
    assert "Traceback" not in log.read_text(), log.read_text()


