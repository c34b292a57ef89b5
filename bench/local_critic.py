"""DIM's local embedding phi (Table 8: 1x1 convs, batch norm, shortcut, layer norm): as 1x1 convolutions against
`EncodeDotCritic`'s linear layers over the B*L locations, forward + backward, in float32 and bfloat16, in one run.

Both forms hold the same weights and compute the same function (tests/test_models.py checks it); the timings are
medians of round-robin rounds, so a change in machine load hits both alike.

    python bench/local_critic.py          # writes figures/bench_local_critic.csv (+ .json)
"""
import argparse, statistics, time

import pandas as pd
import torch
import torch.nn.functional as F

from wdim_nb.core import fast_bf16, get_device, save_table
from wdim_nb.models import EncodeDotCritic

SHAPES = {"quick (Fashion-MNIST, make run)": (128, 128, 7, 512),   # batch, channels, map side, H
          "paper (DIM, 32x32)": (64, 128, 8, 2048)}


def forms(B, C, M, H, device):
    "(conv form, linear form) as closures doing forward + backward of phi on one random batch."
    torch.manual_seed(0)
    ed = EncodeDotCritic(C, 64, hidden=H).to(device)
    W0, W3, Ws = (ed.l_block[0].weight, ed.l_block[3].weight, ed.l_short.weight)
    c = torch.randn(B, C, M, M, device=device, requires_grad=True)
    def conv():   # the Table 8 network as the authors' code writes it: 1x1 convs on the map
        h = F.conv2d(c, W0[:, :, None, None])
        h = F.batch_norm(h, None, None, ed.l_block[1].weight, ed.l_block[1].bias, training=True)
        h = F.conv2d(F.relu(h), W3[:, :, None, None], ed.l_block[3].bias) + F.conv2d(c, Ws[:, :, None, None])
        return ed.l_norm(h.flatten(2).transpose(1, 2))
    def linear(): return ed.embed(c, torch.zeros(B, 64, device=device))[0]
    with torch.no_grad():
        if not torch.allclose(conv(), linear(), atol=1e-4): raise AssertionError("the two forms of phi differ")
    def run(f, amp):
        def step():
            with torch.autocast(device.type, torch.bfloat16, enabled=amp): out = f()
            out.float().square().mean().backward()
            for p in (c, *ed.parameters()): p.grad = None
        return step
    return run(conv, False), run(linear, False), run(conv, True), run(linear, True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--folder", default=None, help="output folder (default: figures/)")
    a = p.parse_args(argv)
    device = get_device(a.device)
    bf16 = fast_bf16(device)
    runs = {}
    for name, (B, C, M, H) in SHAPES.items():
        c32, l32, c16, l16 = forms(B, C, M, H, device)
        runs |= {(name, "fp32", "1x1 conv"): c32, (name, "fp32", "linear"): l32}
        if bf16: runs |= {(name, "bf16", "1x1 conv"): c16, (name, "bf16", "linear"): l16}
    for f in runs.values(): f(); f()
    times = {k: [] for k in runs}
    for _ in range(a.reps):
        for k, f in runs.items():
            t = time.perf_counter()
            for _ in range(a.steps): f()
            times[k].append((time.perf_counter() - t) / a.steps)
    df = pd.DataFrame([dict(shape=n, batch=SHAPES[n][0], hidden=SHAPES[n][3], precision=q, form=form,
                            ms=round(1e3 * statistics.median(ts), 2)) for (n, q, form), ts in times.items()])
    conv = df[df.form == "1x1 conv"].set_index(["shape", "precision"]).ms
    df["speedup_over_conv"] = [round(conv[(r.shape, r.precision)] / r.ms, 2) for r in df.itertuples()]
    print(df.to_string(index=False))
    save_table(df, "bench_local_critic", dict(vars(a), device=str(device), threads=torch.get_num_threads(), shapes=SHAPES),
               folder=a.folder)
    return df


if __name__ == "__main__":
    main()
