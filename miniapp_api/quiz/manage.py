"""Trainer routes: bank, imports, papers, competitions, corrections, unit portraits."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from flask import Response

from core.api import Ctx
from core.errors import ValidationFailed
from miniapp_api.quiz import bp
from miniapp_api.quiz import schemas as s
from models.quiz import QuestionStatus
from services.quiz import attempts, bank, competitions, exports, importers, listing, points, portraits

TRAINER = ("trainer",)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"


def _question(ctx: Ctx, q) -> dict:
    return bank.full_view(q, bank.current(ctx.session, q))


@bp.get("/questions", query=s.ListQuery, roles=TRAINER)
def list_questions(ctx: Ctx) -> dict:
    """题库列表（含答案与解析，仅培训员）"""
    qy = ctx.query
    return bank.list_questions(ctx.session, ctx.me, qy.cursor, qy.limit, qy.topic, qy.status)


@bp.post("/questions", body=s.QuestionIn, roles=TRAINER, idempotent=True, status=201)
def create_question(ctx: Ctx) -> dict:
    """新增题目"""
    return _question(ctx, bank.create(ctx.session, ctx.me, ctx.body.draft()))


@bp.post(
    "/questions/<int:question_id>/versions", body=s.QuestionIn, roles=TRAINER, idempotent=True, status=201
)
def edit_question(ctx: Ctx, question_id: int) -> dict:
    """修改题目（生成新版本，历史作答仍指向原版本）"""
    return _question(ctx, bank.edit(ctx.session, ctx.me, question_id, ctx.body.draft()))


@bp.post("/questions/<int:question_id>/status", body=s.StatusIn, roles=TRAINER)
def set_question_status(ctx: Ctx, question_id: int) -> dict:
    """启用、停用题目"""
    return _question(ctx, bank.set_status(ctx.session, ctx.me, question_id, QuestionStatus(ctx.body.status)))


@bp.get("/imports/template.xlsx", roles=TRAINER, content_type=XLSX)
def import_template(ctx: Ctx) -> Response:
    """下载 Excel 导入模板"""
    resp = Response(importers.template_xlsx(), mimetype=XLSX)
    resp.headers["Content-Disposition"] = "attachment; filename=quiz-template.xlsx"
    return resp


@bp.post("/imports", body=s.ImportIn, roles=TRAINER, idempotent=True)
def import_questions(ctx: Ctx) -> dict:
    """导入题目文件（xlsx/CSV/Aiken/GIFT）；dry_run 只检查并列出每个错误行"""
    b = ctx.body
    try:
        content = base64.b64decode(b.content_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(fields={"content_base64": "不是合法的 Base64"}) from exc
    return importers.run_import(
        ctx.session,
        ctx.me,
        content,
        b.filename,
        fmt=b.format,
        topics=b.topics,
        difficulty=b.difficulty,
        dry_run=b.dry_run,
    )


@bp.get("/papers", query=s.PageQuery, roles=TRAINER)
def list_papers(ctx: Ctx) -> dict:
    """管辖范围内的试卷（最新在前），标明是否已用于比武"""
    return listing.papers(ctx.session, ctx.me, ctx.query.cursor, ctx.query.limit)


@bp.post("/papers", body=s.PaperIn, roles=TRAINER, idempotent=True, status=201)
def create_paper(ctx: Ctx) -> dict:
    """创建试卷（固定题目或按规则抽题）"""
    p = attempts.create_paper(ctx.session, ctx.me, ctx.body.model_dump(mode="json"))
    return {"paper_id": p.id, "title": p.title, "mode": str(p.mode), "duration_seconds": p.duration_seconds}


@bp.post("/competitions", body=s.CompetitionIn, roles=TRAINER, idempotent=True, status=201)
def create_competition(ctx: Ctx) -> dict:
    """创建月度比武"""
    c = competitions.create(ctx.session, ctx.me, ctx.body.model_dump())
    return {
        "competition_id": c.id,
        "title": c.title,
        "starts_at": c.starts_at.isoformat(),
        "ends_at": c.ends_at.isoformat(),
    }


@bp.post("/competitions/<int:competition_id>/finalize", roles=TRAINER)
def finalize_competition(ctx: Ctx, competition_id: int) -> dict:
    """结束后公布成绩并按名次发放积分（可重复调用）"""
    return competitions.finalize(ctx.session, competition_id, actor=ctx.me)


@bp.get("/competitions/<int:competition_id>/item-stats", roles=TRAINER)
def item_stats(ctx: Ctx, competition_id: int) -> list:
    """比武题目分析：难度（通过率）、区分度与需复核标记"""
    return competitions.item_statistics(ctx.session, ctx.me, competition_id)


@bp.get(
    "/competitions/<int:competition_id>/leaderboard.xlsx",
    roles=TRAINER,
    content_type=XLSX,
    rate="export",
    extra_errors=(429,),
)
def leaderboard_xlsx(ctx: Ctx, competition_id: int) -> Response:
    """导出完整排行榜（Excel；管辖范围内的参赛人员，未公布前为封榜前成绩）"""
    return _export(ctx, competition_id, exports.to_xlsx, XLSX, "xlsx")


@bp.get(
    "/competitions/<int:competition_id>/leaderboard.csv",
    roles=TRAINER,
    content_type=CSV,
    rate="export",
    extra_errors=(429,),
)
def leaderboard_csv(ctx: Ctx, competition_id: int) -> Response:
    """导出完整排行榜（CSV，UTF-8 带 BOM，Excel 可直接打开）"""
    return _export(ctx, competition_id, exports.to_csv, CSV, "csv")


def _export(ctx: Ctx, competition_id: int, render, mimetype: str, ext: str) -> Response:
    """The competition's board (as the trainer may see it) rendered and sent as a download."""
    data = exports.board(ctx.session, ctx.me, competition_id)
    ascii_name, name = exports.filename(data["competition"], data["final"], ext)
    resp = Response(render(data), mimetype=mimetype)
    resp.headers["Content-Disposition"] = f"attachment; filename={ascii_name}; filename*=UTF-8''{quote(name)}"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/workers/<int:person_id>/attempts", query=s.PageQuery, roles=TRAINER)
def worker_attempts(ctx: Ctx, person_id: int) -> dict:
    """辖区网格员的测试与比武作答记录（最新在前；比武成绩公布前不显示分数）"""
    return listing.worker_attempts(ctx.session, ctx.me, person_id, ctx.query.cursor, ctx.query.limit)


@bp.post("/points/adjustments", body=s.AdjustIn, roles=TRAINER, idempotent=True, status=201)
def adjust_points(ctx: Ctx) -> dict:
    """培训员奖励或更正积分（新增流水，不修改历史）"""
    b = ctx.body
    got = points.adjust(ctx.session, ctx.me, b.person_id, b.delta, b.reason, b.ref)
    return {"granted": got.granted, "entry_id": got.entry_id, "note": got.note, "duplicate": got.duplicate}


@bp.get("/portraits/units/<int:unit_id>", roles=TRAINER)
def unit_portrait(ctx: Ctx, unit_id: int) -> dict:
    """组织画像：参与率、知识点×单位掌握度矩阵、薄弱知识点、培训建议"""
    return portraits.unit(ctx.session, ctx.me, unit_id)


@bp.post("/portraits/units/<int:unit_id>/picture", roles=TRAINER, status=202)
def unit_picture(ctx: Ctx, unit_id: int) -> dict:
    """生成组织掌握度热力图（PNG，后台任务）"""
    return portraits.request_picture(ctx.session, ctx.me, "unit", unit_id)


@bp.get("/portraits/units/<int:unit_id>/picture/<name>", roles=TRAINER, content_type="image/png")
def unit_picture_file(ctx: Ctx, unit_id: int, name: str) -> Response:
    """下载组织掌握度热力图 PNG（辖区培训员；生成后可下载）"""
    from miniapp_api.quiz.learn import _png

    return _png(portraits.picture(ctx.session, ctx.me, "unit", unit_id, name))
