"""Database access: one Database handle and a repository per concern."""

from callcoach.storage.categories import CategoryRepo, Proposal
from callcoach.storage.db import Database
from callcoach.storage.events import EventRepo
from callcoach.storage.jobs import Job, JobRepo
from callcoach.storage.portals import Portal, PortalRepo


class Store:
    """The repositories over one database, handed around as a unit."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.portals = PortalRepo(db)
        self.events = EventRepo(db)
        self.jobs = JobRepo(db)
        self.categories = CategoryRepo(db)

    @classmethod
    async def open(cls, url: str) -> "Store":
        db = Database(url)
        await db.migrate()
        return cls(db)

    async def close(self) -> None:
        await self.db.close()


__all__ = [
    "CategoryRepo",
    "Database",
    "EventRepo",
    "Job",
    "JobRepo",
    "Portal",
    "PortalRepo",
    "Proposal",
    "Store",
]
