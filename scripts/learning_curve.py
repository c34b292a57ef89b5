"""Learning curves: y-tap MLP probe accuracy against training images seen, per method, on Fashion-MNIST.

    python scripts/learning_curve.py --evals 5 --methods dim_l dim_lg wdim mige [--steps N] [--set key=value ...]

A method may carry its own overrides after `+`, e.g. `wdim+mi_bound=jsd+local_critic=concat+augment=none` (WDIM's
published bound and critic, without augmentation), and is labelled by that whole string. `key=None` is refused: in a
configuration `None` means "the preset's choice", which the method has already (no augmentation is `augment=none`).

Each method trains with its `quick` preset (plus `--set` overrides, which apply to every method) as `make run` trains
it: the same batches, augmentation and learning-rate schedule, for the preset's whole run (or `--steps` optimisation
steps, the schedule then spanning those), pausing `--evals` times to probe its frozen encoder; raw pixels and the
untrained network are probed the same way. The figure shows the probe against epochs seen, which a busy machine does
not change, and against training wall-clock seconds. Writes figures/train_learning_curve.{csv,png} with the
parameters and hardware.
"""
import argparse, ast, time

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch

from wdim_nb import data as D
from wdim_nb.core import autocast, save_figure, save_table, seed_everything
from wdim_nb.evaluate import extract_features, mlp_probe
from wdim_nb.learner import _lr_factor, _set_lr, check, flat_config, forward_backward
from wdim_nb.methods import get_method


def probe(features_of, train, test, n_train):
    "y-tap MLP probe (DIM Sec. 4.1) on `n_train` labelled training images and the whole test set."
    tr = train.subset(torch.arange(n_train))
    return mlp_probe(features_of(tr), tr.labels, features_of(test), test.labels, epochs=10)


def literal(v: str):
    try: return ast.literal_eval(v)
    except (ValueError, SyntaxError): return v

def overrides_of(kvs) -> dict:
    "`key=value` strings -> {key: value}; `key=None` fails, since it would silently leave the preset's choice."
    out = {k: literal(v) for k, _, v in (kv.partition("=") for kv in kvs)}
    if none := [k for k, v in out.items() if v is None]:
        raise SystemExit(f"{', '.join(f'{k}=None' for k in none)}: None means the preset's choice, which the method "
                         "has already; drop it, or name a value (no augmentation: augment=none)")
    return out

def parse(spec: str) -> tuple[str, dict]:
    "`method+key=value+...` -> (method, overrides)."
    method, *kvs = spec.split("+")
    return method, overrides_of(kvs)

def curve(spec, steps, evals, n_train, overrides, train, test):
    "Train `spec` for `steps` steps (None: its quick run) on the learner's schedule; probe the y tap `evals` times."
    method, own = parse(spec)
    cfg = check(flat_config(method=method, dataset="fashion_mnist", device="cpu", name="curve", **(overrides | own)))
    steps = steps or D.num_batches(train, cfg.batch_size) * cfg.epochs
    seed_everything(cfg.seed)
    m = get_method(cfg.method); models = m.build(cfg, D.view_shape(train.shape, cfg.augment)); opts = m.optimizers(models, cfg)
    y_of = lambda ds: extract_features(models["encoder"], ds, taps=("y",))["y"]
    rows, clock, step, epoch, marks = [], 0.0, 0, 0, [round(steps * (k + 1) / evals) for k in range(evals)]
    models.train()
    while marks:
        for x, y in D.batches(train, cfg.batch_size, seed=cfg.seed, epoch=epoch, augment=cfg.augment):
            t = time.perf_counter()
            if cfg.lr_schedule != "constant": _set_lr(opts, _lr_factor(cfg, step, steps))
            forward_backward(m, models, opts, x, cfg, autocast("cpu", cfg.amp), y)
            for o in opts.values(): o.step()
            clock += time.perf_counter() - t; step += 1
            if step >= marks[0]:
                marks.pop(0)
                rows.append(dict(method=spec, seconds=round(clock, 1), step=step, images=step * cfg.batch_size,
                                 y_mlp=probe(y_of, train, test, n_train)))
                print(rows[-1], flush=True); models.train()
                if not marks: break
        epoch += 1
    return rows, cfg


def _curve_job(method, steps, evals, n_train, overrides, threads):
    "One method's curve in its own process (`--jobs`): its own datasets and thread count."
    if threads: torch.set_num_threads(threads)
    train, test = D.get_dataset("fashion_mnist", "train"), D.get_dataset("fashion_mnist", "test")
    return curve(method, steps, evals, n_train, overrides, train, test)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="+", default=["dim_l", "dim_lg", "wdim", "mige"])
    ap.add_argument("--steps", type=int, default=None, help="optimisation steps per method (default: its quick run)")
    ap.add_argument("--evals", type=int, default=5)
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=None, help="torch threads per method (with --jobs > 1: default 1)")
    ap.add_argument("--jobs", type=int, default=1, help="methods trained at once, each in its own process")
    ap.add_argument("--set", nargs="*", default=[], help="Config fields or method options, key=value, for every method")
    ap.add_argument("--name", default="train_learning_curve")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    overrides = overrides_of(a.set)
    for spec in a.methods: parse(spec)   # a bad override fails here, before any training
    train, test = D.get_dataset("fashion_mnist", "train"), D.get_dataset("fashion_mnist", "test")
    rows, cfgs, first = [], {}, None
    if a.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(a.jobs) as pool:
            done = list(pool.map(_curve_job, a.methods, *zip(*[(a.steps, a.evals, a.n_train, overrides, a.threads or 1)] * len(a.methods))))
    else: done = [curve(m, a.steps, a.evals, a.n_train, overrides, train, test) for m in a.methods]
    for method, (r, cfg) in zip(a.methods, done):
        rows += r; cfgs[method] = {k: v for k, v in vars(cfg).items() if k not in ("out_dir", "data_dir", "name")}
        first = first or cfg
    seed_everything(first.seed)   # the first run's network at initialisation (its seed) and raw pixels, same probe
    enc = get_method(first.method).build(first, D.view_shape(train.shape, first.augment))["encoder"]
    base = dict(raw_pixels=probe(lambda ds: D.to_float(ds.images).flatten(1), train, test, a.n_train),
                random_network=probe(lambda ds: extract_features(enc, ds, taps=("y",))["y"], train, test, a.n_train))
    rows += [dict(method=k, seconds=0.0, step=0, images=0, y_mlp=v) for k, v in base.items()]
    params = dict(steps=a.steps or "each method's quick run", evals=a.evals, n_train=a.n_train, n_test=len(test),
                  threads=a.threads or (1 if a.jobs > 1 else torch.get_num_threads()), jobs=a.jobs,
                  overrides=overrides, configs=cfgs, probe="y-tap MLP (200 units), 10 epochs")
    df = pd.DataFrame(rows)
    save_table(df, a.name, params)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, x, label in zip(axes, ("epochs", "seconds"), ("epochs of Fashion-MNIST seen",
                                                          f"training seconds ({params['threads']} thread per run)")):
        for method, g in df[df.step > 0].groupby("method", sort=False):
            ax.plot(g.images / len(train) if x == "epochs" else g.seconds, g.y_mlp, "o-", label=method)
        for (k, v), ls in zip(base.items(), ("--", ":")): ax.axhline(v, color="k", ls=ls, lw=1, label=f"{k.replace('_', ' ')} ({v:.3f})")
        ax.set(xlabel=label)
    axes[0].set(ylabel="test accuracy, y-tap MLP probe")
    fig.suptitle(f"Fashion-MNIST, each method's quick preset; probe on {a.n_train:,} labels, all test images")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8, frameon=False)
    save_figure(fig, a.name, params)
    print(df.to_string())


if __name__ == "__main__": main()
