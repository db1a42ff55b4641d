"""Imports every module that registers outbox handlers (``@job``)."""

from jobs import quiz  # noqa: F401
