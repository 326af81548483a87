"""Fitting a request into the model's context window.

Tokens are estimated, not counted: no tokenizer ships with the app, and for Russian text the common
tokenizers (Gemini, Llama, Qwen) give roughly one token per 2.5-3.5 characters, so
``ceil(chars / 3) + 4`` per message (the 4 covers role markers) is a slightly pessimistic estimate
that errs on the side of sending less.

What is kept, in order of importance:

1. the system instruction and the last message (the question being asked) - never dropped;
2. earlier turns, newest first - the oldest context is dropped first, whole messages at a time;
3. if the system instruction and the question alone are still too long, the question loses its
   middle (the start usually says what is asked, the end holds the latest text), and only if that
   is not enough the system instruction loses its middle too. A cut is marked with ``[…]``.

The window also has to hold the answer: ``max_tokens`` (or an eighth of the window when unset) is
reserved for it, capped at half the window so a greedy ``max_tokens`` cannot starve the prompt.
"""

from __future__ import annotations

import math
from dataclasses import replace

from callcoach.llm.base import ChatMessage, LLMRequest

CHARS_PER_TOKEN = 3
MESSAGE_OVERHEAD_TOKENS = 4
CUT_MARK = "\n[…]\n"


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_request_tokens(request: LLMRequest) -> int:
    total = sum(estimate_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in request.messages)
    if request.system:
        total += estimate_tokens(request.system) + MESSAGE_OVERHEAD_TOKENS
    return total


def input_budget(context_limit: int, max_tokens: int | None) -> int:
    """Tokens left for the prompt once the answer's share is reserved."""
    reserve = max_tokens if max_tokens and max_tokens > 0 else context_limit // 8
    return context_limit - min(reserve, context_limit // 2)


def cut_middle(text: str, max_tokens: int) -> str:
    """Keep the head and the tail of ``text`` within ``max_tokens``, marking the cut."""
    if estimate_tokens(text) <= max_tokens:
        return text
    keep = max(0, max_tokens * CHARS_PER_TOKEN - len(CUT_MARK))
    head = keep // 2
    tail = keep - head
    return text[:head] + CUT_MARK + (text[-tail:] if tail else "")


def fit_to_context(request: LLMRequest, context_limit: int) -> LLMRequest:
    """Return ``request`` unchanged when it fits, otherwise a trimmed copy (see module doc)."""
    budget = input_budget(context_limit, request.max_tokens)
    if estimate_request_tokens(request) <= budget or not request.messages:
        return request

    *history, last = request.messages
    system_cost = (estimate_tokens(request.system) + MESSAGE_OVERHEAD_TOKENS) if request.system else 0
    last_cost = estimate_tokens(last.content) + MESSAGE_OVERHEAD_TOKENS
    room = budget - system_cost - last_cost

    # Newest history first; stop at the first turn that does not fit so the kept turns stay contiguous.
    kept: list[ChatMessage] = []
    for message in reversed(history):
        cost = estimate_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS
        if cost > room:
            break
        kept.append(message)
        room -= cost
    kept.reverse()
    if room >= 0:
        return replace(request, messages=[*kept, last])

    # Only the system instruction and the question remain and they are still too long.
    system = request.system
    text_budget = budget - MESSAGE_OVERHEAD_TOKENS * (2 if system else 1)
    system_tokens = estimate_tokens(system) if system else 0
    question_share = max(text_budget - system_tokens, text_budget // 2)
    question = cut_middle(last.content, question_share)
    if system:
        system = cut_middle(system, max(0, text_budget - estimate_tokens(question)))
    return replace(request, system=system, messages=[ChatMessage(last.role, question)])
