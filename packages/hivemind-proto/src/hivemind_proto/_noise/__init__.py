"""Profile N: the v3 Noise handshake and transport (sans-IO).

Typical use, client side (initiator)::

    hs = NoiseHandshake(NoisePattern.XXpsk2, NoiseSuite.CHACHAPOLY, initiator=True,
                        static=keypair, psk=derive_psk(password, node_id),
                        prologue=prologue, rng=os.urandom)
    send(hs.write_message(payload1))
    payload2 = hs.read_message(receive())
    send(hs.write_message(payload3))
    transport = hs.split()

The caller owns all I/O and the source of randomness.
"""

from __future__ import annotations

from ._handshake import PSK_LEN, NoiseHandshake
from ._keys import NoisePublicKey, Rng, StaticKeypair
from ._patterns import NoisePattern, protocol_name
from ._primitives import MAX_MESSAGE_LEN, NoiseSuite
from ._psk import derive_psk
from ._transport import MAX_PLAINTEXT_LEN, NoiseTransport

__all__ = [
    "MAX_MESSAGE_LEN",
    "MAX_PLAINTEXT_LEN",
    "PSK_LEN",
    "NoiseHandshake",
    "NoisePattern",
    "NoisePublicKey",
    "NoiseSuite",
    "NoiseTransport",
    "Rng",
    "StaticKeypair",
    "derive_psk",
    "protocol_name",
]
