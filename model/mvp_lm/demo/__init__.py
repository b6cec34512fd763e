"""The shipped demo MVP-LM: one seeded command that builds the synthetic benchmark, trains the tiny config (paper
variant, stage 1 then stage 2), exports the bundle to models/demo/, evaluates it on a held-out split and draws the
README pictures. `python -m mvp_lm.demo --help`; every step skips itself when its outputs exist."""
