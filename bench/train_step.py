"""Images per second of the learner's training step, per method, in float32 and bfloat16, in one run.

The step is the learner's own (`forward_backward` under the run's autocast, every optimiser's `step`, then the one
host transfer of the logged values), with each method at its `quick` preset (the settings `make run` trains with).
Configurations are timed round-robin (a few steps each, repeated) so a change in machine load hits all of them alike;
the table reports the median. Beside each: the FLOPs of one step (torch's FlopCounterMode) and the FLOP/s achieved as
a fraction of a large bf16 (and fp32) matmul's FLOP/s measured in the same run, the bf16 / fp32 speed-up, and the
step time as a ratio to dim_l's in the same precision.

    python bench/train_step.py                                    # CPU: 28x28x1 (Fashion-MNIST), batch 64
    python bench/train_step.py --device cuda --image-size 32 --batch-sizes 64 256 --compile --channels-last
    python bench/train_step.py --methods wdim --image-size 32 --set preset=paper    # WDIM's networks and loss

Writes figures/bench_train_step.csv (+ .json provenance), or `--out` (a CSV path) with a .json beside it.
"""
import argparse, itertools, json, statistics, time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from wdim_nb.core import autocast, fast_bf16, get_device, provenance, save_table
from wdim_nb.learner import check, flat_config, forward_backward
from wdim_nb.methods import get_method, unwrap


def setup(method, batch, shape, device, bf16, compile, channels_last, overrides=None):
    "A closure running one training step of `method` on a fixed random batch, and what FLOP counting needs."
    cfg = check(flat_config(method=method, dataset="synthetic", batch_size=batch, device=str(device), amp=bf16,
                       compile=compile, channels_last=channels_last, **(overrides or {})), data=False)
    m = get_method(method); torch.manual_seed(0)
    models = m.build(cfg, shape).to(device)
    if channels_last: models = models.to(memory_format=torch.channels_last)   # as the learner does
    opts = m.optimizers(models, cfg)
    if compile: models = torch.nn.ModuleDict({k: torch.compile(v) for k, v in models.items()})
    x = torch.rand(batch, *shape, device=device) * 2 - 1
    if channels_last: x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    amp = autocast(device, bf16)
    def step():
        terms, diag, loss, gnorm = forward_backward(m, models, opts, x, cfg, amp, y)
        for o in opts.values(): o.step()
        torch.stack([t.detach().float().reshape(()) for t in [*terms.values(), *gnorm.values()]]).tolist()  # the log sync
    def flops():
        plain = torch.nn.ModuleDict({k: unwrap(v) for k, v in models.items()})
        with FlopCounterMode(display=False) as fc, amp:
            args = (plain, x, cfg) + ((y,) if m.uses_labels else ())
            sum(m.loss(*args)[0].values()).backward()
        return fc.get_total_flops()
    return step, flops


def matmul_flops(device, dtype, n=2048, reps=10):
    "FLOP/s of an n x n matmul in `dtype`: the practical peak the step is compared with."
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b; sync(device)
    t = time.perf_counter()
    for _ in range(reps): a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def _literal(v: str):
    import ast
    try: return ast.literal_eval(v)
    except (ValueError, SyntaxError): return v


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize(device)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--methods", nargs="+", default=["dim_l", "dim_lg", "wdim", "mige"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[64])
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--channels", type=int, default=None, help="image channels (default: 1 at 28x28, else 3)")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true", help="torch.compile every network")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="channels_last memory format of images and conv weights (the learner's default)")
    p.add_argument("--steps", type=int, default=3, help="steps per timing")
    p.add_argument("--reps", type=int, default=5, help="round-robin rounds (the median is reported)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="Config fields or method options for every method, e.g. arch=wdim mi_bound=jsd local_critic=concat")
    p.add_argument("--out", default=None, help="CSV path (default: figures/bench_train_step.csv)")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    device = get_device(a.device)
    shape = (a.channels or (1 if a.image_size == 28 else 3), a.image_size, a.image_size)
    precisions = [q for q in a.precisions if q == "fp32" or fast_bf16(device)]
    if precisions != a.precisions: print(f"bf16 is not fast on {device} (no AMX / AVX512-BF16 or CUDA bf16): fp32 only")
    grid = list(itertools.product(a.methods, a.batch_sizes, precisions))
    overrides = {k: _literal(v) for k, _, v in (kv.partition("=") for kv in a.set)}
    runs = {g: setup(g[0], g[1], shape, device, g[2] == "bf16", a.compile, a.channels_last, overrides) for g in grid}
    for step, _ in runs.values(): step(); step()                 # warm-up (allocator, oneDNN/cuDNN plans, compile)
    times, peak = {g: [] for g in grid}, {q: [] for q in precisions}
    for _ in range(a.reps):                                        # round-robin: load changes hit every row alike
        for q in precisions: peak[q].append(matmul_flops(device, torch.float32 if q == "fp32" else torch.bfloat16))
        for g, (step, _) in runs.items():
            sync(device); t = time.perf_counter()
            for _ in range(a.steps): step()
            sync(device); times[g].append((time.perf_counter() - t) / a.steps)
    peak = {q: statistics.median(v) for q, v in peak.items()}
    top = max(peak.values())                                       # the run's best matmul FLOP/s (bf16 where fast)
    rows = []
    for (meth, batch, q), ts in times.items():
        sec, fl = statistics.median(ts), runs[(meth, batch, q)][1]()
        rows.append(dict(method=meth, batch_size=batch, image_size=a.image_size, precision=q, compile=a.compile,
                         channels_last=a.channels_last, ms_per_step=round(1e3 * sec, 2), images_per_s=round(batch / sec),
                         gflop_per_step=round(fl / 1e9, 2), frac_of_peak=round(fl / sec / top, 3),
                         spread=round((max(ts) - min(ts)) / sec, 3)))
    df = pd.DataFrame(rows)
    if "fp32" in a.precisions:
        fp = df[df.precision == "fp32"].set_index(["method", "batch_size"]).images_per_s
        df["speedup_over_fp32"] = [round(r.images_per_s / fp[(r.method, r.batch_size)], 2) for r in df.itertuples()]
    if "dim_l" in a.methods:
        ref = df[df.method == "dim_l"].set_index(["batch_size", "precision"]).ms_per_step
        df["step_over_dim_l"] = [round(r.ms_per_step / ref[(r.batch_size, r.precision)], 3) for r in df.itertuples()]
    hw = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{device} ({hw}); {'x'.join(map(str, shape))}, median of {a.reps} rounds x {a.steps} steps; matmul peak "
          + ", ".join(f"{q} {v / 1e9:.0f} GFLOP/s" for q, v in peak.items()))
    print(df.to_string(index=False))
    params = dict(vars(a), device=str(device), shape=shape, hardware=hw,
                  matmul_peak_gflops={q: round(v / 1e9, 1) for q, v in peak.items()})
    if a.out:
        out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True); df.to_csv(out, index=False)
        out.with_suffix(".json").write_text(json.dumps(provenance(params), indent=1, default=str))
    else: save_table(df, "bench_train_step", params)


if __name__ == "__main__":
    main()
