"""Imports every module that registers outbox handlers (``@job``)."""
