"""Gate device routes: scan (the hot path), offline bundle, offline upload."""

from __future__ import annotations

from flask import Response

from core.api import Ctx
from miniapp_api.passes import bp, kek
from miniapp_api.passes.schemas import OfflineUploadIn, ScanIn, ScanOut, SinceQuery
from services.passes import gate, offline

GATE = ("gate",)


@bp.post("/gate/scan", body=ScanIn, response=ScanOut, roles=GATE, extra_errors=(404, 422), hot=True)
def scan(ctx: Ctx) -> Response:
    """闸机核验：同一 nonce 重复提交返回首次结果；车辆通道须提供车牌"""
    ext = ctx.app.extensions["zhizhi"]
    # The session factory: a scan answered from caches and Redis opens no database session.
    # ScanIn has the fields of gate.Scan.
    body = gate.check_json(
        ext.request_session, ext.redis, ctx.me.person_id, ctx.body, kek=ext.settings.signing_kek
    )
    return Response(body, content_type="application/json")


@bp.get("/gate/bundle", query=SinceQuery, roles=GATE, extra_errors=(404, 409))
def bundle(ctx: Ctx) -> dict:
    """离线核验包：公钥、区域/闸机、吊销列表（可取增量）、关注通行证"""
    return offline.build_bundle(ctx.session, ctx.me.person_id, kek=kek(ctx), since=ctx.query.since)


@bp.post("/gate/offline-scans", body=OfflineUploadIn, roles=GATE, extra_errors=(404, 422))
def upload(ctx: Ctx) -> dict:
    """上传离线核验记录（已发生的事实），返回冲突报告"""
    scans = [offline.OfflineScan(**s.model_dump()) for s in ctx.body.scans]
    return offline.upload(ctx.session, ctx.me.person_id, scans, kek=kek(ctx))
