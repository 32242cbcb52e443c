"""Application settings: one pydantic-settings object, validated at start-up.

Every deployment difference is an environment variable (``SVC_*``): the embedded default is
SQLite + local storage + a filesystem broker under ``SVC_DATA_DIR``; production sets
``SVC_DATABASE_URL=postgresql+psycopg://...`` and ``SVC_BROKER_URL=redis://...``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_HOST_NAME = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SVC_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")
    models_dir: Path = Path("models")
    # where model downloads come from: "" = each publisher; a URL = a copy of the files under
    # their registry file names (an intranet mirror for machines without internet)
    models_mirror: str = ""
    database_url: str = ""  # default: sqlite:///<data_dir>/svc-studio.db
    broker_url: str = ""  # default: filesystem:// broker under <data_dir>/broker

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # printed by `serve`; default http://host:port
    # the browser UI; "" = the copy inside the installed package, else the checkout's
    # frontend/. create_app refuses to start without it unless serve_ui is off (API only).
    serve_ui: bool = True
    frontend_dir: Path | None = None

    # uploads
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    # a voice package carries its retrieval index: up to ~1.2 GB for an hour of singing
    # (bench/retrieval.md), so a voice exported here must fit through its own import
    max_voice_upload_bytes: int = Field(default=2 * 1024 * 1024 * 1024, gt=0)
    max_files_per_upload: int = Field(default=20, gt=0)
    max_audio_seconds: float = Field(default=20 * 60, gt=0)
    min_audio_seconds: float = Field(default=1.0, ge=0)

    # jobs
    job_message_expires_s: int = 7 * 24 * 3600
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    heartbeat_timeout_s: float = Field(default=60.0, gt=0)
    watchdog_interval_s: float = Field(default=10.0, gt=0)
    # a queued job whose message the broker never accepted is re-sent by the workers after this
    redispatch_after_s: float = Field(default=30.0, gt=0)
    # a queued job the broker took but no worker claimed within this is sent again: its
    # message may be lost (Redis restarted empty); a duplicate message is harmless
    resend_after_s: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    # refuse a training or conversion at once (409) when a model it needs is missing from
    # models_dir; off where the API does not see the workers' models folder
    preflight_models: bool = True
    # a job-creating request's Idempotency-Key is remembered this long (at least a day)
    idempotency_ttl_s: float = Field(default=24 * 3600, ge=24 * 3600)
    progress_min_interval_s: float = 0.5

    # webhooks (app/core/webhooks.py): the only hosts a job's webhook may call — host names
    # (``*.example.com`` for its subdomains), IP addresses and CIDR ranges, comma-separated or
    # a JSON list. Empty: webhooks are off. A private, loopback or link-local address is
    # called only when it (or its range) is listed itself, even for a listed host name.
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # a failed delivery is tried again with backoff until this long after the job ended
    webhook_give_up_s: float = Field(default=3600.0, gt=0)

    # secrets: tokens are random 256-bit values stored as sha256 hashes; the pepper is mixed
    # into the hash so a leaked database alone cannot be checked against guessed tokens.
    token_pepper: str = "dev-only-pepper-change-me"
    # a browser's sign-in (the UI's session cookie) lasts this long; logout ends it at once
    session_days: float = Field(default=30.0, gt=0)
    # failed sign-ins and bad tokens, per client address (app/api/throttle.py): this many in
    # a burst, then this many a minute; beyond that, 429 with Retry-After
    auth_failure_burst: int = Field(default=20, ge=1)
    auth_failures_per_minute: float = Field(default=10.0, gt=0)

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _allow_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:  # a JSON list, else comma-separated
                value = json.loads(value) if value.strip().startswith("[") else value.split(",")
            except ValueError:
                value = value.split(",")
        if not isinstance(value, list | tuple):
            return value
        entries = [str(v).strip().lower().rstrip(".") for v in value]
        entries = [e[1:-1] if e[:1] == "[" and e[-1:] == "]" else e for e in entries if e]
        for e in entries:
            try:
                ipaddress.ip_network(e, strict=False)
            except ValueError:
                if not _HOST_NAME.fullmatch(e):
                    raise ValueError(
                        f"SVC_WEBHOOK_ALLOW_HOSTS: {e!r} is not a host name, IP address or "
                        "CIDR range"
                    ) from None
        return entries

    @model_validator(mode="after")
    def _defaults_and_checks(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.models_dir = self.models_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'svc-studio.db'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        if self.environment == "production" and "change-me" in self.token_pepper:
            raise ValueError("SVC_TOKEN_PEPPER must be set to a secret value in production")
        if self.heartbeat_timeout_s <= 2 * self.heartbeat_interval_s:
            raise ValueError("SVC_HEARTBEAT_TIMEOUT_S must exceed twice SVC_HEARTBEAT_INTERVAL_S")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    def broker_transport_options(self) -> dict:
        if self.broker_url.startswith("filesystem"):
            d = self.broker_dir
            for sub in ("queue", "processed", "control"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            return {
                "data_folder_in": str(d / "queue"),
                "data_folder_out": str(d / "queue"),
                "processed_folder": str(d / "processed"),
                "control_folder": str(d / "control"),
                "store_processed": False,
            }
        if self.broker_url.startswith("redis"):
            # Long training tasks are acks_late: the visibility timeout must exceed the longest
            # task, or Redis re-delivers it to a second worker. The watchdog, not redelivery,
            # recovers jobs of dead workers.
            return {"visibility_timeout": 7 * 24 * 3600}
        return {}


@lru_cache
def get_settings() -> Settings:
    return Settings()
