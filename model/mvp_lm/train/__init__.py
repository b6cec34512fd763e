"""Training for MVP-LM: matching, losses, denoising queries, batching, schedule and the training loop.

Run with `python -m mvp_lm.train --help`.
"""
