"""The analyzer in a process of its own, for ``callcoach serve``.

Decoding, Whisper and the text classifiers are CPU work, much of it Python holding the GIL. In
the server's process they slowed the event loop that acknowledges the portal's events: every time
the loop thread woke it had to win the GIL back from the analysis thread (up to the 5 ms switch
interval each time), and an acknowledgement takes several wake-ups. In a child process they
share nothing with the loop but the CPU, and the child takes only the CPU left over (an idle CPU
group and ``SCHED_IDLE``, see ``priority.py``), so the acknowledgements come first on a busy
machine and the analysis takes the rest.

``IsolatedAnalyzer`` has the methods of ``Analyzer`` the app calls; each blocks its caller (the
app's analysis thread, never the loop) until the child answers. A child that dies (out of memory
on a hostile file, a crash in a decoder) fails that one call with a reason and is started afresh
for the next, so the worker goes on. The child also dies with the server: on Linux it asks the
kernel for SIGKILL when its parent goes, so a ``kill -9`` of the server leaves no orphan.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from callcoach.config import Settings
from callcoach.pipeline.errors import PipelineError
from callcoach.pipeline.models import Category, Findings, ProposedCategory
from callcoach.pipeline.priority import lowest_priority

log = logging.getLogger(__name__)

CLASSIFY_WAIT_S = 3.0

_child: Any = None  # the Analyzer inside the child process (one per child)
_priority = ""  # the child's claim on the CPU, in words (pipeline/priority.py)


def _start_child(settings: Settings) -> None:
    global _child, _priority
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:  # PR_SET_PDEATHSIG: die with the parent, even when it is killed with SIGKILL
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    _priority = lowest_priority(settings.analysis_cgroup)
    from callcoach.pipeline.analyzer import Analyzer

    _child = Analyzer(settings)


def _load() -> dict[str, Any]:
    _child.load()
    return {**_child.state(), "priority": _priority}


def _call(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return getattr(_child, method)(*args, **kwargs)


class IsolatedAnalyzer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._state: dict[str, Any] = {
            "whisper": {"model": settings.whisper_model, "loaded": False},
            "text_loaded": False,
            "process": "separate",
        }

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded server
                    initializer=_start_child,
                    initargs=(self.settings,),
                )
            return self._pool

    def _run(self, fn: Any, *args: Any, timeout: float | None = None) -> Any:
        future: Future[Any] = self._executor().submit(fn, *args)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise
        except BrokenProcessPool:
            with self._lock:  # the next call starts a fresh child (and loads the models again)
                if self._pool is not None:
                    self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                self._state = {**self._state, "text_loaded": False, "whisper": {"loaded": False}}
            raise PipelineError("the analysis process died while working on this call") from None

    # --- the Analyzer methods the app uses ----------------------------------------------------------
    def load(self) -> None:
        state = self._run(_load)
        self._state = {**state, "process": "separate"}

    def state(self) -> dict[str, Any]:
        return self._state

    def analyze_file(self, path: Path, **kwargs: Any) -> Findings:
        if not self._state.get("text_loaded"):
            self.load()  # a fresh child after a crash
        result: Findings = self._run(_call, "analyze_file", (Path(path),), kwargs)
        return result

    def classify_text(self, text: str, categories: Sequence[Category] | None = None) -> Any:
        # The bot asks this while a chat waits; behind a call's analysis in the child it would
        # wait minutes, so it gives up after a few seconds (the bot then ranks by word overlap).
        return self._run(_call, "classify_text", (text, categories), {}, timeout=CLASSIFY_WAIT_S)

    def propose_categories(
        self, quotes: Sequence[str], *, existing_codes: Sequence[str] = ()
    ) -> list[ProposedCategory]:
        result: list[ProposedCategory] = self._run(
            _call, "propose_categories", (list(quotes),), {"existing_codes": list(existing_codes)}
        )
        return result

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
