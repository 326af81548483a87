"""Errors the pipeline raises; callers catch ``PipelineError`` and store the message."""

from __future__ import annotations


class PipelineError(Exception):
    """Analysis of one recording failed; the message says why in words a person can act on."""


class AudioError(PipelineError):
    """The recording cannot be used: empty, not audio, damaged, or too long."""


class ModelError(PipelineError):
    """A model could not be found or loaded (the message names the setting to change)."""
