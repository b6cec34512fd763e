"""One training forward pass of MVP-LM as a module, so DistributedDataParallel can wrap it.

image -> encoder; prompt+response ids -> LLM (image tokens spliced) -> LM loss on the response; per sample: pooled
phrase/sentence embeddings (+ the <PER> state in the paper variant) -> perception decoder -> set losses.
All queries (K text-selected + the stuff queries) always run, as in the exported graph; the first K may match
only things, so outside panoptic and semantic data the stuff queries learn "no object" (panoptic and semantic
inference use them; the other modes read the first K only).
"""
import torch
from torch import Tensor, nn

from ..model import MVPLM
from ..prompt import splice_image
from .collate import TrainBatch
from .denoising import build_denoising
from .losses import SetCriterion, lm_loss

VISION_KEYS = ("memory", "mask_features", "output_memory", "output_proposals", "proposal_valid")


def drop_batch_dim(outputs: dict, b: int) -> dict:
    """Image b of perceive's outputs, recursively (aux_outputs, enc_outputs, dn_outputs)."""
    out = {}
    for key, value in outputs.items():
        if isinstance(value, Tensor):
            out[key] = value[b]
        elif isinstance(value, dict):
            out[key] = drop_batch_dim(value, b)
        elif isinstance(value, list):
            out[key] = [drop_batch_dim(v, b) for v in value]
    return out


def vision_and_language(model: MVPLM, batch: TrainBatch) -> tuple[dict[str, Tensor], dict]:
    """The image encoder on the batch's images and the LLM over prompt + response with the image tokens spliced."""
    vision = model.encode_image(batch.pixel_values)
    embeds = splice_image(model.embed_tokens(batch.input_ids), vision["image_embeds"], batch.image_index)
    return vision, model.llm(embeds, batch.attention_mask, batch.position_ids)


def perception_inputs(model: MVPLM, batch: TrainBatch, llm: dict, b: int) -> tuple[Tensor, Tensor | None]:
    """Sample b's pooled phrase/sentence embeddings [1,P,H] and (paper variant) its <PER> state [1,H]."""
    paper = model.config.variant == "paper"
    hidden = llm["last_hidden_state"] if paper else llm["mean_hidden_states"]
    text = torch.stack([hidden[b, s:e].mean(0) for s, e in batch.phrase_spans[b]])[None]
    per_hidden = hidden[b, batch.per_positions[b]][None] if paper else None
    return text, per_hidden


class TrainingStep(nn.Module):
    def __init__(self, model: MVPLM, criterion: SetCriterion, stage: int, dn_queries: int, dn_noise: float):
        super().__init__()
        self.model, self.criterion, self.stage = model, criterion, stage
        self.dn_queries, self.dn_noise = dn_queries, dn_noise

    def forward(self, batch: TrainBatch, num_masks: float) -> dict[str, Tensor]:
        """Raw losses: "lm" and, in stage 2, "<component>/<prediction set>" summed over the batch's images."""
        model, cfg = self.model, self.model.config
        vision, llm = vision_and_language(model, batch)
        losses = {"lm": lm_loss(llm["logits"], batch.labels)}
        if self.stage == 1:  # alignment: the connector learns from the response (caption) alone
            return losses
        for b in range(batch.pixel_values.shape[0]):
            text, per_hidden = perception_inputs(model, batch, llm, b)
            is_sentence = batch.kinds[b] == "sentence"
            targets = batch.targets[b]
            dn = None
            if not is_sentence and self.dn_queries > 0:
                dn = build_denoising([targets], [model.phrase_projector(text[0])], cfg.num_total_queries,
                                     self.dn_queries, self.dn_noise)
            vision_b = {k: vision[k][b:b + 1] for k in VISION_KEYS}
            outputs = model.perceive(vision_b, text, is_sentence, per_hidden, dn.model_input() if dn else None)
            image_losses = self.criterion(
                drop_batch_dim(outputs, 0), targets, is_sentence, num_masks, batch_size=len(batch.kinds),
                num_thing_queries=cfg.decoder.num_queries, dn_match=dn.matches[0] if dn else None,
                dn_num_groups=dn.num_groups if dn else 0,
            )
            for key, value in image_losses.items():
                losses[key] = losses[key] + value if key in losses else value
        return losses
