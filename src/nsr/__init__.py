"""nsr: the decomposed-RLVR study (Zhu et al. 2025) as a reproducible pipeline."""

__version__ = "0.1.0"
