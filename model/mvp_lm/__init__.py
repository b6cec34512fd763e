"""MVP-LM: multi-granularity visual perception with a language model (PyTorch reference implementation)."""
from .config import MVPLMConfig, full, tiny
from .model import MVPLM

__all__ = ["MVPLM", "MVPLMConfig", "full", "tiny"]
