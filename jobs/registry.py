"""Registry of outbox kinds: the handler that runs it, its queue, timeout and retries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs.queues import DEFAULT, QUEUES


class JobError(Exception):
    """Base for errors a handler raises to steer retries."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(JobError):
    """Retry later with backoff (network, rate limits, a dependency down)."""


class PermanentError(JobError):
    """Never retry (bad openid, user refused, the row is gone): record and stop."""


@dataclass(frozen=True)
class JobSpec:
    kind: str
    func: Callable[..., Any]
    queue: str
    timeout: int
    max_attempts: int
    #: True for handlers that talk to the outside world without an idempotency key
    #: (push sends): a worker that died mid-run may have delivered, so the row is
    #: failed with a reason instead of being run again.
    external_send: bool = False
    #: ``on_failure(session, item, reason)`` runs in the transaction that marks the row
    #: failed for good (permanent error, attempts exhausted, died mid-send), so the
    #: domain row (e.g. a notification) records the same reason.
    on_failure: Callable[..., None] | None = None


_SPECS: dict[str, JobSpec] = {}


def job(
    kind: str,
    *,
    queue: str = DEFAULT,
    timeout: int | None = None,
    max_attempts: int = 5,
    external_send: bool = False,
    on_failure: Callable[..., None] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(session, item) -> dict | None`` as the handler of ``kind``."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        _SPECS[kind] = JobSpec(
            kind, func, queue, timeout or QUEUES[queue], max_attempts, external_send, on_failure
        )
        return func

    return decorator


_WARMUPS: list[Callable[[], Any]] = []


def warmup(func: Callable[[], Any]) -> Callable[[], Any]:
    """Register ``func()`` to run once in a worker before it forks work-horses, so
    expensive caches (fonts, QR encoders, imports) are inherited instead of rebuilt for
    every job (RQ forks a fresh process per job)."""
    _WARMUPS.append(func)
    return func


def run_warmups() -> None:
    _load_handlers()
    for func in _WARMUPS:
        func()


def spec_for(kind: str) -> JobSpec:
    _load_handlers()
    try:
        return _SPECS[kind]
    except KeyError:
        raise KeyError(f"no job handler registered for outbox kind {kind!r}") from None


def all_specs() -> dict[str, JobSpec]:
    _load_handlers()
    return dict(_SPECS)


def _load_handlers() -> None:
    # Handlers register themselves on import; importing the package list once is enough.
    import jobs.handlers  # noqa: F401
