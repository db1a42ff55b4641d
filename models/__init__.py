"""All models are imported here so Alembic and the app see one complete metadata."""

from core.db import Base
from models import identity, jobs, passes, permits, platform, quiz

__all__ = ["Base", "identity", "jobs", "passes", "permits", "platform", "quiz"]
