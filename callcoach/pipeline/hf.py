"""Loading Hugging Face classifiers strictly from local files (a path or the local HF cache)."""

from __future__ import annotations

import os
from typing import Any

from callcoach.pipeline.errors import ModelError


def load_classifier(model_ref: str) -> tuple[Any, Any]:
    # the hub is never contacted at run time: weights come from a folder or the local cache
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as exc:  # the [hf] extra is optional
        raise ModelError(f"{model_ref}: the transformers backend needs `pip install callcoach[hf]`") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_ref, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(model_ref, local_files_only=True)
    except Exception as exc:
        raise ModelError(
            f"{model_ref}: cannot load the classifier from local files ({exc.__class__.__name__}: {exc}); "
            "put the model folder on disk and point the setting at it"
        ) from exc
    model.eval()
    return model, tokenizer
