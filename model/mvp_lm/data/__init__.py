"""Data unification (paper §3.2): dataset converters → unified SFT records → per-iteration training samples."""
