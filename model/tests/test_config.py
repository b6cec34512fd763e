import json

import pytest

from mvp_lm.config import ConnectorConfig, MVPLMConfig, full, tiny


@pytest.mark.parametrize("make", [full, tiny])
@pytest.mark.parametrize("variant", ["paper", "released-code"])
def test_to_dict_from_dict_round_trip(make, variant):
    cfg = make(variant)
    d = json.loads(json.dumps(cfg.to_dict()))  # what the manifest stores
    assert MVPLMConfig.from_dict(d) == cfg


def test_full_preset_matches_design_note():
    cfg = full()
    assert (cfg.swin.embed_dim, cfg.swin.depths, cfg.swin.num_heads, cfg.swin.window_size) == \
        (128, (2, 2, 18, 2), (4, 8, 16, 32), 12)
    assert (cfg.phi.num_hidden_layers, cfg.phi.hidden_size, cfg.phi.num_attention_heads,
            cfg.phi.intermediate_size, cfg.phi.rotary_dim, cfg.phi.vocab_size) == (24, 2048, 32, 8192, 32, 51200)
    assert cfg.num_image_tokens == 256 and cfg.mask_size == 256
    assert cfg.level_shapes == [(16, 16), (32, 32), (64, 64), (128, 128)]
    assert cfg.num_memory_tokens == 21760
    assert (cfg.decoder.num_layers, cfg.decoder.num_queries, cfg.decoder.num_stuff_queries) == (9, 100, 100)
    assert cfg.pixel_decoder.num_layers == 6 and cfg.d_model == 256


def test_from_dict_names_unknown_field():
    d = tiny().to_dict()
    d["decoder"]["num_querys"] = 3
    with pytest.raises(ValueError, match=r"config\.decoder.*num_querys"):
        MVPLMConfig.from_dict(d)


def test_bad_variant_and_vocab_override():
    with pytest.raises(ValueError, match="variant"):
        MVPLMConfig(variant="other")
    assert tiny(vocab_size=3000).phi.vocab_size == 3000


def test_tiny_connector_keeps_the_res5_grid_and_old_manifests_keep_stride_2():
    cfg = tiny()
    assert cfg.connector.stride == 1 and cfg.num_image_tokens == 16  # 4×4 res5 at 128², not 4 tokens
    assert full().connector.stride == 2
    d = cfg.to_dict()
    del d["connector"]["stride"]  # a manifest written before the field existed
    assert MVPLMConfig.from_dict(d).num_image_tokens == 4
    with pytest.raises(ValueError, match="stride"):
        MVPLMConfig(connector=ConnectorConfig(stride=3))
