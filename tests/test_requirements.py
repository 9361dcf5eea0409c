"""The requirements files hold everything the product and its tests import, pinned exactly.

CI installs ``requirements-dev.txt`` into a fresh virtual environment, so a package left on a
machine by hand cannot hide a missing pin there; these tests say which pin is missing, and where
it is imported, before a test deep in the suite fails on an ImportError.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

OURS = ("dlcore", "ui", "pages", "bench", "tests", "app.py")


def _requirements(path: Path) -> dict[str, str]:
    """Each requirement's normalised name and its line, following ``-r`` includes."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            found.update(_requirements(path.parent / line[3:].strip()))
            continue
        name = re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]
        found[_normalise(name)] = line
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _python_files() -> list[Path]:
    files: list[Path] = []
    for name in OURS:
        path = ROOT / name
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return [f for f in files if ".venv" not in f.parts]


def _imports() -> dict[str, set[str]]:
    """Every top-level module imported anywhere (inside functions too: the lazy imports of
    TensorFlow, Ray and Optuna are the ones most easily forgotten), with the files that import it."""
    local = {p.stem for p in _python_files()} | {p.name for p in ROOT.iterdir() if p.is_dir()}
    found: dict[str, set[str]] = {}
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_pinned_in_the_requirements_files():
    pinned = _requirements(ROOT / "requirements-dev.txt")
    providers = importlib.metadata.packages_distributions()
    problems = []
    for module, files in sorted(_imports().items()):
        where = ", ".join(sorted(files)[:3]) + (" …" if len(files) > 3 else "")
        dists = {_normalise(d) for d in providers.get(module, [])}
        if not dists:
            problems.append(f"'{module}' (imported by {where}) is not installed: pin the package that provides it "
                            "in requirements.txt (or requirements-dev.txt if only tests and benchmarks use it)")
        elif not dists & pinned.keys():
            problems.append(f"'{module}' (imported by {where}) comes from {', '.join(sorted(dists))}, which no "
                            "requirements file pins: add it with an exact version (==) to requirements.txt "
                            "(or requirements-dev.txt if only tests and benchmarks use it)")
    assert not problems, "\n".join(problems)


def test_every_requirement_is_pinned_exactly():
    loose = [line for line in _requirements(ROOT / "requirements-dev.txt").values()
             if not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[A-Za-z0-9_.+\-]+", line)]
    assert not loose, f"pin these with an exact version (name==version): {loose}"


def test_the_installed_packages_have_their_own_dependencies():
    done = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_module_of_the_product_and_the_benchmarks_imports():
    """Import every module of dlcore, ui and bench in a fresh interpreter (pages are scripts that
    Streamlit runs: their imports are checked above)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "failed = []\n"
        "for package in ('dlcore', 'ui', 'bench'):\n"
        "    root = importlib.import_module(package)\n"
        "    for info in pkgutil.walk_packages(root.__path__, package + '.'):\n"
        "        if info.name.endswith('__main__'):\n"
        "            continue\n"
        "        try:\n"
        "            importlib.import_module(info.name)\n"
        "        except Exception as error:\n"
        "            failed.append(f'{info.name}: {type(error).__name__}: {error}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]


def test_ci_runs_the_readme_test_command_in_a_fresh_virtual_environment():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Run the whole test suite"):]
    command = re.search(r"```bash\n(.*?)\n```", section, flags=re.DOTALL).group(1).strip()
    assert "python3 -m venv --clear .venv && . .venv/bin/activate" in command
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert command in ci, "the README's test command and .ci/run differ: keep them the same line"
