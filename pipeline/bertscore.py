"""``python -m pipeline.bertscore FILE.jsonl``: the BERTScore engine's command line.

The engine lives in :mod:`pipeline.scoring.bertscore`; this module keeps the documented
command and the short import path ``from pipeline.bertscore import get_scorer``.
"""

from __future__ import annotations

import sys

from pipeline.scoring.bertscore import BertScorer, get_scorer
from pipeline.scoring.bertscore.__main__ import main

__all__ = ["BertScorer", "get_scorer", "main"]

if __name__ == "__main__":
    sys.exit(main())
