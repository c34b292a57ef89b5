"Learner: config validation, exact resume, non-finite detection, DDP with gloo."
import csv, os, socket

import pytest
import torch
import torch.multiprocessing as mp

from wdim_nb import learner as L
from wdim_nb.learner import Config, NonFiniteError, check, fit
from wdim_nb.methods import METHODS, register
from wdim_nb.data import get_dataset


SHAPE = (1, 28, 28)


def tiny(**kw):
    base = dict(method="dim_l", dataset="synthetic", batch_size=8, epochs=3, lr=1e-3, ckpt_every=100)
    return Config(**(base | kw))


@pytest.fixture(scope="module")
def ds():
    return get_dataset("synthetic", n=24, shape=SHAPE)   # 3 batches of 8 per epoch


def rows(path):
    with open(path) as f:
        return [{k: v for k, v in r.items() if k != "time"} for r in csv.DictReader(f)]


# --- a method that crashes once (an interruption) and one that injects a NaN: registered like any other
class Crash(METHODS["dim_l"]):
    name, crash_at, calls = "test_crash", None, 0
    def loss(self, models, x, cfg):
        type(self).calls += 1
        if type(self).calls == type(self).crash_at: raise KeyboardInterrupt("simulated interruption")
        return super().loss(models, x, cfg)


class Boom(METHODS["dim_l"]):
    name, nan_at, calls = "test_nan", 3, 0
    def loss(self, models, x, cfg):
        terms, diag = super().loss(models, x, cfg)
        type(self).calls += 1
        bad = float("nan") if type(self).calls == type(self).nan_at else 0.0
        terms["boom"] = terms["local"] * 0 + bad
        return terms, diag


register(Crash); register(Boom)


def test_resume_is_exact(tmp_path, ds):
    fit(tiny(method="test_crash", max_steps=5, out_dir=str(tmp_path), name="a"), ds, progress=False)
    Crash.calls, Crash.crash_at = 0, 4              # 2 steps, checkpoint, then crash in the 2nd call of the next run
    fit(tiny(method="test_crash", max_steps=2, out_dir=str(tmp_path), name="b"), ds, progress=False)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny(method="test_crash", max_steps=5, ckpt_every=50, out_dir=str(tmp_path), name="b"), ds, progress=False)
    assert len(rows(tmp_path / "b" / "metrics.csv")) == 3          # step 3 was written after the checkpoint at 2
    Crash.crash_at = None
    r = fit(tiny(method="test_crash", max_steps=5, out_dir=str(tmp_path), name="b"), ds, progress=False)
    a, b = rows(tmp_path / "a" / "metrics.csv"), rows(tmp_path / "b" / "metrics.csv")
    assert [x["step"] for x in b] == ["1", "2", "3", "4", "5"]
    assert a == b                                                   # every logged number identical, crossing an epoch
    assert r["steps"] == 5 and (tmp_path / "b" / "checkpoint.pt").exists()


def test_nan_is_caught_and_named(tmp_path, ds):
    Boom.calls = 0
    with pytest.raises(NonFiniteError) as e:
        fit(tiny(method="test_nan", out_dir=str(tmp_path), name="s"), ds, progress=False)
    assert e.value.term == "loss term 'boom'" and e.value.step == 3 and "boom" in str(e.value)
    assert len(rows(tmp_path / "s" / "metrics.csv")) == 2          # stopped on the step it appeared
    Boom.calls = 0
    r = fit(tiny(method="test_nan", max_steps=4, nonfinite="skip", out_dir=str(tmp_path), name="k"), ds, progress=False)
    got = rows(tmp_path / "k" / "metrics.csv")
    assert [x["skipped"] for x in got] == ["0", "0", "1", "0"]
    assert all(torch.isfinite(p).all() for p in r["encoder"].parameters())


def test_bad_parameters_fail_before_work(tmp_path, monkeypatch):
    for kw, msg in [(dict(method="wdimm"), "wdim_lgpc"), (dict(dataset="imagenet"), "fashion_mnist"),
                    (dict(epochs="2"), "expected int"), (dict(lr=0.0), "lr="), (dict(batch_size=0), "batch_size"),
                    (dict(prior_critic="adversarial"), "direct"), (dict(mi_bound="kl"), "infonce"),
                    (dict(method="wdim_lc", gamma=0.5), "no prior term"), (dict(nonfinite="ignore"), "skip")]:
        with pytest.raises(ValueError, match=msg):
            fit(tiny(out_dir=str(tmp_path), name="x", **kw))
    assert not (tmp_path / "x").exists()                            # nothing was written: it failed first
    monkeypatch.setattr(L, "_offline", lambda *a, **k: True)
    with pytest.raises(ValueError, match="offline"):
        check(Config(dataset="cifar10", data_dir=str(tmp_path / "nodata")))


def _ddp_worker(rank, world, port, out):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    d = get_dataset("synthetic", n=32, shape=SHAPE)
    r = fit(tiny(method="dim_lg", batch_size=16, max_steps=3, out_dir=out, name="ddp"), d, progress=False)
    flat = torch.cat([p.detach().flatten() for p in r["models"].parameters()])
    torch.save(dict(params=flat, world=r["world"], steps=r["steps"]), f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_ddp_two_gloo_processes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert r0["world"] == r1["world"] == 2 and r0["steps"] == r1["steps"] == 3
    assert torch.equal(r0["params"], r1["params"]) and torch.isfinite(r0["params"]).all()   # DDP kept them in sync
    assert len(rows(tmp_path / "ddp" / "metrics.csv")) == 3                                  # rank 0 wrote the log
