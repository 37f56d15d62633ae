"""Settings of the platform: one typed object, every setting read from SHEQU_* variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET = "dev-secret-change-me"
MIN_SECRET = 32


class Settings(BaseSettings):
    """Every knob of shequ; nothing else in the code reads os.environ."""

    model_config = SettingsConfigDict(env_prefix="SHEQU_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    var_dir: Path = Field(default=ROOT / "var")
    database_url: str = ""
    secret_key: str = DEV_SECRET
    # PII keys: a JSON file outside the database: {"active": "k1", "keys": {"k1": "<b64 32 bytes>"},
    # "index_key": "<b64 32 bytes>"}. Created on first use in development and test only.
    key_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    default_tenant: str = "310112001"
    session_hours: int = 12
    language: Literal["zh-CN", "en"] = "zh-CN"
    timezone: str = "Asia/Shanghai"
    mqtt_url: str = ""
    # ingest: messages older than max_age or further ahead than max_skew are dead-lettered
    ingest_max_age_s: int = 7 * 24 * 3600
    ingest_max_skew_s: int = 300
    ingest_batch_max: int = 5000  # messages per batch (worker)
    ingest_batch_wait_ms: int = 20  # how long a worker waits to fill a batch
    telemetry_retention_days: int = 90  # raw telemetry; rollups are kept (minute rollups 400 days)
    page_size_max: int = 500
    # SMS and voice: "log" writes them to the log only; "package.module:Class" loads a real gateway
    sms_gateway: str = "log"
    # password hashing (argon2id): RFC 9106's second recommended option; production refuses
    # less than OWASP's floor (19 MiB, 2 passes). The test suite lowers it (tests/conftest.py).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536

    @model_validator(mode="after")
    def _fill_and_check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'shequ.db'}"
        if self.key_file is None:
            self.key_file = self.var_dir / "keys.json"
        if self.env == "production":
            if self.secret_key == DEV_SECRET:
                raise ValueError("SHEQU_SECRET_KEY must be set to a real secret in production")
            if len(self.secret_key) < MIN_SECRET:
                raise ValueError(f"SHEQU_SECRET_KEY must be at least {MIN_SECRET} characters in production")
            if self.argon2_memory_kib < 19456:
                raise ValueError("SHEQU_ARGON2_MEMORY_KIB must be at least 19456 (19 MiB) in production")
            if self.argon2_time_cost < 2:
                raise ValueError("SHEQU_ARGON2_TIME_COST must be at least 2 in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
