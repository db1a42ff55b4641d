"""Notification kinds: what a message of a kind says on each channel.

A kind is configuration data registered by the domain that sends it (e.g. the permits
domain registers ``permit.expiring``): a Chinese title and text (customer-service,
DingTalk and console), and optionally an official-account template and a mini-program
subscribe template with the mapping from template fields to data keys. Template ids
are the ones approved in the WeChat console for this deployment.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from models.jobs import Channel

#: Preference order when the kind does not say otherwise: a subscribe message if the
#: person gave consent, else a template message, else DingTalk, else customer service.
DEFAULT_CHANNELS: tuple[Channel, ...] = (
    Channel.wechat_subscribe,
    Channel.wechat_template,
    Channel.dingtalk_work,
    Channel.wechat_custom,
)


@dataclass(frozen=True)
class PushKind:
    kind: str
    title: str
    text: str  # str.format template over the data keys
    oa_template_id: str | None = None
    oa_fields: dict[str, str] = field(default_factory=dict)  # template field -> data key
    mp_template_id: str | None = None
    mp_fields: dict[str, str] = field(default_factory=dict)
    page: str | None = None  # mini-program page opened from the message
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS

    def keys(self) -> set[str]:
        names = {f for _, f, _, _ in string.Formatter().parse(self.text) if f}
        return names | set(self.oa_fields.values()) | set(self.mp_fields.values())

    def render(self, data: dict[str, Any]) -> dict[str, Any]:
        """The content stored on the notification; ValueError if a data key is missing."""
        missing = sorted(k for k in self.keys() if k not in data)
        if missing:
            raise ValueError(f"notification {self.kind!r} needs data keys {missing}")
        values = {k: str(v) for k, v in data.items()}
        return {
            "title": self.title,
            "text": self.text.format(**values),
            "oa": {f: values[k] for f, k in self.oa_fields.items()},
            "mp": {f: values[k][:20] for f, k in self.mp_fields.items()},  # thing.DATA ≤ 20 chars
            "page": self.page,
        }


_KINDS: dict[str, PushKind] = {}


def register_kind(kind: PushKind) -> PushKind:
    """Register (or replace) a notification kind; domains call this from their job module."""
    _KINDS[kind.kind] = kind
    return kind


def push_kind(kind: str) -> PushKind:
    _load()
    try:
        return _KINDS[kind]
    except KeyError:
        raise KeyError(f"no notification kind registered as {kind!r}") from None


def subscribe_template_ids() -> set[str]:
    _load()
    return {k.mp_template_id for k in _KINDS.values() if k.mp_template_id}


def _load() -> None:
    # Kinds are registered next to the domains' job handlers; load those once.
    from jobs.registry import all_specs

    all_specs()
