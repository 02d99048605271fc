"""Process settings, read from `EBANK_*` environment variables.

Bank parameters (limits, fees, rules) are data in the database, not settings: these are only
what a process needs to start.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EBANK_")

    database_url: str = "sqlite:///var/ebank.db"
    # The business day (limits, statements, end of day) runs on this zone; storage is UTC.
    business_timezone: str = "Asia/Shanghai"
    # Largest number of commands the writer commits in one transaction.
    writer_max_batch: int = 4096
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    demo: bool = False
    # The bank's data key (base64, 32 bytes) that seals personal data. Production sets it from
    # its key store; without it a development key is made once at `data_key_path`.
    data_key: str | None = None
    data_key_path: Path = Path("var/data.key")
    # The merchant gateway's own RSA-2048 key pair, which signs its answers, notifications and
    # return results (PEM, made once at this path, readable by its owner only).
    gateway_key_path: Path = Path("var/gateway-key.pem")
    # Whether merchants' notify URLs may point at loopback or private addresses. Off in
    # production (a merchant must not make the bank post into its own network); on for a demo
    # or tests whose shop runs on the same machine.
    gateway_private_notify: bool = False
    # Account numbers: this prefix, an 11-digit sequence and a Luhn check digit.
    account_number_prefix: str = Field(default="6217001", pattern=r"^[0-9]{7}$")
    # Card numbers: this BIN, a 9-digit sequence and a Luhn check digit.
    debit_card_bin: str = Field(default="621799", pattern=r"^[0-9]{6}$")
    credit_card_bin: str = Field(default="625899", pattern=r"^[0-9]{6}$")
    # Authentication (DOMAIN.md §3): consecutive failures that lock a credential, how long a
    # lock lasts, and which lock is permanent (the 3rd by default; a branch unlocks it).
    auth_max_failures: int = Field(default=5, ge=1)
    auth_lock_minutes: int = Field(default=60, ge=1)
    auth_locks_before_permanent: int = Field(default=3, ge=1)
    sms_code_ttl_seconds: int = Field(default=300, ge=30, le=300)
    # SMS codes cost the bank and can harass a phone: no new code for one purpose sooner than
    # this after the last, this many codes a customer a business day over every purpose, and
    # this many wrong guesses at them a business day (each code also takes auth_max_failures).
    sms_code_resend_seconds: int = Field(default=60, ge=0)
    sms_codes_per_day: int = Field(default=10, ge=1)
    sms_code_failures_per_day: int = Field(default=15, ge=1)
    # Online and mobile sessions end after this long idle, and this long in all.
    session_idle_seconds: int = Field(default=300, ge=60)
    session_absolute_hours: int = Field(default=12, ge=1)
    # Mobile banking devices a customer may have bound at once; a new one needs an SMS code.
    max_bound_devices: int = Field(default=5, ge=1)
    # Background jobs queue (huey); SQLite file by default.
    jobs_path: Path = Path("var/jobs.db")
    # How long a stored idempotent answer is kept; the API promises at least 24 hours.
    idempotency_retention_hours: int = Field(default=168, ge=24)
    # Inter-bank clearing: our participant code (12 digits, CNAPS-style), the clearing house's
    # base URL (None: transfers to other banks are not available), the secret shared with the
    # house that authenticates every message both ways (HMAC-SHA256), and how long we wait for
    # the house's answer before its outcome counts as unknown. The default secret is for
    # development only: production sets EBANK_CLEARING_SECRET from its key store.
    bank_code: str = Field(default="999100000017", pattern=r"^[0-9]{12}$")
    clearing_url: str | None = None
    clearing_secret: SecretStr = Field(
        default=SecretStr("ebank-development-clearing-secret"), min_length=16
    )
    clearing_timeout_seconds: float = Field(default=5, gt=0, le=60)
    # E-mail notices go through this SMTP server (none are sent while the host is unset), from
    # this address. STARTTLS upgrades the connection, checking the server's certificate against
    # the system's CAs (SSL_CERT_FILE names another bundle); a login is only ever sent over it.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "ebank <noreply@localhost>"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=10, gt=0)


@lru_cache
def get_settings() -> Settings:
    return Settings()
