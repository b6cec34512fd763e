import math

import torch
import torch.nn.functional as F

from mvp_lm.train.boxes import cxcywh_to_xyxy, generalized_box_iou, paired_generalized_box_iou
from mvp_lm.train.losses import SetCriterion, box_losses, dice_loss, lm_loss, sigmoid_ce_loss, weighted_total
from mvp_lm.train.matcher import LossWeights
from mvp_lm.train.points import point_sample, uncertain_point_coords
from mvp_lm.train.targets import ImageTargets

sp = F.softplus  # softplus(-x) = BCE(x, 1), softplus(x) = BCE(x, 0)


def targets_of(boxes, labels, masks=None, stuff=None):
    boxes = torch.tensor(boxes, dtype=torch.float32)
    n = boxes.shape[0]
    return ImageTargets(torch.tensor(labels), boxes, masks if masks is not None else torch.zeros(n, 8, 8),
                        torch.tensor([masks is not None] * n, dtype=torch.bool),
                        torch.tensor(stuff or [False] * n, dtype=torch.bool))


def test_point_bce_and_dice_hand_values():
    logits = torch.tensor([[0.0, 0.0], [2.0, -1.0]])
    labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    expected_ce = (math.log(2) + (sp(torch.tensor(-2.0)) + sp(torch.tensor(1.0))).item() / 2) / 2
    assert math.isclose(sigmoid_ce_loss(logits, labels, 2.0).item(), expected_ce, rel_tol=1e-6)
    p = torch.sigmoid(torch.tensor([2.0, -1.0]))
    dice0 = 1 - (2 * 0.5 + 1) / (1.0 + 1 + 1)
    dice1 = 1 - (2 * p.sum() + 1) / (p.sum() + 2 + 1)
    assert math.isclose(dice_loss(logits, labels, 2.0).item(), (dice0 + dice1.item()) / 2, rel_tol=1e-6)


def test_box_losses_hand_values():
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    tgt = torch.tensor([[0.6, 0.5, 0.2, 0.2]])
    l1, giou = box_losses(pred, tgt, 1.0)
    # overlap 0.1×0.2 = 0.02, union 0.06, hull 0.3×0.2 = 0.06 -> IoU = GIoU = 1/3
    assert math.isclose(l1.item(), 0.1, rel_tol=1e-5)
    assert math.isclose(giou.item(), 2 / 3, rel_tol=1e-5)
    l1, giou = box_losses(pred, pred, 1.0)
    assert l1.item() == 0 and abs(giou.item()) < 1e-6


def test_giou_properties():
    gen = torch.Generator().manual_seed(0)
    a = cxcywh_to_xyxy(torch.cat([torch.rand(6, 2, generator=gen), torch.rand(6, 2, generator=gen) * 0.5 + 0.01], 1))
    b = cxcywh_to_xyxy(torch.cat([torch.rand(4, 2, generator=gen), torch.rand(4, 2, generator=gen) * 0.5 + 0.01], 1))
    g = generalized_box_iou(a, b)
    assert ((g >= -1) & (g <= 1)).all()
    torch.testing.assert_close(g, generalized_box_iou(b, a).T)  # symmetric
    torch.testing.assert_close(torch.diag(generalized_box_iou(a, a)), torch.ones(6))  # identical -> 1
    torch.testing.assert_close(paired_generalized_box_iou(a[:4], b), torch.diag(g[:4]))
    far = generalized_box_iou(torch.tensor([[0.0, 0.0, 0.01, 0.01]]), torch.tensor([[0.99, 0.99, 1.0, 1.0]]))
    assert -1 < far.item() < -0.99  # disjoint and far apart -> close to -1
    iou = generalized_box_iou(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 0.5, 1.0]]))
    assert math.isclose(iou.item(), 0.5, rel_tol=1e-6)  # nested box: hull = union, GIoU = IoU


def test_point_sample_reads_pixel_centres_and_importance_prefers_uncertain_points():
    mask = torch.arange(12.0).reshape(1, 3, 4)
    coords = torch.tensor([[[(2 + 0.5) / 4, (1 + 0.5) / 3], [(0 + 0.5) / 4, (2 + 0.5) / 3]]])
    torch.testing.assert_close(point_sample(mask, coords), torch.tensor([[6.0, 8.0]]))
    xs = torch.linspace(0, 1, 64)
    logits = (xs - 0.5).expand(2, 64, 64) * 20  # |logit| smallest near x = 0.5
    coords = uncertain_point_coords(logits, 400, 3.0, 0.75, torch.Generator().manual_seed(0))
    assert coords.shape == (2, 400, 2)
    important, random = coords[:, :300, 0], coords[:, 300:, 0]
    assert (important - 0.5).abs().mean() < 0.5 * (random - 0.5).abs().mean()


def test_word_class_ce_with_background_weight():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])  # columns: phrase 0, background
    out = {"pred_logits": logits, "pred_boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1]])}
    t = targets_of([[0.5, 0.5, 0.2, 0.2]], [0])
    losses = SetCriterion(num_points=16)(out, t, is_sentence=False, num_masks=1.0)
    a = math.log(1 + math.exp(-2))  # query 0 -> phrase 0
    b = math.log(1 + math.exp(-1))  # query 1 -> background (weight 0.1)
    assert math.isclose(losses["cls/final"].item(), (a + 0.1 * b) / 1.1, rel_tol=1e-6)
    assert abs(losses["l1/final"].item()) < 1e-7 and abs(losses["giou/final"].item()) < 1e-6


def test_sentence_bce_pos_weight_and_scale():
    scores = torch.tensor([[1.0], [-1.0], [0.0]])
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]])
    out = {"pred_logits": scores, "pred_boxes": boxes}
    t = targets_of([[0.5, 0.5, 0.2, 0.2]], [0])
    losses = SetCriterion(num_points=16)(out, t, is_sentence=True, num_masks=1.0)
    # query 0 matched (positive, pos_weight = 2 negatives / 1 positive)
    expected = 0.1 * (2 * sp(torch.tensor(-1.0)) + sp(torch.tensor(-1.0)) + sp(torch.tensor(0.0))).item() / 3
    assert math.isclose(losses["cls/final"].item(), expected, rel_tol=1e-6)


def test_no_target_sentence_pushes_all_scores_down():
    scores = torch.tensor([[1.0], [-2.0], [0.5]], requires_grad=True)
    out = {"pred_logits": scores, "pred_boxes": torch.rand(3, 4), "pred_masks": torch.zeros(3, 8, 8)}
    t = targets_of(torch.zeros(0, 4).tolist(), [])
    losses = SetCriterion(num_points=16)(out, t, is_sentence=True, num_masks=1.0)
    assert math.isclose(losses["cls/final"].item(), 0.1 * sp(scores.detach()[:, 0]).mean().item(), rel_tol=1e-6)
    assert losses["mask/final"].item() == 0 and losses["l1/final"].item() == 0
    weighted_total(losses, LossWeights()).backward()
    assert (scores.grad > 0).all()  # gradient descent lowers every score


def test_mask_losses_on_constant_logits_are_exact_for_any_points():
    k = 64
    out = {"pred_logits": torch.tensor([[3.0, 0.0]]), "pred_boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]]),
           "pred_masks": torch.zeros(1, 8, 8)}
    t = targets_of([[0.5, 0.5, 0.4, 0.4]], [0], masks=torch.ones(1, 8, 8))
    losses = SetCriterion(num_points=k)(out, t, is_sentence=False, num_masks=2.0)
    assert math.isclose(losses["mask/final"].item(), math.log(2) / 2, rel_tol=1e-6)
    assert math.isclose(losses["dice/final"].item(), (1 - (k + 1) / (1.5 * k + 1)) / 2, rel_tol=1e-6)


def test_box_only_and_stuff_targets_skip_their_losses():
    out = {"pred_logits": torch.zeros(2, 3), "pred_boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.4, 0.4]]),
           "pred_masks": torch.zeros(2, 8, 8)}
    # target 0: thing without mask, target 1: stuff with mask (masks tensor given but has_mask overridden below)
    t = targets_of([[0.5, 0.5, 0.2, 0.2], [0.9, 0.9, 0.1, 0.1]], [0, 1], masks=torch.ones(2, 8, 8), stuff=[False, True])
    t.has_mask = torch.tensor([False, True])
    losses = SetCriterion(num_points=32)(out, t, is_sentence=False, num_masks=2.0, num_thing_queries=1)
    assert abs(losses["l1/final"].item()) < 1e-7  # only the thing box (query 0, exact) is supervised
    assert math.isclose(losses["mask/final"].item(), math.log(2) / 2, rel_tol=1e-6)  # only the stuff mask


def test_all_prediction_sets_are_supervised_and_weighted_total():
    gen = torch.Generator().manual_seed(0)

    def preds(q):
        return {"pred_logits": torch.randn(q, 3, generator=gen),
                "pred_boxes": torch.rand(q, 4, generator=gen) * 0.5 + 0.2,
                "pred_masks": torch.randn(q, 8, 8, generator=gen)}

    out = preds(4) | {"aux_outputs": [preds(4), preds(4)], "enc_outputs": preds(4),
                      "dn_outputs": preds(4) | {"aux_outputs": [preds(4)]}}
    masks = (torch.rand(2, 8, 8, generator=gen) > 0.5).float()
    t = targets_of([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.2, 0.2]], [0, 1], masks=masks)
    dn = (torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 0, 1]))
    losses = SetCriterion(num_points=32)(out, t, False, 2.0, dn_match=dn, dn_num_groups=2)
    sets = {k.split("/")[1] for k in losses}
    assert sets == {"final", "aux0", "aux1", "enc", "dn", "dn_aux0"}
    w = LossWeights()
    expected = sum(getattr(w, k.split("/")[0]) * v for k, v in losses.items())
    torch.testing.assert_close(weighted_total(losses, w), expected)
    # dn class loss is plain CE on the dn queries with their known phrases (no background term)
    dn_logits = out["dn_outputs"]["pred_logits"]
    torch.testing.assert_close(losses["cls/dn"], F.cross_entropy(dn_logits, torch.tensor([0, 1, 0, 1])))


def test_lm_loss_only_on_response_positions():
    logits = torch.zeros(1, 4, 5)
    logits[0, 1, 3] = 2.0  # predicts token at position 2
    labels = torch.tensor([[-100, -100, 3, 4]])
    expected = (-torch.log_softmax(logits[0, 1], -1)[3] - torch.log_softmax(logits[0, 2], -1)[4]) / 2
    torch.testing.assert_close(lm_loss(logits, labels), expected)
    assert lm_loss(logits, torch.full((1, 4), -100)).item() == 0.0


def test_class_loss_is_divided_by_batch_size():
    out = {"pred_logits": torch.tensor([[2.0, 0.0], [0.0, 1.0]]), "pred_boxes": torch.rand(2, 4) * 0.5 + 0.2}
    t = targets_of([[0.5, 0.5, 0.2, 0.2]], [0])
    one = SetCriterion(num_points=16, generator=torch.Generator().manual_seed(0))(out, t, False, 1.0)
    four = SetCriterion(num_points=16, generator=torch.Generator().manual_seed(0))(out, t, False, 1.0, batch_size=4)
    torch.testing.assert_close(four["cls/final"] * 4, one["cls/final"])
    torch.testing.assert_close(four["l1/final"], one["l1/final"])
