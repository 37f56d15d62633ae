"""Default or weak secrets are refused in production, one test per secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from shequ.config import DEV_SECRET, Settings, get_settings
from shequ.core.iam import crypto

REAL_SECRET = "k" * 40


def test_the_development_secret_key_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="SHEQU_SECRET_KEY must be set"):
        Settings(env="production", secret_key=DEV_SECRET)


def test_a_short_secret_key_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", secret_key="short-but-not-default")


@pytest.fixture
def default_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the test suite's own low password-hashing cost."""
    monkeypatch.delenv("SHEQU_ARGON2_TIME_COST", raising=False)
    monkeypatch.delenv("SHEQU_ARGON2_MEMORY_KIB", raising=False)


def test_a_real_secret_key_is_accepted_and_development_keeps_its_default(default_cost: None) -> None:
    assert Settings(env="production", secret_key=REAL_SECRET).secret_key == REAL_SECRET
    assert Settings(env="development").secret_key == DEV_SECRET


def test_a_weak_password_hashing_cost_is_refused_in_production(default_cost: None) -> None:
    strong = Settings(env="production", secret_key=REAL_SECRET)
    assert (strong.argon2_time_cost, strong.argon2_memory_kib) == (3, 65536)
    with pytest.raises(ValidationError, match="SHEQU_ARGON2_MEMORY_KIB"):
        Settings(env="production", secret_key=REAL_SECRET, argon2_memory_kib=1024)
    with pytest.raises(ValidationError, match="SHEQU_ARGON2_TIME_COST"):
        Settings(env="production", secret_key=REAL_SECRET, argon2_time_cost=1)
    assert Settings(env="test", argon2_time_cost=1, argon2_memory_kib=1024).argon2_time_cost == 1


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, default_cost: None) -> Iterator[Path]:
    """Settings of a production deployment whose key file is tmp_path/keys.json."""
    key_file = tmp_path / "keys.json"
    monkeypatch.setenv("SHEQU_ENV", "production")
    monkeypatch.setenv("SHEQU_SECRET_KEY", REAL_SECRET)
    monkeypatch.setenv("SHEQU_KEY_FILE", str(key_file))
    get_settings.cache_clear()
    crypto.keyring.cache_clear()
    yield key_file
    monkeypatch.undo()
    get_settings.cache_clear()
    crypto.keyring.cache_clear()


def test_production_never_creates_a_missing_pii_key_file(production: Path) -> None:
    with pytest.raises(RuntimeError, match="missing"):
        crypto.keyring()
    assert not production.exists()


def test_production_refuses_a_key_file_others_can_read(production: Path) -> None:
    crypto.generate_key_file(production)
    production.chmod(0o644)
    with pytest.raises(RuntimeError, match="chmod 600"):
        crypto.keyring()
    production.chmod(0o600)
    crypto.keyring.cache_clear()
    assert crypto.keyring().active == json.loads(production.read_text())["active"]
