"""ReMINE Sec. 5.3 / Fig. 7 at the paper's protocol: the 20-D Gaussian staircase (true MI 2, 4, 6, 8, 10 nats),
4000 steps per level, 5 seeds, the six losses of ReMINE Table 1 and their regularised versions at lambda = 1, and
optionally the regularised versions at smaller lambdas.

    OMP_NUM_THREADS=1 python scripts/remine_staircase.py --steps 4000 --seeds 5 --lambdas 1 0.1 0.01 0.001 --jobs 2

Each run (loss, lambda, seed) is kept in `--cache` as it finishes, so a killed sweep resumes where it stopped.
Writes figures/instability_staircase.{csv,json,png} (lambda = 1 beside the original losses: bias, variance and MSE
per true-MI level over the second half of each level, pooled over seeds, and the Fig. 7 panels) and, when more than
one lambda is given, figures/instability_staircase_lambda.{csv,json,png} (the same statistics per lambda, per seed).
"""
import argparse, math, os, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch
from tqdm.auto import tqdm

from wdim_nb.benchmarks import loss_options
from wdim_nb.core import save_figure, save_table
from wdim_nb.instability import bias_variance, ema, optimal_critic_bound, run_staircase

FAMILIES = ["MINE", "NWJ", "InfoNCE", "TUBA", "SMILE", "JS"]   # Fig. 7's panel order
LEVELS = [2.0, 4.0, 6.0, 8.0, 10.0]


def _run(loss: str, lam: float, seed: int, steps: int, path: Path) -> Path:
    "One staircase run, written atomically to `path` (step, true MI, estimate)."
    torch.set_num_threads(1)
    kind, opts = loss_options(loss, lam)
    df = run_staircase(kind, seed=seed, steps_per_level=steps, levels=LEVELS, **opts)
    tmp = path.with_suffix(".tmp")
    df[["step", "true_mi", "estimate"]].to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)
    return path


def _optimal(loss: str, mi: float, batches: int) -> float:
    "What the loss reports at batch 64 with the closed-form optimal critic (+ the best constant) at true MI `mi`."
    kind, opts = loss_options(loss, 0.0)
    return optimal_critic_bound(kind, mi, batches=batches, **opts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000, help="steps per MI level (ReMINE, Poole et al.: 4000)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[1.0],
                    help="regularisation weights; the first is Fig. 7's (ReMINE Sec. 5.3: 1.0 for every loss)")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel, one thread each")
    ap.add_argument("--cache", type=Path, default=Path("runs/remine_staircase"))
    ap.add_argument("--every", type=int, default=20, help="plot every n-th step")
    ap.add_argument("--oracle-batches", type=int, default=200, help="batches for the optimal-critic reference")
    ap.add_argument("--folder", type=Path, default=None, help="where the tables and figures go (default figures/)")
    a = ap.parse_args(argv)
    if a.steps < 2 or a.seeds < 1 or a.jobs < 1: ap.error("need --steps >= 2, --seeds >= 1, --jobs >= 1")
    if any(not (math.isfinite(l) and l > 0) for l in a.lambdas): ap.error("every --lambdas value must be > 0")
    a.cache.mkdir(parents=True, exist_ok=True)
    grid = [(loss, lam, seed) for lam in [0.0, *a.lambdas] for seed in range(a.seeds) for loss in FAMILIES]   # Fig. 7 first
    path = lambda loss, lam, seed: a.cache / f"{loss}_lambda{lam:g}_seed{seed}_steps{a.steps}.csv"
    todo = [g for g in grid if not path(*g).exists()]
    print(f"{len(grid)} runs, {len(grid) - len(todo)} already in {a.cache}; {len(todo)} to run on {a.jobs} workers", flush=True)
    t0 = time.time()
    with ProcessPoolExecutor(a.jobs) as pool:
        futs = {pool.submit(_run, *g, a.steps, path(*g)): g for g in todo}
        for f in tqdm(as_completed(futs), total=len(futs), desc="staircase runs"):
            f.result()
    runs = pd.concat([pd.read_csv(path(*g)).assign(family=g[0], remine_lambda=g[1], seed=g[2]) for g in grid],
                     ignore_index=True)
    runs["loss"] = [("Re" if l > 0 else "") + f for f, l in zip(runs.family, runs.remine_lambda)]
    runs["regularised"] = runs.remine_lambda > 0
    base = dict(dim=20, levels=LEVELS, steps_per_level=a.steps, batch_size=64, lr=5e-4, hidden=256, layers=2,
                embed_dim=32, seeds=a.seeds, threads=1, statistics="each level's second half",
                losses={f: loss_options(f, 0.0) for f in FAMILIES}, regularised={f: loss_options(f, 1.0)[1] for f in FAMILIES})
    print(f"ran {len(todo)} runs in {time.time() - t0:.0f} s", flush=True)

    # Fig. 7: lambda = 1 (the first given) beside the original losses
    lam1 = a.lambdas[0]
    fig7 = runs[runs.remine_lambda.isin([0.0, lam1])]
    bv = bias_variance(fig7, by=("family", "regularised"))
    # what each bound reports at batch 64 with the closed-form optimal critic: the bias that training cannot remove
    best = {(f, m): _optimal(f, m, a.oracle_batches) for f in FAMILIES for m in LEVELS}
    bv["optimal_critic"] = [best[(f, m)] for f, m in zip(bv.family, bv.true_mi)]
    params = dict(base, remine_lambda=lam1, optimal_critic=f"closed-form log density ratio + the best constant, "
                                                           f"mean over {a.oracle_batches} batches of 64")
    save_table(bv, "instability_staircase", params, folder=a.folder)
    fig, axs = plt.subplots(2, 3, figsize=(16, 7.5), sharex=True)
    for ax, fam in zip(axs.flat, FAMILIES):
        for reg, color in ((False, "tab:blue"), (True, "tab:orange")):
            g = fig7[(fig7.family == fam) & (fig7.regularised == reg) & (fig7.seed == 0)]
            ax.plot(g.step[::a.every], g.estimate.clip(-5, 15)[::a.every], color=color, alpha=0.25, lw=0.5)
            ax.plot(g.step, ema(g.estimate.clip(-5, 15), 0.99), color=color, lw=1.5, label=("Re" if reg else "") + fam)
        g = fig7[(fig7.family == fam) & (fig7.seed == 0) & ~fig7.regularised]
        ax.plot(g.step, g.true_mi, "k", lw=1.2, label="true MI")
        ax.plot(g.step, g.true_mi.map(lambda m: best[(fam, m)]), "k--", lw=1, label="optimal critic, batch 64")
        if fam == "InfoNCE": ax.axhline(math.log(64), color="k", ls=":", lw=1, label="log B = log 64")
        ax.set(title=fam, ylim=(-1, 12)); ax.legend(fontsize=7, loc="upper left")
    for ax in axs[1]: ax.set_xlabel("step")
    fig.suptitle(f"ReMINE Fig. 7: 20-D Gaussian staircase, seed 0 of {a.seeds} (light: raw, clipped to [-5, 15]; "
                 f"dark: EMA 0.99); {a.steps} steps per level, lambda = {lam1:g}")
    fig.tight_layout()
    save_figure(fig, "instability_staircase", dict(params, ema_decay=0.99, shown_seed=0), folder=a.folder); plt.close(fig)

    if len(a.lambdas) > 1:   # the regularisation weight: per seed, so that the figure can show the spread
        per_seed = bias_variance(runs, by=("family", "remine_lambda", "seed"))
        save_table(per_seed, "instability_staircase_lambda", dict(base, lambdas=[0.0, *a.lambdas]), folder=a.folder)
        fig, axs = plt.subplots(2, 3, figsize=(15, 7), sharex=True)
        for ax, fam in zip(axs.flat, FAMILIES):
            g = per_seed[per_seed.family == fam].groupby(["remine_lambda", "true_mi"]).bias.agg(["mean", "min", "max"]).reset_index()
            for lam, h in g.groupby("remine_lambda"):
                ax.errorbar(h.true_mi + 0.08 * [0.0, *a.lambdas].index(lam), h["mean"], yerr=[h["mean"] - h["min"], h["max"] - h["mean"]],
                            marker="o", ms=3, capsize=2, lw=1, label="original" if lam == 0 else f"lambda {lam:g}")
            ax.axhline(0, color="k", lw=0.8); ax.set(title=fam, ylim=(-9, 3)); ax.legend(fontsize=7)
        for ax in axs[1]: ax.set_xlabel("true MI (nats)")
        for ax in axs[:, 0]: ax.set_ylabel("bias (nats), mean and range over seeds")
        fig.suptitle(f"Staircase bias per regularisation weight ({a.steps} steps per level, {a.seeds} seeds; "
                     "statistics over each level's second half)")
        fig.tight_layout()
        save_figure(fig, "instability_staircase_lambda", dict(base, lambdas=[0.0, *a.lambdas]), folder=a.folder); plt.close(fig)


if __name__ == "__main__":
    main()
