"""Room service configuration read from ``HIVEMIND_*`` environment variables.

Only the variables this service uses are read; every value is checked when the
settings are built so that a typo fails at startup with a message naming the
variable, never later at request time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, final

__all__ = [
    "Settings",
    "SettingsError",
    "check_run_settings",
    "env_bool",
    "env_choice",
    "env_int",
]

_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})
_PROVIDERS = ("dev", "dstack")
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


class SettingsError(ValueError):
    """A ``HIVEMIND_*`` variable holds a value the service cannot use."""


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a boolean switch: 1/true/yes or 0/false/no; anything else is an error."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be one of 1/true/yes or 0/false/no, got {raw!r}")


def env_int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    """Read a bounded integer; a non-integer or out-of-range value is an error."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise SettingsError(
            f"{name} must be an integer between {low} and {high}, got {raw!r}"
        ) from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {raw!r}")
    return value


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    """Read one of a fixed set of words (any case); anything else is an error."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def is_loopback_host(host: str) -> bool:
    """Tell whether a bind host only accepts connections from this machine.

    Args:
        host: A host name or IP literal (IPv6 may be bracketed).

    Returns:
        True for ``localhost`` and loopback addresses, False otherwise.
    """
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@final
@dataclasses.dataclass(frozen=True)
class Settings:
    """Immutable configuration of one room service process.

    Attributes:
        data_dir: Directory holding ``control.sqlite3`` and ``tenants/``.
        admin_key: Operator bearer; empty disables admin routes (503).
        self_serve_signup: Whether ``POST /v1/signup`` is open.
        enforce_credits: Whether holds require balance and configured prices.
        signup_starter_credit_code: ``hmcc_`` code redeemed for each signup.
        attestation_provider: ``dev`` (software) or ``dstack`` (real TEE).
        host: Bind address of the launcher.
        port: Bind port of the launcher (0 picks a free port).
        max_body_bytes: Largest JSON request body accepted.
        max_archive_bytes: Largest compressed agent archive accepted.
        signups_per_minute: Self-serve signups accepted per minute (per process).
    """

    data_dir: Path
    admin_key: str = dataclasses.field(default="", repr=False)
    self_serve_signup: bool = False
    enforce_credits: bool = False
    signup_starter_credit_code: str = dataclasses.field(default="", repr=False)
    attestation_provider: Literal["dev", "dstack"] = "dev"
    host: str = "127.0.0.1"
    port: int = 8100
    max_body_bytes: int = 1024 * 1024
    max_archive_bytes: int = 50 * 1024 * 1024
    signups_per_minute: int = 30

    def __post_init__(self) -> None:
        if self.attestation_provider not in _PROVIDERS:
            raise SettingsError(
                f"HIVEMIND_ATTESTATION_PROVIDER must be 'dev' or 'dstack', "
                f"got {self.attestation_provider!r}"
            )
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"HIVEMIND_PORT must be between 0 and 65535, got {self.port}")
        code = self.signup_starter_credit_code
        if code and not code.startswith("hmcc_"):
            raise SettingsError("HIVEMIND_SIGNUP_STARTER_CREDIT_CODE must start with 'hmcc_'")
        if self.admin_key and len(self.admin_key) < 16:
            raise SettingsError("HIVEMIND_ADMIN_KEY must be at least 16 characters")

    @property
    def control_db_path(self) -> Path:
        """Path of the control database file."""
        return self.data_dir / "control.sqlite3"

    @property
    def tenants_dir(self) -> Path:
        """Directory holding one database file per tenant."""
        return self.data_dir / "tenants"

    @property
    def is_loopback(self) -> bool:
        """Whether the bind host is a loopback address."""
        return is_loopback_host(self.host)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``HIVEMIND_*`` variables.

        Args:
            env: The environment to read; ``os.environ`` when omitted.

        Returns:
            The validated settings.

        The run engine's settings (:meth:`EngineConfig.from_env
        <hivemind_rooms.pipeline.EngineConfig.from_env>`) are checked here
        too, so that any caller building settings learns of every bad value
        before it starts a server.

        Raises:
            SettingsError: A variable holds an unusable value.
        """
        env = os.environ if env is None else env
        check_run_settings(env)
        data_dir = env.get("HIVEMIND_DATA_DIR", "").strip() or str(Path.home() / ".hivemind-rooms")
        provider = env.get("HIVEMIND_ATTESTATION_PROVIDER", "").strip().lower() or "dev"
        return cls(
            data_dir=Path(data_dir),
            admin_key=env.get("HIVEMIND_ADMIN_KEY", "").strip(),
            self_serve_signup=env_bool(env, "HIVEMIND_SELF_SERVE_SIGNUP_ENABLED", False),
            enforce_credits=env_bool(env, "HIVEMIND_BILLING_ENFORCE_CREDITS", False),
            signup_starter_credit_code=env.get("HIVEMIND_SIGNUP_STARTER_CREDIT_CODE", "").strip(),
            attestation_provider=provider,  # type: ignore[arg-type]  # checked in __post_init__
            host=env.get("HIVEMIND_HOST", "").strip() or "127.0.0.1",
            port=env_int(env, "HIVEMIND_PORT", 8100, low=0, high=65535),
            max_body_bytes=env_int(
                env, "HIVEMIND_MAX_BODY_BYTES", 1024 * 1024, low=1024, high=64 * 1024 * 1024
            ),
            max_archive_bytes=env_int(
                env,
                "HIVEMIND_MAX_ARCHIVE_BYTES",
                50 * 1024 * 1024,
                low=1024,
                high=512 * 1024 * 1024,
            ),
            signups_per_minute=env_int(env, "HIVEMIND_SIGNUPS_PER_MINUTE", 30, low=1, high=100_000),
        )


def check_run_settings(env: Mapping[str, str] | None = None) -> None:
    """Parse the run engine's ``HIVEMIND_*`` settings and discard the result.

    Raises:
        SettingsError: A run setting holds an unusable value.
    """
    # Imported here: the pipeline package imports this module for its parsers.
    from .pipeline._config import EngineConfig

    EngineConfig.from_env(os.environ if env is None else env)
