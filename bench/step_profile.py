"""Where the training step's time goes: torch's profiler over a few steps, the operators' own time grouped by kind.

The step is `bench/train_step.py`'s (the learner's own forward, backward, optimiser steps and log sync), by default
make run's: `wdim` at its quick preset, batch 128, bf16 where the CPU has AMX or AVX512-BF16. Each operator's self
time (not counting the operators it calls) is summed per kind: matrix products, convolutions, casts and copies,
Adam, gradient norms, normalisation layers, activations, the rest. Beside the table, the largest copies by shape,
which show what is cast (a weight matrix of an [out, in] shape is a parameter cast to bf16 or its gradient cast back).

    python bench/step_profile.py       # writes figures/bench_step_profile.csv (+ .json); the copies are in the .json
"""
import argparse, sys
from pathlib import Path

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import setup                                 # noqa: E402
from wdim_nb.core import fast_bf16, get_device, save_table   # noqa: E402

KINDS = {   # operator -> kind; anything else is "other"
    "matrix products (mm, addmm, bmm)": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "convolutions, forward and backward": ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::_convolution",
                                           "aten::convolution", "aten::_mkldnn_convolution"),
    "casts and copies (bf16 <-> fp32, layout)": ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous"),
    "Adam (fused)": ("aten::_fused_adam_",),
    "gradient norms (logged, non-finite check)": ("aten::linalg_vector_norm", "aten::_foreach_norm"),
    "batch and layer norm": ("aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::native_layer_norm",
                             "aten::native_layer_norm_backward"),
    "activations (ReLU)": ("aten::threshold_backward", "aten::clamp_min", "aten::relu", "aten::clamp_min_", "aten::relu_"),
}
KIND = {op: k for k, ops in KINDS.items() for op in ops}


def step_cli(doc, argv, *, steps: int, steps_help: str, more=()):
    "The arguments the step benches share (which step, how many, where to write), parsed: (args, device, bf16, shape)."
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--method", default="wdim")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--steps", type=int, default=steps, help=steps_help)
    for name, kw in more: p.add_argument(name, **kw)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--fp32", action="store_true", help="float32 even where bf16 is fast")
    p.add_argument("--folder", default=None, help="figures folder (default: figures/)")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    device = get_device("auto")
    return a, device, not a.fp32 and fast_bf16(device), (1 if a.image_size == 28 else 3, a.image_size, a.image_size)


def main(argv=None):
    a, device, bf16, shape = step_cli(__doc__, argv, steps=10, steps_help="profiled steps (after 5 warm-up steps)")
    step, _ = setup(a.method, a.batch_size, shape, device, bf16, False, True)   # channels_last, as the learner
    for _ in range(5): step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(a.steps): step()
    ops = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    ms = lambda e: e.self_cpu_time_total / 1e3 / a.steps     # microseconds over all steps -> ms per step
    total = sum(ms(e) for e in ops)
    kinds = pd.Series({k: 0.0 for k in [*KINDS, "other"]})
    for e in ops: kinds[KIND.get(e.key, "other")] += ms(e)
    df = pd.DataFrame(dict(kind=kinds.index, ms_per_step=kinds.round(2).values, share=(kinds / total).round(3).values))
    copies = sorted((e for e in prof.key_averages(group_by_input_shape=True) if e.key == "aten::copy_"), key=ms, reverse=True)
    top = [dict(shape=str(e.input_shapes[0]), calls_per_step=e.count / a.steps, ms_per_step=round(ms(e), 2)) for e in copies[:6]]
    print(f"{a.method}, batch {a.batch_size}, {'x'.join(map(str, shape))}, {'bf16' if bf16 else 'fp32'}, {torch.get_num_threads()} "
          f"threads: {total:.1f} ms of operator time per step")
    print(df.to_string(index=False))
    print("largest copies:", *(f"  {c}" for c in top), sep="\n")
    params = dict(vars(a), device=str(device), precision="bf16" if bf16 else "fp32", threads=torch.get_num_threads(),
                  ms_per_step_total=round(total, 2), largest_copies=top)
    save_table(df, "bench_step_profile", params, folder=a.folder)
    return df


if __name__ == "__main__":
    main()
