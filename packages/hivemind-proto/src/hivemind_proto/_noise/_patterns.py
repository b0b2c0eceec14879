"""Handshake patterns as data (Noise revision 34, §7 and §9).

Theory of operation: a pattern is a table of tokens, read by one interpreter in
``_handshake.py``; adding a pattern means adding a table row, not code. The
two profile-N patterns are:

``XXpsk2`` (neither side knows the other's static key)::

    -> e
    <- e, ee, s, es, psk
    -> s, se

``KKpsk0`` (both static keys are known in advance)::

    -> s
    <- s
    ...
    -> psk, e, es, ss
    <- e, ee, se

Both are PSK handshakes, so every ``e`` token also feeds the ephemeral key to
MixKey (§9.2) and every payload, even the first, carries an AEAD tag. Beware:
the first ``XXpsk2`` payload is keyed from public values only (the protocol
name, the prologue and the initiator's ephemeral key), so it is not
confidential; secrets belong in later messages or in the transport. The
modifier ``pskN`` puts the PSK at the end of message N (``psk0``: at the start
of the first). In ``XXpsk2`` the PSK enters at the end of the responder's
message, so the initiator checks the hub's knowledge of it before revealing its
own static key in the third message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from .._errors import LocalProtocolError
from ._primitives import NoiseSuite


class NoisePattern(StrEnum):
    """A supported handshake pattern; the value is its name in protocol names."""

    XXpsk2 = "XXpsk2"
    KKpsk0 = "KKpsk0"


class Token(Enum):
    """A handshake token."""

    E = "e"
    S = "s"
    EE = "ee"
    ES = "es"
    SE = "se"
    SS = "ss"
    PSK = "psk"


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """The table row of one pattern.

    Attributes:
        initiator_pre: tokens the initiator "sent" before the handshake.
        responder_pre: tokens the responder "sent" before the handshake.
        messages: tokens of each message; even indices go initiator to responder.
    """

    initiator_pre: tuple[Token, ...]
    responder_pre: tuple[Token, ...]
    messages: tuple[tuple[Token, ...], ...]

    @property
    def psk_mode(self) -> bool:
        """Whether the pattern uses a PSK (``e`` then also calls MixKey)."""
        return any(Token.PSK in message for message in self.messages)

    def needs_remote_static(self, initiator: bool) -> bool:
        """Whether one side must be given the peer's static key up front."""
        pre = self.responder_pre if initiator else self.initiator_pre
        return Token.S in pre


_T = Token

PATTERNS: dict[NoisePattern, PatternSpec] = {
    NoisePattern.XXpsk2: PatternSpec(
        initiator_pre=(),
        responder_pre=(),
        messages=(
            (_T.E,),
            (_T.E, _T.EE, _T.S, _T.ES, _T.PSK),
            (_T.S, _T.SE),
        ),
    ),
    NoisePattern.KKpsk0: PatternSpec(
        initiator_pre=(_T.S,),
        responder_pre=(_T.S,),
        messages=(
            (_T.PSK, _T.E, _T.ES, _T.SS),
            (_T.E, _T.EE, _T.SE),
        ),
    ),
}


def protocol_name(pattern: NoisePattern, suite: NoiseSuite) -> str:
    """The full Noise protocol name, e.g. ``Noise_XXpsk2_25519_ChaChaPoly_SHA256``.

    Args:
        pattern: the handshake pattern.
        suite: the cipher suite.

    Returns:
        ``"Noise_" + pattern + "_" + suite``.

    Raises:
        LocalProtocolError: ``pattern`` or ``suite`` is not a supported value.
    """
    return f"Noise_{coerce_pattern(pattern).value}_{coerce_suite(suite).value}"


def coerce_pattern(pattern: NoisePattern | str) -> NoisePattern:
    """``NoisePattern(pattern)``, raising ``LocalProtocolError`` for unknown names."""
    try:
        return NoisePattern(pattern)
    except ValueError:
        raise LocalProtocolError("unsupported Noise pattern") from None


def coerce_suite(suite: NoiseSuite | str) -> NoiseSuite:
    """``NoiseSuite(suite)``, raising ``LocalProtocolError`` for unknown names."""
    try:
        return NoiseSuite(suite)
    except ValueError:
        raise LocalProtocolError("unsupported Noise suite") from None
