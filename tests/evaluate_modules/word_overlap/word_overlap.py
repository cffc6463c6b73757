"""word_overlap: a worked example of a local ``evaluate`` metric module (see the README,
"Metrics from evaluate modules").

For each example, the share of the reference's distinct lower-cased words that the
prediction contains; ``compute`` returns only the corpus value (the mean over examples), so
the pipeline calls it once per example for per-example values (``per_example: true``).
"""

import datasets
import evaluate

_DESCRIPTION = "Share of the reference's distinct words found in the prediction (0-1)."
_KWARGS = """
Args:
    predictions: list of strings.
    references: list of strings (one reference per prediction).
Returns:
    overlap: mean over examples of |words(prediction) & words(reference)| / |words(reference)|.
"""


def _words(text: str) -> set[str]:
    return set(text.lower().split())


class WordOverlap(evaluate.Metric):
    """Reference word recall, averaged over examples."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}))

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        shares = [len(_words(p) & _words(r)) / max(len(_words(r)), 1)
                  for p, r in zip(predictions, references, strict=True)]
        return {"overlap": sum(shares) / max(len(shares), 1)}
