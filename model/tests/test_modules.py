"""Shapes of every part at both presets (full on the meta device), deformable attention against a plain
reference, BatchNorm folding, and the released connector's double conv."""
import pytest
import torch
import torch.nn.functional as F

from mvp_lm import MVPLM, full, tiny
from mvp_lm.modules.connector import Connector
from mvp_lm.modules.msdeform import MSDeformAttn, ms_deform_attn_core


def _check_shapes(m, cfg, device, b=2, p=5):
    s, d, h = cfg.image_size, cfg.d_model, cfg.phi.hidden_size
    n, q, mm = cfg.num_memory_tokens, cfg.num_total_queries, cfg.mask_size
    with torch.no_grad():
        v = m.encode_image(torch.zeros(b, 3, s, s, device=device))
        assert {k: tuple(x.shape) for k, x in v.items()} == {
            "image_embeds": (b, cfg.num_image_tokens, h), "memory": (b, n, d), "mask_features": (b, d, mm, mm),
            "output_memory": (b, n, d), "output_proposals": (b, n, 4), "proposal_valid": (b, n)}
        ids = torch.zeros(b, 3, dtype=torch.long, device=device)
        assert tuple(m.embed_tokens(ids).shape) == (b, 3, h)
        per = torch.zeros(b, h, device=device)
        out = m.perceive(v, torch.zeros(b, p, h, device=device), False, per_hidden=per)
        assert {k: tuple(x.shape) for k, x in out.items()} == {
            "pred_logits": (b, q, p), "pred_masks": (b, q, mm, mm), "pred_boxes": (b, q, 4)}


@pytest.mark.parametrize("variant", ["paper", "released-code"])
def test_tiny_shapes(variant):
    cfg = tiny(variant)
    _check_shapes(MVPLM(cfg).eval(), cfg, "cpu")


def test_full_shapes_on_meta_device():
    cfg = full("paper")
    with torch.device("meta"):
        m = MVPLM(cfg).eval()
    _check_shapes(m, cfg, "meta", b=1, p=3)


def test_swin_stage_outputs():
    cfg = tiny()
    m = MVPLM(cfg).eval()
    feats = m.swin(torch.randn(1, 3, 128, 128))
    assert [tuple(f.shape) for f in feats] == [(1, 32, 32, 32), (1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4)]


def test_swin_pads_stages_not_divisible_by_window():
    # full size has stage sizes 256/128/64/32 with window 12: exercise the padded path at a small size
    from mvp_lm.config import SwinConfig
    from mvp_lm.modules.swin import SwinTransformer
    sw = SwinTransformer(SwinConfig(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=3), 64)
    feats = sw(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[-2:]) for f in feats] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    assert all(torch.isfinite(f).all() for f in feats)


def test_training_outputs_and_gradients():
    cfg = tiny("paper")
    m = MVPLM(cfg).train()
    v = m.encode_image(torch.randn(1, 3, 128, 128))
    nd, q = 6, cfg.num_total_queries
    dn = {"content": torch.randn(1, nd, cfg.d_model), "ref_boxes": torch.rand(1, nd, 4) * 0.8 + 0.1,
          "attn_mask": torch.zeros(nd + q, nd + q, dtype=torch.bool)}
    per = torch.randn(1, cfg.phi.hidden_size, requires_grad=True)
    out = m.perceive(v, torch.randn(1, 4, cfg.phi.hidden_size), False, per_hidden=per, dn=dn)
    assert len(out["aux_outputs"]) == cfg.decoder.num_layers - 1
    assert out["pred_logits"].shape[1] == q and out["dn_outputs"]["pred_boxes"].shape[1] == nd
    assert len(out["dn_outputs"]["aux_outputs"]) == cfg.decoder.num_layers - 1
    assert out["enc_outputs"]["pred_boxes"].shape[1] == cfg.decoder.num_queries
    loss = out["pred_masks"].sigmoid().mean() + out["pred_logits"].mean() + out["pred_boxes"].mean()
    loss.backward()
    assert per.grad is not None and per.grad.abs().sum() > 0
    assert m.base_query_mlp.layers[0].weight.grad is not None


def test_dn_queries_do_not_change_matching_predictions_when_blocked():
    cfg = tiny("released-code")
    m = MVPLM(cfg).eval()
    v = m.encode_image(torch.randn(1, 3, 128, 128))
    text = torch.randn(1, 4, cfg.phi.hidden_size)
    plain = m.perceive(v, text, False)
    nd, q = 4, cfg.num_total_queries
    mask = torch.zeros(nd + q, nd + q, dtype=torch.bool)
    mask[nd:, :nd] = True  # matching queries may not see the denoising ones (DINO)
    dn = {"content": torch.randn(1, nd, cfg.d_model), "ref_boxes": torch.rand(1, nd, 4) * 0.8 + 0.1,
          "attn_mask": mask}
    with_dn = m.perceive(v, text, False, dn=dn)
    for k in plain:
        torch.testing.assert_close(with_dn[k], plain[k], atol=1e-5, rtol=1e-5)


def test_sentence_flag_selects_projector_and_background_excluded_from_selection():
    cfg = tiny("released-code")
    m = MVPLM(cfg).eval()
    v = m.encode_image(torch.randn(1, 3, 128, 128))
    text = torch.randn(1, 3, cfg.phi.hidden_size)
    word, sent = m.perceive(v, text, False), m.perceive(v, text, torch.tensor([True]))
    assert not torch.allclose(word["pred_logits"], sent["pred_logits"])
    # a word-task background phrase that matches everything must not steer the query selection
    text_bg = text.clone()
    text_bg[:, -1] = 100 * text[:, -1]
    word_bg = m.perceive(v, text_bg, False)
    torch.testing.assert_close(word_bg["pred_boxes"], word["pred_boxes"])


def _reference_ms_deform(value, shapes, loc, weights):
    """Bilinear sampling written out per corner (align_corners=False, zeros outside), no grid_sample."""
    b, _, h, dh = value.shape
    _, lq, _, nl, npt, _ = loc.shape
    out = torch.zeros(b, lq, h, dh)
    start = 0
    for lvl, (hh, ww) in enumerate(shapes):
        v = value[:, start:start + hh * ww].view(b, hh, ww, h, dh)
        start += hh * ww
        x = loc[..., lvl, :, 0] * ww - 0.5  # [b, lq, h, P]
        y = loc[..., lvl, :, 1] * hh - 0.5
        x0, y0 = x.floor(), y.floor()
        for dx in (0, 1):
            for dy in (0, 1):
                xi, yi = x0 + dx, y0 + dy
                wgt = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
                inside = (xi >= 0) & (xi < ww) & (yi >= 0) & (yi < hh)
                xc, yc = xi.clamp(0, ww - 1).long(), yi.clamp(0, hh - 1).long()
                for bi in range(b):
                    for hi in range(h):
                        vals = v[bi, yc[bi, :, hi], xc[bi, :, hi], hi]  # [lq, P, dh]
                        contrib = (wgt * inside * weights[..., lvl, :])[bi, :, hi, :, None] * vals
                        out[bi, :, hi] += contrib.sum(1)
    return out.flatten(2)


def test_ms_deform_core_matches_reference():
    shapes = [(2, 3), (4, 5), (7, 6)]
    b, h, dh, lq, npt = 2, 2, 4, 9, 3
    n = sum(a * c for a, c in shapes)
    value = torch.randn(b, n, h, dh)
    loc = torch.rand(b, lq, h, len(shapes), npt, 2) * 1.4 - 0.2  # some points fall outside the map
    weights = torch.rand(b, lq, h, len(shapes), npt).softmax(-1)
    got = ms_deform_attn_core(value, shapes, loc, weights)
    torch.testing.assert_close(got, _reference_ms_deform(value, shapes, loc, weights), atol=1e-5, rtol=1e-5)


def test_ms_deform_module_box_references():
    attn = MSDeformAttn(16, 2, 2, 2)
    shapes = [(3, 3), (5, 5)]
    q = torch.randn(1, 4, 16)
    val = torch.randn(1, 34, 16)
    ref2 = torch.rand(1, 4, 2, 2)
    ref4 = torch.cat((ref2, torch.full((1, 4, 2, 2), 0.3)), -1)
    assert attn(q, ref2, val, shapes).shape == (1, 4, 16)
    assert attn(q, ref4, val, shapes).shape == (1, 4, 16)


def _randomise_bn(module):
    for mod in module.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_()
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.normal_()
            mod.bias.data.normal_()


@pytest.mark.parametrize("repeat", [False, True])
def test_fold_batchnorm_equivalence(repeat):
    c = Connector(16, 24, 32, repeat_conv2=repeat).eval()
    _randomise_bn(c)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        before = c(x)
        c.fold_batchnorm()
        after = c(x)
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in c.modules())
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_released_connector_applies_conv2_twice():
    c = Connector(8, 12, 10, repeat_conv2=True).eval()
    _randomise_bn(c)
    blk = c.block
    x = torch.randn(1, 8, 6, 6)

    def bn(t, m):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    with torch.no_grad():
        out = F.relu(bn(F.conv2d(x, blk.conv1.weight, stride=2, padding=1), blk.bn1))
        out = F.conv2d(F.conv2d(out, blk.conv2.weight, padding=1), blk.conv2.weight, padding=1)
        short = bn(F.conv2d(x, blk.downsample[0].weight, stride=2), blk.downsample[1])
        expected = F.relu(bn(out, blk.bn2) + short)
        expected = F.linear(expected.flatten(2).transpose(1, 2), c.fc.weight, c.fc.bias)
        torch.testing.assert_close(c(x), expected)
    single = Connector(8, 12, 10, repeat_conv2=False).eval()
    single.load_state_dict(c.state_dict())
    assert not torch.allclose(single(x), c(x))


def test_fold_for_export_keeps_outputs():
    m = MVPLM(tiny("released-code")).eval()
    _randomise_bn(m.connector)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        before = m.encode_image(x)["image_embeds"]
        after = m.fold_for_export().encode_image(x)["image_embeds"]
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
