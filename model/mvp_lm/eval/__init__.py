"""Perception metrics: PQ/SQ/RQ, semantic mIoU, box/mask AP (COCOeval), RES cIoU/mIoU, REC Acc@0.5, gRES
cIoU/gIoU/N-acc, caption BLEU-4 and token F1. `python -m mvp_lm.eval --help`."""
