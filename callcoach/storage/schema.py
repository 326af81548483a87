"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/versions`` create them; this
module is what queries are written against. Times are epoch seconds (float) so that SQLite and
PostgreSQL compare them the same way."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

portals = Table(
    "portals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("member_id", String(64), nullable=False, unique=True),
    Column("domain", String(255), nullable=False),
    Column("mode", String(16), nullable=False, default="app"),  # app | webhook
    Column("client_endpoint", String(512), nullable=False),
    Column("server_endpoint", String(512), nullable=False, default=""),
    Column("access_token", Text, nullable=False, default=""),
    Column("refresh_token", Text, nullable=False, default=""),
    Column("expires_at", Float, nullable=False, default=0.0),
    Column("application_token", String(128), nullable=False, default=""),
    Column("scope", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False, default="installed"),  # installed | uninstalled
    Column("ai_secret", String(64), nullable=True, unique=True),
    Column("bot_id", Integer, nullable=True),
    Column("bot_event_offset", Integer, nullable=False, default=0),
    Column("last_sweep_at", Float, nullable=True),
    Column("installed_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Every accepted event, stored before the 200 goes out: the durable record the jobs come from.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("portal_id", Integer, ForeignKey("portals.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("processed_at", Float, nullable=True),
    Index("ix_events_unprocessed", "processed_at", "id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("portal_id", Integer, ForeignKey("portals.id", ondelete="CASCADE"), nullable=False),
    Column("call_id", String(128), nullable=False),
    Column("source", String(16), nullable=False, default="event"),  # event | sweep | backfill
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("record_polls", Integer, nullable=False, default=0),
    Column("next_run_at", Float, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("call", JSON, nullable=False),  # the call's facts: event data merged with the statistic row
    Column("manager_id", Integer, nullable=True),
    Column("call_type", Integer, nullable=True),
    Column("call_start", Float, nullable=True),
    Column("duration", Float, nullable=True),
    Column("entity_type", String(16), nullable=True),
    Column("entity_id", Integer, nullable=True),
    Column("audio_path", Text, nullable=True),
    Column("audio_sha256", String(64), nullable=True),
    Column("findings", JSON, nullable=True),
    Column("comment_id", Integer, nullable=True),
    Column("done_steps", JSON, nullable=False, default=list),  # write-back steps already done
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    UniqueConstraint("portal_id", "call_id", name="uq_jobs_portal_call"),
    Index("ix_jobs_runnable", "state", "next_run_at"),
    Index("ix_jobs_call_start", "portal_id", "call_start"),
)

categories = Table(
    "categories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("portal_id", Integer, ForeignKey("portals.id", ondelete="CASCADE"), nullable=True),
    Column("code", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("examples", JSON, nullable=False, default=list),
    Column("recommendation", Text, nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("portal_id", "code", name="uq_categories_portal_code"),
)

# Client objections that fit no category, kept for grouping into proposals.
candidates = Table(
    "candidates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("portal_id", Integer, ForeignKey("portals.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=True),
    Column("quote", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("proposal_id", Integer, ForeignKey("proposals.id", ondelete="SET NULL"), nullable=True),
)

proposals = Table(
    "proposals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("portal_id", Integer, ForeignKey("portals.id", ondelete="CASCADE"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("examples", JSON, nullable=False, default=list),
    Column("size", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False, default="proposed"),  # proposed|accepted|rejected
    Column("decided_by", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
)
