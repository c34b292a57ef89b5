"Learner: config validation, exact resume, non-finite detection, DDP with gloo."
import csv, json, math, os, re, socket, time
from dataclasses import replace

import pytest
import torch
import torch.multiprocessing as mp

from wdim_nb import learner as L
from wdim_nb.learner import Config, NonFiniteError, check, fit, flat_config
from wdim_nb.methods import METHODS, DIMOptions, register
from wdim_nb.data import get_dataset


SHAPE = (1, 28, 28)


def tiny(**kw):
    base = dict(method="dim_l", dataset="synthetic", batch_size=8, epochs=3, lr=1e-3, ckpt_every=100)
    return flat_config(**(base | kw))


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


class Slow(METHODS["dim_l"]):
    name = "test_slow"
    def loss(self, models, x, cfg):
        time.sleep(0.05)
        return super().loss(models, x, cfg)


register(Crash); register(Boom); register(Slow)


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


def test_cosine_schedule_sets_every_optimiser_and_resumes_exactly(tmp_path, ds, monkeypatch):
    seen, step = [], L._step
    def spy(method, models, opts, *a, **k):    # the lr of every parameter group as the step starts
        seen.append([g["lr"] for o in opts.values() for g in o.param_groups])
        return step(method, models, opts, *a, **k)
    monkeypatch.setattr(L, "_step", spy)
    fit(tiny(method="test_crash", max_steps=6, lr_schedule="cosine", out_dir=str(tmp_path), name="a"), ds, progress=False)
    want = [1e-3 * (1 + math.cos(math.pi * s / 6)) / 2 for s in range(6)]   # 1e-3 at step 0, down towards 0
    assert len(seen) == 6 and len(seen[0]) == 2                              # dim_l: the main and the prior optimiser
    assert all(lr == pytest.approx(w, rel=1e-12) for lrs, w in zip(seen, want) for lr in lrs)
    Crash.calls, Crash.crash_at = 0, 5               # interrupted after the checkpoint at step 4, then resumed
    with pytest.raises(KeyboardInterrupt):
        fit(tiny(method="test_crash", max_steps=6, ckpt_every=4, lr_schedule="cosine", out_dir=str(tmp_path), name="b"), ds, progress=False)
    Crash.crash_at = None
    fit(tiny(method="test_crash", max_steps=6, ckpt_every=4, lr_schedule="cosine", out_dir=str(tmp_path), name="b"), ds, progress=False)
    assert rows(tmp_path / "a" / "metrics.csv") == rows(tmp_path / "b" / "metrics.csv")
    fit(tiny(method="test_crash", max_steps=6, out_dir=str(tmp_path), name="c"), ds, progress=False)   # constant
    assert rows(tmp_path / "c" / "metrics.csv")[1:] != rows(tmp_path / "a" / "metrics.csv")[1:]          # the schedule acts


def test_cosine_run_continues_only_to_its_own_length(tmp_path, ds):
    "A cosine rate decays over the run's steps: continuing a run to another length would be neither run; refused."
    run = lambda n, fresh=False: fit(tiny(max_steps=n, lr_schedule="cosine", out_dir=str(tmp_path), name="a"), ds,
                                     progress=False, fresh=fresh)
    run(4)
    for n in (5, 8):                                                # longer than the 4 it decayed over (shorter: "past this run")
        with pytest.raises(L.RunMismatchError, match="cosine learning rate decaying over 4 steps; this run has"):
            run(n)
    ck = tmp_path / "a" / "checkpoint.pt"; c = torch.load(ck, weights_only=True)
    del c["pos"]["total"]; torch.save(c, ck)                        # a checkpoint written before the length was kept
    with pytest.raises(L.RunMismatchError, match="over 4 steps"): run(6)
    assert run(4)["steps"] == 4                                     # its own length: nothing to do, and no refusal
    assert run(6, fresh=True)["steps"] == 6                         # or start over
    fit(tiny(max_steps=4, out_dir=str(tmp_path), name="b"), ds, progress=False)
    assert fit(tiny(max_steps=6, out_dir=str(tmp_path), name="b"), ds, progress=False)["steps"] == 6   # constant: continues


def test_runs_saved_before_lr_schedule_existed_count_as_constant():
    c = check(tiny(), data=False)
    old = {k: v for k, v in L.asdict(c).items() if k != "lr_schedule"}   # a config.json written before the field
    assert c.lr_schedule == "constant" and L.differences(old, c) == []
    assert L.differences(old, replace(c, lr_schedule="cosine")) == ["lr_schedule: 'constant' -> 'cosine'"]


def test_runs_saved_before_an_option_existed_count_as_its_default():
    c = check(tiny(method="wdim"), data=False)
    old = L.asdict(c) | {"options": {k: v for k, v in c.options.items() if k != "cross_view"}}   # written before the option
    assert L.differences(old, replace(c, options=c.options | {"cross_view": False})) == []
    assert L.differences(old, replace(c, options=c.options | {"cross_view": True})) == ["cross_view: False -> True"]
    assert L.differences(old, replace(c, options=c.options | {"cross_view": False, "occlude": True})) == ["occlude: False -> True"]
    gone = L.asdict(c) | {"options": c.options | {"retired": 1}}
    assert L.differences(gone, c) == ["retired: 1 -> (no such option)"]


def test_training_time_counts_on_across_a_resume(tmp_path, ds):
    fit(tiny(method="test_slow", max_steps=2, log_every=1, out_dir=str(tmp_path), name="t"), ds, progress=False)
    assert L.read_checkpoint(tmp_path / "t" / "checkpoint.pt")["pos"]["seconds"] >= 0.1
    r = fit(tiny(method="test_slow", max_steps=4, log_every=1, out_dir=str(tmp_path), name="t"), ds, progress=False)
    with open(tmp_path / "t" / "metrics.csv") as f: t = [float(x["time"]) for x in csv.DictReader(f)]
    assert len(t) == 4 and all(b - a >= 0.04 for a, b in zip(t, t[1:]))   # step 3 continues step 2's clock
    assert r["seconds"] >= t[-1] >= 0.2


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
                    (dict(method="wdim_lpc", prior_critic="adversarial"), "direct"), (dict(mi_bound="kl"), "infonce"),
                    (dict(method="wdim_lc", gamma=0.5), "no prior term"), (dict(nonfinite="ignore"), "skip"),
                    (dict(lr_schedule="step"), "constant, cosine")]:
        with pytest.raises(ValueError, match=msg):
            fit(tiny(out_dir=str(tmp_path), name="x", **kw))
    assert not (tmp_path / "x").exists()                            # nothing was written: it failed first
    monkeypatch.setattr(L, "_offline", lambda *a, **k: True)
    with pytest.raises(ValueError, match="offline"):
        check(Config(dataset="cifar10", data_dir=str(tmp_path / "nodata")))


def _ddp_worker(rank, world, port, out, kw):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    d = get_dataset("synthetic", n=32, shape=SHAPE)
    r = fit(tiny(batch_size=16, max_steps=3, out_dir=out, name="ddp", **kw), d, progress=False)
    flat = torch.cat([p.detach().flatten() for p in r["models"].parameters()])
    torch.save(dict(params=flat, world=r["world"], steps=r["steps"]), f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("kw", [dict(method="dim_lg"),                                  # one view
                                dict(method="wdim", global_negatives=7, epochs=None)])  # make run's: two encoder passes a step
def test_ddp_two_gloo_processes(tmp_path, kw):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path), kw), nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert r0["world"] == r1["world"] == 2 and r0["steps"] == r1["steps"] == 3
    assert torch.equal(r0["params"], r1["params"]) and torch.isfinite(r0["params"]).all()   # DDP kept them in sync
    assert len(rows(tmp_path / "ddp" / "metrics.csv")) == 3                                  # rank 0 wrote the log


# --- run identity, ownership, starting afresh --------------------------------------------------------------------
def ckpt_step(run):
    return L.read_checkpoint(run / "checkpoint.pt")["pos"]["step"]


def test_resume_with_other_result_settings_is_refused(tmp_path, ds):
    fit(tiny(max_steps=2, out_dir=str(tmp_path), name="r"), ds, progress=False)
    before = (tmp_path / "r" / "config.json").read_text()
    with pytest.raises(L.RunMismatchError) as e:
        fit(tiny(max_steps=2, seed=7, lr=5e-4, out_dir=str(tmp_path), name="r"), ds, progress=False)
    msg = str(e.value)
    assert "seed: 0 -> 7" in msg and "lr: 0.001 -> 0.0005" in msg and "fresh=True" in msg and "name=" in msg
    with pytest.raises(L.RunMismatchError, match="method: 'dim_l' -> 'dim_lg'"):
        fit(tiny(method="dim_lg", max_steps=2, out_dir=str(tmp_path), name="r"), ds, progress=False)
    assert (tmp_path / "r" / "config.json").read_text() == before                 # nothing was rewritten
    # execution settings may differ, and a longer run continues the shorter one
    r = fit(tiny(max_steps=4, device="cpu", ckpt_every=1, log_every=1, nonfinite="skip", out_dir=str(tmp_path), name="r"),
            ds, progress=False)
    assert [m["step"] for m in r["metrics"]] == [3, 4] and ckpt_step(tmp_path / "r") == 4
    with pytest.raises(L.RunMismatchError, match="past this run's 3 steps"):    # would leave a step-4 checkpoint under max_steps=3
        fit(tiny(max_steps=3, out_dir=str(tmp_path), name="r"), ds, progress=False)
    r = fit(tiny(max_steps=2, seed=7, out_dir=str(tmp_path), name="r"), ds, progress=False, fresh=True)   # the explicit overwrite
    assert json.loads((tmp_path / "r" / "config.json").read_text())["seed"] == 7 and ckpt_step(tmp_path / "r") == 2


def test_fresh_start_keeps_the_previous_run_until_it_has_a_checkpoint(tmp_path, ds):
    run = tmp_path / "f"
    Crash.calls, Crash.crash_at = 0, None
    fit(tiny(method="test_crash", max_steps=6, out_dir=str(tmp_path), name="f"), ds, progress=False)
    old = rows(run / "metrics.csv")
    Crash.calls, Crash.crash_at = 0, 3                      # the new run is interrupted at step 3, before any checkpoint
    with pytest.raises(KeyboardInterrupt):
        fit(tiny(method="test_crash", max_steps=6, out_dir=str(tmp_path), name="f"), ds, progress=False, resume=False)
    assert not (run / "checkpoint.pt").exists() and len(rows(run / "metrics.csv")) == 2
    assert rows(run / L.PREVIOUS / "metrics.csv") == old and ckpt_step(run / L.PREVIOUS) == 6   # old run intact
    Crash.crash_at = None                                   # rerun normally: from step 0, not from the old checkpoint
    r = fit(tiny(method="test_crash", max_steps=6, out_dir=str(tmp_path), name="f"), ds, progress=False)
    assert r["steps"] == 6 and [m["step"] for m in r["metrics"]] == [1, 2, 3, 4, 5, 6]
    assert [x["step"] for x in rows(run / "metrics.csv")] == [str(i) for i in range(1, 7)] and ckpt_step(run) == 6
    assert not (run / L.PREVIOUS).exists()                  # replaced once the new run had a checkpoint


def test_run_folder_is_locked(tmp_path, ds):
    import subprocess, sys
    run = tmp_path / "l"; run.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / L.LOCK).write_text(json.dumps(dict(pid=live.pid, host=socket.gethostname())))
        with pytest.raises(L.RunLockedError, match=f"in use by process {live.pid}"):
            fit(tiny(max_steps=1, out_dir=str(tmp_path), name="l"), ds, progress=False)
        assert sorted(p.name for p in run.iterdir()) == [L.LOCK]                   # nothing of the second run
    finally: live.kill(); live.wait()
    r = fit(tiny(max_steps=1, out_dir=str(tmp_path), name="l"), ds, progress=False)    # its process is dead: taken over
    assert r["steps"] == 1 and not (run / L.LOCK).exists()


def test_run_names_are_one_plain_folder(tmp_path, ds):
    (tmp_path / "keep.txt").write_text("not the project's")
    for bad in ("", ".", "..", "../x", "a/b", "/abs"):
        with pytest.raises(ValueError, match="plain folder name"):
            fit(tiny(max_steps=1, out_dir=str(tmp_path / "o"), name=bad), ds, progress=False, fresh=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    run = tmp_path / "o" / "n"; run.mkdir(parents=True); (run / "notes.txt").write_text("mine")
    fit(tiny(max_steps=1, out_dir=str(tmp_path / "o"), name="n"), ds, progress=False)
    fit(tiny(max_steps=1, out_dir=str(tmp_path / "o"), name="n"), ds, progress=False, fresh=True)
    assert (run / "notes.txt").read_text() == "mine"                                # only the project's files move


# --- failures handled where they happen ---------------------------------------------------------------------------
class NaNWeights(METHODS["wdim_lpc"]):
    "A diverged WDIM encoder: from call `at` on its weights are NaN, so NaN codes reach the Sinkhorn prior."
    name, at, calls = "test_nan_weights", 2, 0
    def loss(self, models, x, cfg):
        type(self).calls += 1
        if type(self).calls == type(self).at:
            with torch.no_grad():
                for p in unwrap(models["encoder"]).parameters(): p.fill_(float("nan"))
        return super().loss(models, x, cfg)


class NaNBatches(METHODS["wdim_lpc"]):
    "Batches whose codes are NaN on the calls listed in `bad` (the weights stay finite)."
    name, bad, calls = "test_nan_batches", (), 0
    def loss(self, models, x, cfg):
        type(self).calls += 1
        return super().loss(models, x * float("nan") if type(self).calls in type(self).bad else x, cfg)


from wdim_nb.methods import unwrap
register(NaNWeights); register(NaNBatches)


def test_nonfinite_loss_inputs_are_named_and_skippable(tmp_path, ds):
    NaNWeights.calls = 0
    with pytest.raises(NonFiniteError) as e:
        fit(tiny(method="test_nan_weights", max_steps=4, out_dir=str(tmp_path), name="w"), ds, progress=False)
    assert e.value.step == 2 and e.value.term == "output of 'encoder'" and "step 2" in str(e.value)
    NaNBatches.calls, NaNBatches.bad = 0, (2,)
    r = fit(tiny(method="test_nan_batches", max_steps=4, nonfinite="skip", out_dir=str(tmp_path), name="b"), ds, progress=False)
    assert [x["skipped"] for x in rows(tmp_path / "b" / "metrics.csv")] == ["0", "1", "0", "0"] and r["skipped"] == 1
    assert all(torch.isfinite(p).all() for p in r["encoder"].parameters())


def test_skip_reports_warns_and_fails_when_nothing_was_learned(tmp_path, ds):
    NaNBatches.calls, NaNBatches.bad = 0, (2, 3, 4, 5)
    with pytest.warns(RuntimeWarning, match="4 of 6 steps skipped"):
        r = fit(tiny(method="test_nan_batches", max_steps=6, nonfinite="skip", out_dir=str(tmp_path), name="m"), ds, progress=False)
    assert r["skipped"] == 4
    NaNBatches.calls, NaNBatches.bad = 0, range(1, 100)
    with pytest.raises(NonFiniteError, match="nothing was learned"):
        fit(tiny(method="test_nan_batches", max_steps=3, nonfinite="skip", out_dir=str(tmp_path), name="all"), ds, progress=False)
    assert not (tmp_path / "all" / "checkpoint.pt").exists()


def test_checks_run_before_training_and_leave_no_folder(tmp_path, ds):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['remine_lamda'\]"):
        fit(tiny(bound_options={"remine_lamda": 0.1}, out_dir=str(tmp_path), name="c"), ds, progress=False)
    with pytest.raises(ValueError, match="batch_size=32 exceeds the 24 training images"):
        fit(tiny(batch_size=32, out_dir=str(tmp_path), name="c"), ds, progress=False)
    assert not (tmp_path / "c").exists()


def test_checkpoint_by_wall_clock(tmp_path, ds):
    Crash.calls, Crash.crash_at = 0, 3
    with pytest.raises(KeyboardInterrupt):
        fit(tiny(method="test_crash", max_steps=5, ckpt_every=100, ckpt_minutes=1e-9, out_dir=str(tmp_path), name="t"),
            ds, progress=False)
    assert ckpt_step(tmp_path / "t") == 2                    # saved by time after every step, not by ckpt_every
    Crash.crash_at = None


# --- files from elsewhere -----------------------------------------------------------------------------------------
def test_truncated_and_malicious_checkpoints_are_refused(tmp_path, ds):
    fit(tiny(max_steps=1, out_dir=str(tmp_path), name="k"), ds, progress=False)
    ck = tmp_path / "k" / "checkpoint.pt"
    good = ck.read_bytes()
    ck.write_bytes(good[: len(good) // 2])
    with pytest.raises(L.CheckpointError, match="truncated or corrupt") as e:
        fit(tiny(max_steps=2, out_dir=str(tmp_path), name="k"), ds, progress=False)
    assert str(ck) in str(e.value) and "fresh=True" in str(e.value)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self): return (os.system, (f"touch {marker}",))
    torch.save(dict(models={}, optimizers={}, method={}, rng={}, pos=dict(step=0), config={}, extra=Payload()), ck)
    with pytest.raises(L.CheckpointError, match="refused"):
        fit(tiny(max_steps=2, out_dir=str(tmp_path), name="k"), ds, progress=False)
    assert not marker.exists()                               # the payload never ran
    ck.write_bytes(good)
    assert L.read_checkpoint(ck)["pos"]["step"] == 1         # a real checkpoint loads with weights_only=True


def test_metrics_keep_columns_that_appear_later(tmp_path):
    log = L.MetricsLog(tmp_path / "m.csv")
    log.write(dict(step=1, total=1.0)); log.write(dict(step=2, total=2.0, extra=5.0)); log.write(dict(step=3, total=3.0))
    got = rows(tmp_path / "m.csv")
    assert list(got[0]) == ["step", "total", "extra"] and [r["extra"] for r in got] == ["", "5.0", ""]
    assert not (tmp_path / "m.csv.tmp").exists()


# --- a method with its own options and labels: declared in its class, validated by `check`, recorded in config.json
from dataclasses import dataclass


@dataclass
class _LabelledOptions(DIMOptions):   # a DIM variant: DIM's options plus its own
    width: int = 3
    note: str | None = None
    def __post_init__(self):
        if self.width < 1: raise ValueError(f"width={self.width} must be >= 1")
        super().__post_init__()


@register
class Labelled(METHODS["dim_l"]):
    name, Options, uses_labels, seen = "test_labelled", _LabelledOptions, True, []
    def loss(self, models, x, cfg, y=None):
        type(self).seen.append((y.shape, cfg.options["width"]))
        return super().loss(models, x, cfg)


def test_method_options_are_validated_recorded_and_labels_reach_the_loss(tmp_path, ds):
    cfg = check(tiny(method="test_labelled", options=dict(width=5), out_dir=str(tmp_path)), data=False)
    mine = lambda c: {k: c.options[k] for k in ("width", "note", "local_critic")}
    assert mine(cfg) == dict(width=5, note=None, local_critic="dot")     # defaults and the preset's choice filled in
    assert mine(check(tiny(method="test_labelled"), data=False)) == dict(width=3, note=None, local_critic="dot")
    for bad, msg in ((dict(depth=2), "unknown key(s) ['depth']"), (dict(width="5"), "width='5' has type str"),
                     (dict(width=0), "width=0 must be >= 1")):
        with pytest.raises(ValueError, match=re.escape(msg)):
            check(tiny(method="test_labelled", options=bad), data=False)
    with pytest.raises(ValueError, match=re.escape("unknown key(s) ['width'] for method 'dim_l'; valid: local_critic")):
        check(tiny(options=dict(width=1)), data=False)
    with pytest.raises(ValueError, match="local_critic='conv' is unknown; valid: dot, concat"):
        check(tiny(local_critic="conv"), data=False)
    register(type("NoOptions", (METHODS["dim_l"],), dict(name="test_no_options", Options=None)))
    try:
        with pytest.raises(ValueError, match="takes no options"): check(Config(method="test_no_options", options=dict(width=1)), data=False)
    finally: del METHODS["test_no_options"]
    Labelled.seen.clear()
    fit(replace(cfg, max_steps=2), ds, progress=False)
    assert Labelled.seen == [(torch.Size([8]), 5)] * 2
    assert json.loads((tmp_path / cfg.name / "config.json").read_text())["options"] == cfg.options   # every option recorded


def test_stl10_trains_on_64x64_crops_and_evaluates_on_the_centre(tmp_path):
    "STL-10 (96x96 on disk, torchvision's format): the network is built for the 64x64 view of DIM Sec. 4 / WDIM Table 1."
    from wdim_nb.data import write_fake, view, view_shape
    from wdim_nb.evaluate import evaluate
    write_fake("stl10", tmp_path / "data", n=16)
    cfg = check(flat_config(method="dim_l", dataset="stl10", data_dir=str(tmp_path / "data"), out_dir=str(tmp_path / "runs"),
                            batch_size=8, max_steps=2, critic_hidden=16))
    assert cfg.augment == "crop64_flip"                       # the dataset's view wins over the quick preset's crop
    unlabeled = get_dataset("stl10", view("stl10")["train_split"], tmp_path / "data", verify=False)   # fake files: no MD5
    run = fit(cfg, unlabeled, progress=False)
    assert run["steps"] == 2 and run["models"]["encoder"].tap_shapes["conv"] == (192, 7, 7)   # AlexNet at 64x64
    train, test = (get_dataset("stl10", s, tmp_path / "data", verify=False) for s in ("train", "test"))
    assert train.shape == (3, 96, 96) and view_shape(train.shape, view("stl10")["eval_augment"]) == (3, 64, 64)
    ev = evaluate(run["encoder"].eval(), train, test, augment=view("stl10")["eval_augment"], n_train=None, n_test=None,
                  probes=("linear",), ndm_steps=0, mine_steps=0, mlp_epochs=1)
    assert set(ev["probe"]) == {"conv", "fc", "y"}


def test_load_run_reads_old_checkpoints_whose_method_settings_were_config_fields(tmp_path):
    "A checkpoint written when DIM's local critic and MIGE's projection were Config fields loads with them as options."
    ds = get_dataset("synthetic", n=16, shape=(1, 12, 12))
    run = fit(tiny(method="wdim_lpc", local_critic="concat", max_steps=1, out_dir=str(tmp_path), name="old"), ds, progress=False)
    path = tmp_path / "old" / "checkpoint.pt"
    ck = torch.load(path, weights_only=True)
    opts = ck["config"].pop("options")
    ck["config"] |= dict(local_critic=opts["local_critic"], sinkhorn_eps=opts["sinkhorn_eps"], options={})   # the old layout
    torch.save(ck, path)
    back = L.load_run(tmp_path / "old", shape=ds.shape)
    assert back["cfg"].options["local_critic"] == "concat" and back["steps"] == 1 and not back["models"].training
    assert all(torch.equal(a, b) for a, b in zip(back["encoder"].state_dict().values(), run["encoder"].state_dict().values()))
    ck["config"]["colour"] = "red"; torch.save(ck, path)
    with pytest.warns(UserWarning, match=r"\['colour'\] are no longer known"): L.load_run(tmp_path / "old", shape=ds.shape)
