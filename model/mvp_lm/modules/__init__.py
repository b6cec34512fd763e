"""Building blocks of MVP-LM, one file per part."""
