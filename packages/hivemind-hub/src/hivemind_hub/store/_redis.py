"""Redis client store: one shared database for several hub processes.

Theory of operation
-------------------
Key layout (spec §6.2), with ``P`` the prefix (``index_prefix``, default
``client``; ``<index_prefix>:{<cluster_hash_tag>}`` when a hash tag is set so
every key lands in one cluster slot):

* ``P:client:<id>``  the record as JSON (sorted keys)
* ``P:api_key:<key>`` SET of ids using that access key
* ``P:name:<name>``  SET of ids using that name
* ``P:idx:<id>``     HASH ``{name, api_key}`` (search index rows)
* ``P:count``        number of records
* ``P:id_seq``       id sequence (``INCR``); also the high-water mark
* ``P:schema_version`` schema version sentinel (missing means 1)

Each record write is one MULTI/EXEC transaction covering the record, its
index sets and the counter. Read-modify-write blocks (create, update, delete)
additionally hold a Redis lock (``P:lock``, 10 s lease) so two hubs or a hub
and the CLI cannot interleave. Every call has a socket timeout, and every
Redis failure surfaces as :class:`~hivemind_hub.StoreError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from .._errors import InvalidClientError, StoreError
from ..clients import Client
from ._base import SCHEMA_VERSION, BaseClientStore

__all__ = ["RedisClientStore", "redis_prefix"]

_LOCK_LEASE_S = 10.0
_LOCK_WAIT_S = 10.0


def redis_prefix(options: Mapping[str, Any]) -> str:
    """Return the key prefix configured by ``index_prefix``/``cluster_hash_tag``."""
    prefix = str(options.get("index_prefix") or "client")
    tag = options.get("cluster_hash_tag")
    return f"{prefix}:{{{tag}}}" if tag else prefix


class RedisClientStore(BaseClientStore):
    """Client store in Redis.

    Args:
        options: The ``database.hivemind-redis-db-plugin`` block: ``host``,
            ``port``, ``password``, ``username``, ``db``, ``index_prefix``,
            ``cluster_hash_tag``, ``max_connections``, ``use_ssl``/``ssl``,
            ``ssl_certfile``, ``ssl_keyfile``, ``ssl_ca_certs``,
            ``ssl_cert_reqs``, ``ssl_check_hostname``, ``retry_attempts``,
            ``retry_delay``.
        client: An existing Redis connection to use instead.
    """

    backend = "redis"

    def __init__(
        self, options: Mapping[str, Any] | None = None, *, client: redis.Redis | None = None
    ) -> None:
        super().__init__()
        options = dict(options or {})
        self.prefix = redis_prefix(options)
        self._r = client if client is not None else _connect(options)
        self._local = threading.local()
        with self._errors():
            self._r.ping()
            with self._atomic():
                if self.schema_version < SCHEMA_VERSION:
                    self._migrate_v1()

    # -- helpers ----------------------------------------------------------------

    def _k(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise StoreError(f"redis client database: {exc.__class__.__name__}") from exc

    @property
    def schema_version(self) -> int:
        """The schema version sentinel (1 when missing)."""
        with self._errors():
            value = self._r.get(self._k("schema_version"))
        return int(value) if value else 1

    def _migrate_v1(self) -> None:
        for client in list(self._scan()):
            self._r.set(self._k("client", client.client_id), client.to_json())
        self._r.set(self._k("schema_version"), SCHEMA_VERSION)

    # -- primitives -------------------------------------------------------------

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        if getattr(self._local, "depth", 0):
            yield
            return
        lock = self._r.lock(self._k("lock"), timeout=_LOCK_LEASE_S, blocking_timeout=_LOCK_WAIT_S)
        with self._errors():
            if not lock.acquire():
                raise StoreError("redis client database: timed out waiting for the store lock")
        self._local.depth = 1
        try:
            with self._errors():
                yield
        finally:
            self._local.depth = 0
            with self._errors():
                lock.release()

    def _parse(self, text: str | bytes | None) -> Client | None:
        if text is None:
            return None
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        try:
            return Client.from_json(text)
        except InvalidClientError as exc:
            raise StoreError(f"redis client database: bad record ({exc})") from exc

    def _read(self, client_id: int) -> Client | None:
        with self._errors():
            return self._parse(self._r.get(self._k("client", client_id)))

    def _write(self, client: Client, previous: Client | None) -> None:
        cid = client.client_id
        with self._errors():
            pipe = self._r.pipeline(transaction=True)
            if previous is not None:
                pipe.srem(self._k("api_key", previous.api_key), cid)
                pipe.srem(self._k("name", previous.name), cid)
            pipe.set(self._k("client", cid), client.to_json())
            pipe.sadd(self._k("api_key", client.api_key), cid)
            pipe.sadd(self._k("name", client.name), cid)
            pipe.hset(self._k("idx", cid), mapping={"name": client.name, "api_key": client.api_key})
            if previous is None:
                pipe.incr(self._k("count"))
            pipe.execute()

    def _remove(self, client: Client) -> None:
        cid = client.client_id
        with self._errors():
            pipe = self._r.pipeline(transaction=True)
            pipe.delete(self._k("client", cid), self._k("idx", cid))
            pipe.srem(self._k("api_key", client.api_key), cid)
            pipe.srem(self._k("name", client.name), cid)
            pipe.decr(self._k("count"))
            pipe.execute()

    def _scan(self) -> Iterator[Client]:
        with self._errors():
            keys = sorted(self._r.scan_iter(match=self._k("client", "*"), count=500))
            values = self._r.mget(keys) if keys else []
        clients = [self._parse(v) for v in values]
        return iter([c for c in clients if c is not None])

    def _candidates(self, access_key: str) -> list[Client]:
        with self._errors():
            ids = self._r.smembers(self._k("api_key", access_key))
            keys = [self._k("client", i) for i in sorted(ids)]
            values = self._r.mget(keys) if keys else []
        return [c for c in (self._parse(v) for v in values) if c is not None]

    def _high_water(self) -> int:
        with self._errors():
            value = self._r.get(self._k("id_seq"))
        return int(value) if value else 0

    def _set_high_water(self, value: int) -> None:
        with self._errors():
            if value > self._high_water():
                self._r.set(self._k("id_seq"), value)

    def _allocate_id(self) -> int:
        # The sequence is raised by every put()/delete(), so INCR alone is
        # above every stored id; the max() guards against foreign writers.
        with self._errors():
            new_id = int(self._r.incr(self._k("id_seq")))
        stored = max((c.client_id for c in self._scan()), default=0)
        if new_id <= stored:
            new_id = stored + 1
            self._set_high_water(new_id)
        return new_id

    def __len__(self) -> int:
        with self._errors():
            value = self._r.get(self._k("count"))
        return int(value) if value else 0

    def close(self) -> None:
        """Close the connection pool."""
        with self._errors():
            self._r.close()


def _connect(options: Mapping[str, Any]) -> redis.Redis:
    use_ssl = bool(options.get("use_ssl") or options.get("ssl"))
    kwargs: dict[str, Any] = {
        "host": options.get("host", "127.0.0.1"),
        "port": int(options.get("port", 6379)),
        "db": int(options.get("db", 0)),
        "password": options.get("password"),
        "username": options.get("username") if options.get("password") else None,
        "max_connections": int(options.get("max_connections", 5)),
        "socket_timeout": float(options.get("socket_timeout", 5.0)),
        "socket_connect_timeout": float(options.get("socket_connect_timeout", 5.0)),
        "decode_responses": True,
        "retry": Retry(
            ConstantBackoff(float(options.get("retry_delay", 0.1))),
            int(options.get("retry_attempts", 3)),
        ),
    }
    if use_ssl:
        kwargs.update(
            ssl=True,
            ssl_certfile=options.get("ssl_certfile"),
            ssl_keyfile=options.get("ssl_keyfile"),
            ssl_ca_certs=options.get("ssl_ca_certs"),
            ssl_cert_reqs=options.get("ssl_cert_reqs", "required"),
            ssl_check_hostname=bool(options.get("ssl_check_hostname", True)),
        )
    return redis.Redis(**kwargs)
