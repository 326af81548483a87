"""Scaling out on Celery + RabbitMQ: the web tier (``callcoach serve``) publishes call jobs, and
``callcoach worker`` processes on any number of hosts run them.

The database keeps each job's state (as in the single process); a message only says "job 17 has
work for a worker of this kind". So a message may be lost, repeated or redelivered without harm:
a worker first takes the job's lease in the database (``storage/handoff.py``) and drops a message
whose job is finished or held by a live worker; the web tier's dispatcher publishes again any job
whose lease ran out (a worker killed mid-call, a message lost with a broker). The write-back keeps
its own exactly-once guard (intent stored, marker looked up), so a redelivered job never posts twice.

Two queues, so that a long analysis never holds up portal writes:

* ``<namespace>.analysis``: the first check, the recording's lookups and download, speech
  recognition and text analysis (the audio stays on the host that analyses it; GPU workers
  consume this queue);
* ``<namespace>.io``: the write-back (portal I/O only, any host).

A worker that consumes both queues (the default) carries a call through to its end itself: a job
moves to the other queue only when its worker does not take that kind of work.

Celery settings, and why:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only when its
  task ends, so a worker killed mid-call leaves it to the broker to redeliver;
* ``worker_prefetch_multiplier=1``: a worker reserves no more messages than it runs (the Celery
  docs' advice for long tasks), so other workers get the rest of the queue;
* a task never runs longer than ``broker_consumer_timeout_s`` (RabbitMQ's ``consumer_timeout``,
  30 min by default: an unacknowledged message held longer closes the channel). Set the broker's
  value above the longest analysis (docker-compose.yml sets 2 h);
* no result backend, no remote control, no events: nothing but the two queues is shared, so
  installations (or test runs) with different namespaces can share one broker.
"""

from __future__ import annotations

import logging
from typing import Any

from callcoach.config import ConfigError, Settings

log = logging.getLogger(__name__)

TASK = "callcoach.run_job"
ANALYSIS, IO = "analysis", "io"
KINDS = (ANALYSIS, IO)
# Which kind of worker runs a job in each state (terminal states are nobody's).
STATE_KIND = {
    "queued": ANALYSIS,
    "fetching": ANALYSIS,
    "transcribing": ANALYSIS,
    "posting": IO,
}


def kind_of(state: str) -> str:
    return STATE_KIND.get(state, IO)


def states_of(kind: str) -> tuple[str, ...]:
    return tuple(state for state, k in STATE_KIND.items() if k == kind)


def queue_name(settings: Settings, kind: str) -> str:
    return f"{settings.namespace}.{kind}"


def check_scale_out(settings: Settings) -> None:
    """What the scaled-out mode needs: PostgreSQL (every host shares the job table) and Redis (one
    REST budget per portal)."""
    if not settings.broker_url:
        return
    if not settings.broker_url.startswith(("amqp://", "amqps://", "pyamqp://")):
        raise ConfigError("CALLCOACH_BROKER_URL: expected amqp://user:password@host:5672/vhost (RabbitMQ)")
    if not settings.database_url.startswith(("postgresql", "postgres://")):
        raise ConfigError(
            "CALLCOACH_DATABASE_URL: PostgreSQL is required when CALLCOACH_BROKER_URL is set "
            "(the web tier and the workers on other hosts share one job table; SQLite cannot be shared)"
        )
    if not settings.redis_url:
        raise ConfigError(
            "CALLCOACH_REDIS_URL: required when CALLCOACH_BROKER_URL is set (all processes share one "
            "REST budget per portal in Redis)"
        )


def make_celery(settings: Settings) -> Any:
    """The Celery app of one installation (built per process, never a module global)."""
    from celery import Celery
    from kombu import Queue

    app = Celery(settings.namespace, broker=settings.broker_url, set_as_current=False)
    queues = [Queue(queue_name(settings, kind), routing_key=queue_name(settings, kind)) for kind in KINDS]
    app.conf.update(
        task_queues=queues,
        task_default_queue=queue_name(settings, IO),
        task_create_missing_queues=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,  # a failed task's state is in the database already
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,  # the broker redelivers them
        task_ignore_result=True,
        result_backend=None,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        enable_utc=True,
    )
    return app


class Publisher:
    """Publishes "job N has work for a worker of kind K" (blocking kombu calls, one at a time on a
    thread of their own: the event loop never waits on the broker)."""

    def __init__(self, settings: Settings, app: Any | None = None) -> None:
        import concurrent.futures

        self.settings = settings
        self.app = app or make_celery(settings)
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish")
        self.published = 0

    def publish_now(self, job_id: int, kind: str) -> None:
        self.app.send_task(
            TASK,
            args=[job_id, kind],
            queue=queue_name(self.settings, kind),
            routing_key=queue_name(self.settings, kind),
            retry=True,
            retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        )
        self.published += 1

    async def publish(self, job_id: int, kind: str) -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(self._thread, self.publish_now, job_id, kind)

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each queue (for health and the bench)."""
        depths: dict[str, int] = {}
        with self.app.connection_for_write() as conn:
            channel = conn.default_channel
            for kind in KINDS:
                try:
                    declared = channel.queue_declare(queue_name(self.settings, kind), passive=True)
                    depths[kind] = int(declared.message_count)
                except Exception:  # not declared yet
                    depths[kind] = 0
                    channel = conn.channel()
        return depths

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self.app.close()
