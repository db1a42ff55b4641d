"""Worker routes: daily practice, attempts, competitions, points, level, own portrait."""

from __future__ import annotations

from flask import Response

from core.api import ANY, Ctx
from miniapp_api.quiz import bp
from miniapp_api.quiz import schemas as s
from services.quiz import attempts, competitions, intake, levels, listing, points, portraits, practice

LEARNER = ("grid_worker", "trainer")


@bp.post("/practice/today", roles=LEARNER)
def practice_today(ctx: Ctx) -> dict:
    """今日每日一练（首次调用时生成，之后返回同一组题）"""
    return practice.start_daily(ctx.session, ctx.me)


@bp.post("/practice/more", roles=LEARNER, status=201)
def practice_more(ctx: Ctx) -> dict:
    """再来一组（今日练习全部作答后；练习不限量，积分仍受每日上限）"""
    return practice.more(ctx.session, ctx.me)


@bp.post("/practice/items/<int:item_id>/answer", body=s.ChoiceIn, roles=LEARNER)
def practice_answer(ctx: Ctx, item_id: int) -> dict:
    """逐题作答：返回对错、解析和本题积分"""
    return practice.answer(ctx.session, ctx.me, item_id, ctx.body.choice)


@bp.post("/practice/answers", body=s.SetIn, roles=LEARNER)
def practice_answer_set(ctx: Ctx) -> list:
    """整组作答（表单）"""
    return practice.answer_set(ctx.session, ctx.me, [(a.item_id, a.choice) for a in ctx.body.answers])


@bp.post("/papers/<int:paper_id>/attempts", roles=LEARNER, status=201)
def start_attempt(ctx: Ctx, paper_id: int) -> dict:
    """开始（或继续）测试作答；服务器计时"""
    return attempts.start(ctx.session, ctx.me, paper_id)


@bp.get("/attempts/<int:attempt_id>", roles=LEARNER)
def get_attempt(ctx: Ctx, attempt_id: int) -> dict:
    """查看作答（提交前不含答案）"""
    from core.db import utcnow

    return attempts.view(ctx.session, attempts.own_attempt(ctx.session, ctx.me, attempt_id), utcnow())


@bp.put("/attempts/<int:attempt_id>/items/<int:position>", body=s.SaveIn, roles=LEARNER)
def save_answer(ctx: Ctx, attempt_id: int, position: int) -> dict:
    """保存单题答案（断线保护；提交时才评分）"""
    return attempts.save(ctx.session, ctx.me, attempt_id, position, ctx.body.choice, ctx.body.certainty)


@bp.post("/attempts/<int:attempt_id>/submit", body=s.SubmitIn, roles=LEARNER, idempotent="view", hot=True)
def submit_attempt(ctx: Ctx, attempt_id: int) -> Response:
    """整卷提交（只能提交一次；同一幂等键重试返回首次结果）"""
    answers = ctx.body.model_dump()["answers"]
    if intake.enabled(ctx.app):
        try:
            return intake.submit(ctx, attempt_id, answers)
        except intake.Unavailable:
            pass  # Redis unreachable: the synchronous path below records it at once
    return ctx.replayable(lambda: attempts.submit(ctx.session, ctx.me, attempt_id, answers))


@bp.get("/competitions", query=s.PageQuery, roles=LEARNER)
def list_competitions(ctx: Ctx) -> dict:
    """可参加或所管辖的比武（最新在前）：阶段（未开始/进行中/已结束/已公布成绩）及本人的参赛记录"""
    return listing.competitions(ctx.session, ctx.me, ctx.query.cursor, ctx.query.limit)


@bp.post("/competitions/<int:competition_id>/entry", roles=("grid_worker",), status=201)
def enter_competition(ctx: Ctx, competition_id: int) -> dict:
    """参加比武（每人一次）"""
    return competitions.enter(ctx.session, ctx.me, competition_id)


@bp.get("/competitions/<int:competition_id>/leaderboard", query=s.BoardQuery, roles=LEARNER)
def leaderboard(ctx: Ctx, competition_id: int) -> dict:
    """排行榜（比武范围内的网格员及有管辖权的培训员可看；按社区/街道/区及星级分组；封榜期间显示封榜前成绩）"""
    q = ctx.query
    return competitions.board(ctx.session, ctx.me, competition_id, q.scope_unit_id, q.bracket, q.limit)


@bp.get("/me/points", roles=LEARNER)
def my_points(ctx: Ctx) -> dict:
    """我的积分、排名与今日各项上限"""
    out = points.standing(ctx.session, ctx.me.person_id)
    out["caps"] = points.caps_today(ctx.session, ctx.me.person_id)
    return out


@bp.get("/me/rank", query=s.RankQuery, roles=LEARNER)
def my_rank(ctx: Ctx) -> dict:
    """我的积分排名（全区或某一组织范围；Redis 有序集合，缺失时由积分流水重建）"""
    scope = points.check_scope(ctx.session, ctx.me.person_id, ctx.query.scope)
    return points.standing(ctx.session, ctx.me.person_id, scope)


@bp.get("/me/points/history", query=s.PageQuery, roles=LEARNER)
def my_points_history(ctx: Ctx) -> dict:
    """积分流水"""
    return points.history(ctx.session, ctx.me.person_id, ctx.query.cursor, ctx.query.limit)


@bp.get("/me/level", roles=LEARNER)
def my_level(ctx: Ctx) -> dict:
    """我的星级（季度评定结果，与聊天“积分”、比武分组一致）及升级进度（按当前数据实时计算）"""
    return levels.level_view(ctx.session, ctx.me.person_id)


@bp.get("/me/level/history", roles=LEARNER)
def my_level_history(ctx: Ctx) -> dict:
    """我的季度星级评定记录（最新在前）"""
    return levels.history(ctx.session, ctx.me.person_id)


@bp.get("/levels/thresholds", roles=ANY)
def level_thresholds(ctx: Ctx) -> dict:
    """星级标准（公开）"""
    return levels.thresholds()


@bp.get("/portraits/workers/<int:person_id>", roles=LEARNER)
def worker_portrait(ctx: Ctx, person_id: int) -> dict:
    """个人画像（本人或辖区培训员）"""
    return portraits.worker(ctx.session, ctx.me, person_id)


@bp.post("/portraits/workers/<int:person_id>/picture", roles=LEARNER, status=202)
def worker_picture(ctx: Ctx, person_id: int) -> dict:
    """生成个人雷达图（PNG，后台任务）"""
    return portraits.request_picture(ctx.session, ctx.me, "worker", person_id)


@bp.get("/portraits/workers/<int:person_id>/picture/<name>", roles=LEARNER, content_type="image/png")
def worker_picture_file(ctx: Ctx, person_id: int, name: str) -> Response:
    """下载个人雷达图 PNG（本人或辖区培训员；生成后可下载）"""
    return _png(portraits.picture(ctx.session, ctx.me, "worker", person_id, name))


def _png(data: bytes) -> Response:
    resp = Response(data, mimetype="image/png")
    resp.headers["Cache-Control"] = "private, max-age=86400"
    return resp
