"core: the repository root comes from the package's location, not from the working directory."
import os, subprocess, sys
from pathlib import Path

import wdim_nb
from wdim_nb.core import repo_root


def test_repo_root_is_the_package_repository_from_any_folder(tmp_path):
    here = Path(wdim_nb.__file__).resolve().parent.parent
    assert repo_root() == here and (here / "settings.ini").is_file()
    (tmp_path / "settings.ini").write_text("[DEFAULT]\nlib_name = another_project\n")    # inside another nbdev project
    code = "from wdim_nb.core import repo_root, provenance; from wdim_nb.learner import Config, check, run_folder; " \
           "print(repo_root()); print(run_folder(check(Config(dataset='synthetic'))).parent)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env=os.environ | {"PYTHONPATH": str(here)}).stdout.split()
    assert out == [str(here), str(here / "runs")]
    assert repo_root(tmp_path / "sub") == tmp_path                                        # an explicit start still searches up


def test_the_package_imports_without_the_notebook_tooling():
    "`pip install wdim_nb` (no [notebooks] extra) must give a working package: no module needs the notebook tools."
    import subprocess, sys
    code = ("import sys, importlib, pkgutil\n"
            "for m in ('seaborn', 'papermill', 'nbdev', 'fastcore', 'execnb', 'ghapi', 'jupyterlab', 'ot', 'geomloss'): sys.modules[m] = None\n"
            "import wdim_nb\n"
            "for mod in pkgutil.iter_modules(wdim_nb.__path__): importlib.import_module('wdim_nb.' + mod.name)\n"
            "from wdim_nb.methods import method_names; print(len(method_names()))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]


def test_provenance_dirty_means_changed_code_not_a_new_result(tmp_path, monkeypatch):
    import shutil, pytest
    from wdim_nb import core
    if not shutil.which("git"): pytest.skip("git is not installed")
    monkeypatch.setattr(core, "repo_root", lambda: tmp_path)
    for cmd in (["init", "-q"], ["config", "user.email", "a@b"], ["config", "user.name", "a"]): core._git(*cmd)
    (tmp_path / "tables").mkdir(); (tmp_path / "tables" / "t.csv").write_text("1"); (tmp_path / "m.py").write_text("x")
    core._git("add", "."); core._git("commit", "-qm", "c")
    assert core.provenance()["dirty"] is False
    (tmp_path / "tables" / "t.csv").write_text("2")
    assert core.provenance()["dirty"] is False          # writing a result is not a change to what produced it
    (tmp_path / "m.py").write_text("y")
    assert core.provenance()["dirty"] is True
