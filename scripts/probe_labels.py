"""How many labels the probes see: the MLP probes of finished runs with 10,000 labelled training images (`make run`)
and with all 60,000 (the papers' protocol), on the full test set, beside raw pixels and the untrained network.

    python scripts/probe_labels.py runs/A runs/B ... [--n-train 10000 all]

Each run is rebuilt from its checkpoint (`learner.load_run`); the untrained network is the run's architecture at the
run's seed, as `train.ipynb` builds it. Writes figures/train_probe_labels.{csv,json} with the runs and settings.
"""
import argparse
from pathlib import Path

import pandas as pd
import torch

from wdim_nb.core import save_table, seed_everything
from wdim_nb.data import get_dataset, view, view_shape
from wdim_nb.evaluate import evaluate
from wdim_nb.learner import load_run
from wdim_nb.methods import get_method


def rows(run_dir: Path, n_train, threads) -> list[dict]:
    run = load_run(run_dir); cfg = run["cfg"]
    train, test = get_dataset(cfg.dataset, "train", cfg.data_dir), get_dataset(cfg.dataset, "test", cfg.data_dir)
    seed_everything(cfg.seed)
    rnd = get_method(cfg.method).build(cfg, view_shape(train.shape, cfg.augment))["encoder"].eval()
    ev = evaluate(run["encoder"], train, test, random_encoder=rnd, n_train=n_train, n_test=None, probes=("mlp",),
                  ndm_steps=0, mine_steps=0, seed=cfg.seed, augment=view(cfg.dataset)["eval_augment"], num_threads=threads,
                  progress=False)
    out = [dict(encoder="trained", tap=t, mlp=v["mlp"]) for t, v in ev["probe"].items()]
    out += [dict(encoder="untrained", tap=t, mlp=v["mlp"]) for t, v in ev["baselines"]["random_encoder"]["probe"].items()]
    out += [dict(encoder="raw pixels", tap="pixels", mlp=ev["baselines"]["raw"]["mlp"])]
    return [dict(run=run_dir.name, seed=cfg.seed, n_train=ev["config"]["n_train"], n_test=ev["config"]["n_test"], **r) for r in out]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--n-train", nargs="+", default=["10000", "all"])
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of the probes (default: torch's)")
    ap.add_argument("--name", default="train_probe_labels")
    a = ap.parse_args(argv)
    missing = [str(r) for r in a.runs if not (r / "checkpoint.pt").is_file()]
    if missing: raise SystemExit(f"no checkpoint.pt in {', '.join(missing)}")
    sizes = [None if n == "all" else int(n) for n in a.n_train]
    threads = a.threads or torch.get_num_threads()
    df = pd.DataFrame([r for run in a.runs for n in sizes for r in rows(run, n, threads)])
    print(df.to_string(index=False))
    save_table(df, a.name, dict(runs=[str(r) for r in a.runs], n_train=a.n_train, threads=threads, probe="mlp (evaluate's defaults)"))
    return df


if __name__ == "__main__":
    main()
