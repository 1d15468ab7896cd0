"""What `make package` ships, built by the same script (infra/package.py):

(a) the wheel installs into a clean virtual environment, its dependencies from the hash-checked lock
    (requirements.txt, as the Function App gets them; pip runs from this venv against the new
    interpreter, so the new one needs no pip of its own), and its `synos` entry point runs there;
(b) the Functions zip has the layout the Functions host expects and nothing it must not carry. The
    dependency download is skipped here (--no-deps); `make package` includes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE_SCRIPT = REPO_ROOT / "infra" / "package.py"


def _run(
    cmd: list[str], cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(cmd)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dists")
    _run([sys.executable, str(PACKAGE_SCRIPT), "--only", "dists", "--out", str(out)], cwd=REPO_ROOT)
    return out


def test_wheel_and_sdist_hold_the_package_only(dists: Path) -> None:
    (wheel,) = dists.glob("synoscd-*-py3-none-any.whl")
    (sdist,) = dists.glob("synoscd-*.tar.gz")
    assert sdist.stat().st_size > 0
    with zipfile.ZipFile(wheel) as zf:
        tops = {name.split("/")[0] for name in zf.namelist()}
        entry_points = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        assert "synos = synoscd.cli.main:entry" in zf.read(entry_points).decode()
    # The package and its metadata; no emulators/, tests/, examples/ or function_app.py.
    assert tops == {"synoscd", wheel.name.split("-py3")[0] + ".dist-info"}


def test_wheel_installs_into_a_clean_venv_and_synos_runs(dists: Path, tmp_path: Path) -> None:
    (wheel,) = dists.glob("synoscd-*-py3-none-any.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    lock = REPO_ROOT / "requirements.txt"
    # The package index is no stand-in: without the session stack's REQUESTS_CA_BUNDLE (its
    # self-signed CA, set for every test once the stack runs), pip trusts what it trusts for users.
    index_env = {k: v for k, v in os.environ.items() if k != "REQUESTS_CA_BUNDLE"}
    _run([*pip, "--require-hashes", "--no-deps", "-r", str(lock)], cwd=tmp_path, timeout=300, env=index_env)
    _run([*pip, "--no-deps", str(wheel)], cwd=tmp_path)
    _run([sys.executable, "-m", "pip", "--python", str(python), "check"], cwd=tmp_path)  # the lock covers it
    # Run from tmp_path, not the repository, so nothing but the installed wheel provides synoscd.
    where = _run([str(python), "-c", "import synoscd; print(synoscd.__file__)"], cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(venv)
    help_text = _run([str(venv / "bin" / "synos"), "--help"], cwd=tmp_path).stdout
    for command in ("validate", "sync", "diff", "suspend", "history", "schema"):
        assert command in help_text
    version = _run([str(venv / "bin" / "synos"), "--version"], cwd=tmp_path).stdout
    assert version.startswith("synos ")


@pytest.fixture(scope="module")
def functions_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("functions")
    cmd = [sys.executable, str(PACKAGE_SCRIPT), "--only", "functions", "--no-deps", "--out", str(out)]
    _run(cmd, cwd=REPO_ROOT)
    return out / "synoscd-functions.zip"


def test_functions_zip_has_the_layout_the_host_expects(functions_zip: Path) -> None:
    with zipfile.ZipFile(functions_zip) as zf:
        names = set(zf.namelist())
        assert zf.read("host.json") == (REPO_ROOT / "host.json").read_bytes()
        assert zf.read("requirements.txt") == (REPO_ROOT / "requirements.txt").read_bytes()
    for required in (
        "function_app.py",
        "host.json",
        "requirements.txt",
        "synoscd/__init__.py",
        "synoscd/functions/handlers.py",
    ):
        assert required in names, f"{required} missing from {functions_zip.name}"
    shipped = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "synoscd").rglob("*.py")}
    assert shipped <= names
    for name in names:
        top = name.split("/")[0]
        assert top not in {"tests", "emulators", "examples", "bench", "infra", ".venv", "node_modules"}, name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        assert top != "local.settings.json", name
    assert not any(n.startswith(".python_packages/") for n in names), "--no-deps must not download"


def test_functions_zip_is_reproducible(functions_zip: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, str(PACKAGE_SCRIPT), "--only", "functions", "--no-deps", "--out", str(tmp_path)]
    _run(cmd, cwd=REPO_ROOT)
    assert (tmp_path / functions_zip.name).read_bytes() == functions_zip.read_bytes()


def test_function_app_indexes_from_the_extracted_zip(functions_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(functions_zip) as zf:
        zf.extractall(tmp_path)
    # The zip's own synoscd comes first on the path, as on the host (wwwroot is the working directory).
    probe = (
        "import sys; sys.path.insert(0, '.'); import function_app, synoscd; print(synoscd.__file__); "
        "print(sorted(f.get_function_name() for f in function_app.app.get_functions()))"
    )
    out = _run([sys.executable, "-c", probe], cwd=tmp_path).stdout.splitlines()
    assert Path(out[0]).is_relative_to(tmp_path)
    assert out[1] == (
        "['api_v1', 'dashboard', 'github_webhook', 'health', 'health_details', 'reconcile_queue', "
        "'reconcile_timer']"
    )
