"""Errors raised by the hub's library layer.

Every error the data and admission layer raises on purpose derives from
:class:`HubError`, so a caller (the CLI, the server) can turn all of them into
one clean message without catching unrelated bugs.
"""

from __future__ import annotations


class HubError(Exception):
    """Base class of every deliberate hub library error."""


class ConfigError(HubError):
    """``server.json`` is unreadable or a key holds an invalid value.

    The message always names the offending key path (``limits.handshake_timeout``).
    """


class StoreError(HubError):
    """The client database failed or holds data we cannot interpret."""


class ClientNotFoundError(StoreError):
    """No live client matches the requested id or access key."""


class DuplicateAccessKeyError(StoreError):
    """Another live client already uses this access key."""


class InvalidClientError(StoreError):
    """A client record has a field of the wrong type or an illegal value."""
