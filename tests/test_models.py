"Tests for wdim_nb.models: shapes, critic identities against naive ground truth, occlusion, gradients, errors."
import math

import pytest
import torch
import torch.nn.functional as F

from wdim_nb.models import (ARCHS, ConcatConvCritic, CoordinatePredictor, EncodeDotCritic, Encoder, GlobalCritic,
                            PriorDiscriminator, critics, encoder, flops_per_image, global_critic, local_critic,
                            local_pairs, occlude, receptive_field, squash)


# (arch, image_shape) -> expected per-sample tap shapes (local, conv, fc)
SHAPES = {
    ("dim", (1, 8, 8)): ((128, 4, 4), (256, 2, 2), (1024,)),
    ("dim", (3, 12, 12)): ((128, 6, 6), (256, 3, 3), (1024,)),
    ("dim", (3, 16, 16)): ((128, 8, 8), (256, 4, 4), (1024,)),
    ("dim", (1, 24, 24)): ((128, 12, 12), (256, 6, 6), (1024,)),
    ("dim", (1, 28, 28)): ((128, 7, 7), (128, 7, 7), (1024,)),
    ("dim", (3, 32, 32)): ((128, 8, 8), (256, 4, 4), (1024,)),
    ("dim", (3, 64, 64)): ((384, 15, 15), (192, 7, 7), (4096,)),
    ("wdim", (1, 13, 13)): ((128, 7, 7), (512, 1, 1), (512,)),
    ("wdim", (1, 28, 28)): ((128, 22, 22), (512, 16, 16), (512,)),
    ("wdim", (3, 32, 32)): ((128, 26, 26), (512, 20, 20), (512,)),
    ("wdim", (3, 64, 64)): ((128, 58, 58), (512, 52, 52), (512,)),
}


@pytest.mark.parametrize("arch,shape", list(SHAPES))
def test_tap_shapes_every_arch_and_shape(arch, shape):
    with torch.device("meta"):  # shapes without memory or compute, even for the 88M-parameter wdim 64x64
        enc = encoder(arch, shape, y_dim=32)
        out = enc(torch.empty(3, *shape))
    conv, last, fc = SHAPES[arch, shape]
    want = dict(local=conv, conv=last, fc=fc, y=(32,))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == want
    assert enc.tap_shapes == want and set(enc.taps) == set(out)


def test_real_forward_small_encoders():
    torch.manual_seed(0)
    for arch, shape in [("dim", (1, 8, 8)), ("wdim", (1, 16, 16))]:
        enc = encoder(arch, shape)
        out = enc(torch.randn(4, *shape))
        assert out["y"].shape == (4, 64) and torch.isfinite(out["y"]).all()
        assert (out["local"] >= 0).all() and (out["fc"] >= 0).all()  # taps are taken after ReLU
        assert out["y"].min() < 0  # y is a plain linear output (squash only for prior matching)


def test_wdim_matches_deepinfomaxpytorch_layers():
    with torch.device("meta"): enc = encoder("wdim", (3, 32, 32))
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in convs] == \
        [(3, 64, (4, 4), (1, 1)), (64, 128, (4, 4), (1, 1)), (128, 256, (4, 4), (1, 1)), (256, 512, (4, 4), (1, 1))]
    assert enc.head.in_features == 512 * 20 * 20 and enc.head.out_features == 64
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in enc.modules()) == 3


def test_flops_match_hand_count():
    with torch.device("meta"):
        d, w = encoder("dim", (3, 32, 32)), encoder("wdim", (3, 32, 32))
    conv = lambda cin, cout, k, side: 2 * cin * cout * k * k * side * side
    dim = conv(3, 64, 4, 16) + conv(64, 128, 4, 8) + conv(128, 256, 4, 4) + 2 * 4096 * 1024 + 2 * 1024 * 64
    wdim = conv(3, 64, 4, 29) + conv(64, 128, 4, 26) + conv(128, 256, 4, 23) + conv(256, 512, 4, 20) + 2 * 512 * 400 * 64
    assert flops_per_image(d) == dim and flops_per_image(w) == wdim
    assert 6.5e9 < flops_per_image(w, backward=True) < 7.5e9   # "about 7 GFLOP per image per step" (issue 6)


@pytest.mark.parametrize("convs,c_shape", [((), (16, 3, 3)), ((6, 5), (8, 7, 7))])
def test_separable_global_critic_equals_concatenation(convs, c_shape):
    torch.manual_seed(0)
    g = GlobalCritic(c_shape, 5, convs=convs, hidden=32).double()
    c, y = torch.randn(6, *c_shape, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    S = g(c, y)
    assert S.shape == (6, 6)
    h = g.convs(c).flatten(1)
    for i in range(6):           # ground truth: the MLP of Table 5 on the explicit concatenation [vec c_i; y_j]
        for j in range(6):
            z = torch.cat([h[i], y[j]])
            t = g.l2(F.relu(g.l1(F.relu(g.l0(z)))))
            assert torch.allclose(S[i, j], t[0], atol=1e-12)
    assert torch.allclose(g.pairs(c, y), S.diagonal(), atol=1e-12)
    pos, neg = g(c, y, negatives=2)   # K negatives: code y_i against the maps of images i + 1, ..., i + K
    assert pos.shape == (6,) and neg.shape == (6, 2)
    assert torch.allclose(pos, S.diagonal(), atol=1e-12)
    for k in (1, 2): assert torch.allclose(neg[:, k - 1], S.roll(-k, 0).diagonal(), atol=1e-12)
    with pytest.raises(ValueError, match=r"\[1, B-1\]"): g(c, y, negatives=6)


def test_concat_and_convolve_equals_conv_on_concatenation():
    torch.manual_seed(0)
    cc = ConcatConvCritic(6, 3, hidden=16).double()
    B, M = 5, 4
    c, y = torch.randn(B, 6, M, M, dtype=torch.float64), torch.randn(B, 3, dtype=torch.float64)
    def conv_critic(cmap, code):   # ground truth: the 1x1 convnet run on torch.cat([C(x'), tile(E(x))], channels)
        z = torch.cat([cmap, code[:, :, None, None].expand(-1, -1, M, M)], 1)
        return cc.c2(F.relu(cc.c1(F.relu(cc.c0(z)))))[:, 0].reshape(-1)
    pos, neg = cc(c, y, negatives=3)
    assert pos.shape == (B * M * M,) and neg.shape == (B * M * M, 3)
    assert torch.allclose(pos, conv_critic(c, y), atol=1e-12)
    for k in range(1, 4):        # negative k pairs code y_i with the map of image i + k
        assert torch.allclose(neg[:, k - 1], conv_critic(c.roll(-k, 0), y), atol=1e-12)
    S = cc.scores(c, y)
    for i in range(B):
        for j in range(B):
            assert torch.allclose(S[i, j], conv_critic(c[i:i + 1], y[j:j + 1]), atol=1e-12)


def test_encode_and_dot_equals_explicit_dot_products():
    torch.manual_seed(0)
    ed = EncodeDotCritic(6, 3, hidden=8).double().eval()   # eval: BN uses running stats, so images are independent
    B, M = 4, 3
    c, y = torch.randn(B, 6, M, M, dtype=torch.float64), torch.randn(B, 3, dtype=torch.float64)
    S = ed.scores(c, y)
    assert S.shape == (B, B, M * M)
    for i in range(B):
        z = c[i].flatten(1).T                                                              # [L, C]: one image's locations
        phi = ed.l_norm(ed.l_block(z) + ed.l_short(z))                                     # [L, H], one image alone
        for j in range(B):
            gamma = (ed.g_block(y[j:j + 1]) + ed.g_short(y[j:j + 1]))[0]                    # [H]
            for m in range(M * M):
                assert torch.allclose(S[i, j, m], (phi[m] * gamma).sum() / math.sqrt(8), atol=1e-10)


def test_encode_and_dot_equals_its_1x1_conv_form_and_loads_its_checkpoints():
    "Table 8's phi is 1x1 convs; ours runs them as linear layers over the locations: same scores, batch-norm in train mode."
    torch.manual_seed(0)
    ed = EncodeDotCritic(6, 3, hidden=8).double()
    sd0 = {k: v.clone() for k, v in ed.state_dict().items()}
    conv = {k: (v[:, :, None, None] if k in ("l_block.0.weight", "l_block.3.weight", "l_short.weight") else v)
            for k, v in sd0.items()}                                 # the checkpoint of the 1x1-conv form
    l_block = torch.nn.Sequential(torch.nn.Conv2d(6, 8, 1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                  torch.nn.Conv2d(8, 8, 1)).double()
    l_block.load_state_dict({k[8:]: v for k, v in conv.items() if k.startswith("l_block.")})
    c, y = torch.randn(4, 6, 3, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    phi_conv = ed.l_norm((l_block(c) + F.conv2d(c, conv["l_short.weight"])).flatten(2).transpose(1, 2))
    assert torch.allclose(ed.embed(c, y)[0], phi_conv, atol=1e-12)
    fresh = EncodeDotCritic(6, 3, hidden=8).double()
    fresh.load_state_dict(conv)                                     # 4-D weights load into the linear form
    assert all(torch.equal(v, sd0[k]) for k, v in fresh.state_dict().items())


def test_encode_and_dot_shortcuts_start_near_identity():
    ed = EncodeDotCritic(6, 3, hidden=8)
    w = ed.g_short.weight
    assert torch.equal(w[:3, :3].diagonal(), torch.ones(3)) and w[3:].abs().max() <= 0.01


def test_local_pairs_against_loops():
    torch.manual_seed(0)
    B, L = 4, 3
    S = torch.randn(B, B, L)
    pos, neg = local_pairs(S, "all")
    assert pos.shape == (B, L) and neg.shape == (B, (B - 1) * L)      # code i's L positives share its negatives
    for i in range(B):
        want = torch.stack([S[j, i, mm] for j in range(B) if j != i for mm in range(L)])
        assert torch.equal(neg[i].sort().values, want.sort().values)   # every location of every other image
        for m in range(L): assert pos[i, m] == S[i, i, m]
    pos, neg = local_pairs(S, B - 1)
    for i in range(B):
        for m in range(L):
            assert torch.equal(neg[i * L + m].sort().values,
                               torch.stack([S[j, i, m] for j in range(B) if j != i]).sort().values)


@pytest.mark.parametrize("kind", ["dv", "jsd", "infonce", "nwj", "tuba", "smile", "js"])
def test_local_pairs_shared_negatives_equal_one_row_per_positive(kind):
    "The compact (B, L) / (B, (B-1) L) form gives the same value and gradient as one negatives row per positive."
    from wdim_nb.bounds import mi_bound_pairs
    torch.manual_seed(0)
    B, L = 4, 3
    S = torch.randn(B, B, L, dtype=torch.float64, requires_grad=True)
    pos, neg = local_pairs(S, "all")
    v1 = mi_bound_pairs(pos, neg, kind)
    (g1,) = torch.autograd.grad(v1, S, retain_graph=True)
    v2 = mi_bound_pairs(pos.reshape(-1), neg.repeat_interleave(L, 0), kind)   # the expanded layout, built by hand
    (g2,) = torch.autograd.grad(v2, S)
    assert torch.allclose(v1, v2, rtol=1e-12) and torch.allclose(g1, g2, rtol=1e-10, atol=1e-14)


def test_local_pairs_same_location_equals_per_location_matrix_bound():
    from wdim_nb.bounds import mi_bound, mi_bound_pairs
    torch.manual_seed(0)
    B, L = 5, 4
    S = torch.randn(B, B, L)
    pos, neg = local_pairs(S, B - 1)
    per_location = torch.stack([mi_bound(S[:, :, m], "infonce") for m in range(L)]).mean()   # Eq. 6
    assert torch.allclose(mi_bound_pairs(pos, neg, "infonce"), per_location, atol=1e-6)


def test_critic_set_scores_shapes_and_gradients():
    torch.manual_seed(0)
    for arch, shape, loc in [("dim", (1, 8, 8), "dot"), ("dim", (3, 12, 12), "concat"), ("wdim", (1, 14, 14), None)]:
        enc = encoder(arch, shape, y_dim=8)
        net = critics(enc, local=loc, coord=True, relative=(loc == "concat"))
        taps = enc(torch.randn(3, *shape))
        S = net["global"](taps[net["global"].tap], taps["y"])
        pos, neg = net["local"](taps[net["local"].tap], taps["y"])
        L = math.prod(enc.tap_shapes["local"][1:])
        want = ((3, L), (3, 2 * L)) if loc == "dot" else ((3 * L,), (3 * L, 1))   # dot: all negatives, shared per code
        assert S.shape == (3, 3) and (pos.shape, neg.shape) == want
        d = net["prior"](squash(taps["y"]))
        assert d.shape == (3,)
        total = S.mean() + pos.mean() - neg.mean() + d.mean() + net["coord"].loss(taps["local"], taps["y"])
        total.backward()
        for name, m in [("encoder", enc), *net.items()]:
            for pname, p in m.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), (arch, name, pname)
            if name != "prior":
                assert any(p.grad.abs().sum() > 0 for p in m.parameters()), (arch, name)


def test_builders_and_taps():
    with torch.device("meta"):
        enc = encoder("dim", (3, 32, 32))
        net = critics(enc)
        wnet = critics(encoder("wdim", (3, 32, 32)))
    assert net["global"].tap == "conv" and net["global"].c_dim == 256 * 16
    assert isinstance(net["local"], EncodeDotCritic) and isinstance(wnet["local"], ConcatConvCritic)
    assert wnet["global"].tap == "local" and wnet["global"].c_dim == 32 * 22 * 22   # DeepInfomaxPytorch G
    assert wnet["local"].c0.in_channels == 128 + 64                                 # DeepInfomaxPytorch L: 192
    assert [m.out_features for m in net["prior"].net if isinstance(m, torch.nn.Linear)] == [1000, 200, 1]
    assert isinstance(global_critic("wdim", (128, 26, 26)), GlobalCritic)
    assert isinstance(local_critic("dim", 128, kind="concat"), ConcatConvCritic)
    with torch.device("meta"): small = critics(enc, local_hidden=32)
    assert small["local"].l_norm.normalized_shape == (32,)


def test_squash_maps_into_prior_support():
    y = torch.tensor([-1e4, -1.0, 0.0, 3.0, 1e4])
    s = squash(y)
    assert (s >= 0).all() and (s <= 1).all() and s[2] == 0.5


def test_prior_discriminator_logits_are_finite_where_sigmoid_saturates():
    d = PriorDiscriminator(4)
    with torch.no_grad():
        d.net[-1].bias.fill_(200.0)      # a discriminator certain that everything is "real"
    logits = d(torch.rand(3, 4))
    assert logits.shape == (3,)
    assert torch.isfinite(F.logsigmoid(-logits)).all()           # the caller's log(1 - D) stays finite
    assert torch.isinf(torch.log(1 - torch.sigmoid(logits))).all()  # the unguarded DeepInfomaxPytorch form does not


def test_coordinate_targets():
    cp = CoordinatePredictor((4, 5, 5), 3)
    t = cp.targets(2)
    assert t.shape == (2, 2, 5, 5)
    for i in range(5):
        for j in range(5):
            assert t[1, 0, i, j] == i and t[1, 1, i, j] == j
    rp = CoordinatePredictor((4, 5, 5), 3, relative=True)
    src = torch.tensor([0, 5 * 3 + 1])
    t = rp.targets(2, src)
    for b, (si, sj) in enumerate([(0, 0), (3, 1)]):
        for i in range(5):
            for j in range(5):
                assert t[b, 0, i, j] == si - i + 4 and t[b, 1, i, j] == sj - j + 4
    assert t.min() >= 0 and t.max() <= 2 * 5 - 2
    logits = rp(torch.randn(2, 4, 5, 5), torch.randn(2, 3), src)
    assert logits.shape == (2, 2, 9, 5, 5)


def test_coordinate_loss_is_cross_entropy_of_its_logits():
    torch.manual_seed(0)
    cp = CoordinatePredictor((4, 3, 3), 2, hidden=16).eval()
    c, y = torch.randn(2, 4, 3, 3), torch.randn(2, 2)
    logits = cp(c, y)
    want = sum(-F.log_softmax(logits[b, a, :, i, j], 0)[(i, j)[a]]
               for b in range(2) for a in range(2) for i in range(3) for j in range(3)) / (2 * 9)
    assert torch.allclose(cp.loss(c, y), want, atol=1e-5)


def _windows(mask, block, step=1, offset=0):
    "Fraction visible in every block x block window whose corner is offset + step * i (inside the image)."
    start = next(o for o in range(offset, mask.shape[-1], step) if o >= 0)
    return F.avg_pool2d(mask[:, None, start:, start:].float(), block, stride=step)[:, 0].flatten(1)


def test_occlude_masks_what_it_says():
    x = torch.randn(64, 3, 32, 32)
    xo, mask = occlude(x, generator=torch.Generator().manual_seed(1), return_mask=True, value=-1.0)
    assert mask.shape == (64, 32, 32) and mask.dtype == torch.bool
    m = mask[:, None].expand_as(x)
    assert (xo[~m] == -1.0).all() and torch.equal(xo[m], x[m])
    w = _windows(mask, 10)
    assert ((w == 1).any(1) & (w == 0).any(1)).all()   # a fully visible and a fully hidden 10x10 block, every image
    assert 0.3 < mask.float().mean() < 0.7              # p = 0.5
    assert torch.equal(occlude(x, generator=torch.Generator().manual_seed(1), value=-1.0), xo)   # reproducible
    assert not torch.equal(occlude(x, generator=torch.Generator().manual_seed(2), value=-1.0), xo)


def test_occlude_aligned_to_receptive_fields_guarantees_dim_property():
    enc = encoder("dim", (3, 32, 32))
    rf = receptive_field(enc)
    x = torch.randn(200, 3, 32, 32)
    _, mask = occlude(x, block=rf["size"], step=rf["step"], offset=rf["offset"], return_mask=True,
                      generator=torch.Generator().manual_seed(0))
    w = _windows(mask, rf["size"], rf["step"], rf["offset"])   # the receptive fields of local features inside the image
    assert ((w == 1).any(1) & (w == 0).any(1)).all()   # a local feature fully observed and one fully unobserved
    _, plain = occlude(x, return_mask=True, generator=torch.Generator().manual_seed(0))
    wp = _windows(plain, rf["size"], rf["step"], rf["offset"])
    assert not ((wp == 1).any(1) & (wp == 0).any(1)).all()   # grid-free squares alone do not guarantee it


@pytest.mark.parametrize("p,hidden", [(0.0, 100), (1.0, 400 - 100)])
def test_occlude_extremes(p, hidden):
    _, mask = occlude(torch.ones(5, 1, 20, 20), p=p, return_mask=True, generator=torch.Generator().manual_seed(0))
    assert ((~mask).flatten(1).sum(1) == hidden).all()   # p=0: only the forced square; p=1: all but the visible one


@pytest.mark.parametrize("arch,shape", [("dim", (1, 32, 32)), ("dim", (1, 28, 28)), ("dim", (1, 16, 16)),
                                        ("wdim", (1, 20, 20))])
def test_receptive_field_matches_gradient_support(arch, shape):
    "Ground truth: the input pixels a local feature depends on are where its gradient is non-zero."
    enc = encoder(arch, shape).double().eval()
    with torch.no_grad():   # positive weights and inputs: every ReLU passes, so no path is cut
        for mod in enc.local:
            if isinstance(mod, torch.nn.Conv2d): mod.weight.uniform_(0.5, 1.0)
    rf = receptive_field(enc)
    S = shape[-1]
    for i in (0, 2):
        x = torch.rand(1, *shape, dtype=torch.float64).add_(0.1).requires_grad_()
        enc(x)["local"][0, :, i, i].sum().backward()
        rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
        lo, hi = rf["offset"] + rf["step"] * i, rf["offset"] + rf["step"] * i + rf["size"]
        assert rows.min() == max(lo, 0) and rows.max() == min(hi, S) - 1, (rows, lo, hi)


def test_clear_errors():
    with pytest.raises(ValueError, match="valid choices"): encoder("resnet", (3, 32, 32))
    with pytest.raises(ValueError, match="square"): encoder("dim", (3, 32, 28))
    with pytest.raises(ValueError, match="resize"): encoder("dim", (3, 48, 48))
    with pytest.raises(ValueError, match="resize"): encoder("dim", (3, 4, 4))
    with pytest.raises(ValueError, match=">= 13"): encoder("wdim", (1, 12, 12))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"): encoder("dim", (32, 32))
    with pytest.raises(ValueError, match="y_dim"): encoder("dim", (3, 32, 32), y_dim=0)
    with pytest.raises(ValueError, match=r"\[1, B-1\]"): local_pairs(torch.zeros(3, 3, 2), 3)
    with pytest.raises(ValueError, match="at least 2"): local_pairs(torch.zeros(1, 1, 2), "all")
    with pytest.raises(ValueError, match=r"\[B, B, L\]"): local_pairs(torch.zeros(3, 2, 2), 1)
    with pytest.raises(ValueError, match=r"\[1, B-1\]"): ConcatConvCritic(2, 2)(torch.zeros(2, 2, 3, 3), torch.zeros(2, 2), negatives=0)
    with pytest.raises(ValueError, match="too small"): GlobalCritic((8, 3, 3), 4, convs=(4, 4))
    with pytest.raises(ValueError, match="square"): CoordinatePredictor((4, 3, 5), 2)
    with pytest.raises(ValueError, match="lower `block`"): occlude(torch.zeros(1, 1, 15, 15))
    with pytest.raises(ValueError, match="lower `block`"): occlude(torch.zeros(1, 1, 28, 28), block=13, step=4, offset=-6)
    with pytest.raises(ValueError, match="local"): receptive_field(encoder("dim", (1, 8, 8)), "y")
    with pytest.raises(TypeError, match="Encoder"): critics(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="valid choices"): local_critic("dim", 8, kind="bilinear")
    with pytest.raises(ValueError, match="valid choices"): global_critic("vit", (8, 4, 4))
    assert set(ARCHS) == {"dim", "wdim"} and isinstance(encoder("dim", (1, 8, 8)), Encoder)


def test_local_critic_bench_times_one_function_in_two_forms(tmp_path):
    "bench/local_critic.py: both forms of phi agree before they are timed; one row per shape, precision and form."
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("local_critic", Path(__file__).resolve().parents[1] / "bench" / "local_critic.py")
    b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
    b.SHAPES = {"tiny": (4, 6, 3, 8)}
    df = b.main(["--reps", "1", "--steps", "1", "--folder", str(tmp_path)])
    assert set(df.form) == {"1x1 conv", "linear"} and (tmp_path / "bench_local_critic.csv").exists()
    assert (df[df.form == "1x1 conv"].speedup_over_conv == 1.0).all()


@pytest.mark.parametrize("arch", ["dim", "wdim"])
def test_partial_taps_skip_the_layers_no_tap_needs(arch):
    torch.manual_seed(0)
    enc = encoder(arch, (1, 16, 16)).eval()
    ran = []
    for name in ("local", "rest", "fc", "head"): getattr(enc, name).register_forward_hook(lambda m, i, o, n=name: ran.append(n))
    x = torch.randn(2, 1, 16, 16)
    full = enc(x); assert ran == ["local", "rest", "fc", "head"]
    expect = {("local",): ["local"], ("conv",): ["local", "rest"],
              ("y",): ["local", "rest", "fc", "head"] if arch == "dim" else ["local", "rest", "head"],   # wdim: y reads the flat map
              ("fc",): ["local", "rest", "fc"]}
    for taps, layers in expect.items():
        ran.clear(); out = enc(x, taps=taps)
        assert ran == layers, (taps, ran)
        for k, v in out.items(): assert torch.equal(v, full[k])
    with pytest.raises(ValueError, match="unknown taps"): enc(x, taps=("logits",))
