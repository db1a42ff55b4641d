"""Imports every module that registers outbox handlers (``@job``)."""

from jobs import documents, periodic  # noqa: F401
from jobs.push import handler  # noqa: F401
