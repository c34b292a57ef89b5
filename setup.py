"""Package set-up: everything is read from settings.ini (the nbdev 2 convention)."""
from configparser import ConfigParser
import shlex
import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    author=cfg["author"],
    license="Apache Software License 2.0",
    packages=setuptools.find_packages(include=[cfg["lib_path"], cfg["lib_path"] + ".*"]),
    python_requires=">=" + cfg["min_python"],
    install_requires=shlex.split(cfg.get("requirements", "")),
    extras_require={"dev": shlex.split(cfg.get("dev_requirements", "")),               # tests
                    "notebooks": shlex.split(cfg.get("notebooks_requirements", "")),  # notebooks, papermill, oracles
                    "docs": shlex.split(cfg.get("docs_requirements", ""))},            # make docs (MkDocs)
    entry_points={"nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
