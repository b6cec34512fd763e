"""MVP-LM: Swin image encoder + connector + Phi LLM + pixel decoder + language-guided perception decoder.

The four methods map one-to-one onto the bundle graphs (model/BUNDLE.md): `encode_image` -> vision_encoder.onnx,
`embed_tokens` -> embed_tokens.onnx, `llm` -> decoder_model_merged.onnx, `perceive` -> perception_decoder.onnx.
None of them branches in Python on tensor values, so `torch.onnx.export` traces them as they are.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import MVPLMConfig
from .modules.connector import Connector
from .modules.decoder import Decoder
from .modules.heads import MLP, PredictionHeads
from .modules.phi import KVCache, PhiForCausalLM
from .modules.pixel_decoder import PixelDecoder
from .modules.query_gen import QueryGenerator, inverse_sigmoid
from .modules.swin import SwinTransformer


class MVPLM(nn.Module):
    def __init__(self, cfg: MVPLMConfig):
        super().__init__()
        self.config = cfg
        d, hidden = cfg.d_model, cfg.phi.hidden_size
        self.swin = SwinTransformer(cfg.swin, cfg.image_size)
        self.connector = Connector(cfg.swin.stage_channels[-1], cfg.connector.block_channels, hidden,
                                   repeat_conv2=cfg.variant == "released-code", stride=cfg.connector.stride)
        self.pixel_decoder = PixelDecoder(cfg)
        self.phi = PhiForCausalLM(cfg.phi)
        self.phrase_projector = nn.Linear(hidden, d)
        self.sentence_projector = nn.Linear(hidden, d)
        self.query_gen = QueryGenerator(cfg)
        self.decoder = Decoder(cfg)
        self.heads = PredictionHeads(d)
        self.stuff_query = nn.Embedding(cfg.decoder.num_stuff_queries, d)
        self.stuff_embed = nn.Embedding(cfg.decoder.num_stuff_queries, 4)  # reference boxes, inverse-sigmoid
        # paper variant: the LLM state at <PER> becomes K base queries added to the selected content queries
        self.base_query_mlp = MLP(hidden, d, cfg.decoder.num_queries * d, 2) if cfg.variant == "paper" else None

    # ---------------------------------------------------------------- vision_encoder.onnx
    def encode_image(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """pixel_values [B,3,S,S] (preprocessed) -> everything text-independent (BUNDLE.md names and shapes)."""
        feats = self.swin(pixel_values)
        memory, mask_features = self.pixel_decoder(feats)
        output_memory, output_proposals, proposal_valid = self.query_gen.encoder_output(memory)
        return {
            "image_embeds": self.connector(feats[-1]),
            "memory": memory,
            "mask_features": mask_features,
            "output_memory": output_memory,
            "output_proposals": output_proposals,
            "proposal_valid": proposal_valid,
        }

    # ---------------------------------------------------------------- embed_tokens.onnx
    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.phi.model.embed_tokens(input_ids)

    # ---------------------------------------------------------------- decoder_model_merged.onnx
    def llm(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
            past_key_values: KVCache | None = None) -> dict:
        """Keys: logits [B,T,V], present (list of (k,v) [B,h,past+T,d]), last_hidden_state, mean_hidden_states."""
        return self.phi(inputs_embeds, attention_mask, position_ids, past_key_values)

    # ---------------------------------------------------------------- perception_decoder.onnx
    def perceive(self, vision: dict[str, torch.Tensor], text_embeds: torch.Tensor, is_sentence,
                 per_hidden: torch.Tensor | None = None, dn: dict[str, torch.Tensor] | None = None,
                 with_stuff: bool = True) -> dict:
        """vision: encode_image's dict (image_embeds not needed); text_embeds [B,P,H] pooled LLM states (word
        tasks: the last phrase is "background"); is_sentence: bool or bool tensor [1]; per_hidden [B,H] (paper
        variant only); dn: denoising queries for training (content [B,Nd,D], ref_boxes [B,Nd,4] sigmoid,
        attn_mask [Nd+Q,Nd+Q] bool, True = blocked); with_stuff: append the learned stuff queries (always on in
        the exported graph; training may turn it off for non-panoptic data).

        Returns pred_logits [B,Q,P], pred_masks [B,Q,M,M], pred_boxes [B,Q,4] (sigmoid cxcywh, padded frame).
        In training mode also aux_outputs (earlier layers), enc_outputs (top-K before the decoder), and with
        `dn` dn_outputs (same keys, with its own aux_outputs).
        """
        cfg = self.config
        memory, mask_features = vision["memory"], vision["mask_features"]
        output_memory = vision["output_memory"]
        b = memory.shape[0]
        sentence = torch.as_tensor(is_sentence, dtype=torch.bool, device=memory.device).reshape(-1)[:1]
        text = torch.where(sentence, self.sentence_projector(text_embeds), self.phrase_projector(text_embeds))

        # score memory tokens by their best phrase; word tasks leave the trailing "background" phrase out
        sim = self.heads.logits(output_memory, text, sentence)
        is_last = F.pad(torch.zeros_like(sim[:1, :1, 1:]), (0, 1), value=1.0) > 0
        sim = sim.masked_fill(is_last & ~sentence, torch.finfo(sim.dtype).min)
        content, ref_unsig = self.query_gen.select(output_memory, vision["output_proposals"],
                                                   vision["proposal_valid"], sim.max(-1).values,
                                                   self.decoder.bbox_embed)
        # as in Mask DINO, the decoder starts from detached selections; enc_outputs trains the selection
        tgt, refs = content.detach(), ref_unsig.detach()
        if self.base_query_mlp is not None:
            if per_hidden is None:
                raise ValueError("perceive: the paper variant needs per_hidden (LLM state at <PER>)")
            tgt = tgt + self.base_query_mlp(per_hidden).view(b, cfg.decoder.num_queries, cfg.d_model)
        if with_stuff:
            tgt = torch.cat((tgt, self.stuff_query.weight[None].expand(b, -1, -1)), 1)
            refs = torch.cat((refs, self.stuff_embed.weight[None].expand(b, -1, -1)), 1)
        num_dn, attn_mask = 0, None
        if dn is not None:
            num_dn, attn_mask = dn["content"].shape[1], dn["attn_mask"]
            tgt = torch.cat((dn["content"], tgt), 1)
            refs = torch.cat((inverse_sigmoid(dn["ref_boxes"]), refs), 1)

        hs, refs_in = self.decoder(tgt, refs, memory, attn_mask)
        layers = range(len(hs)) if self.training else [len(hs) - 1]
        preds = [self._predict(hs[i], refs_in[i], text, sentence, mask_features) for i in layers]
        out = {k: v[:, num_dn:] for k, v in preds[-1].items()}
        if self.training:
            out["aux_outputs"] = [{k: v[:, num_dn:] for k, v in p.items()} for p in preds[:-1]]
            enc = self._predict(content, None, text, sentence, mask_features)
            enc["pred_boxes"] = ref_unsig.sigmoid()
            out["enc_outputs"] = enc
            if dn is not None:
                dn_preds = [{k: v[:, :num_dn] for k, v in p.items()} for p in preds]
                out["dn_outputs"] = dict(dn_preds[-1], aux_outputs=dn_preds[:-1])
        return out

    def _predict(self, h: torch.Tensor, ref: torch.Tensor | None, text: torch.Tensor, sentence: torch.Tensor,
                 mask_features: torch.Tensor) -> dict[str, torch.Tensor]:
        # the decoder already normed h; OpenSeeD's heads apply the same norm again, and trained weights expect it
        normed = self.decoder.norm(h)
        pred = {"pred_logits": self.heads.logits(normed, text, sentence),
                "pred_masks": self.heads.masks(normed, mask_features)}
        if ref is not None:
            pred["pred_boxes"] = (self.decoder.bbox_embed(h) + inverse_sigmoid(ref)).sigmoid()
        return pred

    # ---------------------------------------------------------------- export
    def fold_for_export(self) -> "MVPLM":
        """Eval mode with BatchNorm folded into the connector's convs (same outputs). Irreversible."""
        self.eval()
        self.connector.fold_batchnorm()
        return self
