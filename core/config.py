"""Configuration read from the environment when the app is created (never at import).

Every variable is documented in README.md ("Configuration"). In the embedded default
(``ZHIZHI_ENV=development``) missing secrets are generated once and kept under
``instance/``; in production a missing secret stops start-up with a clear message.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """Raised when the environment cannot start the app (e.g. a missing production secret)."""


def _env(environ: dict[str, str], name: str, default: str | None = None) -> str | None:
    value = environ.get(name)
    return value if value not in (None, "") else default


def _int(environ: dict[str, str], name: str, default: int) -> int:
    raw = _env(environ, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _flag(environ: dict[str, str], name: str, default: bool) -> bool:
    raw = _env(environ, name)
    if raw is None:
        return default
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def _decode_key(name: str, raw: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name} must be base64 (32 bytes)") from exc
    if len(key) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes, got {len(key)}")
    return key


def _dev_secret(instance: Path, name: str) -> str:
    """Generate a development secret once and keep it under instance/ (0600)."""
    path = instance / "dev-secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


@dataclass
class Settings:
    env: str
    instance_path: Path
    database_url: str
    redis_url: str | None
    secret_key: str
    data_keys: dict[int, bytes]
    data_key_version: int
    index_key: bytes
    signing_kek: bytes
    file_store_dir: Path
    max_content_length: int
    auth_token_ttl: int
    auth_cache_seconds: int
    login_max_failures: int
    login_lockout_seconds: int
    public_base_url: str
    wechat: dict[str, str | None] = field(default_factory=dict)
    dingtalk: dict[str, str | None] = field(default_factory=dict)
    timezone: str = "Asia/Shanghai"
    queue_prefix: str = ""
    fast_lane: bool = True

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def inline_jobs(self) -> bool:
        return self.redis_url is None


SECRET_VARS = ("SECRET_KEY", "DATA_KEY", "INDEX_KEY", "SIGNING_KEK")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default ``os.environ``)."""
    environ = dict(os.environ if environ is None else environ)
    env = _env(environ, "ZHIZHI_ENV", "development")
    if env not in ("development", "production", "testing"):
        raise ConfigError("ZHIZHI_ENV must be development, production or testing")
    instance = Path(_env(environ, "INSTANCE_PATH", str(ROOT / "instance"))).resolve()
    instance.mkdir(parents=True, exist_ok=True)

    secrets_found: dict[str, str] = {}
    missing = []
    for name in SECRET_VARS:
        value = _env(environ, name)
        if value is None and env == "production":
            missing.append(name)
        elif value is None:
            value = _dev_secret(instance, name.lower())
        secrets_found[name] = value or ""
    if missing:
        raise ConfigError(
            "production mode needs these secrets in the environment: "
            + ", ".join(missing)
            + " (generate 32 random bytes, base64: "
            "python -c 'import secrets,base64;"
            "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')"
        )

    current = _int(environ, "DATA_KEY_VERSION", 1)
    data_keys = {current: _decode_key("DATA_KEY", secrets_found["DATA_KEY"])}
    # "version:key,version:key": retired keys kept so rows written before a rotation decrypt.
    for part in filter(None, (_env(environ, "DATA_KEY_OLD", "") or "").split(",")):
        version, _, key = part.partition(":")
        data_keys.setdefault(int(version), _decode_key("DATA_KEY_OLD", key))

    database_url = _env(environ, "DATABASE_URL", f"sqlite:///{instance / 'zhizhi.db'}")
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    if env == "production" and database_url.startswith("sqlite"):
        raise ConfigError("production mode needs DATABASE_URL pointing at PostgreSQL")

    return Settings(
        env=env,
        instance_path=instance,
        database_url=database_url,
        redis_url=_env(environ, "REDIS_URL"),
        secret_key=secrets_found["SECRET_KEY"],
        data_keys=data_keys,
        data_key_version=current,
        index_key=_decode_key("INDEX_KEY", secrets_found["INDEX_KEY"]),
        signing_kek=_decode_key("SIGNING_KEK", secrets_found["SIGNING_KEK"]),
        file_store_dir=Path(_env(environ, "FILE_STORE_DIR", str(instance / "files"))),
        max_content_length=_int(environ, "MAX_CONTENT_LENGTH", 1024 * 1024),
        auth_token_ttl=_int(environ, "AUTH_TOKEN_TTL", 7 * 24 * 3600),
        auth_cache_seconds=_int(environ, "AUTH_CACHE_SECONDS", 5),
        login_max_failures=_int(environ, "LOGIN_MAX_FAILURES", 5),
        login_lockout_seconds=_int(environ, "LOGIN_LOCKOUT_SECONDS", 15 * 60),
        public_base_url=_env(environ, "PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
        queue_prefix=_env(environ, "QUEUE_PREFIX", ""),
        fast_lane=_flag(environ, "FAST_LANE", True),
        wechat={
            "token": _env(environ, "WECHAT_TOKEN"),
            "app_id": _env(environ, "WECHAT_APP_ID"),
            "app_secret": _env(environ, "WECHAT_APP_SECRET"),
            "aes_key": _env(environ, "WECHAT_AES_KEY"),
            "mp_app_id": _env(environ, "WECHAT_MP_APP_ID"),
            "mp_app_secret": _env(environ, "WECHAT_MP_APP_SECRET"),
            "api_base": _env(environ, "WECHAT_API_BASE"),
            "timestamp_window": _env(environ, "WECHAT_TIMESTAMP_WINDOW", "300"),
        },
        dingtalk={
            "app_key": _env(environ, "DINGTALK_APP_KEY"),
            "app_secret": _env(environ, "DINGTALK_APP_SECRET"),
            "agent_id": _env(environ, "DINGTALK_AGENT_ID"),
            "api_base": _env(environ, "DINGTALK_API_BASE"),
        },
    )
