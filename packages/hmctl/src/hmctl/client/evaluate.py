"""The eval harness's verifier: the checks ``room ask`` makes, applied to eval runs.

:class:`ScenarioVerifier` implements :class:`hivemind_rooms.eval.Verifier`.
The service is verified through a :class:`~hmctl.client.ServiceGate` (fresh
nonce, dev roots, approved compose hash) before the harness sends its first
key; each run is checked by :func:`~hmctl.client.verify_room` (the manifest
against the owner key the harness signed it with, room trust) and
:func:`~hmctl.client.verify_run` (the signed run attestation against the
exact prompt and the output received). Attestation checks are never
skipped here, whatever the caller's trust options say.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, final

from hivemind_rooms.eval import VerificationError

from .api import RoomApi
from .errors import RoomClientError
from .state import LocalState
from .verify import ServiceGate, TrustOptions, VerifiedService, verify_room, verify_run

__all__ = ["ScenarioVerifier"]


def _text(exc: RoomClientError) -> str:
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


@final
class ScenarioVerifier:
    """Verifies one room service and the runs of eval scenarios on it.

    Args:
        service: the service base URL.
        state: the local state whose trust store and dev roots apply.
        opts: trust options (``skip_attestations`` is ignored: always checked).
        transport: an httpx transport for the verifier's own requests (tests).
    """

    def __init__(
        self, service: str, state: LocalState, opts: TrustOptions, *, transport: Any = None
    ) -> None:
        self.service = service.rstrip("/")
        self._state = state
        self._opts = dataclasses.replace(opts, skip_attestations=False)
        self._transport = transport
        self._gate = ServiceGate(state, self._opts, transport=transport)
        self._verified: VerifiedService | None = None

    def check_service(self) -> str:
        """Verify the service with a fresh nonce (before any key is sent).

        Raises:
            VerificationError: it did not verify (the reason and what to do).
        """
        try:
            self._verified = self._gate.check(self.service)
        except RoomClientError as exc:
            raise VerificationError(f"service not verified: {_text(exc)}") from None
        return self._verified.label

    def check_run(
        self,
        run: Mapping[str, Any],
        *,
        room_id: str,
        owner_pubkey_b64: str,
        bearer: str,
        prompt: str,
    ) -> None:
        """Verify the room and the run's signed attestation as ``room ask`` does.

        Raises:
            VerificationError: the service was not verified first, the room's
                manifest or trust does not check out, or the run attestation
                is missing or does not match.
        """
        if self._verified is None:
            raise VerificationError("the service was not verified before the run")
        try:
            with RoomApi(self.service, bearer, transport=self._transport) as api:
                room = verify_room(
                    api,
                    self._state,
                    self._opts,
                    room_id=room_id,
                    owner_pubkey_b64=owner_pubkey_b64,
                    service=self._verified,
                )
            verify_run(dict(run), room=room, prompt=prompt)
        except RoomClientError as exc:
            raise VerificationError(_text(exc)) from None
