"""Prometheus metrics, one registry per app instance (no process-global state, so tests can run
several apps side by side)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            "callcoach_events_total", "Portal events by name and outcome", ["event", "outcome"], registry=r
        )
        self.jobs = Gauge("callcoach_jobs", "Jobs by state", ["state"], registry=r)
        self.queue_depth = Gauge("callcoach_queue_depth", "Jobs not yet finished", registry=r)
        self.job_transitions = Counter(
            "callcoach_job_transitions_total", "Jobs entering a state", ["state"], registry=r
        )
        self.stage_seconds = Histogram(
            "callcoach_stage_seconds", "Duration of a job stage", ["stage"], buckets=STAGE_BUCKETS, registry=r
        )
        self.rest_calls = Counter(
            "callcoach_rest_calls_total", "Bitrix24 REST calls by method", ["method"], registry=r
        )
        self.rest_errors = Counter(
            "callcoach_rest_errors_total",
            "Bitrix24 REST errors by method and code",
            ["method", "code"],
            registry=r,
        )
        self.rest_seconds = Histogram("callcoach_rest_seconds", "Bitrix24 REST call latency", registry=r)
        self.llm_seconds = Histogram(
            "callcoach_llm_seconds",
            "LLM request latency",
            ["backend", "outcome"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.gpu_memory = Gauge("callcoach_gpu_memory_bytes", "GPU memory in use by this process", registry=r)
        self.audio_seconds = Counter("callcoach_audio_seconds_total", "Seconds of audio analysed", registry=r)

    def on_rest(self, method: str, seconds: float, error: str | None) -> None:
        self.rest_calls.labels(method).inc()
        self.rest_seconds.observe(seconds)
        if error:
            self.rest_errors.labels(method, error).inc()

    def on_llm(self, backend: str, seconds: float, ok: bool) -> None:
        self.llm_seconds.labels(backend, "ok" if ok else "error").observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
