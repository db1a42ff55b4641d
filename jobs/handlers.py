"""Imports every module that registers outbox handlers (``@job``)."""

import jobs.passes  # noqa: F401
