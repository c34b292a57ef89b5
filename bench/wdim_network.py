"""WDIM's published networks and loss: the project's training step against a plain eager fp32 PyTorch step, one run.

The baseline is written the way the public DIM reimplementation that WDIM trains with (DeepInfomaxPytorch, WDIM
Sec. 5.1) writes it: an encoder of four 4x4 valid convolutions and a linear layer, a global critic of two 3x3 convs
and three linear layers on [map; y], a local critic of three 1x1 convs on the map concatenated with y broadcast over
every location, each critic scoring the pair (y_i, map_i) against (y_i, map_(i+1)) under the JSD bound (softplus form),
plus WDIM's prior term: the debiased Sinkhorn divergence between sigmoid(y) and U[0,1]^64 samples at eps = 0.1, here
POT's `ot.sinkhorn2` on torch tensors (log domain, differentiated through its iterations). Everything in float32, eager,
nn.Module calls, one Adam over all parameters, as that code runs.

The project's step is `bench/train_step.py`'s (the learner's own forward, backward and optimiser step) for `wdim` with
the same settings: arch=wdim, mi_bound=jsd, local_critic=concat, global_negatives=1, no augmentation; in float32 and,
where the CPU (or GPU) has fast bf16, under bf16 autocast. Before timing, the script checks that both steps train
networks of the same parameter shapes and, loaded with the same weights, give the same MI terms. Steps are timed round-robin (a change in load hits every
row alike); the table reports the median and each row's speed-up over the eager baseline.

    python bench/wdim_network.py                       # CPU, 32x32x3, batch 64: figures/bench_wdim_network.csv (+ .json)
    python bench/wdim_network.py --batch 4 --steps 1 --reps 1 --no-save    # a quick check (the test suite runs this)
"""
import argparse, statistics, sys, time
from pathlib import Path

import ot
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import setup, sync                           # noqa: E402
from wdim_nb.core import fast_bf16, get_device, save_table   # noqa: E402
from wdim_nb.learner import check, flat_config                # noqa: E402
from wdim_nb.methods import get_method                        # noqa: E402


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0, self.c1 = nn.Conv2d(3, 64, 4), nn.Conv2d(64, 128, 4)
        self.c2, self.c3 = nn.Conv2d(128, 256, 4), nn.Conv2d(256, 512, 4)
        self.l1 = nn.Linear(512 * 20 * 20, 64)
        self.b1, self.b2, self.b3 = nn.BatchNorm2d(128), nn.BatchNorm2d(256), nn.BatchNorm2d(512)

    def forward(self, x):
        h = F.relu(self.c0(x))
        features = F.relu(self.b1(self.c1(h)))
        h = F.relu(self.b2(self.c2(features)))
        h = F.relu(self.b3(self.c3(h)))
        return self.l1(h.view(x.shape[0], -1)), features


class GlobalDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0, self.c1 = nn.Conv2d(128, 64, 3), nn.Conv2d(64, 32, 3)
        self.l0, self.l1, self.l2 = nn.Linear(32 * 22 * 22 + 64, 512), nn.Linear(512, 512), nn.Linear(512, 1)

    def forward(self, y, M):
        h = self.c1(F.relu(self.c0(M))).view(y.shape[0], -1)
        h = torch.cat((y, h), dim=1)
        return self.l2(F.relu(self.l1(F.relu(self.l0(h)))))


class LocalDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0, self.c1, self.c2 = nn.Conv2d(192, 512, 1), nn.Conv2d(512, 512, 1), nn.Conv2d(512, 1, 1)

    def forward(self, x): return self.c2(F.relu(self.c1(F.relu(self.c0(x)))))


class EagerWDIM(nn.Module):
    "DeepInfomaxPytorch's loss with WDIM's Sinkhorn prior term (alpha = 0.5, beta = 1, gamma = 0.1: WDIM's defaults)."
    def __init__(self, alpha=0.5, beta=1.0, gamma=0.1, eps=0.1):   # eps: WDIMOptions.sinkhorn_eps
        super().__init__()
        self.encoder, self.global_d, self.local_d = Encoder(), GlobalDiscriminator(), LocalDiscriminator()
        self.alpha, self.beta, self.gamma, self.eps = alpha, beta, gamma, eps

    def sinkhorn(self, x, y):
        M = ((x[:, None] - y[None]) ** 2).sum(-1)
        w = torch.full((len(x),), 1 / len(x), device=x.device)
        return ot.sinkhorn2(w, w, M, self.eps, method="sinkhorn_log", stopThr=1e-3, numItermax=1000)

    def forward(self, x):   # -> the three weighted terms of the loss
        y, M = self.encoder(x)
        M_prime = torch.cat((M[1:], M[0].unsqueeze(0)), dim=0)
        y_exp = y.unsqueeze(-1).unsqueeze(-1).expand(-1, -1, M.shape[2], M.shape[3])
        Ej = -F.softplus(-self.local_d(torch.cat((M, y_exp), dim=1))).mean()
        Em = F.softplus(self.local_d(torch.cat((M_prime, y_exp), dim=1))).mean()
        local = (Em - Ej) * self.beta
        Ej = -F.softplus(-self.global_d(y, M)).mean()
        Em = F.softplus(self.global_d(y, M_prime)).mean()
        glob = (Em - Ej) * self.alpha
        code, prior = torch.sigmoid(y), torch.rand_like(y)
        div = self.sinkhorn(code, prior) - (self.sinkhorn(code, code) + self.sinkhorn(prior, prior)) / 2
        return dict(local=local, glob=glob, prior=self.gamma * div)


def copy_weights(eager, ours):
    "Load the project's `wdim` networks (`ours`, a ModuleDict from `get_method('wdim').build`) into `eager`, in place."
    e, o = eager.encoder, ours["encoder"]
    pairs = [(e.c0, o.local[0]), (e.c1, o.local[2]), (e.b1, o.local[3]), (e.c2, o.rest[0]), (e.b2, o.rest[1]),
             (e.c3, o.rest[3]), (e.b3, o.rest[4]), (e.l1, o.head), (eager.global_d.c0, ours["global_critic"].convs[0]),
             (eager.global_d.c1, ours["global_critic"].convs[2]), (eager.global_d.l1, ours["global_critic"].l1),
             (eager.global_d.l2, ours["global_critic"].l2), (eager.local_d.c0, ours["local_critic"].c0),
             (eager.local_d.c1, ours["local_critic"].c1), (eager.local_d.c2, ours["local_critic"].c2)]
    with torch.no_grad():
        for dst, src in pairs:
            dst.weight.copy_(src.weight)
            if dst.bias is not None: dst.bias.copy_(src.bias) if src.bias is not None else dst.bias.zero_()
        W, c_dim = ours["global_critic"].l0.weight, ours["global_critic"].c_dim   # ours reads [map; y], the baseline [y; map]
        eager.global_d.l0.weight.copy_(torch.cat([W[:, c_dim:], W[:, :c_dim]], 1)); eager.global_d.l0.bias.copy_(ours["global_critic"].l0.bias)


def eager_step(batch, device):
    torch.manual_seed(0)
    model = EagerWDIM().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 3, 32, 32, device=device) * 2 - 1
    def step():
        opt.zero_grad()
        loss = sum(model(x).values())
        loss.backward()
        opt.step()
        loss.item()
    return step, model


OVERRIDES = dict(preset="paper", augment=None)   # WDIM Sec. 5.1: arch wdim, JSD, concat critic, one negative, gamma 0.1


def shapes(module, skip=()):
    "Sorted parameter shapes (but those in `skip`): the same list for two implementations of the same networks."
    return sorted(tuple(p.shape) for p in module.parameters() if all(p is not q for q in skip))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=2, help="steps per timing")
    p.add_argument("--reps", type=int, default=3, help="round-robin rounds (the median is reported)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-save", action="store_true")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    device = get_device(a.device)
    runs = {"eager DeepInfomaxPytorch-style, fp32": eager_step(a.batch, device)}
    for q in ["fp32", "bf16"] if fast_bf16(device) else ["fp32"]:
        step, _ = setup("wdim", a.batch, (3, 32, 32), device, q == "bf16", False, False, OVERRIDES)
        runs[f"wdim_nb learner, {q}"] = step, None
    cfg = check(flat_config(method="wdim", dataset="synthetic", batch_size=a.batch, **OVERRIDES), data=False)
    torch.manual_seed(0); method = get_method("wdim")
    ours, eager_model = method.build(cfg, (3, 32, 32)).to(device), runs["eager DeepInfomaxPytorch-style, fp32"][1]
    e = eager_model.encoder   # its convs before batch norm carry a bias that the norm cancels; the project's have none
    if shapes(ours) != shapes(eager_model, skip=(e.c1.bias, e.c2.bias, e.c3.bias)):   # the same networks
        raise RuntimeError(f"the two steps train different networks: {shapes(ours)} vs {shapes(eager_model)}")
    copy_weights(eager_model, ours)   # and the same loss: equal MI terms from equal weights
    x = torch.rand(min(a.batch, 8), 3, 32, 32, device=device) * 2 - 1
    with torch.no_grad(): te, to = eager_model(x), method.loss(ours, x, cfg)[0]
    mi = [float(te["local"] + te["glob"]), float(to["local"] + to["global"])]
    if abs(mi[0] - mi[1]) > 1e-4 * (1 + abs(mi[1])):
        raise RuntimeError(f"the baseline's MI terms {mi[0]:.6f} differ from the project's {mi[1]:.6f} on the same weights")
    for step, _ in runs.values(): step(); step()                 # warm-up
    times = {k: [] for k in runs}
    for _ in range(a.reps):
        for k, (step, _) in runs.items():
            sync(device); t = time.perf_counter()
            for _ in range(a.steps): step()
            sync(device); times[k].append((time.perf_counter() - t) / a.steps)
    base = statistics.median(times["eager DeepInfomaxPytorch-style, fp32"])
    rows = [dict(step=k, batch_size=a.batch, ms_per_step=round(1e3 * statistics.median(ts), 1),
                 images_per_s=round(a.batch / statistics.median(ts), 1), spread=round((max(ts) - min(ts)) / statistics.median(ts), 3),
                 speedup_over_eager=round(base / statistics.median(ts), 2)) for k, ts in times.items()]
    df = pd.DataFrame(rows)
    hw = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    n_params = sum(p.numel() for p in ours.parameters())
    print(f"{device} ({hw}); 32x32x3, batch {a.batch}, {n_params:,} parameters (the baseline's convs add 896 biases that "
          f"batch norm cancels); median of {a.reps} rounds x {a.steps} steps")
    print(df.to_string(index=False))
    if not a.no_save:
        save_table(df, "bench_wdim_network", dict(vars(a), device=str(device), hardware=hw, settings=OVERRIDES,
                                                  n_params=n_params, image_shape=(3, 32, 32), mi_terms_checked=mi))
    return df


if __name__ == "__main__":
    main()
