import itertools
import math

import torch

from mvp_lm.train.matcher import LossWeights, hungarian_match, match_cost, pairwise_dice, pairwise_sigmoid_ce
from mvp_lm.train.targets import ImageTargets


def make_targets(boxes, labels=None, stuff=None, masks=None):
    boxes = torch.tensor(boxes, dtype=torch.float32)
    n = boxes.shape[0]
    return ImageTargets(
        labels=torch.tensor(labels if labels is not None else [0] * n),
        boxes=boxes,
        masks=masks if masks is not None else torch.zeros(n, 8, 8),
        has_mask=torch.tensor([masks is not None] * n, dtype=torch.bool),
        is_stuff=torch.tensor(stuff if stuff is not None else [False] * n, dtype=torch.bool),
    )


def brute_force_best(cost, rows, cols):
    best = math.inf
    for perm in itertools.permutations(rows, len(cols)):
        best = min(best, sum(cost[r, c] for r, c in zip(perm, cols)))
    return best


def test_box_only_case_beats_greedy():
    # L1 on cx only: greedy would take q0→t0 (0.05) then q1→t1 (0.30) = 0.35; optimum q0→t1 + q1→t0 = 0.25.
    targets = make_targets([[0.10, 0.5, 0.1, 0.1], [0.30, 0.5, 0.1, 0.1]])
    pred_boxes = torch.tensor([[0.15, 0.5, 0.1, 0.1], [0.00, 0.5, 0.1, 0.1]])
    weights = LossWeights(cls=0, mask=0, dice=0, l1=1, giou=0)
    q, t = hungarian_match(torch.zeros(2, 2), None, pred_boxes, targets, False, weights, num_points=16)
    assert q.tolist() == [0, 1] and t.tolist() == [1, 0]


def test_class_cost_selects_the_query_that_predicts_the_phrase():
    targets = make_targets([[0.5, 0.5, 0.2, 0.2]], labels=[1])
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])  # phrase0, phrase1, background
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2]] * 3)
    q, t = hungarian_match(logits, None, boxes, targets, False, LossWeights(), num_points=16)
    assert q.tolist() == [1] and t.tolist() == [0]
    cost = match_cost(logits, None, boxes, targets, False, LossWeights(), 16)
    expected = -2 * logits.softmax(-1)[:, 1]  # boxes identical: L1 0, GIoU 1 -> -2 on every row
    torch.testing.assert_close(cost[:, 0], expected - 2)


def test_matching_is_optimal_on_random_costs():
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        q, n = 5, 3
        masks = (torch.rand(n, 8, 8, generator=gen) > 0.5).float()
        boxes = torch.rand(n, 2, generator=gen) * 0.5 + 0.25
        targets = make_targets(torch.cat([boxes, torch.full((n, 2), 0.2)], 1).tolist(), labels=[0, 1, 2], masks=masks)
        logits = torch.randn(q, 4, generator=gen)
        pred_masks = torch.randn(q, 8, 8, generator=gen)
        pred_boxes = torch.cat([torch.rand(q, 2, generator=gen), torch.rand(q, 2, generator=gen) * 0.3 + 0.05], 1)
        cost = match_cost(logits, pred_masks, pred_boxes, targets, False, LossWeights(), 64,
                          torch.Generator().manual_seed(1))
        qi, ti = hungarian_match(logits, pred_masks, pred_boxes, targets, False, LossWeights(), 64,
                                 generator=torch.Generator().manual_seed(1))
        assert sorted(ti.tolist()) == [0, 1, 2] and len(set(qi.tolist())) == 3
        got = float(cost[qi, ti].sum())
        assert math.isclose(got, brute_force_best(cost.numpy(), range(q), range(n)), rel_tol=1e-5)


def test_panoptic_constraint_things_first_k_stuff_rest():
    # Thing target t0 is best matched by stuff query 3, stuff target t1 by thing query 0: constraint must forbid both.
    targets = make_targets([[0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.2, 0.2]], labels=[0, 1], stuff=[False, True])
    pred_boxes = torch.tensor([[0.8, 0.8, 0.2, 0.2], [0.5, 0.5, 0.3, 0.3], [0.6, 0.6, 0.3, 0.3], [0.2, 0.2, 0.1, 0.1]])
    logits = torch.tensor([[0.0, 6.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [6.0, 0.0, 0.0]])
    free_q, free_t = hungarian_match(logits, None, pred_boxes, targets, False, LossWeights(), 16)
    assert dict(zip(free_t.tolist(), free_q.tolist())) == {0: 3, 1: 0}
    q, t = hungarian_match(logits, None, pred_boxes, targets, False, LossWeights(), 16, num_thing_queries=2)
    pairs = dict(zip(t.tolist(), q.tolist()))
    assert pairs[0] in (0, 1) and pairs[1] in (2, 3)
    cost = match_cost(logits, None, pred_boxes, targets, False, LossWeights(), 16).numpy()
    assert math.isclose(cost[pairs[0], 0], min(cost[0, 0], cost[1, 0]), rel_tol=1e-6)
    assert math.isclose(cost[pairs[1], 1], min(cost[2, 1], cost[3, 1]), rel_tol=1e-6)


def test_stuff_target_has_no_box_cost_and_sentence_uses_sigmoid():
    targets = make_targets([[0.5, 0.5, 0.2, 0.2]], stuff=[True])
    logits = torch.tensor([[2.0], [-1.0]])
    boxes = torch.tensor([[0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2]])
    cost = match_cost(logits, None, boxes, targets, True, LossWeights(), 16)
    torch.testing.assert_close(cost[:, 0], -2 * torch.sigmoid(logits[:, 0]))


def test_no_targets_gives_empty_match():
    targets = make_targets(torch.zeros(0, 4).tolist())
    q, t = hungarian_match(torch.zeros(3, 1), torch.zeros(3, 8, 8), torch.rand(3, 4), targets, True, LossWeights(), 16)
    assert q.numel() == 0 and t.numel() == 0


def test_pairwise_mask_costs_match_direct_formulas():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    labels = torch.tensor([[1.0, 0.0]])
    ce = pairwise_sigmoid_ce(logits, labels)
    # softplus(-x) for label 1, softplus(x) for label 0, mean over the 2 points
    sp = torch.nn.functional.softplus
    torch.testing.assert_close(ce[:, 0], torch.stack([(sp(-logits[i, 0]) + sp(logits[i, 1])) / 2 for i in range(2)]))
    p = logits.sigmoid()
    torch.testing.assert_close(pairwise_dice(logits, labels)[:, 0], 1 - (2 * p[:, 0] + 1) / (p.sum(1) + 1 + 1))
