import math

import torch

from mvp_lm.train.schedule import build_optimizer, build_scheduler, lr_factor


def test_warmup_then_cosine_to_zero():
    total = 100  # warmup = ceil(3) = 3 steps
    f = [lr_factor(s, total) for s in range(total)]
    assert f[:3] == [1 / 3, 2 / 3, 1.0]
    assert f[3] == 1.0 and all(a >= b for a, b in zip(f[3:], f[4:]))
    assert math.isclose(lr_factor(3 + 97 // 2, total), 0.5 * (1 + math.cos(math.pi * (48 / 97))), rel_tol=1e-9)
    assert lr_factor(total, total) == 0.0


def test_optimizer_groups_and_scheduler():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    model[1].weight.requires_grad_(False)
    opt = build_optimizer(model, lr=0.1, weight_decay=0.05)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.05 and [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 2  # linear bias, layernorm bias
    sched = build_scheduler(opt, total_steps=10)  # warmup 1 step
    assert math.isclose(opt.param_groups[0]["lr"], 0.1)
    opt.step(); sched.step()
    assert math.isclose(opt.param_groups[0]["lr"], 0.1 * lr_factor(1, 10))
