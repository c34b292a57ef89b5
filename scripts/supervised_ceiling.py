"""What the quick preset's network reaches when the labels train it: the same encoder trained end to end with
cross-entropy, then probed exactly as `make run` probes a trained encoder (MLP probes per tap, the full test set).

    python scripts/supervised_ceiling.py [--labels 10000 all] [--epochs 30 5]

A supervised network trained on the probe's own 10,000 labelled images shows what those labels give the last conv
layer when they shape it; one trained on all 60,000, what six times as many labels give it, under the same
10,000-label probe: a reference for any self-supervised training of this architecture. Both use the quick preset's
architecture, augmentation, batch size, Adam learning rate and a cosine schedule. Writes
figures/train_supervised_ceiling.{csv,json} with every setting.
"""
import argparse, math, time

import pandas as pd
import torch
from torch import nn

from wdim_nb.core import autocast, save_table, seed_everything
from wdim_nb.data import batches, get_dataset, num_batches
from wdim_nb.evaluate import _subsample, evaluate
from wdim_nb.learner import Config, resolved
from wdim_nb.methods import adam, get_method


def train(cfg, labelled, epochs) -> tuple[nn.Module, float, list[float]]:
    "The run's encoder plus a linear classifier on its code y, trained with cross-entropy; (encoder, seconds, epoch losses)."
    seed_everything(cfg.seed)
    enc = get_method(cfg.method).build(cfg, labelled.shape)["encoder"]
    net = nn.ModuleDict(dict(encoder=enc, classify=nn.Linear(cfg.y_dim, len(labelled.classes))))
    net = net.to(memory_format=torch.channels_last)
    opt, steps = adam(net.parameters(), cfg.lr), epochs * num_batches(labelled, cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    t0, losses = time.perf_counter(), []
    for epoch in range(epochs):
        net.train(); total = 0.0
        for x, y in batches(labelled, cfg.batch_size, seed=cfg.seed, epoch=epoch, augment=cfg.augment):
            with autocast("cpu"):
                logits = net["classify"](enc(x.contiguous(memory_format=torch.channels_last), taps=("y",))["y"])
            loss = nn.functional.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
            total += loss.item() / num_batches(labelled, cfg.batch_size)
        losses.append(total)
    return enc.eval(), time.perf_counter() - t0, losses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", nargs="+", default=["10000", "all"], help="labelled training images per network")
    ap.add_argument("--epochs", nargs="+", type=int, default=[30, 5], help="epochs per network (one per --labels)")
    ap.add_argument("--method", default="wdim", help="whose quick preset gives the architecture and training settings")
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="train_supervised_ceiling")
    a = ap.parse_args(argv)
    if len(a.epochs) != len(a.labels): raise SystemExit(f"give one --epochs per --labels ({len(a.labels)}), got {len(a.epochs)}")
    cfg = resolved(Config(method=a.method, dataset=a.dataset, batch_size=a.batch_size, seed=a.seed))
    train_set, test = get_dataset(cfg.dataset, "train", cfg.data_dir), get_dataset(cfg.dataset, "test", cfg.data_dir)
    probe_n = cfg.eval_train
    rows = []
    for n, epochs in zip(a.labels, a.epochs):
        n = None if n == "all" else int(n)
        labelled = _subsample(train_set, n, cfg.seed)   # n = the probe's size: exactly the probe's labelled images
        if len(labelled) < cfg.batch_size: raise SystemExit(f"{len(labelled)} labelled images make no batch of {cfg.batch_size}")
        enc, seconds, losses = train(cfg, labelled, epochs)
        ev = evaluate(enc, train_set, test, n_train=probe_n, n_test=None, probes=("mlp",), ndm_steps=0, mine_steps=0,
                      seed=cfg.seed, num_threads=torch.get_num_threads(), progress=False)
        rows += [dict(trained_on=len(labelled), epochs=epochs, train_seconds=round(seconds, 1), last_loss=round(losses[-1], 4),
                      probe_n_train=ev["config"]["n_train"], n_test=ev["config"]["n_test"], tap=t, mlp=v["mlp"])
                 for t, v in ev["probe"].items()]
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    df = pd.DataFrame(rows)
    save_table(df, a.name, dict(method=cfg.method, dataset=cfg.dataset, arch=cfg.arch, batch_size=cfg.batch_size, lr=cfg.lr,
                                lr_schedule="cosine", augment=cfg.augment, labels=a.labels, epochs=a.epochs, seed=a.seed,
                                threads=torch.get_num_threads(), probe="mlp (evaluate's defaults)",
                                loss="cross-entropy of a linear classifier on y"))
    return df


if __name__ == "__main__":
    main()
