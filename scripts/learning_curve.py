"""Learning curves: y-tap MLP probe accuracy against training images seen, per method, on Fashion-MNIST.

    python scripts/learning_curve.py --steps 1400 --evals 4 --methods dim_l dim_lg wdim mige [--set key=value ...]

A method may carry its own overrides after `+`, e.g. `wdim+mi_bound=jsd+local_critic=concat+augment=None` (WDIM's
published bound and critic, without augmentation), and is labelled by that whole string.

Each method trains with the `quick` preset (plus `--set` overrides, which apply to every method) for `--steps`
optimisation steps, pausing `--evals` times to probe its frozen encoder; raw pixels and the untrained network are
probed the same way. The x-axis is images seen, which a busy machine does not change; the training wall-clock time
of each point is recorded beside it. Writes figures/train_learning_curve.{csv,png} with the parameters and hardware.
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
from wdim_nb.learner import check, flat_config, forward_backward
from wdim_nb.methods import get_method


def probe(features_of, train, test, n_train):
    "y-tap MLP probe (DIM Sec. 4.1) on `n_train` labelled training images and the whole test set."
    tr = train.subset(torch.arange(n_train))
    return mlp_probe(features_of(tr), tr.labels, features_of(test), test.labels, epochs=10)


def literal(v: str):
    try: return ast.literal_eval(v)
    except (ValueError, SyntaxError): return v

def parse(spec: str) -> tuple[str, dict]:
    "`method+key=value+...` -> (method, overrides)."
    method, *kvs = spec.split("+")
    return method, {k: literal(v) for k, _, v in (kv.partition("=") for kv in kvs)}

def curve(spec, steps, evals, n_train, overrides, train, test):
    "Train `spec` for `steps` steps; probe the y tap `evals` times on the way."
    method, own = parse(spec)
    cfg = check(flat_config(method=method, dataset="fashion_mnist", device="cpu", name="curve", **(overrides | own)))
    seed_everything(cfg.seed)
    m = get_method(cfg.method); models = m.build(cfg, train.shape); opts = m.optimizers(models, cfg)
    y_of = lambda ds: extract_features(models["encoder"], ds, taps=("y",))["y"]
    rows, clock, step, epoch, marks = [], 0.0, 0, 0, [round(steps * (k + 1) / evals) for k in range(evals)]
    models.train()
    while marks:
        for x, y in D.batches(train, cfg.batch_size, seed=cfg.seed, epoch=epoch, augment=cfg.augment):
            t = time.perf_counter()
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="+", default=["dim_l", "dim_lg", "wdim", "mige"])
    ap.add_argument("--steps", type=int, default=1400)
    ap.add_argument("--evals", type=int, default=4)
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--set", nargs="*", default=[], help="Config fields or method options, key=value, for every method")
    ap.add_argument("--name", default="train_learning_curve")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    overrides = {k: literal(v) for k, _, v in (kv.partition("=") for kv in a.set)}
    train, test = D.get_dataset("fashion_mnist", "train"), D.get_dataset("fashion_mnist", "test")
    rows, cfgs, first = [], {}, None
    for method in a.methods:
        r, cfg = curve(method, a.steps, a.evals, a.n_train, overrides, train, test)
        rows += r; cfgs[method] = {k: v for k, v in vars(cfg).items() if k not in ("out_dir", "data_dir", "name")}
        first = first or cfg
    seed_everything(first.seed)   # the first run's network at initialisation (its seed) and raw pixels, same probe
    enc = get_method(first.method).build(first, train.shape)["encoder"]
    base = dict(raw_pixels=probe(lambda ds: D.to_float(ds.images).flatten(1), train, test, a.n_train),
                random_network=probe(lambda ds: extract_features(enc, ds, taps=("y",))["y"], train, test, a.n_train))
    rows += [dict(method=k, seconds=0.0, step=0, images=0, y_mlp=v) for k, v in base.items()]
    params = dict(steps=a.steps, evals=a.evals, n_train=a.n_train, n_test=len(test), threads=torch.get_num_threads(),
                  overrides=overrides, configs=cfgs, probe="y-tap MLP (200 units), 10 epochs")
    df = pd.DataFrame(rows)
    save_table(df, a.name, params)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, g in df[df.step > 0].groupby("method", sort=False): ax.plot(g.images / len(train), g.y_mlp, "o-", label=method)
    for (k, v), ls in zip(base.items(), ("--", ":")): ax.axhline(v, color="k", ls=ls, lw=1, label=f"{k.replace('_', ' ')} ({v:.3f})")
    ax.set(xlabel="epochs of Fashion-MNIST seen", ylabel="test accuracy, y-tap MLP probe",
           title=f"Fashion-MNIST, quick preset; probe on {a.n_train:,} labels, all test images")
    ax.legend(fontsize=8); fig.tight_layout()
    save_figure(fig, a.name, params)
    print(df.to_string())


if __name__ == "__main__": main()
