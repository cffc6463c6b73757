"""Multi-model comparison pipeline: sweep models x training sizes, score, rank."""

__version__ = "0.1.0"
