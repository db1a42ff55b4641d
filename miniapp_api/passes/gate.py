"""Gate device routes: scan (the hot path), offline bundle, offline upload."""

from __future__ import annotations

from flask import Response
from pydantic import Field

from core.api import Ctx, envelope
from core.validation import Out
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


class GateKeyOut(Out):
    event_id: int
    gate_id: int
    gate_key: str = Field(
        description="本活动的闸机密钥（Base64）。人员：holder_hash = "
        "HMAC-SHA256(密钥, 身份证号码去空格、字母大写) 前 8 字节的十六进制；"
        '车辆：HMAC-SHA256(密钥, "plate:" + 车牌号) 前 8 字节'
    )


@bp.get("/gate/key", response=GateKeyOut, roles=GATE, extra_errors=(404,))
def gate_key(ctx: Ctx) -> Response:
    """闸机密钥：身份证阅读器/车牌识别计算持证人标签所需（在线、离线闸机均可取；不缓存）"""
    resp = envelope(offline.gate_key_material(ctx.session, ctx.me.person_id, kek=kek(ctx)))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/gate/offline-scans", body=OfflineUploadIn, roles=GATE, extra_errors=(404, 422))
def upload(ctx: Ctx) -> dict:
    """上传离线核验记录（已发生的事实），返回冲突报告"""
    scans = [offline.OfflineScan(**s.model_dump()) for s in ctx.body.scans]
    return offline.upload(ctx.session, ctx.me.person_id, scans, kek=kek(ctx))
