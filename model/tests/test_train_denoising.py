import torch

from mvp_lm.train.denoising import build_denoising, denoising_attn_mask, noise_boxes
from mvp_lm.train.targets import ImageTargets


def targets(n, labels):
    gen = torch.Generator().manual_seed(n)
    boxes = torch.cat([torch.rand(n, 2, generator=gen) * 0.5 + 0.25, torch.rand(n, 2, generator=gen) * 0.3 + 0.05], 1)
    return ImageTargets(torch.tensor(labels, dtype=torch.int64), boxes, torch.zeros(n, 4, 4),
                        torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool))


def test_attn_mask_structure():
    groups, size, q = 3, 2, 4
    m = denoising_attn_mask(groups, size, q)
    nd = groups * size
    assert m.shape == (nd + q, nd + q) and m.dtype == torch.bool
    assert m[nd:, :nd].all()  # matching queries never see dn queries
    assert not m[nd:, nd:].any()  # matching queries see each other
    assert not m[:nd, nd:].any()  # dn queries see the matching queries
    for i in range(nd):
        for j in range(nd):
            assert bool(m[i, j]) == (i // size != j // size)  # a dn group sees only itself


def test_noise_stays_within_scale():
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.4]]).repeat(2000, 1)
    noised = noise_boxes(boxes, 0.4, torch.Generator().manual_seed(0))
    d = (noised - boxes).abs()
    assert (d[:, 0] <= 0.4 * 0.1 + 1e-6).all() and (d[:, 1] <= 0.4 * 0.2 + 1e-6).all()
    assert (d[:, 2] <= 0.4 * 0.2 + 1e-6).all() and (d[:, 3] <= 0.4 * 0.4 + 1e-6).all()
    assert d[:, 0].max() > 0.03 and d[:, 3].max() > 0.12  # the noise really spans the range
    assert (noise_boxes(boxes, 0.0) == boxes).all()


def test_build_denoising_groups_content_and_matches():
    t = [targets(2, [1, 0]), targets(3, [2, 2, 0])]
    embeds = [torch.randn(3, 8), torch.randn(4, 8)]
    dn = build_denoising(t, embeds, num_queries=5, max_queries=10, noise_scale=0.4,
                         generator=torch.Generator().manual_seed(0))
    assert dn.group_size == 3 and dn.num_groups == 3
    assert dn.content.shape == (2, 9, 8) and dn.ref_boxes.shape == (2, 9, 4) and dn.attn_mask.shape == (14, 14)
    for b in range(2):
        slots, tgt = dn.matches[b]
        assert len(slots) == 3 * len(t[b])
        assert torch.equal(slots // 3, torch.arange(3).repeat_interleave(len(t[b])))  # one copy per group
        torch.testing.assert_close(dn.content[b, slots], embeds[b][t[b].labels[tgt]])
        assert ((dn.ref_boxes[b, slots] - t[b].boxes[tgt]).abs() <= 0.4 * t[b].boxes[tgt][:, [2, 3, 2, 3]] + 1e-6).all()
    # image 0 has 2 targets: slot 2 of each group is padding (zero content)
    assert dn.content[0, [2, 5, 8]].abs().sum() == 0
    assert set(dn.model_input()) == {"content", "ref_boxes", "attn_mask"}


def test_no_denoising_without_targets():
    assert build_denoising([targets(0, [])], [torch.randn(2, 8)], num_queries=5) is None
