"""How the suite runs: in a random order, and importing installed packages, never a project folder of the
same name.

A folder of this repository that shares its name with an installed distribution's top-level package (the
repo's `kernels/` and the PyPI `kernels` that transformers imports) must not take its place in `sys.modules`,
however pytest names the test modules under it.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Collect the whole suite as CI does, then report every installed top-level package that resolves into the repo.
SCRIPT = """
import importlib, importlib.metadata, json, sys
from pathlib import Path

import pytest

repo = Path(sys.argv[1])
code = pytest.main(["--collect-only", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", str(repo)])
own = {"omni"}
shadowed = {}
names = importlib.metadata.packages_distributions()
for name, dists in names.items():
    if own & set(dists) or not ((repo / name).is_dir() or (repo / f"{name}.py").is_file()):
        continue
    module = importlib.import_module(name)
    where = [str(Path(p).resolve()) for p in getattr(module, "__path__", [])] or [str(module.__file__)]
    if any(Path(p) in (repo / name, repo / f"{name}.py") for p in where):
        shadowed[name] = where
print(json.dumps({"code": int(code), "checked": sorted(n for n in names if (repo / n).exists()), "shadowed": shadowed}))
"""


@pytest.mark.slow
def test_no_project_folder_shadows_an_installed_package_after_collection():
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, run.stdout[-3000:]
    assert report["shadowed"] == {}
    # The case that broke: the PyPI package kernels and the repo's kernels/ folder.
    if importlib.util.find_spec("kernels") is not None:
        assert "kernels" in report["checked"]


def test_the_suite_runs_in_a_random_order(pytestconfig):
    """pytest-randomly shuffles the tests on every run, so a test that needs another to run first fails."""
    if "no:randomly" in " ".join(pytestconfig.invocation_params.args):
        pytest.skip("random order switched off on the command line (-p no:randomly)")
    assert pytestconfig.pluginmanager.hasplugin("randomly")
