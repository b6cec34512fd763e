"""Converters from the source datasets' own annotation formats to unified SFT records (see ..record).
Each `convert(...)` returns (records, negative-phrase pools by source)."""
