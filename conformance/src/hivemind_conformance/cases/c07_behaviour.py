"""Client cases of docs/spec §7 (what a client does with hub messages)."""

from __future__ import annotations

from hivemind_proto import HiveMessage, MessageType

from .._case import Failed, Level, Outcome, Profile, Skipped, expect
from .._clientctx import ClientContext
from .._peer import PeerClosed
from ._registry import client_case

L, S = Profile.L, Profile.S
MUST, INFO = Level.MUST, Level.INFO


@client_case(
    "client/7.3/C13",
    "7.3",
    "BUS delivered to the local bus",
    "A client MUST emit a hub BUS on its local bus with context.source set to the former "
    "destination, keeping its own site_id.",
    INFO,
    L,
)
async def local_bus(ctx: ClientContext) -> Outcome:
    raise Skipped("needs the client's local bus; the echo contract cannot observe it")


@client_case(
    "client/7.3/C14",
    "7.3",
    "ESCALATE and SHARED_BUS from the hub",
    "A client MUST ignore ESCALATE and SHARED_BUS messages from a hub.",
    MUST,
    L,
)
async def illegal_types(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    escalated = {"escalated": ctx.rng(4).hex()}
    await session.send(HiveMessage(MessageType.ESCALATE, ctx.echo_message(escalated)))
    shared = {"shared": ctx.rng(4).hex()}
    bus = ctx.echo_message(shared)
    await session.send(HiveMessage(MessageType.SHARED_BUS, bus.payload))
    for data in (escalated, shared):
        try:
            echoed = await ctx.wait_echo(session, data, ctx.config.quiet_timeout)
        except PeerClosed:
            return Outcome("closed the connection")
        expect(echoed is None, "nothing acted on", f"{data} was echoed")
    return Outcome("ignored")


@client_case(
    "client/7.3/C15",
    "7.3",
    "site-targeted BROADCAST",
    "A client MUST inject the inner BUS of a BROADCAST only when its target_site_id is the "
    "client's own site.",
    MUST,
    L,
)
async def broadcast_site(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    site = session.hello.get("site_id")
    if not isinstance(site, str):
        raise Skipped("the client announced no site_id")
    ours = {"site": "ours", "n": ctx.rng(4).hex()}
    theirs = {"site": "other", "n": ctx.rng(4).hex()}
    await session.send(
        HiveMessage(MessageType.BROADCAST, ctx.echo_message(theirs), target_site_id=site + "-other")
    )
    await session.send(
        HiveMessage(MessageType.BROADCAST, ctx.echo_message(ours), target_site_id=site)
    )
    try:
        echoed = await ctx.wait_echo(session, ours)
    except PeerClosed as exc:
        raise Failed(
            "the connection kept after a BROADCAST", f"it closed (code {exc.code})"
        ) from None
    expect(echoed is not None, "the BUS for our site injected (echoed)", "nothing")
    stray = [
        m
        for m in session.backlog
        if isinstance(m.payload, dict) and m.payload.get("data") == theirs
    ]
    expect(not stray, "the BUS for another site ignored", "it was injected")
    try:
        late = await ctx.wait_echo(session, theirs, ctx.config.quiet_timeout)
    except PeerClosed:
        late = None
    expect(late is None, "the BUS for another site ignored", "it was injected")
    return Outcome(f"site {site!r}")


@client_case(
    "client/7.4/C19",
    "7.4",
    "INTERCOM from the client",
    "A client MUST send INTERCOM as a signed envelope in a text frame, even with binarize on.",
    INFO,
    L,
)
async def intercom(ctx: ClientContext) -> Outcome:
    raise Skipped("the echo contract does not make a client send INTERCOM")
