"""The Phi LLM: KV-cache decoding equals a full-sequence forward; padding; pooled hidden states."""
import torch

from mvp_lm import MVPLM, tiny


def _model():
    return MVPLM(tiny("paper")).eval()


def _run(m, embeds, mask, pos, past=None):
    with torch.no_grad():
        return m.llm(embeds, mask, pos, past)


def test_incremental_decode_matches_full_forward():
    m = _model()
    b, t, h = 2, 12, m.config.phi.hidden_size
    embeds = torch.randn(b, t, h)
    mask = torch.ones(b, t, dtype=torch.long)
    pos = torch.arange(t)[None].expand(b, -1)
    full = _run(m, embeds, mask, pos)
    # prefill 7 tokens, then one token at a time
    out = _run(m, embeds[:, :7], mask[:, :7], pos[:, :7])
    steps = [out]
    past = out["present"]
    for i in range(7, t):
        out = _run(m, embeds[:, i:i + 1], mask[:, :i + 1], pos[:, i:i + 1], past)
        past = out["present"]
        steps.append(out)
    for key in ("logits", "last_hidden_state", "mean_hidden_states"):
        inc = torch.cat([s[key] for s in steps], 1)
        assert (inc - full[key]).abs().max() < 1e-5, key
    for (k, v), (fk, fv) in zip(past, full["present"]):
        assert k.shape == (b, m.config.phi.num_attention_heads, t, m.config.phi.head_dim)
        assert (k - fk).abs().max() < 1e-5 and (v - fv).abs().max() < 1e-5


def test_empty_past_equals_no_past():
    m = _model()
    cfg = m.config.phi
    embeds = torch.randn(1, 5, cfg.hidden_size)
    mask, pos = torch.ones(1, 5, dtype=torch.long), torch.arange(5)[None]
    empty = [(torch.zeros(1, cfg.num_attention_heads, 0, cfg.head_dim),) * 2 for _ in range(cfg.num_hidden_layers)]
    a, b = _run(m, embeds, mask, pos), _run(m, embeds, mask, pos, empty)
    assert (a["logits"] - b["logits"]).abs().max() < 1e-6


def test_left_padding_is_ignored():
    m = _model()
    h = m.config.phi.hidden_size
    embeds = torch.randn(1, 6, h)
    ref = _run(m, embeds, torch.ones(1, 6, dtype=torch.long), torch.arange(6)[None])
    padded = torch.cat((torch.randn(1, 3, h), embeds), 1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1]])
    pos = torch.tensor([[0, 0, 0, 0, 1, 2, 3, 4, 5]])
    out = _run(m, padded, mask, pos)
    assert (out["logits"][:, 3:] - ref["logits"]).abs().max() < 1e-5


def test_mean_hidden_states_is_mean_of_l_plus_1_states():
    m = _model()
    phi = m.phi
    embeds = torch.randn(1, 4, m.config.phi.hidden_size)
    mask, pos = torch.ones(1, 4, dtype=torch.long), torch.arange(4)[None]
    out = _run(m, embeds, mask, pos)
    # recompute the hidden states one layer at a time through the public per-layer modules
    states = [embeds]
    x = embeds
    causal = torch.ones(4, 4, dtype=torch.bool).tril()[None, None]
    cos, sin = phi.model.rotary_emb(pos)
    with torch.no_grad():
        for layer in phi.model.layers:
            x, _ = layer(x, cos, sin, causal, None)
            states.append(x)
        states[-1] = phi.model.final_layernorm(x)
    assert len(states) == m.config.phi.num_hidden_layers + 1
    torch.testing.assert_close(out["mean_hidden_states"], torch.stack(states).mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["last_hidden_state"], states[-1])


def test_partial_rotary_leaves_pass_through_dims_position_free():
    # only the first rotary_dim dims of each head are rotated; the rest pass through unchanged
    from mvp_lm.modules.phi import _apply_rotary
    m = _model()
    cfg = m.config.phi
    x = torch.randn(1, cfg.num_attention_heads, 3, cfg.head_dim)
    cos, sin = m.phi.model.rotary_emb(torch.tensor([[5, 6, 7]]))
    y = _apply_rotary(x, cos, sin)
    assert torch.equal(y[..., cfg.rotary_dim:], x[..., cfg.rotary_dim:])
    assert not torch.allclose(y[..., :cfg.rotary_dim], x[..., :cfg.rotary_dim])
