"""Configuration from the environment."""

from __future__ import annotations

import base64

import pytest

from core.config import ConfigError, load_settings


def _key() -> str:
    return base64.urlsafe_b64encode(b"k" * 32).decode()


def test_production_without_secrets_stops_with_a_clear_message(tmp_path) -> None:
    env = {
        "ZHIZHI_ENV": "production",
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "postgresql://x@127.0.0.1/db",
    }
    with pytest.raises(ConfigError) as exc:
        load_settings(env)
    for name in ("SECRET_KEY", "DATA_KEY", "INDEX_KEY", "SIGNING_KEK"):
        assert name in str(exc.value)


def test_production_refuses_sqlite(tmp_path) -> None:
    env = {
        "ZHIZHI_ENV": "production",
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": "s",
        "DATA_KEY": _key(),
        "INDEX_KEY": _key(),
        "SIGNING_KEK": _key(),
    }
    with pytest.raises(ConfigError, match="PostgreSQL"):
        load_settings(env)


def test_development_generates_and_keeps_dev_keys(tmp_path) -> None:
    env = {"ZHIZHI_ENV": "development", "INSTANCE_PATH": str(tmp_path)}
    first, second = load_settings(env), load_settings(env)
    assert first.data_keys == second.data_keys and len(first.data_keys[1]) == 32
    assert (tmp_path / "dev-secrets" / "data_key").stat().st_mode & 0o077 == 0
    assert first.database_url.startswith("sqlite:///") and first.inline_jobs


def test_bad_key_length_is_refused(tmp_path) -> None:
    env = {"INSTANCE_PATH": str(tmp_path), "DATA_KEY": base64.urlsafe_b64encode(b"short").decode()}
    with pytest.raises(ConfigError, match="32 bytes"):
        load_settings(env)


def test_old_data_keys_are_kept_for_decryption(tmp_path) -> None:
    old = base64.urlsafe_b64encode(b"o" * 32).decode()
    env = {
        "INSTANCE_PATH": str(tmp_path),
        "DATA_KEY": _key(),
        "DATA_KEY_VERSION": "2",
        "DATA_KEY_OLD": f"1:{old}",
    }
    s = load_settings(env)
    assert s.data_key_version == 2 and s.data_keys[1] == b"o" * 32 and s.data_keys[2] == b"k" * 32


@pytest.mark.parametrize(("raw", "expected"), [(None, True), ("0", False), ("off", False), ("1", True)])
def test_fast_lane_flag(tmp_path, raw, expected) -> None:
    env = {"ZHIZHI_ENV": "development", "INSTANCE_PATH": str(tmp_path)}
    if raw is not None:
        env["FAST_LANE"] = raw
    assert load_settings(env).fast_lane is expected


def test_a_fast_lane_flag_that_is_not_a_boolean_is_refused(tmp_path) -> None:
    env = {"ZHIZHI_ENV": "development", "INSTANCE_PATH": str(tmp_path), "FAST_LANE": "maybe"}
    with pytest.raises(ConfigError, match="FAST_LANE"):
        load_settings(env)
