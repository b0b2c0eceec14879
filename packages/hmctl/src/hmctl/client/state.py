"""Local client state under ``$XDG_CONFIG_HOME/hivemind/``.

Layout (every file 0600, every directory 0700, every write atomic: a
temporary file in the same directory, fsync, then rename)::

    profiles/<NAME>.json     {"service", "api_key", "role"}
    active                   the active profile name (one line)
    trust.json               {"version": 1, "services": {...}, "dev_roots": [...]}
    accepted-rooms.json      {"<key>": {profile, service, room_id, name, manifest_hash,
                               owner_pubkey_b64, accepted_at}}
    owner-keys/<NAME>.json   {"seed_hex", "public_key_b64"} (the owner's signing key)

Profile resolution: the explicit name (``--profile`` or ``HIVEMIND_PROFILE``),
else the ``active`` file, else ``default``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from hivemind_rooms.manifest import OwnerKey

from .errors import InvalidState, UsageProblem

__all__ = [
    "DEFAULT_PROFILE",
    "LocalState",
    "Profile",
    "acceptance_key",
    "atomic_write",
    "state_dir",
]

DEFAULT_PROFILE = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ROLES = frozenset({"tenant", "admin"})


def state_dir() -> Path:
    """``$XDG_CONFIG_HOME/hivemind`` (``~/.config/hivemind`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hivemind"


def _ensure_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        path.chmod(0o700)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600.

    The data goes to a temporary file in the same directory (created 0600),
    is flushed to disk, then renamed over ``path``.
    """
    _ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _load(path: Path, default: Any) -> Any:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise InvalidState(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidState(
            f"{path} is not valid JSON", hint="fix or remove the file and try again"
        ) from None


def check_profile_name(name: str) -> str:
    """Return ``name`` if it is a valid profile name.

    Raises:
        UsageProblem: the name is empty, too long or has unsafe characters.
    """
    if not _NAME.fullmatch(name):
        raise UsageProblem(
            f"invalid profile name {name!r}",
            hint="use letters, digits, '.', '_' or '-' (at most 64 characters)",
        )
    return name


def acceptance_key(
    profile: str, service: str, room_id: str, owner_pubkey_b64: str, manifest_hash: str
) -> str:
    """The key of one acceptance record (a new manifest hash needs a new record)."""
    return "|".join((profile, service.rstrip("/"), room_id, owner_pubkey_b64, manifest_hash))


@final
@dataclass(frozen=True)
class Profile:
    """One saved service profile.

    Attributes:
        name: the profile name.
        service: the room service base URL (no trailing slash).
        api_key: the tenant (``hmk_``) or admin key; never shown in the repr.
        role: ``tenant`` or ``admin``.
    """

    name: str
    service: str
    api_key: str = field(default="", repr=False)
    role: str = "tenant"

    def to_json(self) -> dict[str, str]:
        """The stored form."""
        return {"service": self.service, "api_key": self.api_key, "role": self.role}


@final
class LocalState:
    """Reads and writes the client's local state.

    Args:
        root: the state directory (default :func:`state_dir`).
        clock: returns Unix seconds (for acceptance and approval times).
    """

    def __init__(self, root: Path | None = None, *, clock: Any = time.time) -> None:
        self.root = root or state_dir()
        self._clock = clock

    # -- profiles -------------------------------------------------------------

    def _profile_path(self, name: str) -> Path:
        return self.root / "profiles" / f"{check_profile_name(name)}.json"

    def active_name(self, explicit: str | None = None) -> str:
        """The profile in use: ``explicit``, else the ``active`` file, else ``default``."""
        if explicit:
            return check_profile_name(explicit)
        try:
            text = (self.root / "active").read_text("utf-8").strip()
        except FileNotFoundError:
            return DEFAULT_PROFILE
        except OSError as exc:
            raise InvalidState(f"cannot read the active profile: {exc.strerror}") from None
        return check_profile_name(text) if text else DEFAULT_PROFILE

    def has_active_pointer(self) -> bool:
        """Whether an ``active`` file exists."""
        return (self.root / "active").exists()

    def set_active(self, name: str) -> None:
        """Make ``name`` the active profile (it must exist)."""
        self.load_profile(name)
        atomic_write(self.root / "active", check_profile_name(name) + "\n")

    def load_profile(self, name: str) -> Profile:
        """Load a profile.

        Raises:
            UsageProblem: no such profile.
            InvalidState: the file is malformed.
        """
        path = self._profile_path(name)
        data = _load(path, None)
        if data is None:
            raise UsageProblem(
                f"no profile named {name!r}",
                hint="create one with: hmctl init --service URL --api-key KEY",
            )
        if not isinstance(data, dict) or not isinstance(data.get("service"), str):
            raise InvalidState(f"{path} is not a valid profile")
        role = data.get("role", "tenant")
        return Profile(
            name=name,
            service=data["service"].rstrip("/"),
            api_key=str(data.get("api_key") or ""),
            role=role if role in _ROLES else "tenant",
        )

    def save_profile(self, profile: Profile) -> None:
        """Create or replace a profile."""
        atomic_write(self._profile_path(profile.name), _dump(profile.to_json()))

    def list_profiles(self) -> list[Profile]:
        """Every saved profile, sorted by name."""
        folder = self.root / "profiles"
        if not folder.is_dir():
            return []
        names = sorted(p.stem for p in folder.glob("*.json") if _NAME.fullmatch(p.stem))
        return [self.load_profile(n) for n in names]

    def remove_profile(self, name: str) -> None:
        """Delete a profile and its owner key (the service key is not revoked)."""
        path = self._profile_path(name)
        if not path.exists():
            raise UsageProblem(f"no profile named {name!r}")
        path.unlink()
        (self.root / "owner-keys" / f"{name}.json").unlink(missing_ok=True)
        if self.has_active_pointer() and self.active_name() == name:
            (self.root / "active").unlink(missing_ok=True)

    # -- owner signing keys ---------------------------------------------------

    def owner_key(self, profile: str, *, create: bool = False) -> OwnerKey | None:
        """The profile's room-owner signing key (created on demand when asked)."""
        path = self.root / "owner-keys" / f"{check_profile_name(profile)}.json"
        data = _load(path, None)
        if data is None:
            if not create:
                return None
            key = OwnerKey.generate()
            record = {"seed_hex": key.export_seed().hex(), "public_key_b64": key.public_key_b64()}
            atomic_write(path, _dump(record))
            return key
        try:
            return OwnerKey.from_seed(bytes.fromhex(data["seed_hex"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidState(f"{path} is not a valid owner key file") from None

    # -- trust store ----------------------------------------------------------

    def _trust(self) -> dict[str, Any]:
        data = _load(self.root / "trust.json", {})
        if not isinstance(data, dict) or data.get("version") != 1:
            data = {}
        data.setdefault("version", 1)
        if not isinstance(data.get("services"), dict):
            data["services"] = {}
        if not isinstance(data.get("dev_roots"), list):
            data["dev_roots"] = []
        return data

    def _save_trust(self, data: dict[str, Any]) -> None:
        atomic_write(self.root / "trust.json", _dump(data))

    def trust_store(self) -> dict[str, Any]:
        """A copy of the whole trust store (services and dev roots)."""
        return self._trust()

    def trusted_service(self, service: str) -> dict[str, Any] | None:
        """The trust record of a service, if any."""
        record = self._trust()["services"].get(service.rstrip("/"))
        return record if isinstance(record, dict) else None

    def approve_service(
        self, service: str, *, compose_hash: str, app_id: str, platform: str
    ) -> None:
        """Record ``compose_hash`` as approved for ``service`` (history kept)."""
        data = self._trust()
        now = self._clock()
        key = service.rstrip("/")
        record = data["services"].get(key) or {"first_seen_at": now, "history": []}
        record.update(
            app_id=app_id, approved_compose_hash=compose_hash, approved_at=now, platform=platform
        )
        record["history"] = [*record.get("history", []), {"hash": compose_hash, "approved_at": now}]
        data["services"][key] = record
        self._save_trust(data)

    def forget_service(self, service: str) -> bool:
        """Drop a service's trust record; True if one existed."""
        data = self._trust()
        found = data["services"].pop(service.rstrip("/"), None) is not None
        if found:
            self._save_trust(data)
        return found

    def dev_roots(self) -> list[str]:
        """The dev attestation roots the user trusts."""
        return [r for r in self._trust()["dev_roots"] if isinstance(r, str)]

    def add_dev_root(self, key_b64: str) -> bool:
        """Trust a dev root; False if it was already trusted."""
        data = self._trust()
        if key_b64 in data["dev_roots"]:
            return False
        data["dev_roots"].append(key_b64)
        self._save_trust(data)
        return True

    def remove_dev_root(self, key_b64: str) -> bool:
        """Stop trusting a dev root; False if it was not trusted."""
        data = self._trust()
        if key_b64 not in data["dev_roots"]:
            return False
        data["dev_roots"].remove(key_b64)
        self._save_trust(data)
        return True

    # -- accepted rooms -------------------------------------------------------

    def _accepted(self) -> dict[str, Any]:
        data = _load(self.root / "accepted-rooms.json", {})
        return data if isinstance(data, dict) else {}

    def is_accepted(self, key: str) -> bool:
        """Whether an acceptance record exists for ``key``."""
        return key in self._accepted()

    def accept(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store an acceptance record (``accepted_at`` added) and return it."""
        data = self._accepted()
        stored = {**record, "accepted_at": self._clock()}
        data[key] = stored
        atomic_write(self.root / "accepted-rooms.json", _dump(data))
        return stored

    def accepted_rooms(self) -> Iterator[dict[str, Any]]:
        """Every acceptance record."""
        yield from (v for v in self._accepted().values() if isinstance(v, dict))
