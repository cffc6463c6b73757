"""Datasets: builders registered by name (``data.builder``) and record validation."""

from pipeline.data.builders import load_dataset
from pipeline.data.dataset import Dataset

__all__ = ["Dataset", "load_dataset"]
