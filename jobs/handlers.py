"""Imports every module that registers outbox handlers (``@job``)."""

from jobs import permits  # noqa: F401
