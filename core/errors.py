"""Typed domain errors. Services raise them; the API maps them to HTTP + envelope and the
bot maps the same errors to a chat reply (``exc.message``)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a user may see: a stable code and a Chinese message."""

    status = 400
    code = "bad_request"
    message = "请求无效"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: dict[str, str] | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        keep_changes: bool = False,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.fields = fields or {}
        self.details = details or {}
        # True when the flushed changes must still commit (e.g. a failed-login counter).
        self.keep_changes = keep_changes
        if status is not None:
            self.status = status
        super().__init__(f"{self.code}: {self.message}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            out["fields"] = self.fields
        if self.details:
            out["details"] = self.details
        return out


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    message = "提交的数据有误，请检查后重试"


class BadRequest(DomainError):
    status = 400
    code = "bad_request"
    message = "请求格式错误"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    message = "请先登录"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = "没有权限执行此操作"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "记录不存在"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "操作与当前状态冲突"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    message = "操作太频繁，请稍后再试"


class Unavailable(DomainError):
    """A dependency failed in a way the client may retry (same Idempotency-Key)."""

    status = 503
    code = "temporarily_unavailable"
    message = "服务暂时不可用，请稍后重试"


class UpstreamError(DomainError):
    status = 502
    code = "upstream_error"
    message = "第三方平台返回错误"
