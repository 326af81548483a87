"""Bitrix24 CoPilot served by our LLM: callcoach as an AI provider of the portal (beside
``callcoach.llm``, which it uses; not part of the chat bot)."""
