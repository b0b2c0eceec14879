"""Hub cases of docs/spec §5.4, §6 and §7 (admission, agent contract, routing)."""

from __future__ import annotations

import json

import trio
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from hivemind_proto import HiveMessage, MessageType

from .. import _rsa
from .._case import Failed, Level, Outcome, Profile, Skipped, expect
from .._hubctx import ECHO, FORBIDDEN, HubContext, Session, reply_data
from .._peer import PeerClosed
from ._common import expect_close, no_reply
from ._registry import hub_case

L, S = Profile.L, Profile.S
MUST, SHOULD, INFO = Level.MUST, Level.SHOULD, Level.INFO


async def _collect(ctx: HubContext, session: Session, seconds: float) -> list[HiveMessage]:
    """Everything that reaches ``session`` within ``seconds`` (backlog included)."""
    got = list(session.backlog)
    session.backlog.clear()
    try:
        while True:
            try:
                got.append(await session.recv(seconds))
            except Exception as exc:
                if isinstance(exc, PeerClosed | Failed):
                    raise
                return got
    except PeerClosed:
        return got


async def _registered(ctx: HubContext, *sessions: Session) -> None:
    """Make sure the hub has registered ``sessions`` (an echo round trip each)."""
    for session in sessions:
        await ctx.echo(session)


async def _await_marker(ctx: HubContext, session: Session, marker: str) -> HiveMessage | None:
    """Wait up to the reply timeout for a message carrying ``marker``."""
    deadline = trio.current_time() + ctx.config.reply_timeout
    while (left := deadline - trio.current_time()) > 0:
        for message in await _collect(ctx, session, min(left, ctx.config.quiet_timeout)):
            if _has_marker([message], marker):
                return message
    return None


def _inner_bus(ctx: HubContext, session: Session, marker: str) -> HiveMessage:
    return ctx.echo_message(session, {"marker": marker})


def _has_marker(messages: list[HiveMessage], marker: str) -> bool:
    for message in messages:
        payload = message.payload
        if isinstance(payload, HiveMessage):
            payload = payload.payload
        if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
            data = payload["data"]
            if data.get("marker") == marker or data.get("data", {}).get("marker") == marker:
                return True
    return False


@hub_case(
    "hub/7.2/H26",
    "7.2",
    "context rewrite on injection",
    "Before handing a BUS message to its agent a hub MUST set context.peer and "
    "context.source to the client's peer, context.session to the client's session, and keep "
    "context.destination or set it to 'skills' when absent.",
    MUST,
    L,
)
async def context_rewrite(ctx: HubContext) -> Outcome:
    session = await ctx.session()
    seen = reply_data(await ctx.echo(session)).get("context", {})
    expect(seen.get("peer") == seen.get("source"), "peer == source", repr(seen)[:120])
    expect(isinstance(seen.get("peer"), str), "a string peer", repr(seen.get("peer")))
    sid = seen.get("session", {}).get("session_id")
    expect(sid == session.session_id, f"session {session.session_id}", repr(sid))
    expect(seen.get("destination") == "HiveMind", "destination kept", repr(seen.get("destination")))
    bare = ctx.echo_message(session, {"no": "destination"})
    context = dict(bare.payload["context"])  # type: ignore[index]
    del context["destination"]
    await session.send(bare.replace(payload={**bare.payload, "context": context}))  # type: ignore[dict-item]
    reply = await ctx.wait_reply(session)
    expect(reply is not None, "an echo reply", "none")
    assert reply is not None
    dest = reply_data(reply).get("context", {}).get("destination")
    expect(dest == "skills", "destination 'skills' when absent", repr(dest))
    return Outcome(f"peer {seen.get('peer')!r}")


@hub_case(
    "hub/6.5/H27",
    "6.5",
    "type outside allowed_types",
    "A hub MUST NOT deliver to its agent a BUS message whose type is not in the client's "
    "allowed types.",
    MUST,
    L,
)
async def acl_block(ctx: HubContext) -> Outcome:
    session = await ctx.session()
    await session.send(ctx.echo_message(session, {"acl": True}, kind=FORBIDDEN))
    closed = await no_reply(ctx, session, FORBIDDEN, f"{FORBIDDEN} must not reach the agent")
    return Outcome("closed" if closed else "not delivered")


@hub_case(
    "hub/6.5/H27-S",
    "6.5",
    "denial is reported",
    "A hardened hub MUST answer a refused BUS message with a BUS 'hive.policy.denied' whose "
    "data.code is 'acl_disallowed_type' and data.denied_type the refused type.",
    MUST,
    S,
)
async def acl_denied(ctx: HubContext) -> Outcome:
    session = await ctx.session()
    await session.send(ctx.echo_message(session, {"acl": True}, kind=FORBIDDEN))
    for message in await _collect(ctx, session, ctx.config.reply_timeout / 2):
        if message.bus_type == "hive.policy.denied":
            data = message.payload.get("data", {})  # type: ignore[union-attr]
            expect(data.get("code") == "acl_disallowed_type", "acl_disallowed_type", repr(data))
            expect(data.get("denied_type") == FORBIDDEN, FORBIDDEN, repr(data.get("denied_type")))
            return Outcome("denied")
    raise Failed("a hive.policy.denied message", "none")


@hub_case(
    "hub/7.2/H28",
    "7.2",
    "speak goes to the hub's audio",
    "A hub MUST set context.destination to ['audio'] on a 'speak' message from a client.",
    INFO,
    L,
)
async def speak_destination(ctx: HubContext) -> Outcome:
    raise Skipped("needs the hub's agent bus; the echo contract cannot observe a 'speak'")


@hub_case(
    "hub/7.3/H29",
    "7.3",
    "client isolation",
    "A hub MUST deliver an agent message only to the registered peer its destination names.",
    MUST,
    L,
)
async def isolation(ctx: HubContext) -> Outcome:
    first = await ctx.session()
    second = await ctx.session()
    await ctx.echo(second)
    reply = await ctx.echo(first, {"for": "first"})
    expect(reply.msg_type is MessageType.BUS, "a BUS reply", reply.msg_type.value)
    await no_reply(ctx, second, ECHO, "the first session's reply")
    return Outcome("only the addressee received the reply")


@hub_case(
    "hub/7.3/H30",
    "7.3",
    "agent message without destination",
    "A hub MUST drop an agent message whose destination is absent or names no registered peer.",
    INFO,
    L,
)
async def no_destination(ctx: HubContext) -> Outcome:
    raise Skipped("needs the hub's agent bus; the echo contract always names the sender")


@hub_case(
    "hub/7.3/H31",
    "7.3",
    "downstream send to an unknown peer",
    "A hub MUST report an explicit downstream send to an unknown peer on its agent bus "
    "(hive.client.send.error).",
    INFO,
    L,
)
async def unknown_downstream(ctx: HubContext) -> Outcome:
    raise Skipped("needs the hub's agent bus")


async def _broadcast_from(ctx: HubContext, sender: Session, marker: str) -> HiveMessage:
    message = HiveMessage(MessageType.BROADCAST, _inner_bus(ctx, sender, marker))
    await sender.send(message)
    return message


@hub_case(
    "hub/7.1/H32",
    "7.1",
    "BROADCAST from a non-admin",
    "A hub MUST NOT relay a BROADCAST sent by a client that is not an admin.",
    MUST,
    L,
)
async def broadcast_non_admin(ctx: HubContext) -> Outcome:
    sender = await ctx.session()
    witness = await ctx.session()
    await _registered(ctx, sender, witness)
    marker = ctx.rng(6).hex()
    await _broadcast_from(ctx, sender, marker)
    got = await _collect(ctx, witness, ctx.config.quiet_timeout)
    expect(not _has_marker(got, marker), "nothing relayed to other clients", "it was relayed")
    return Outcome("not relayed")


@hub_case(
    "hub/7.1/H32-S",
    "7.1",
    "BROADCAST from a non-admin closes",
    "A hardened hub MUST close the connection of a non-admin client that sends a BROADCAST.",
    MUST,
    S,
)
async def broadcast_kick(ctx: HubContext) -> Outcome:
    sender = await ctx.session()
    await _broadcast_from(ctx, sender, ctx.rng(6).hex())
    return Outcome(f"closed with {await expect_close(sender.peer, forbid_envelope=False)}")


@hub_case(
    "hub/7.1/H33",
    "7.1",
    "BROADCAST from an admin",
    "A hub MUST relay an admin's BROADCAST to every other registered client, as its inner "
    "message or as the BROADCAST itself, and not back to the sender.",
    MUST,
    L,
)
async def broadcast_admin(ctx: HubContext) -> Outcome:
    admin = ctx.need(ctx.config.admin, "admin credentials (--admin-key/--admin-password)")
    sender = await ctx.session(creds=admin)
    witnesses = [await ctx.session(), await ctx.session()]
    await _registered(ctx, sender, *witnesses)
    marker = ctx.rng(6).hex()
    await _broadcast_from(ctx, sender, marker)
    for witness in witnesses:
        relayed = await _await_marker(ctx, witness, marker)
        expect(relayed is not None, "the broadcast at every other client", "missing")
        assert relayed is not None
        kinds = (MessageType.BUS, MessageType.BROADCAST)
        expect(relayed.msg_type in kinds, "the inner BUS or the BROADCAST", relayed.msg_type.value)
    back = await _collect(ctx, sender, ctx.config.quiet_timeout)
    expect(not _has_marker(back, marker), "nothing back to the sender", "an echo of it")
    return Outcome("relayed to both other clients")


async def _restricted(ctx: HubContext, kind: MessageType) -> tuple[Session, Session, str]:
    other = ctx.need(ctx.config.other, "a restricted client (--other-key/--other-password)")
    sender = await ctx.session(creds=other)
    witness = await ctx.session()
    await _registered(ctx, sender, witness)
    marker = ctx.rng(6).hex()
    site = ctx.config.hub_site_id
    await sender.send(HiveMessage(kind, _inner_bus(ctx, sender, marker), target_site_id=site))
    return sender, witness, marker


@hub_case(
    "hub/7.1/H34",
    "7.1",
    "PROPAGATE and ESCALATE without permission",
    "A hub MUST NOT relay a PROPAGATE from a client without can_propagate, nor inject an "
    "ESCALATE from a client without can_escalate.",
    MUST,
    L,
)
async def restricted_wrappers(ctx: HubContext) -> Outcome:
    _, witness, marker = await _restricted(ctx, MessageType.PROPAGATE)
    got = await _collect(ctx, witness, ctx.config.quiet_timeout)
    expect(not _has_marker(got, marker), "the PROPAGATE not relayed", "relayed")
    sender, _, _ = await _restricted(ctx, MessageType.ESCALATE)
    try:
        reply = await ctx.wait_reply(sender, timeout=ctx.config.quiet_timeout)
    except PeerClosed:
        reply = None
    expect(reply is None, "the ESCALATE not injected", "echoed")
    return Outcome("neither relayed nor injected")


@hub_case(
    "hub/7.1/H34-S",
    "7.1",
    "PROPAGATE without permission closes",
    "A hardened hub MUST close a client that sends a PROPAGATE or ESCALATE it is not allowed "
    "to send.",
    MUST,
    S,
)
async def restricted_kick(ctx: HubContext) -> Outcome:
    for kind in (MessageType.PROPAGATE, MessageType.ESCALATE):
        sender, _, _ = await _restricted(ctx, kind)
        await expect_close(sender.peer, forbid_envelope=False)
    return Outcome("closed both times")


def _ping(ctx: HubContext, flood_id: str) -> HiveMessage:
    ping = HiveMessage(
        MessageType.PING,
        {"flood_id": flood_id, "peer": "conformance", "site_id": "conformance", "timestamp": 0},
    )
    return HiveMessage(MessageType.PROPAGATE, ping)


@hub_case(
    "hub/7.5/H35",
    "7.5",
    "PING flood answered once",
    "A hub SHOULD answer a PROPAGATE(PING) with its own PROPAGATE(PING) carrying the same "
    "flood_id, once per flood_id, to its registered clients.",
    SHOULD,
    L,
)
async def ping_once(ctx: HubContext) -> Outcome:
    sender = await ctx.session()
    witness = await ctx.session()
    await _registered(ctx, sender, witness)
    flood_id = ctx.rng(8).hex()
    await sender.send(_ping(ctx, flood_id))
    await sender.send(_ping(ctx, flood_id))
    got = await _collect(ctx, witness, ctx.config.quiet_timeout * 1.5)
    answers = [
        m
        for m in got
        if m.msg_type is MessageType.PROPAGATE
        and isinstance(m.payload, HiveMessage)
        and m.payload.msg_type is MessageType.PING
        and m.payload.payload.get("flood_id") == flood_id  # type: ignore[union-attr]
    ]
    expect(len(answers) == 1, "exactly one PROPAGATE(PING) with the flood_id", f"{len(answers)}")
    return Outcome("answered once")


@hub_case(
    "hub/7.1/H36",
    "7.1",
    "site-targeted ESCALATE",
    "A hub MUST inject the inner BUS of an ESCALATE whose outer target_site_id is its own "
    "site id (subject to the type ACL).",
    MUST,
    L,
)
async def escalate_site(ctx: HubContext) -> Outcome:
    if ctx.config.hub_site_id is None:
        raise Skipped("needs the hub's site id (--hub-site-id)")
    session = await ctx.session()
    inner = ctx.echo_message(session, {"escalated": True})
    await session.send(
        HiveMessage(MessageType.ESCALATE, inner, target_site_id=ctx.config.hub_site_id)
    )
    reply = await ctx.wait_reply(session)
    expect(reply is not None, "the inner BUS injected (an echo reply)", "none")
    return Outcome("injected")


def _intercom(recipient_pem: str, signer: RSAPrivateKey, marker: str) -> HiveMessage:
    """A legacy INTERCOM for ``recipient_pem`` carrying a small BUS, signed by ``signer``."""
    inner = {"msg_type": "bus", "payload": {"type": ECHO, "data": {"marker": marker}}}
    payload = _rsa.seal(recipient_pem, json.dumps(inner).encode(), signer)
    return HiveMessage(MessageType.INTERCOM, payload, target_pubkey=recipient_pem)


def _carries(messages: list[HiveMessage], payload: object) -> bool:
    """Whether one of ``messages`` is (or wraps) an INTERCOM with ``payload``'s ciphertext."""
    wanted = payload.get("ciphertext") if isinstance(payload, dict) else None
    for message in messages:
        if message.msg_type is not MessageType.INTERCOM and isinstance(
            message.payload, HiveMessage
        ):
            message = message.payload
        got = message.payload
        intercom = message.msg_type is MessageType.INTERCOM and isinstance(got, dict)
        if intercom and got.get("ciphertext") == wanted:  # type: ignore[union-attr]
            return True
    return False


@hub_case(
    "hub/7.4/H51",
    "7.4",
    "INTERCOM signature checked",
    "A hardened hub MUST NOT relay an INTERCOM whose signature does not verify against the "
    "pubkey of the sender's HELLO, and MUST relay a correctly signed one to the connection "
    "whose HELLO pubkey is its target_pubkey.",
    MUST,
    S,
)
async def intercom_signature(ctx: HubContext) -> Outcome:
    keys = await trio.to_thread.run_sync(lambda: [_rsa.new_key() for _ in range(3)])
    key_a, key_b, forger = keys
    pem_b = _rsa.public_pem(key_b)
    sender = await ctx.session(pubkey=_rsa.public_pem(key_a))
    addressee = await ctx.session(pubkey=pem_b)
    await _registered(ctx, sender, addressee)
    forged = _intercom(pem_b, forger, ctx.rng(6).hex())
    await sender.send(forged)
    got = await _collect(ctx, addressee, ctx.config.quiet_timeout)
    expect(not _carries(got, forged.payload), "a badly signed INTERCOM dropped", "relayed")
    signed = _intercom(pem_b, key_a, ctx.rng(6).hex())
    await sender.send(signed)
    deadline = trio.current_time() + ctx.config.reply_timeout
    while (left := deadline - trio.current_time()) > 0:
        got = await _collect(ctx, addressee, min(left, ctx.config.quiet_timeout))
        expect(not _carries(got, forged.payload), "a badly signed INTERCOM dropped", "relayed")
        if _carries(got, signed.payload):
            return Outcome("forged one dropped, signed one relayed")
    raise Failed("the correctly signed INTERCOM relayed to its addressee", "not relayed")


def _skip_case(
    id_: str, section: str, title: str, requirement: str, why: str, profile: Profile
) -> None:
    async def run(ctx: HubContext) -> Outcome:
        raise Skipped(why)

    hub_case(id_, section, title, requirement, INFO, profile)(run)


_skip_case(
    "hub/5.4/H40",
    "5.4",
    "RAW_AUDIO defaults",
    "A hub MUST hand RAW_AUDIO to its binary handler with sample_rate 16000 and sample_width 2 "
    "when the metadata omits them.",
    "needs the hub's binary handler",
    L,
)
_skip_case(
    "hub/6.5/H41",
    "6.5",
    "BINARY with an empty allow list",
    "A hardened hub MUST deny BINARY from a client whose allowed types are empty "
    "(hive.policy.denied, denied_type 'binary').",
    "needs a client provisioned with empty allowed_types",
    S,
)
_skip_case(
    "hub/5.4/H42",
    "5.4",
    "FILE name traversal",
    "A hub MUST store a received FILE under its base name only (or refuse it).",
    "needs the hub's file store",
    S,
)
_skip_case(
    "hub/7.3/H44",
    "7.3",
    "disconnect event",
    "On disconnect a hub MUST emit hive.client.disconnect on its agent bus and drop later "
    "replies to that peer.",
    "needs the hub's agent bus",
    L,
)
_skip_case(
    "hub/6.5/H45",
    "6.5",
    "ACL changes apply live",
    "A hardened hub MUST apply allowed-type changes to connected clients on their next message.",
    "needs the hub's administration tool",
    S,
)
_skip_case(
    "hub/1.4/H49",
    "1.4",
    "HTTP polling transport",
    "A hub serving the HTTP transport MUST queue HELLO and HANDSHAKE for /get_messages and "
    "accept /send_message.",
    "the HTTP polling transport is not part of the websocket suite",
    L,
)
