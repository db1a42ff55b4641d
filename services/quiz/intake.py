"""Write-behind whole-attempt submit: one Redis round trip accepts, a drain records.

With Redis configured (``REDIS_URL``, workers running), a submit reads the attempt's
*sheet* (questions as shown, option orders, answer keys, deadlines: immutable once the
attempt starts, cached in Redis) and grades in the process. One Lua script then checks
the attempt is still open and on time, records the result and the Idempotency-Key, and
appends the final answers to the ``quiz:submits`` stream, atomically. The response the
worker gets is the graded attempt, exactly what ``GET /attempts/{id}`` shows once the
entry is recorded.

:mod:`services.quiz.recording` moves stream entries into PostgreSQL (items, answer
events, points, leaderboards — the same ``attempts._finish`` the synchronous path runs)
and deletes them only after the commit; a periodic job drains the stream every minute,
and a read that must see a worker's own result records that worker's entries first.

Without Redis (the embedded mode) or when Redis is unreachable, the submit runs the
synchronous database path instead (``attempts.submit``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis as redis_lib
from flask import Response
from redis.exceptions import NoScriptError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.api import Ctx
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.idempotency import request_hash
from core.redislink import call as redis_call
from models.quiz import Attempt, AttemptItem, AttemptStatus
from services.quiz import bank, grading

log = logging.getLogger(__name__)

STREAM = "quiz:submits"
DEAD = "quiz:submits:dead"
STATE_TTL = 14 * 86400  # replays and the "already submitted" answer outlive the attempt


class Unavailable(Exception):
    """Redis could not be used: the caller takes the synchronous path."""


def state_key(attempt_id: int) -> str:
    return f"quiz:att:{attempt_id}"


def pending_key(person_id: int) -> str:
    return f"quiz:pending:{person_id}"


def enabled(app: Any) -> bool:
    return app.extensions["zhizhi"].settings.redis_url is not None


# KEYS: state hash, stream, pending hash (attempt id -> stream id). ARGV: now_ms, close_ms, key,
# request hash, attempt id, final answers json, ttl, person id, run id. A replay answers with
# the kept final answers and acceptance time, from which the response is rebuilt exactly (the
# sheet is immutable), so no response body is kept in Redis ('replay_body': a state accepted
# by an earlier release, which kept the body as 'resp'). The run id is fresh per request: the
# same request's script sent again after a lost reply (core.redislink falls back to the
# client, which may send it once more) finds its own acceptance and replays it instead of
# answering "already submitted".
_ACCEPT = """
local st = redis.call('HMGET', KEYS[1], 'status', 'ikey', 'rhash', 'final', 'at', 'run')
if st[1] == 'done' then
  if st[6] == ARGV[9] and st[4] then return {'again', st[4], st[5]} end
  if ARGV[3] ~= '' and st[2] == ARGV[3] then
    if st[3] == ARGV[4] then
      if not st[4] then return {'replay_body', redis.call('HGET', KEYS[1], 'resp')} end
      return {'replay', st[4], st[5]}
    end
    return {'key_reused'}
  end
  return {'submitted'}
end
if st[1] == 'closed' then return {'closed'} end
if tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {'late'} end
redis.call('HSET', KEYS[1], 'status', 'done', 'ikey', ARGV[3], 'rhash', ARGV[4], 'final', ARGV[6],
  'at', ARGV[1], 'run', ARGV[9])
redis.call('EXPIRE', KEYS[1], ARGV[7])
local sid = redis.call('XADD', KEYS[2], '*', 'a', ARGV[5], 'p', ARGV[8], 'f', ARGV[6], 't', ARGV[1])
redis.call('HSET', KEYS[3], ARGV[5], sid)
redis.call('EXPIRE', KEYS[3], ARGV[7])
return {'ok'}
"""
ACCEPT_SHA = hashlib.sha1(_ACCEPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

# Claim an overdue attempt for the sweep unless a submission is pending: 1 claimed, 0 not.
_CLAIM = """
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'done' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'closed')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


# --- the sheet -----------------------------------------------------------------------


def build_sheet(session: Session, attempt: Attempt, content: bank.Content | None = None) -> dict[str, Any]:
    """What the write-behind submit needs of an attempt; ``content`` (questions by
    version id, ``bank.content_of``) may be passed preloaded."""
    from services.quiz.papers import get_paper

    paper = get_paper(session, attempt.paper_id)
    items = list(attempt.items)
    if content is None:
        content = bank.content_of(session, [i.version_id for i in items])
    qs = {q.id: q for q, _v in content.values()}
    vs = {v.id: v for _q, v in content.values()}
    reveal: dict[str, Any] = {}
    if attempt.competition_id is not None:  # per-question results wait for the window's end
        from services.quiz.attempt_view import results_time

        at = results_time(session, attempt)
        reveal = {"results_at": at.isoformat(), "results_ms": _ms(at)}
    return {
        **reveal,
        "id": attempt.id,
        "person": attempt.person_id,
        "paper": attempt.paper_id,
        "comp": attempt.competition_id,
        "started": attempt.started_at.isoformat(),
        "deadline": attempt.deadline_at.isoformat(),
        "close_ms": _ms(attempt.deadline_at + timedelta(seconds=paper.grace_seconds)),
        "cbm": bool(paper.certainty_marking),
        "items": [
            {
                "pos": i.position,
                "order": i.option_order,
                "keys": bank.answer_keys(vs[i.version_id]),
                "q": bank.public_view(qs[i.question_id], vs[i.version_id], i.option_order),
                "expl": vs[i.version_id].explanation,
                "ca": grading.relabel(bank.answer_keys(vs[i.version_id]), i.option_order),
            }
            for i in items
        ],
    }


def cache_sheet(r: Any, session: Session, attempt: Attempt) -> dict[str, Any]:
    sheet = build_sheet(session, attempt)
    pipe = r.pipeline(transaction=False)
    pipe.hsetnx(state_key(attempt.id), "sheet", json.dumps(sheet, ensure_ascii=False, separators=(",", ":")))
    pipe.expire(state_key(attempt.id), STATE_TTL)
    pipe.execute()
    return sheet


def warm_after_commit(session: Session, attempt: Attempt, content: bank.Content | None = None) -> None:
    """Cache an open attempt's sheet once the attempt is committed (so the submit finds
    it in Redis); a Redis error there is harmless, the submit builds it again."""
    from services.quiz import cache

    if not enabled(cache.app()):
        return
    sheet = json.dumps(build_sheet(session, attempt, content), ensure_ascii=False, separators=(",", ":"))
    key = state_key(attempt.id)

    def store(r: Any) -> None:
        pipe = r.pipeline(transaction=False)
        pipe.hsetnx(key, "sheet", sheet)
        pipe.expire(key, STATE_TTL)
        pipe.execute()

    cache.after_commit(session, store)


def _load(ctx: Ctx, r: Any, attempt_id: int) -> dict[str, Any]:
    raw = redis_call(r, ("HGET", state_key(attempt_id), "sheet"))
    if raw is not None:
        return orjson.loads(raw)
    attempt = ctx.session.get(Attempt, attempt_id)
    if attempt is None:
        raise NotFound("作答记录不存在", code="attempt_not_found")
    if attempt.person_id != ctx.me.person_id:
        raise Forbidden("这不是您的作答", code="not_your_attempt")
    if attempt.status == AttemptStatus.expired:
        from services.quiz.attempts import EXPIRED_MESSAGE

        raise Conflict(EXPIRED_MESSAGE, code="attempt_deadline_passed")
    if attempt.status != AttemptStatus.in_progress:
        raise Conflict("本次作答已提交，不能重复提交", code="attempt_already_submitted")
    return cache_sheet(r, ctx.session, attempt)


# --- submit --------------------------------------------------------------------------


def submit(ctx: Ctx, attempt_id: int, answers: list[dict[str, Any]]) -> Response:
    """Accept a whole-attempt submit write-behind (see module doc). Raises Unavailable
    when Redis cannot be used before anything was accepted."""
    r = ctx.app.extensions["zhizhi"].redis
    now = utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # ranks compare in ms
    try:
        sheet = _load(ctx, r, attempt_id)
    except redis_lib.ConnectionError as exc:
        raise Unavailable from exc
    if sheet["person"] != ctx.me.person_id:
        raise Forbidden("这不是您的作答", code="not_your_attempt")
    final = _final_answers(ctx, sheet, answers, now)
    key = ctx.idempotency_key or ""
    at_ms = _ms(now)
    command = (
        "EVALSHA", ACCEPT_SHA, 3, state_key(attempt_id), STREAM, pending_key(sheet["person"]),
        at_ms, sheet["close_ms"], key, request_hash(ctx) if key else "", attempt_id,
        orjson.dumps(final, option=orjson.OPT_NON_STR_KEYS), STATE_TTL, sheet["person"], os.urandom(9),
    )  # fmt: skip
    try:
        try:
            reply = redis_call(r, command)
        except NoScriptError:
            r.script_load(_ACCEPT)
            reply = redis_call(r, command)
    except redis_lib.ConnectionError as exc:
        raise Unavailable from exc
    verdict = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
    if verdict == "ok":
        return Response(response_body(sheet, final, now), status=200, mimetype="application/json")
    if verdict == "again":  # this request's own acceptance, its reply lost on the way
        kept = {int(p): v for p, v in orjson.loads(reply[1]).items()}
        return Response(response_body(sheet, kept, _from_ms(int(reply[2]))), mimetype="application/json")
    if verdict in ("replay", "replay_body"):
        if verdict == "replay":
            kept = {int(p): v for p, v in orjson.loads(reply[1]).items()}
            body = response_body(sheet, kept, _from_ms(int(reply[2])))
        else:
            body = reply[1]
        resp = Response(body, mimetype="application/json")
        resp.headers["Idempotent-Replayed"] = "true"
        return resp
    if verdict == "key_reused":
        raise Conflict(
            "该幂等键已用于另一个请求，请换一个新的 Idempotency-Key",
            code="idempotency_key_reused",
            status=422,
        )
    if verdict == "submitted":
        raise Conflict("本次作答已提交，不能重复提交", code="attempt_already_submitted")
    raise Conflict("已超过作答截止时间，提交未被接受", code="attempt_deadline_passed")


def response_body(sheet: dict[str, Any], final: dict[int, list[Any]], now: datetime) -> bytes:
    """The API envelope of the graded attempt (the same bytes for the same inputs)."""
    return orjson.dumps({"ok": True, "data": graded_view(sheet, final, now)})


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)


def _final_answers(
    ctx: Ctx, sheet: dict[str, Any], answers: list[dict[str, Any]], now: datetime
) -> dict[int, list[Any]]:
    """position -> [response parts, certainty] after applying ``answers`` over the answers
    saved one by one (read from the database only when the submit does not cover every
    question)."""
    if datetime.fromtimestamp(sheet["close_ms"] / 1000, UTC) < now:
        raise Conflict("已超过作答截止时间，提交未被接受", code="attempt_deadline_passed")
    by_pos = {it["pos"]: it for it in sheet["items"]}
    given: dict[int, list[Any]] = {}
    for a in answers:
        item = by_pos.get(a["position"])
        if item is None:
            raise ValidationFailed(fields={"position": f"第 {a['position']} 题不存在"})
        certainty = a.get("certainty")
        if certainty is not None and certainty not in grading.CBM:
            raise ValidationFailed(fields={"certainty": "应为 1、2 或 3"})
        given[a["position"]] = [grading.parse_choice(a["choice"], _labels(item["order"])), certainty]
    if len(given) < len(by_pos):
        saved = ctx.session.execute(
            select(AttemptItem.position, AttemptItem.response, AttemptItem.certainty).where(
                AttemptItem.attempt_id == sheet["id"]
            )
        ).all()
        for pos, response, certainty in saved:
            if pos not in given and response:
                given[pos] = [response, certainty]
    return given


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ONE_PART = [[_LETTERS[:n]] for n in range(len(_LETTERS) + 1)]


def _labels(order: list[list[str]]) -> list[str]:
    """Display labels per part ("ABCD" for four options)."""
    if len(order) == 1:
        return _ONE_PART[len(order[0])]
    return [_LETTERS[: len(keys)] for keys in order]


def graded_view(sheet: dict[str, Any], final: dict[int, list[Any]], now: datetime) -> dict[str, Any]:
    """The finished attempt as ``attempts.view`` shows it, computed from the sheet (a
    competition's per-question results are left out until ``results_at``; a sheet cached
    before that rule hides them as well)."""
    deadline = datetime.fromisoformat(sheet["deadline"])
    started = datetime.fromisoformat(sheet["started"])
    marks = max_marks = 0.0
    answered = correct = 0
    items = []
    cbm = sheet["cbm"]
    shown = not sheet["comp"] or _ms(now) >= sheet.get("results_ms", 2**62)
    for it in sheet["items"]:
        response, certainty = final.get(it["pos"], [None, None])
        max_marks += grading.max_marks(it["keys"], cbm)
        correct_labels = it.get("ca") or grading.relabel(it["keys"], it["order"])  # older sheets
        graded = grading.grade_labels(response, correct_labels, certainty, cbm)
        ok, item_marks = (False, 0.0) if graded is None else (graded[1], graded[2])
        if graded is not None:
            answered += 1
            correct += ok
            marks += item_marks
        item = {"position": it["pos"], "question": it["q"], "response": response, "certainty": certainty}
        if shown:
            item["result"] = {
                "correct": ok,
                "marks": item_marks,
                "correct_answer": correct_labels,
                "explanation": it["expl"],
            }
        items.append(item)
    out = {
        "attempt_id": sheet["id"],
        "paper_id": sheet["paper"],
        "competition_id": sheet["comp"],
        "status": str(AttemptStatus.submitted),
        "started_at": sheet["started"],
        "deadline_at": sheet["deadline"],
        "server_now": now.isoformat(),
        "seconds_left": max(0, int((deadline - now).total_seconds())),
        "items": items,
        "summary": {
            "marks": marks,
            "max_marks": max_marks,
            "answered": answered,
            "correct": correct,
            "elapsed_ms": int((min(now, deadline) - started).total_seconds() * 1000),
        },
    }
    if sheet["comp"] and "results_at" in sheet:
        out["results_at"] = sheet["results_at"]
    return out


def claim_overdue(r: Any, attempt_id: int) -> bool:
    """The sweep may close this attempt (no accepted submit is waiting to be recorded);
    later submits are refused. Without Redis there is nothing to wait for."""
    return bool(r.register_script(_CLAIM)(keys=[state_key(attempt_id)], args=[STATE_TTL]))
