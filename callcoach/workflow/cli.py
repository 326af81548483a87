"""``callcoach backfill`` (enqueue a period's calls) and ``callcoach purge`` (remove a portal's data)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tqdm import tqdm

from callcoach.config import Settings
from callcoach.portal_clients import PortalClients
from callcoach.storage import Store
from callcoach.workflow.retention import purge_portal
from callcoach.workflow.sweep import sweep_portal


def register(sub: Any) -> None:
    backfill = sub.add_parser(
        "backfill", help="find a period's calls on the portal(s) and queue them for analysis"
    )
    backfill.add_argument(
        "--from", dest="date_from", type=date.fromisoformat, required=True, help="YYYY-MM-DD"
    )
    backfill.add_argument(
        "--to", dest="date_to", type=date.fromisoformat, required=True, help="YYYY-MM-DD, inclusive"
    )
    backfill.add_argument("--portal", help="the portal's domain (default: every installed portal)")
    backfill.set_defaults(func=run_backfill)

    purge = sub.add_parser(
        "purge", help="remove a portal's data (calls, recordings; all of it without --before)"
    )
    purge.add_argument("--portal", required=True, help="the portal's domain or member_id")
    purge.add_argument("--before", type=date.fromisoformat, help="only calls before this day (YYYY-MM-DD)")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=run_purge)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def run_backfill(args: argparse.Namespace, settings: Settings) -> int:
    if args.date_to < args.date_from:
        print("callcoach backfill: --to is before --from", file=sys.stderr)
        return 2
    return asyncio.run(_backfill(args, settings))


async def _backfill(args: argparse.Namespace, settings: Settings) -> int:
    store = await Store.open(settings.effective_database_url)
    try:
        from callcoach.services import http_session, register_webhook_portal

        async with http_session(settings) as session:
            if settings.webhook_url:
                await register_webhook_portal(settings, store)
            clients = PortalClients(settings, session, store.portals)
            portals = await store.portals.installed()
            if args.portal:
                portals = [p for p in portals if args.portal in (p.domain, p.member_id)]
                if not portals:
                    print(f"callcoach backfill: no installed portal {args.portal!r}", file=sys.stderr)
                    return 1
            since, until = _day_start(args.date_from), _day_start(args.date_to + timedelta(days=1))
            total = 0
            for portal in portals:
                with tqdm(desc=portal.domain, unit=" calls", file=sys.stderr) as bar:
                    added = await sweep_portal(
                        store,
                        clients.for_portal(portal),
                        portal,
                        since=since,
                        until=until,
                        source="backfill",
                        progress=bar.update,
                    )
                print(f"{portal.domain}: {added} calls queued")
                total += added
            print(f"{total} calls queued; `callcoach serve` analyses them")
            return 0
    finally:
        await store.close()


def run_purge(args: argparse.Namespace, settings: Settings) -> int:
    what = f"calls before {args.before}" if args.before else "ALL data"
    if not args.yes:
        if not sys.stdin.isatty():
            print("callcoach purge: add --yes to confirm", file=sys.stderr)
            return 2
        if input(f"Remove {what} of {args.portal}? [y/N] ").strip().lower() not in ("y", "yes", "д", "да"):
            return 1
    return asyncio.run(_purge(args, settings))


async def _purge(args: argparse.Namespace, settings: Settings) -> int:
    store = await Store.open(settings.effective_database_url)
    try:
        before = _day_start(args.before).timestamp() if args.before else None
        try:
            removed = await purge_portal(store, args.portal, before=before)
        except LookupError as exc:
            print(f"callcoach purge: {exc}", file=sys.stderr)
            return 1
        print(f"removed {removed} calls of {args.portal}")
        return 0
    finally:
        await store.close()
