"""A seeded, deterministic synthetic perception benchmark (shapes on textured stuff) in COCO / RefCOCO / gRefCOCO
formats, small enough for the tiny model to train on CPU. `python -m mvp_lm.synth --help`."""
