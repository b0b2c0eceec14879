"""The ordered policy admission chain (spec §6.5).

Theory of operation
-------------------
A chain is a list of links, each a policy and an ``optional`` flag. The first
two links are fixed: the ``allowed_types`` whitelist, then the default-session
rule. Configured plugins follow in order.

``review`` hands each policy the message as mutated by the policies before
it; the first denial ends the review. Policies read one shared read-only
view (``_view``); one that edits its argument in place is given a private
copy instead, so no policy can change the caller's message or, without
returning it, what the next policy sees. The chain fails closed: an exception
in a mandatory policy is a ``policy_error`` denial, an exception in an
optional policy skips that policy. If the configured chain cannot be built
(a plugin missing or its constructor failing), the whole chain is replaced by
:class:`DenyAllPolicy` so every message is refused with
``policy_chain_unavailable`` until the configuration is fixed.

``review_current`` takes a zero-argument lookup instead of a record: the hub
passes ``lambda: store.get_by_access_key(key)`` so every message is judged
against the current grants (``allow-msg`` takes effect on the next message),
a deleted client is refused, and a database error denies instead of falling
back to stale grants (spec W18).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Final

from hivemind_proto._types import BinaryType

from ..clients import Client
from ..config import PolicyEntry
from ._builtin import (
    BasePolicy,
    DefaultSessionPolicy,
    DenyAllPolicy,
    MessageTypeACLPolicy,
    Policy,
)
from ._decision import PolicyDecision
from ._view import ReadOnlyMessageError, freeze, thaw

__all__ = ["POLICY_GROUP", "ChainLink", "PolicyChain", "build_policy_chain"]

#: Entry-point group of policy plugins.
POLICY_GROUP: Final = "hivemind.policy"
POLICY_ERROR: Final = "policy_error"
CLIENT_UNKNOWN: Final = "client_unknown"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChainLink:
    """One policy in the chain and whether its failures are tolerated."""

    policy: Policy
    optional: bool = False


class PolicyChain:
    """An ordered, fail-closed sequence of policies.

    Args:
        links: The policies in review order (use :func:`build_policy_chain`
            to get the mandatory ones first).
        degraded_reason: Set when this chain is the deny-all fallback.
    """

    def __init__(self, links: Sequence[ChainLink], degraded_reason: str | None = None) -> None:
        self.links = tuple(links)
        self.degraded_reason = degraded_reason
        #: Links whose policy edits its argument in place: given private copies.
        self._mutators: set[int] = set()

    @property
    def names(self) -> list[str]:
        """The policy names in order."""
        return [link.policy.name for link in self.links]

    def review(self, client: Client, message: Mapping[str, Any]) -> PolicyDecision:
        """Run every policy over an agent-bus message.

        Args:
            client: The sender's current record.
            message: ``{"type", "data", "context"}``; never modified.

        Returns:
            The first denial, or an approval whose ``message`` is the
            (possibly mutated) message to emit, as a read-only view.
        """
        current: dict[str, Any] = freeze(message)
        for link in self.links:
            decision = self._guarded(
                link, functools.partial(self._review_one, link, client, current)
            )
            if decision is None:
                continue
            if not decision.allowed:
                return decision
            if decision.message is not None:
                current = freeze(decision.message)
        return PolicyDecision.allow(current)

    def _review_one(
        self, link: ChainLink, client: Client, view: dict[str, Any], policy: Policy
    ) -> PolicyDecision:
        if id(link) not in self._mutators:
            try:
                return policy.review(client, view)
            except ReadOnlyMessageError:
                self._mutators.add(id(link))
        return policy.review(client, thaw(view))

    def review_binary(
        self, client: Client, bin_type: BinaryType, metadata: Mapping[str, Any] | None = None
    ) -> PolicyDecision:
        """Run every policy over a binary payload.

        Returns:
            The first denial, or an approval.
        """
        meta = dict(metadata or {})
        for link in self.links:
            decision = self._guarded(link, lambda p: p.review_binary(client, bin_type, meta))
            if decision is not None and not decision.allowed:
                return decision
        return PolicyDecision.allow()

    def review_current(
        self, lookup: Callable[[], Client | None], message: Mapping[str, Any]
    ) -> PolicyDecision:
        """Like :meth:`review`, fetching the client record first.

        A lookup that fails denies with ``policy_error``; a lookup that finds
        nothing (client deleted) denies with ``client_unknown``.
        """
        client, denial = _lookup(lookup)
        return denial if client is None else self.review(client, message)

    def review_binary_current(
        self,
        lookup: Callable[[], Client | None],
        bin_type: BinaryType,
        metadata: Mapping[str, Any] | None = None,
    ) -> PolicyDecision:
        """Like :meth:`review_binary`, fetching the client record first."""
        client, denial = _lookup(lookup)
        return denial if client is None else self.review_binary(client, bin_type, metadata)

    def observe(self, client: Client, message: Mapping[str, Any]) -> None:
        """Let every policy see an admitted message; failures are logged only."""
        view: dict[str, Any] | None = None
        for link in self.links:
            if type(link.policy).observe is BasePolicy.observe:
                continue  # the no-op default: nothing to copy for
            view = freeze(message) if view is None else view
            try:
                self._observe_one(link, client, view)
            except Exception:
                _log.exception("policy %s failed in observe()", link.policy.name)

    def _observe_one(self, link: ChainLink, client: Client, view: dict[str, Any]) -> None:
        if id(link) not in self._mutators:
            try:
                link.policy.observe(client, view)
                return
            except ReadOnlyMessageError:
                self._mutators.add(id(link))
        link.policy.observe(client, thaw(view))

    @staticmethod
    def _guarded(
        link: ChainLink, call: Callable[[Policy], PolicyDecision]
    ) -> PolicyDecision | None:
        try:
            decision = call(link.policy)
            if not isinstance(decision, PolicyDecision):
                raise TypeError(f"policy returned {type(decision).__name__}")
            return decision
        except Exception as exc:
            if link.optional:
                _log.warning("optional policy %s failed, skipped", link.policy.name)
                return None
            _log.error("policy %s failed: %s", link.policy.name, exc.__class__.__name__)
            return PolicyDecision.deny(POLICY_ERROR, f"policy {link.policy.name} failed")


def _lookup(lookup: Callable[[], Client | None]) -> tuple[Client | None, PolicyDecision]:
    try:
        client = lookup()
    except Exception as exc:
        _log.error("client lookup failed: %s", exc.__class__.__name__)
        return None, PolicyDecision.deny(POLICY_ERROR, "the client database is unavailable")
    if client is None:
        return None, PolicyDecision.deny(CLIENT_UNKNOWN, "this client is no longer registered")
    return client, PolicyDecision.allow()


EntryPointLoader = Callable[[str], Callable[..., Policy]]


def _default_loader(module: str) -> Callable[..., Policy]:
    matches: Iterable[EntryPoint] = entry_points(group=POLICY_GROUP, name=module)
    for ep in matches:
        return ep.load()  # type: ignore[no-any-return]
    raise LookupError(f"no policy plugin named {module!r} in group {POLICY_GROUP}")


def build_policy_chain(
    entries: Sequence[PolicyEntry], *, loader: EntryPointLoader | None = None
) -> PolicyChain:
    """Build the admission chain: the two fixed policies, then ``entries``.

    Args:
        entries: The configured ``policy.chain``.
        loader: Resolves a plugin name to a factory taking the entry's
            ``config`` mapping (defaults to the ``hivemind.policy`` entry points).

    Returns:
        The chain, or a deny-all chain if a mandatory plugin cannot be built.
    """
    load = loader or _default_loader
    links = [ChainLink(MessageTypeACLPolicy()), ChainLink(DefaultSessionPolicy())]
    for entry in entries:
        try:
            policy = load(entry.module)(dict(entry.config))
            if not isinstance(policy, Policy):
                raise TypeError(f"{entry.module} did not produce a policy")
        except Exception as exc:
            if entry.optional:
                _log.warning("optional policy %s unavailable, skipped", entry.module)
                continue
            reason = f"policy {entry.module!r} could not be loaded ({exc.__class__.__name__})"
            _log.error("%s: every message will be denied", reason)
            return PolicyChain([ChainLink(DenyAllPolicy(reason))], degraded_reason=reason)
        links.append(ChainLink(policy, optional=entry.optional))
    return PolicyChain(links)
