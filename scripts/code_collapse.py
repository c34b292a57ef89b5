"""Why some objectives degrade the code: the MI terms against their ceiling and the code's effective rank, per step.

    python scripts/code_collapse.py --steps 700 --methods dim_l dim_lg wdim mige

Each method trains with the quick preset on Fashion-MNIST (the learner's own loop, its metrics.csv); the figure puts
the global and local bounds beside InfoNCE's ceiling log B, and the effective rank of the code y (exp of the entropy
of its covariance spectrum, 64 for an isotropic code, 1 for a line) over training. Writes
figures/train_code_collapse.{csv,png} with the settings beside them.
"""
import argparse, math, tempfile

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch

from wdim_nb.core import save_figure, save_table
from wdim_nb.learner import Config, fit


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["dim_l", "dim_lg", "wdim", "mige"])
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    frames, cfgs = [], {}
    with tempfile.TemporaryDirectory() as d:
        for m in a.methods:
            run = fit(Config(method=m, max_steps=a.steps, out_dir=d, name=m), progress=False)
            df = pd.read_csv(run["run_dir"] / "metrics.csv")
            cols = [c for c in ("global_mi", "local_mi", "global_surrogate", "y_erank") if c in df]
            frames.append(df[["step", *cols]].assign(method=m))
            cfgs[m] = {k: v for k, v in vars(run["cfg"]).items() if k not in ("out_dir", "data_dir", "name")}
    df = pd.concat(frames, ignore_index=True)
    params = dict(steps=a.steps, threads=torch.get_num_threads(), configs=cfgs)
    save_table(df, "train_code_collapse", params)
    B = next(iter(cfgs.values()))["batch_size"]
    smooth = lambda s: s.rolling(25, min_periods=1).mean()
    fig, ax = plt.subplots(1, 3, figsize=(15, 3.8))
    for m, g in df.groupby("method", sort=False):
        for k, col in enumerate(("global_mi", "local_mi", "y_erank")):
            if col in g and g[col].notna().any(): ax[k].plot(g.step, smooth(g[col]), label=m)
    ax[0].axhline(math.log(B), color="k", ls="--", lw=0.8, label=f"log B = log {B}")
    for x, t in zip(ax, ("global MI bound (nats)", "local MI bound (nats)", "effective rank of the code y (of 64)")):
        x.set(title=t, xlabel="step"); x.legend(fontsize=8)
    fig.suptitle("Fashion-MNIST, quick preset: what each objective does to the code")
    fig.tight_layout()
    save_figure(fig, "train_code_collapse", params)
    print(df.groupby("method", sort=False).tail(1).to_string(index=False))


if __name__ == "__main__":
    main()
