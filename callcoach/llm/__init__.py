"""LLM backends (Gemini, OpenAI-compatible servers) behind one interface; see ``base`` and ``factory``."""

from callcoach.llm.base import ChatMessage, LatencyHook, LLMBackend, LLMError, LLMRequest, LLMUnavailable

__all__ = ["ChatMessage", "LLMBackend", "LLMError", "LLMRequest", "LLMUnavailable", "LatencyHook"]
