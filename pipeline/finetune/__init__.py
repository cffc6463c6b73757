"""The fine-tuning stage (between data and generators): LoRA-train a cell's checkpoint.

``finetune=lora`` trains ``model.checkpoint`` from the base model on the first ``train_size``
training examples with the generator's prompts (``pipeline.finetune.lora``);
``prompts`` renders those prompts and ``weights`` loads models, for both stages.
"""

from pipeline.finetune.lora import finetune

__all__ = ["finetune"]
