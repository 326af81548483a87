"""Settings read from the environment (prefix ``CALLCOACH_``) and an optional ``.env`` file.

One ``Settings`` object is built at start-up and passed down explicitly: nothing reads the
environment after that, so tests can build as many differently configured apps as they like.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLCOACH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- server and portal ---------------------------------------------------------------
    public_url: AnyHttpUrl | None = Field(
        default=None, description="Base URL the portal reaches the app at; handler URLs are built on it."
    )
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path("./data")
    database_url: str = ""
    oauth_url: AnyHttpUrl | None = Field(
        default="https://oauth.bitrix.info/oauth/token/",
        validate_default=True,
        description="The OAuth server's token endpoint (settings/oauth/auto-renewal.md): every install "
        "is verified there and tokens are renewed there. Never taken from a request.",
    )
    webhook_url: AnyHttpUrl | None = Field(
        default=None, description="Inbound webhook of one portal (pull calls, post comments, no app)."
    )
    app_name: str = "callcoach"

    # --- REST client -----------------------------------------------------------------------
    allow_private_portals: bool = Field(
        default=False,
        description="Portals on private or loopback addresses (an on-premises Bitrix24); cloud "
        "metadata and link-local addresses are refused in any case (b24/addresses.py).",
    )
    rest_rate: float = Field(default=2.0, gt=0, description="Leaky-bucket drain, requests per second.")
    rest_burst: int = Field(default=50, ge=1)
    rest_timeout_s: float = Field(default=30.0, gt=0)
    rest_max_retries: int = Field(default=5, ge=0)

    # --- call flow -------------------------------------------------------------------------
    min_call_seconds: int = Field(default=10, ge=0)
    max_recording_mb: int = Field(default=200, ge=1)
    sweep_minutes: int = Field(default=10, ge=0, description="0 turns the sweep off.")
    record_retry_minutes: list[float] = Field(default=[1, 3, 10, 30])
    workers: int = Field(default=4, ge=1, description="Concurrent jobs (network work).")
    job_lease_s: int = Field(
        default=30,
        ge=10,
        description="A claimed job's lease, renewed by a heartbeat every third of it: a job whose "
        "process died is taken up again this long after.",
    )
    job_max_attempts: int = Field(default=5, ge=1)
    job_retry_s: float = Field(
        default=5.0, gt=0, description="First wait after a failed attempt; doubles per attempt, with jitter."
    )
    post_layout_blocks: bool = True
    post_transcription: bool = True
    notify_manager: bool = True
    keep_audio_days: int = Field(default=30, ge=0)
    link_ttl_days: int = Field(default=30, ge=1, description="Lifetime of signed links to call pages.")

    # --- scaling out (see callcoach/workflow/celery_app.py) ---------------------------------
    broker_url: str = Field(
        default="",
        description="amqp://… turns `serve` into the web tier and `callcoach worker` processes run calls.",
    )
    redis_url: str = Field(
        default="", description="redis://… : one REST budget per portal, shared by every process."
    )
    namespace: str = Field(
        default="callcoach",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Prefix of the broker's queue names and of Redis keys (several installs, one broker).",
    )
    dispatch_lease_s: int = Field(
        default=3600,
        ge=10,
        description="A published job that no worker took within this time is published again.",
    )
    broker_consumer_timeout_s: int = Field(
        default=1800,
        ge=60,
        description="The broker's consumer timeout (RabbitMQ consumer_timeout); one task never runs longer.",
    )

    # --- analysis --------------------------------------------------------------------------
    whisper_model: str = "bundled-base"
    whisper_device: Literal["auto", "cuda", "cpu"] = "auto"
    whisper_compute_type: str = "auto"
    whisper_batch_size: int = Field(default=8, ge=1)
    whisper_batched: Literal["auto", "on", "off"] = Field(
        default="auto", description="faster-whisper's batched pipeline: auto = on a GPU only."
    )
    whisper_cpu_threads: int = Field(default=0, ge=0)
    language: str = "ru"
    max_audio_seconds: float = Field(default=7200.0, gt=0, description="Longer recordings are refused.")
    stereo_manager_channel: Literal["left", "right"] = "left"
    analysis_cgroup: str = Field(
        default="auto",
        description="The analysis process's idle CPU group: auto, off, or a cgroup directory "
        "(pipeline/priority.py).",
    )
    gpu_memory_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    sentiment_model: str = Field(default="", description="HF id or path; empty = offline default.")
    topic_model: str = Field(default="", description="HF id or path of an XNLI model; empty = offline.")
    analysis: Literal["auto", "embeddings", "llm"] = Field(
        default="auto", description="Objections by the LLM (auto: when CALLCOACH_LLM is set) or offline."
    )

    # --- LLM -------------------------------------------------------------------------------
    llm: Literal["none", "gemini", "openai"] = "none"
    gemini_api_key: SecretStr = SecretStr("")
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: AnyHttpUrl | None = None
    openai_base_url: AnyHttpUrl | None = None
    openai_model: str = ""
    openai_api_key: SecretStr = SecretStr("")
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_context_limit: int = Field(default=32000, ge=512)

    # --- bot -------------------------------------------------------------------------------
    bot_poll_seconds: int = Field(default=10, ge=1)

    # --- observability ---------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("record_retry_minutes", mode="before")
    @classmethod
    def _split_minutes(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [float(part) for part in value.split(",") if part.strip()]
        return value

    # --- derived ---------------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'callcoach.db').resolve()}"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def public_base(self) -> str:
        """PUBLIC_URL without a trailing slash ('' when unset)."""
        return str(self.public_url).rstrip("/") if self.public_url else ""

    def signing_key(self) -> bytes:
        """Key for signed links: the app secret, or a random one kept in the data dir."""
        secret = self.client_secret.get_secret_value()
        if secret:
            return secret.encode()
        path = self.data_dir / "signing.key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip().encode()


def load_settings(**overrides: object) -> Settings:
    """Build settings; a wrong value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        raise ConfigError(f"CALLCOACH_{field.upper()}: {err['msg']}") from None
