r"""The connection state machine: every legal transition lives in this table.

Theory of operation: a ``Connection`` turns each thing that happens to it,
locally (``Input.SEND_*``, ``START``, ``CLOSE``) or from the peer
(``Input.RECV_*``), into one ``Input``, then asks ``next_state`` whether that
input is legal in the current state for its role. Illegal local inputs raise
``LocalProtocolError``; illegal peer inputs raise ``RemoteProtocolError`` with
close code 1008. Some inputs can lead to more than one state (a Noise message
finishes the handshake or not, depending on the pattern); the table lists
every possible outcome and the connection asserts that the one it reached is
listed. ERROR and CLOSED accept nothing.

Hub:       IDLE -start-> OFFERED -material-> KEYED -hello-> READY
                           |  \--noise--> NOISE_HANDSHAKE -noise-> KEYED
                           \--hello encrypted with a pre-shared key--> READY
Satellite: AWAITING_HELLO -hello-> AWAITING_OFFER -offer-> AWAITING_RESPONSE
           -response-> READY (HELLO sent); or -offer-> NOISE_HANDSHAKE
           -noise-> READY; READY -rekey-> REKEYING -response-> READY
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from ._errors import LocalProtocolError, RemoteProtocolError


class Role(Enum):
    """Which end of the connection we are."""

    HUB = "hub"
    SATELLITE = "satellite"


class State(Enum):
    """Connection states (see the module comment for the flow)."""

    IDLE = "idle"  #: hub, before ``start()``
    AWAITING_HELLO = "awaiting-hello"  #: satellite, before the hub's HELLO
    AWAITING_OFFER = "awaiting-offer"  #: satellite, before the hub's HANDSHAKE request
    OFFERED = "offered"  #: hub, HELLO and request sent
    AWAITING_RESPONSE = "awaiting-response"  #: satellite, password material sent
    NOISE_HANDSHAKE = "noise-handshake"  #: either, Noise messages in flight
    KEYED = "keyed"  #: hub, keys agreed, satellite HELLO not yet seen
    READY = "ready"  #: both, normal operation
    REKEYING = "rekeying"  #: satellite, new password material sent
    CLOSED = "closed"
    ERROR = "error"


class Input(Enum):
    """Everything that can happen to a connection."""

    START = "start"
    SEND_MESSAGE = "send-message"
    SEND_REKEY = "send-rekey"
    RECV_HELLO = "recv-hello"
    RECV_OFFER = "recv-offer"
    RECV_MATERIAL = "recv-material"
    RECV_RESPONSE = "recv-response"
    RECV_NOISE = "recv-noise"
    RECV_MESSAGE = "recv-message"
    CLOSE = "close"


S = State
_Table = dict[Role, dict[State, dict[Input, frozenset[State]]]]


def _to(*states: State) -> frozenset[State]:
    return frozenset(states)


TRANSITIONS: Final[_Table] = {
    Role.HUB: {
        S.IDLE: {Input.START: _to(S.OFFERED)},
        S.OFFERED: {
            Input.RECV_MATERIAL: _to(S.KEYED),
            Input.RECV_NOISE: _to(S.NOISE_HANDSHAKE, S.KEYED),
            # only when encrypted with the client's pre-shared key
            Input.RECV_HELLO: _to(S.READY),
            Input.RECV_MESSAGE: _to(S.OFFERED),
            Input.SEND_MESSAGE: _to(S.OFFERED),
        },
        S.NOISE_HANDSHAKE: {Input.RECV_NOISE: _to(S.KEYED)},
        S.KEYED: {
            Input.RECV_HELLO: _to(S.READY),
            Input.RECV_MATERIAL: _to(S.KEYED),
            Input.RECV_MESSAGE: _to(S.KEYED),
            Input.SEND_MESSAGE: _to(S.KEYED),
        },
        S.READY: {
            Input.RECV_HELLO: _to(S.READY),
            Input.RECV_MATERIAL: _to(S.READY),
            Input.RECV_MESSAGE: _to(S.READY),
            Input.SEND_MESSAGE: _to(S.READY),
        },
    },
    Role.SATELLITE: {
        S.AWAITING_HELLO: {Input.RECV_HELLO: _to(S.AWAITING_OFFER)},
        S.AWAITING_OFFER: {
            Input.RECV_OFFER: _to(S.AWAITING_RESPONSE, S.NOISE_HANDSHAKE, S.READY),
        },
        S.AWAITING_RESPONSE: {Input.RECV_RESPONSE: _to(S.READY)},
        S.NOISE_HANDSHAKE: {Input.RECV_NOISE: _to(S.READY)},
        S.READY: {
            # HELLOs relayed from elsewhere are reported and otherwise ignored
            Input.RECV_HELLO: _to(S.READY),
            Input.RECV_MESSAGE: _to(S.READY),
            Input.SEND_MESSAGE: _to(S.READY),
            Input.SEND_REKEY: _to(S.REKEYING),
        },
        S.REKEYING: {
            Input.RECV_HELLO: _to(S.REKEYING),
            Input.RECV_MESSAGE: _to(S.REKEYING),
            Input.RECV_RESPONSE: _to(S.READY),
            Input.SEND_MESSAGE: _to(S.REKEYING),
        },
    },
}

#: States from which CLOSE is legal (every state but the terminal ones).
CLOSABLE: Final = frozenset(set(State) - {State.CLOSED, State.ERROR})


def is_local(inp: Input) -> bool:
    """True for inputs the owner of the connection causes."""
    return not inp.value.startswith("recv-")


def allowed_states(role: Role, state: State, inp: Input) -> frozenset[State]:
    """Return the states ``inp`` may lead to, or raise if it is illegal here.

    Raises:
        LocalProtocolError: a local input that is illegal in this state.
        RemoteProtocolError: a peer input that is illegal in this state.
    """
    if inp is Input.CLOSE:
        if state in CLOSABLE:
            return _to(State.CLOSED)
    else:
        outcomes = TRANSITIONS[role].get(state, {}).get(inp)
        if outcomes is not None:
            return outcomes
    message = f"{inp.value} is not allowed for a {role.value} in state {state.value}"
    if is_local(inp):
        raise LocalProtocolError(message)
    raise RemoteProtocolError(message)
