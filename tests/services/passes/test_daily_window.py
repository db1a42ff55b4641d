"""The daily window of a version-2 pass token, checked in the event's local time (no
database): each visit day, across a daylight-saving change, exits exempt."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core import signing
from services.passes import checks

KEYRING = signing.KeyRing([signing.generate_key(kid="kid-1")])
BERLIN, SHANGHAI = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Shanghai")
FIRST = datetime(2026, 3, 27, 9, 0, tzinfo=BERLIN)  # DST starts on the 29th
LAST = datetime(2026, 3, 30, 17, 0, tzinfo=BERLIN)


def _claims(window=(9 * 60, 17 * 60)):
    token = signing.encode_token(
        kind=checks.KIND_PERSON_PASS, object_id=5, scope_id=3, zone=1, ring=KEYRING,
        not_before=int(FIRST.timestamp()), not_after=int(LAST.timestamp()), daily_window=window,
    )  # fmt: skip
    return checks.verify_pass_token(token, KEYRING.verifier, 3, cache=None)


def _check(claims, at: datetime, *, tz=BERLIN, direction="in", leeway=0):
    refusal = checks.after_revocation(
        claims,
        gate_ring=1,
        now=int(at.timestamp()),
        leeway=leeway,
        holder_read=None,
        tz=tz,
        direction=direction,
    )
    return refusal and (refusal.reason, refusal.detail)


@pytest.mark.parametrize("day", [27, 28, 29, 30])
def test_each_visit_day_opens_and_closes_at_the_local_times(day):
    claims = _claims()
    at = lambda h, m=0: datetime(2026, 3, day, h, m, tzinfo=BERLIN)  # noqa: E731
    # The first day's start and the last day's end are the pass's own validity.
    before = ("not_yet_valid", "before_daily_window") if day > 27 else ("not_yet_valid", "")
    assert _check(claims, at(8, 59)) == before
    assert _check(claims, at(9, 0)) is None
    assert _check(claims, at(16, 59)) is None
    after = ("expired", "after_daily_window") if day < 30 else ("expired", "")
    assert _check(claims, at(17, 0)) == after


def test_the_window_is_the_events_local_time_not_shanghais():
    claims = _claims()
    noon_berlin = datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN)  # 19:00 in Shanghai
    assert _check(claims, noon_berlin) is None
    assert _check(claims, noon_berlin, tz=SHANGHAI) == ("expired", "after_daily_window")
    assert checks.DEFAULT_TZ == SHANGHAI  # what a bundle without a time zone means


def test_exits_are_not_held_to_the_window_and_leeway_applies():
    claims = _claims()
    evening = datetime(2026, 3, 28, 20, 0, tzinfo=BERLIN)
    assert _check(claims, evening, direction="out") is None
    assert _check(claims, datetime(2026, 3, 28, 8, 59, 30, tzinfo=BERLIN), leeway=60) is None


def test_a_version_1_token_has_no_window():
    token = signing.encode_token(
        kind=checks.KIND_PERSON_PASS, object_id=5, scope_id=3, zone=1, ring=KEYRING,
        not_before=int(FIRST.timestamp()), not_after=int(LAST.timestamp()),
    )  # fmt: skip
    claims = checks.verify_pass_token(token, KEYRING.verifier, 3, cache=None)
    assert (claims.version, claims.day_from, claims.day_to) == (1, 0, 1440)
    assert _check(claims, datetime(2026, 3, 28, 3, 0, tzinfo=BERLIN)) is None
