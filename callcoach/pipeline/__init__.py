"""Audio -> transcript -> findings. ``Analyzer`` is the entry point; see analyzer.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from callcoach.pipeline.errors import AudioError, ModelError, PipelineError

if TYPE_CHECKING:
    from callcoach.pipeline.analyzer import Analyzer

__all__ = ["Analyzer", "AudioError", "ModelError", "PipelineError"]


def __getattr__(name: str) -> Any:  # heavy imports only when the analyzer is actually used
    if name == "Analyzer":
        from callcoach.pipeline.analyzer import Analyzer

        return Analyzer
    raise AttributeError(name)
