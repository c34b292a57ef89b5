"""Time per optimisation step of dim_l, dim_lg, wdim_lpc and mige (batch 64, 32x32x3), as ratios to dim_l.

The step is the learner's own (`forward_backward`, then every optimiser's `step`, then the one host transfer of the
logged values). Methods are timed round-robin (a few steps each, repeated) so a change in machine load hits all of
them alike; the table reports the median step time of each. Also: the FLOP/s a dim_l step achieves (FLOPs counted by
torch's FlopCounterMode) as a fraction of a large fp32 matmul's FLOP/s measured in the same run, and on CUDA the
images/s of dim_l. Writes figures/bench_train_step.csv (+ .json provenance).

    .venv/bin/python bench/train_step.py [--reps 5] [--steps 3] [--batch 64] [--device auto]
"""
import argparse, statistics, time

import torch
from torch.utils.flop_counter import FlopCounterMode

from wdim_nb.core import get_device, save_table
from wdim_nb.learner import Config, check, forward_backward
from wdim_nb.methods import get_method

# (label, method, extra Config): dim_l with the concat critic is the like-for-like baseline of wdim_lpc (same local
# critic, only the prior term differs); plain dim_l uses DIM's default encode-and-dot critic.
ROWS = [("dim_l", "dim_l", {}), ("dim_lg", "dim_lg", {}), ("wdim_lpc", "wdim_lpc", {}),
        ("dim_l (concat critic)", "dim_l", {"local_critic": "concat"}), ("mige", "mige", {})]


def setup(method, extra, batch, device):
    cfg = check(Config(method=method, dataset="synthetic", batch_size=batch, device=str(device), **extra), data=False)
    m = get_method(method); torch.manual_seed(0)
    models = m.build(cfg, (3, 32, 32)).to(device); opts = m.optimizers(models, cfg)
    x = torch.rand(batch, 3, 32, 32, device=device) * 2 - 1
    def step():
        terms, diag, loss, gnorm = forward_backward(m, models, opts, x, cfg)
        for o in opts.values(): o.step()
        torch.stack([t.detach().float().reshape(()) for t in [*terms.values(), *gnorm.values()]]).tolist()  # the log sync
    return step, m, models, cfg, x


def count_flops(m, models, cfg, x):
    with FlopCounterMode(display=False) as fc:
        sum(m.loss(models, x, cfg)[0].values()).backward()
    return fc.get_total_flops()


def matmul_flops(device, n=2048, reps=10):
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b; sync(device)
    t = time.perf_counter()
    for _ in range(reps): a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5); p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=64); p.add_argument("--device", default="auto")
    a = p.parse_args()
    device = get_device(a.device)
    setups = {label: setup(meth, extra, a.batch, device) for label, meth, extra in ROWS}
    for s in setups.values(): s[0](); s[0]()                      # warm-up (allocator, oneDNN/cuDNN plans)
    times = {label: [] for label in setups}
    mm = []
    for _ in range(a.reps):                                       # round-robin: load changes hit every method alike
        mm.append(matmul_flops(device))
        for label, (step, *_) in setups.items():
            sync(device); t = time.perf_counter()
            for _ in range(a.steps): step()
            sync(device); times[label].append((time.perf_counter() - t) / a.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["dim_l"]
    step, m, models, cfg, x = setups["dim_l"]
    flops = count_flops(m, models, cfg, x)
    peak = statistics.median(mm)
    rows = [dict(method=k, seconds_per_step=round(v, 4), ratio_to_dim_l=round(v / base, 3),
                 spread=round((max(times[k]) - min(times[k])) / v, 3)) for k, v in med.items()]
    import pandas as pd
    df = pd.DataFrame(rows)
    wd, dc = med["wdim_lpc"], med["dim_l (concat critic)"]
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU, ' + str(torch.get_num_threads()) + ' threads'}); "
          f"batch {a.batch}, 32x32x3, median of {a.reps} rounds x {a.steps} steps")
    print(df.to_string(index=False))
    print(f"wdim_lpc / dim_l (same concat critic) = {wd / dc:.3f}  (target <= 1.05: the Sinkhorn prior term's cost)")
    print(f"dim_l step: {flops / 1e9:.1f} GFLOP in {base:.3f} s = {flops / base / 1e9:.1f} GFLOP/s; "
          f"fp32 2048^3 matmul: {peak / 1e9:.1f} GFLOP/s; fraction = {flops / base / peak:.2f} (target >= 0.5 on CPU)")
    if device.type == "cuda": print(f"dim_l: {a.batch / base:.0f} images/s (target >= 20k on one H100)")
    else: print("no GPU in this run: images/s on a GPU not measured")
    extra = dict(dim_l_gflop=flops / 1e9, dim_l_gflops=flops / base / 1e9, matmul_gflops=peak / 1e9,
                 flop_fraction=flops / base / peak, wdim_over_dim_concat=wd / dc)
    save_table(df.assign(**{k: round(v, 4) for k, v in extra.items()}), "bench_train_step",
               dict(vars(a), device=str(device), rows=[r[0] for r in ROWS]))


if __name__ == "__main__":
    main()
