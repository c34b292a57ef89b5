"""Where the training step's time goes, network by network: each part of a DIM-family step timed alone, beside the step.

The step is `bench/train_step.py`'s (by default make run's: `wdim` at its quick preset, batch 128, bf16 where fast).
Its parts, each forward + backward on the shapes and precision the step gives them:
the encoder on the batch (only the taps the critics read), the encoder on the second view (with `cross_view`: the code
y), the local critic with its bound, the global critic with its bound, the prior term (Sinkhorn for WDIM), the
gradient norms and the optimiser. Parts and the whole step are timed round-robin and the medians reported, with each
part's share of the step and the images/s the step would reach if it were that part alone: the encoder passes bound
the step's speed however cheap the rest becomes.

    python bench/step_parts.py       # writes figures/bench_step_parts.csv (+ .json)
"""
import statistics, sys, time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_profile import step_cli                                  # noqa: E402
from train_step import setup                                       # noqa: E402
from wdim_nb.core import autocast, save_table                      # noqa: E402
from wdim_nb.learner import _grad_norm, check, flat_config          # noqa: E402
from wdim_nb.methods import DIM, _mi_terms, get_method, second_view   # noqa: E402
from wdim_nb.models import squash                                   # noqa: E402


def parts(method, batch, shape, device, bf16, channels_last=True):
    "{part name: closure running that part's forward + backward (or update)} for a DIM-family `method`."
    cfg = check(flat_config(method=method, dataset="synthetic", batch_size=batch, device=str(device), amp=bf16), data=False)
    m = get_method(method)
    if not isinstance(m, DIM): raise ValueError(f"step_parts times DIM-family methods (dim_*, wdim_*), not {method!r}")
    torch.manual_seed(0)
    models = m.build(cfg, shape).to(device)
    if channels_last: models = models.to(memory_format=torch.channels_last)
    opts, amp, o = m.optimizers(models, cfg), autocast(device, bf16), cfg.options
    x = torch.rand(batch, *shape, device=device) * 2 - 1
    if channels_last: x = x.contiguous(memory_format=torch.channels_last)
    enc, taps = models["encoder"], m._taps(models, cfg)
    x2 = second_view(x, cfg.augment) if o["cross_view"] else x
    with torch.no_grad(), amp: maps, y = enc(x, taps=taps), enc(x2)["y"]   # what the critics receive, in its precision
    leaf = lambda t: t.detach().clone().requires_grad_()

    def backward(loss): models.zero_grad(set_to_none=True); loss.backward()
    def encode(inp, taps=None):
        with amp: out = enc(inp, taps=taps)
        backward(sum(v.float().sum() for v in out.values()))
    def critic(kind):
        net, neg = models[f"{kind}_critic"], m._negatives(kind, o, batch)   # the method's own choice of negatives
        def run():
            with amp: val, _ = _mi_terms(kind, net(leaf(maps[net.tap]), leaf(y), **neg), cfg)
            backward(val)
        return run
    def prior():                                                        # the method's own Sinkhorn term
        yp = squash(leaf(y)) if o["prior"] == "uniform" else leaf(y)   # as the loss hands it the codes
        terms = {}; m._sinkhorn(models, yp, cfg, terms, {}); backward(terms["prior"])
    out = {"encoder, the batch (the critics' taps)": lambda: encode(x, taps)}
    if o["cross_view"]: out["encoder, the second view (the code y)"] = lambda: encode(x2)
    for kind in ("local", "global"):
        if f"{kind}_critic" in models: out[f"{kind} critic and its bound"] = critic(kind)
    if m.prior == "sinkhorn": out["prior term (Sinkhorn)"] = prior
    grads = [(q, torch.randn_like(q)) for q in models.parameters()]   # every parameter receives a gradient, as in the step
    def give(): [setattr(q, "grad", g) for q, g in grads]
    out["gradient norms"] = lambda: (give(), [_grad_norm(v) for v in models.values()])
    out["optimiser"] = lambda: (give(), [opt.step() for opt in opts.values()])
    return out


def main(argv=None):
    a, device, bf16, shape = step_cli(__doc__, argv, steps=3, steps_help="calls per timing", more=[
        ("--reps", dict(type=int, default=5, help="round-robin rounds (the median is reported)"))])
    runs = parts(a.method, a.batch_size, shape, device, bf16)
    runs["whole step"] = setup(a.method, a.batch_size, shape, device, bf16, False, True)[0]
    for f in runs.values(): f(); f()                                    # warm-up
    times = {k: [] for k in runs}
    for _ in range(a.reps):                                             # round-robin: load changes hit every part alike
        for k, f in runs.items():
            t = time.perf_counter()
            for _ in range(a.steps): f()
            times[k].append((time.perf_counter() - t) / a.steps)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    step = ms["whole step"]
    df = pd.DataFrame([dict(part=k, ms=round(v, 2), share_of_step=round(v / step, 3),
                            images_per_s_if_alone=round(a.batch_size / v * 1e3)) for k, v in ms.items()])
    enc = sum(v for k, v in ms.items() if k.startswith("encoder"))
    params = dict(vars(a), device=str(device), precision="bf16" if bf16 else "fp32", threads=torch.get_num_threads(),
                  sum_of_parts_ms=round(sum(v for k, v in ms.items() if k != "whole step"), 2),
                  encoder_passes_ms=round(enc, 2), images_per_s_encoder_passes_alone=round(a.batch_size / enc * 1e3))
    print(f"{a.method}, batch {a.batch_size}, {'x'.join(map(str, shape))}, {params['precision']}, {params['threads']} threads")
    print(df.to_string(index=False))
    print(f"parts together: {params['sum_of_parts_ms']} ms against the whole step's {step:.1f} ms; the encoder passes alone: "
          f"{enc:.1f} ms, {params['images_per_s_encoder_passes_alone']} images/s")
    save_table(df, "bench_step_parts", params, folder=a.folder)
    return df


if __name__ == "__main__":
    main()
