"""DIM Table 3 on the quick grid: linear SVMs (hinge loss, five runs) on conv / fc / Y, the MS-SSIM of a decoder
trained on the frozen code, MINE's I(X; Y) and NDM with and without the sigmoid, for DIM(G), DIM(L+G) and DIM(L).

    python -m wdim_nb.sweep --tables dim_table1 --jobs 2     # trains the runs (the rows below are dim_table1's, JSD)
    python scripts/dim_table3.py --runs runs --jobs 2

DIM's Table 3 does not name its bound; the rows here are dim_table1's JSD runs (the bound DIM calls the more stable).
What a run's eval.json already holds (MINE, both NDMs: the same estimators and settings) is read from it; the SVMs and
the decoder are measured once per run into <run>/table3.json, so a rerun only measures what is missing. Writes
tables/dim_table3_quick.{csv,json,md}: mean and 95 % interval over the seeds, the paper's CIFAR-10 numbers beside.
"""
import argparse, json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from wdim_nb.core import provenance, repo_root, save_table, write_json
from wdim_nb.sweep import GRIDS, _markdown, finished, interval, runs_of

ROWS = {"DIM(G)": "DIM(G), JSD", "DIM(L+G)": "DIM(L+G), JSD", "DIM(L)": "DIM(L), JSD"}   # Table 3 row -> dim_table1 row
# DIM Table 3 (CIFAR-10): SVM conv, fc, Y (mean over five runs), MS-SSIM, MINE I(X; Y), NDM (sigmoid), NDM (no sigmoid)
PAPER = {"DIM(G)": (46.8, 28.79, 29.08, 0.49, 49.63, 0.35, 9.96), "DIM(L+G)": (57.55, 45.56, 18.63, 0.53, 101.65, 0.5, 22.89),
         "DIM(L)": (63.25, 54.06, 49.62, 0.37, 45.09, 0.18, 9.18)}
COLUMNS = ("SVM (conv)", "SVM (fc)", "SVM (Y)", "MS-SSIM", "MINE I(X;Y)", "NDM", "NDM (no sigmoid)")


def measure(run_dir: str, settings: dict) -> dict:
    "The SVMs and the decoder of one finished run (in a worker process: one CPU thread)."
    import torch
    from wdim_nb.data import get_dataset, view
    from wdim_nb.evaluate import evaluate
    from wdim_nb.learner import load_run
    torch.set_num_threads(1)
    r = load_run(run_dir)
    cfg = r["cfg"]
    tr, te = (get_dataset(cfg.dataset, s, cfg.data_dir) for s in ("train", "test"))
    ev = evaluate(r["encoder"].eval(), tr, te, probes=("svm",), ndm_steps=0, mine_steps=0, raw=False, seed=cfg.seed,
                  augment=view(cfg.dataset)["eval_augment"], progress=False, **settings)
    out = dict(settings=settings, svm={t: dict(mean=p["svm"], std=p["svm_std"]) for t, p in ev["probe"].items()},
               msssim=ev["msssim"], provenance={k: v for k, v in provenance().items() if k != "params"})
    write_json(Path(run_dir) / "table3.json", out)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="runs", help="the sweep's run folder (its finished dim_table1 runs are read)")
    ap.add_argument("--decoder-steps", type=int, default=1000)
    ap.add_argument("--svm-runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1, help="runs measured at a time, one CPU thread each")
    ap.add_argument("--measure-rows", nargs="*", choices=list(ROWS), help="measure only these rows' runs (the table has every row)")
    ap.add_argument("--folder", default=str(repo_root() / "tables"))
    a = ap.parse_args(argv)
    grid, out_dir = GRIDS["quick"], Path(a.runs)
    settings = dict(svm_runs=a.svm_runs, decoder_steps=a.decoder_steps, n_train=grid["eval"]["eval_train"],
                    n_test=grid["eval"]["eval_test"])
    runs = {row: [r for t, label, r in runs_of(grid, tables=["dim_table1"]) if label == src and finished(r, out_dir)]
            for row, src in ROWS.items()}
    done = lambda r: (out_dir / r.name / "table3.json").is_file() and \
        json.loads((out_dir / r.name / "table3.json").read_text())["settings"] == settings   # measured with these settings
    todo = [r for row, rs in runs.items() for r in rs if (a.measure_rows is None or row in a.measure_rows) and not done(r)]
    print(f"{sum(map(len, runs.values()))} finished runs, {len(todo)} to measure")
    with ProcessPoolExecutor(a.jobs) as pool:
        for r, _ in zip(todo, pool.map(measure, [str(out_dir / r.name) for r in todo], [settings] * len(todo))):
            print("measured", r.name, flush=True)
    recs, commits = [], set()
    runs = {row: [r for r in rs if done(r)] for row, rs in runs.items()}   # the table: runs measured with these settings
    for row, rs in runs.items():
        vals = {c: [] for c in COLUMNS}
        for r in rs:
            m, ev = (json.loads((out_dir / r.name / f).read_text()) for f in ("table3.json", "eval.json"))
            for c, t in zip(COLUMNS[:3], ("conv", "fc", "y")): vals[c].append(m["svm"][t]["mean"])
            vals["MS-SSIM"].append(m["msssim"]); vals["MINE I(X;Y)"].append(ev["mine"])
            vals["NDM"].append(ev["ndm_sigmoid"]); vals["NDM (no sigmoid)"].append(ev["ndm"])
            commits |= {p["commit"] + ("+changes" if p["dirty"] else "") if p else "unrecorded"
                        for p in (m["provenance"], ev.get("provenance"))}
        rec = dict(row=row)
        for c in COLUMNS:
            mean, half, _ = interval(vals[c])
            rec[c], rec[f"{c} ±95%"] = round(mean, 4), (round(half, 4) if half is not None else None)
        rec["seeds"] = len(rs)
        rec |= {f"paper {c}": v / 100 if c.startswith("SVM") else v for c, v in zip(COLUMNS, PAPER[row])}
        recs.append(rec)
    df = pd.DataFrame(recs)
    params = dict(grid="quick", dataset=grid["dataset"], rows=ROWS, runs={row: [r.name for r in rs] for row, rs in runs.items()},
                  run_commits=sorted(commits), **settings, ndm_mine="from each run's eval.json (evaluate's defaults)",
                  decoder="MLP 2 x 512 on the standardised code y, L2 loss, Adam 1e-3, batch 256",
                  msssim="torchmetrics, 7-px window, sigma 1, as many scales as the image allows (3 at 28 px)")
    csv = save_table(df, "dim_table3_quick", params, folder=a.folder)
    p = provenance(params)
    csv.with_suffix(".md").write_text(
        f"# dim_table3 (quick grid: {grid['dataset']})\n\nRuns at commit {', '.join(sorted(commits))}, table written at "
        f"{p['commit']}; {p['hardware']['cpu']} ({p['hardware']['cores']} cores). Linear SVMs (hinge loss, mean of "
        f"{a.svm_runs} runs), MS-SSIM of a decoder on the code, MINE and NDM: mean ± 95 % interval over the seeds. `paper` "
        f"columns: DIM Table 3, CIFAR-10 (another dataset and schedule).\n\n" + _markdown(df) + "\n")
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
