"""What fine-tuning shows while it runs: progress (steps, tokens/s, ETA; a bar on a
terminal) and one formatted log line per logged step instead of the Trainer's raw dicts::

    finetune: step 3/10, loss 2.4127, grad_norm 1.913, learning_rate 1.4e-04, epoch 0.30
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipeline.core.progress import Progress

log = logging.getLogger("pipeline.finetune")

SHOWN = ("loss", "grad_norm", "learning_rate", "epoch")  # in this order, when logged


def _number(key: str, value: float) -> str:
    if key == "learning_rate":
        return f"{value:.1e}"
    if key == "epoch":
        return f"{value:.2f}"
    return f"{value:.4f}" if key == "loss" else f"{value:.3f}"


def log_line(logs: Mapping[str, Any], step: int, max_steps: int) -> str | None:
    """The line of one Trainer log entry (None for entries without a loss, such as the
    final summary, which :func:`summary_line` formats)."""
    if "loss" not in logs:
        return None
    shown = ", ".join(f"{k} {_number(k, float(logs[k]))}" for k in SHOWN if k in logs)
    return f"finetune: step {step}/{max_steps}, {shown}"


def summary_line(logs: Mapping[str, Any]) -> str | None:
    """The line of the Trainer's end-of-training entry (``train_loss``, ``train_runtime``)."""
    if "train_loss" not in logs:
        return None
    return (f"finetune: done, mean loss {float(logs['train_loss']):.4f} in "
            f"{float(logs.get('train_runtime', 0)):.1f} s")


def feedback_callback() -> Any:
    """A ``TrainerCallback`` showing progress and logging formatted loss lines."""
    from transformers import TrainerCallback

    class Feedback(TrainerCallback):  # type: ignore[misc]
        progress: Progress | None = None
        tokens = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.progress = Progress("finetune", int(state.max_steps), unit="steps")
            self.progress.done = int(state.global_step)  # resumed from a checkpoint
            self.progress.__enter__()
            self.tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            if self.progress is not None:
                self.progress.update(1, tokens=seen - self.tokens)
            self.tokens = seen

        def on_log(self, args: Any, state: Any, control: Any,
                   logs: Mapping[str, Any] | None = None, **kw: Any) -> None:
            line = log_line(logs or {}, int(state.global_step), int(state.max_steps))
            line = line or summary_line(logs or {})
            if line:
                log.info("%s", line)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.progress is not None:
                self.progress.__exit__(None, None, None)
                self.progress = None

    return Feedback()
