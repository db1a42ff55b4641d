"""Quiz API: trainers manage the bank, papers and competitions (manage.py); workers
practise, take attempts and read their points and portraits (learn.py)."""

from __future__ import annotations

from core.api import ApiBlueprint

bp = ApiBlueprint("quiz", __name__, tag="quiz", url_prefix="/quiz")

from miniapp_api.quiz import learn, manage  # noqa: E402, F401  (routes register on bp)

#: views that read results across workers (boards, statistics, portraits, finalising):
#: every accepted submit is recorded first, not only the caller's own
_ALL = {
    "leaderboard",
    "leaderboard_xlsx",
    "leaderboard_csv",
    "item_stats",
    "unit_portrait",
    "unit_picture",
    "finalize_competition",
    "adjust_points",
}
#: views of one worker's results (path parameter ``person_id``): that worker's submits first
_WORKER = {"worker_attempts"}


def _settle(ctx, ep) -> None:
    """Write-behind submits (services.quiz.intake) are recorded before any other quiz
    request reads or changes what they affect: one Redis round trip when none is pending."""
    from services.quiz import recording

    name = ep.view.__name__
    if name == "submit_attempt":
        return
    if name in _ALL:
        recording.settle(ctx.app)
    elif name in _WORKER:
        recording.settle(ctx.app, ctx.path["person_id"])
    elif ctx.actor is not None:
        recording.settle(ctx.app, ctx.actor.person_id)


bp.before_view = _settle
