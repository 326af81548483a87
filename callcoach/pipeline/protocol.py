"""What the app needs of an analyzer. ``Analyzer`` (in this process), ``IsolatedAnalyzer`` (in a
child process) and the tests' light stand-ins all implement it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from callcoach.pipeline.models import Category, Findings, ProposedCategory


class CallAnalyzer(Protocol):
    def load(self) -> None:
        """Load the models (slow: the app runs it off the event loop)."""

    def state(self) -> dict[str, Any]:
        """What is loaded, for /healthz."""

    def analyze_file(self, path: Path, *, categories: Sequence[Category] | None = None) -> Findings: ...

    def classify_text(
        self, text: str, categories: Sequence[Category] | None = None
    ) -> list[tuple[Category, float]]: ...

    def propose_categories(
        self, quotes: Sequence[str], *, existing_codes: Sequence[str] = ()
    ) -> list[ProposedCategory]: ...
