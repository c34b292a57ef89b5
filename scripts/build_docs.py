"""Build the documentation site with MkDocs: the executed notebooks, the README, the API reference and figures/.

    python scripts/build_docs.py [--site site]

MkDocs with mkdocs-jupyter renders notebooks as they are committed (with their outputs, never re-executed), and
mkdocstrings renders each module's signatures and docstrings from the installed package; Material gives search and
navigation. The pages are staged in build/docs/ (notebooks, one API page per module, figures/), the navigation is
generated from what is there, so a new notebook or module appears without editing a configuration file.
"""
import argparse, json, pkgutil, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def title(nb: Path) -> str:
    "The notebook's first Markdown heading, else its file name."
    for c in json.loads(nb.read_text())["cells"]:
        if c["cell_type"] == "markdown":
            for line in "".join(c["source"]).splitlines():
                if line.startswith("# "): return line[2:].strip()
    return nb.stem


def for_readers(src: Path, dst: Path) -> None:
    "Copy a notebook without nbdev's machinery: hidden cells and `#| ` directive lines are for the exporter."
    nb = json.loads(src.read_text())
    keep = []
    for c in nb["cells"]:
        text = "".join(c["source"])
        if c["cell_type"] == "code" and (text.startswith(("#| hide", "#| default_exp")) or "nbdev_export()" in text): continue
        if c["cell_type"] == "code":
            c["source"] = "".join(l for l in text.splitlines(True) if not l.startswith("#| ")).lstrip("\n")
        keep.append(c)
    nb["cells"] = keep
    dst.write_text(json.dumps(nb))


def mathjax(dst: Path) -> list[str]:
    "MathJax 3 (SVG output, one self-contained file) from the npm registry, cached in build/; [] when unavailable."
    cache = ROOT / "build" / "mathjax" / "tex-svg.js"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["npm", "pack", "mathjax@3", "--silent"], cwd=cache.parent, check=True, capture_output=True, timeout=300)
            import tarfile
            tgz = next(cache.parent.glob("mathjax-3*.tgz"))
            with tarfile.open(tgz) as t: cache.write_bytes(t.extractfile("package/es5/tex-svg.js").read())
        except (OSError, subprocess.SubprocessError, StopIteration, KeyError) as e:
            print(f"note: MathJax unavailable ({e}); formulas stay as TeX source"); return []
    (dst / "assets").mkdir(exist_ok=True)
    shutil.copy(cache, dst / "assets" / "tex-svg.js")
    (dst / "assets" / "mathjax-config.js").write_text(
        "window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']]}, svg: {fontCache: 'global'}};\n")
    return ["assets/mathjax-config.js", "assets/tex-svg.js"]


def stage(dst: Path) -> dict:
    "Copy the pages into `dst` and return the MkDocs configuration."
    import wdim_nb
    if dst.exists(): shutil.rmtree(dst)
    (dst / "api").mkdir(parents=True)
    shutil.copytree(ROOT / "figures", dst / "figures")
    for_readers(ROOT / "nbs" / "index.ipynb", dst / "index.ipynb")
    (dst / "nbs").mkdir()                               # as in the repository: `../figures/x.png` in a notebook works
    notebooks = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if p.name != "index.ipynb")
    for p in notebooks: for_readers(p, dst / "nbs" / p.name)
    modules = sorted(m.name for m in pkgutil.iter_modules(wdim_nb.__path__) if not m.name.startswith("_"))
    for m in modules: (dst / "api" / f"{m}.md").write_text(f"# `wdim_nb.{m}`\n\n::: wdim_nb.{m}\n")
    numbered = [p for p in notebooks if p.name[0].isdigit()]
    jobs = [p for p in notebooks if not p.name[0].isdigit()]
    return dict(
        site_name="wdim_nb", docs_dir=str(dst), use_directory_urls=False,
        site_description="Mutual-information representation learning: DIM, WDIM, MIGE, ReMINE and information clustering",
        theme=dict(name="material", font=False, features=["navigation.sections", "search.highlight"]),   # no web fonts
        plugins=["search", dict(**{"mkdocs-jupyter": dict(execute=False, include_source=True)}),
                 dict(mkdocstrings=dict(handlers=dict(python=dict(options=dict(show_source=False, heading_level=2)))))],
        markdown_extensions=["tables", "admonition"], extra_javascript=mathjax(dst),
        nav=[{"Home": "index.ipynb"},
             {"Notebooks": [{f"{p.stem}: {title(p)}": f"nbs/{p.name}"} for p in numbered]},
             {"Jobs": [{f"{p.stem}: {title(p)}": f"nbs/{p.name}"} for p in jobs]},
             {"API reference": [{f"wdim_nb.{m}": f"api/{m}.md"} for m in modules]}])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", default=str(ROOT / "site"))
    ap.add_argument("--stage", default=str(ROOT / "build" / "docs"))
    a = ap.parse_args(argv)
    cfg = stage(Path(a.stage))
    cfg["site_dir"] = str(Path(a.site).resolve())
    yml = Path(a.stage).parent / "mkdocs.yml"
    yml.write_text(json.dumps(cfg, indent=1))          # JSON is YAML
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "-f", str(yml)], check=True, cwd=ROOT)
    print(f"site: {cfg['site_dir']}/index.html")


if __name__ == "__main__":
    main()
