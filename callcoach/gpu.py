"""GPU facts for metrics and limits. torch is optional (the `hf` extra); without it, or without
a GPU, these report nothing and limit nothing."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def _cuda_torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def memory_in_use() -> int | None:
    """Bytes in use on the current GPU, by every allocator in the process (CTranslate2's too)."""
    torch = _cuda_torch()
    if torch is None:
        return None
    free, total = torch.cuda.mem_get_info()
    return int(total - free)


def limit_memory(fraction: float) -> None:
    """Cap what PyTorch models (the Hugging Face classifiers) may take of the GPU. Whisper's
    CTranslate2 allocator is bounded by the batch size and the one analysis executor."""
    torch = _cuda_torch()
    if torch is None or not 0 < fraction < 1:
        return
    torch.cuda.set_per_process_memory_fraction(fraction)
    log.info("PyTorch GPU memory capped at %.0f%%", fraction * 100)
