"""All models are imported here so Alembic and the app see one complete metadata."""

from core.db import Base
from models import identity, jobs, platform

__all__ = ["Base", "identity", "jobs", "platform"]
