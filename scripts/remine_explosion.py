"""ReMINE Fig. 3 and Fig. 5 at the paper's length: the one-hot task (true MI log 16) at batch 32, run long enough for
the explosion ReMINE reports near step 23k, over several seeds, for MINE, NWJ and their regularised versions.

    OMP_NUM_THREADS=1 python scripts/remine_explosion.py --steps 30000 --seeds 3

Writes figures/instability_explosion.{csv,json,png}: per run the first step at which the critic's scores or the
estimate went non-finite (empty when none), the largest finite max |T|, the slope of the partition term over the
second half and the final estimate; the figure shows max |T| and the estimate and the partition term of every run against the step.
"""
import argparse, math, time

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch

from wdim_nb.benchmarks import loss_options
from wdim_nb.core import save_figure, save_table
from wdim_nb.instability import drift_slope, ema, explosion_stats, onehot_mi, run_onehot

LOSSES = {"MINE": ("MINE", 0.0), "NWJ": ("NWJ", 0.0), "ReMINE": ("MINE", 1.0), "ReNWJ": ("NWJ", 1.0)}   # name -> (loss, lambda)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--losses", nargs="*", default=list(LOSSES), choices=list(LOSSES))
    ap.add_argument("--every", type=int, default=50, help="plot every n-th step")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows, traces = [], []
    for name in a.losses:
        loss, lam = LOSSES[name]
        kind, opts = loss_options(loss, lam)
        for seed in range(a.seeds):
            t = time.time()
            df = run_onehot(kind, N=16, batch_size=a.batch_size, steps=a.steps, lr=1e-3, hidden=64, layers=2, seed=seed, **opts)
            ex = explosion_stats(df.max_abs_t, df.estimate)
            tail = df.estimate[df.estimate.notna()].tail(1000)
            rows.append(dict(loss=name, seed=seed, steps_run=len(df), first_nonfinite_step=ex["first_nonfinite_step"],
                             max_abs_t=ex["max_abs_t"], drift_per_1k=1000 * drift_slope(df.log_partition),
                             estimate_tail=float(tail.mean()) if len(tail) else math.nan, seconds=round(time.time() - t, 1)))
            print(rows[-1], flush=True)
            traces.append(df.iloc[::a.every].assign(loss=name, smooth=ema(df.estimate)[::a.every], partition=ema(df.log_partition)[::a.every]))
    params = dict(task="one-hot, N=16 (true MI log 16)", batch_size=a.batch_size, steps=a.steps, seeds=a.seeds, lr=1e-3,
                  hidden=64, layers=2, losses={n: loss_options(*LOSSES[n]) for n in a.losses}, threads=1)
    save_table(pd.DataFrame(rows), "instability_explosion", params)
    tr = pd.concat(traces)
    fig, ax = plt.subplots(3, len(a.losses), figsize=(4 * len(a.losses), 8.5), sharex=True, squeeze=False)
    for j, name in enumerate(a.losses):
        for seed, g in tr[tr.loss == name].groupby("seed"):
            ax[0, j].semilogy(g.step, g.max_abs_t, lw=0.7, label=f"seed {seed}")
            ax[1, j].plot(g.step, g.smooth, lw=0.7); ax[2, j].plot(g.step, g.partition, lw=0.7)
        for r in (r for r in rows if r["loss"] == name and r["first_nonfinite_step"] is not None):
            for i in (0, 1, 2): ax[i, j].axvline(r["first_nonfinite_step"], color="r", ls="--", lw=0.8)
        ax[1, j].axhline(onehot_mi(16), color="k", lw=1, label="true MI log 16")
        ax[0, j].set(title=f"{name}, batch {a.batch_size}: max |T|"); ax[1, j].set(title="estimate (EMA 0.99)")
        ax[2, j].set(title="partition term (EMA 0.99)", xlabel="step")
        ax[1, j].set_ylim(-1, 2 * onehot_mi(16)); ax[0, j].legend(fontsize=7); ax[1, j].legend(fontsize=7)
    fig.suptitle("ReMINE Fig. 3 / Fig. 5 at full length (red dashes: first non-finite step)"); fig.tight_layout()
    save_figure(fig, "instability_explosion", params)


if __name__ == "__main__":
    main()
