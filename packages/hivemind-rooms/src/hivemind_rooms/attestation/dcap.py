"""Intel TDX quote verification with ``dcap-qvl``.

Theory of operation: a TDX quote is signed by the platform's quoting enclave,
whose key chains to Intel's root through the PCK certificate embedded in the
quote. Checking that chain, and whether the platform's TCB level is current,
needs *collateral*: Intel-signed TCB info, QE identity and revocation lists,
normally fetched from a PCCS. :func:`verify_tdx_quote` takes the collateral as
JSON text (``QuoteCollateralV3.to_json()`` form) from a
:data:`CollateralSource`, verifies the quote with dcap-qvl at the given time,
accepts only the listed TCB statuses (``UpToDate`` by default: an
``OutOfDate`` platform is refused, not warned about), and then reads the TD
report (MRTD, RTMR0-3, MRCONFIGID, REPORT_DATA, the debug attribute) from the
verified quote. Without collateral nothing is verified and the caller gets
:class:`AttestationUnavailable`: a strict client then stops.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from typing import Any

from hivemind_rooms.attestation._types import (
    AttestationRefused,
    AttestationUnavailable,
    QuoteClaims,
)

__all__ = ["CollateralSource", "pccs_collateral_source", "verify_tdx_quote"]

CollateralSource = Callable[[bytes], str]
"""Returns the DCAP collateral (JSON text) for a raw quote, or raises
:class:`AttestationUnavailable`."""

_MAX_QUOTE = 64 * 1024
_MAX_COLLATERAL = 4 * 1024 * 1024
_FETCH = (
    "import resource\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"  # no core file from the exit crash
    "import asyncio, sys, dcap_qvl\n"
    "quote = sys.stdin.buffer.read()\n"
    "collateral = asyncio.run(dcap_qvl.get_collateral(sys.argv[1], quote))\n"
    "sys.stdout.write(collateral.to_json())\n"
    "sys.stdout.flush()\n"
)
_TD_DEBUG_BIT = 0x01


def _parse(quote: bytes) -> Any:
    import dcap_qvl

    if not isinstance(quote, bytes) or not 0 < len(quote) <= _MAX_QUOTE:
        raise AttestationRefused("TDX quote malformed")
    try:
        parsed = dcap_qvl.parse_quote(quote)
    except (ValueError, RuntimeError) as exc:
        raise AttestationRefused("TDX quote malformed") from exc
    if not parsed.is_tdx():
        raise AttestationRefused("not a TDX quote")
    return parsed


def verify_tdx_quote(
    quote: bytes,
    *,
    collateral: CollateralSource | None,
    now: int,
    allowed_statuses: Iterable[str] = ("UpToDate",),
) -> QuoteClaims:
    """Verify a raw TDX quote and return what it proves.

    Args:
        quote: the raw quote bytes.
        collateral: where to get the collateral; ``None`` means none is
            available (offline), which fails closed.
        now: the verification time, Unix seconds.
        allowed_statuses: TCB statuses to accept.

    Returns:
        The verified claims (``platform="dstack"``).

    Raises:
        AttestationUnavailable: no collateral could be obtained.
        AttestationRefused: the quote is malformed, fails verification, has a
            TCB status outside ``allowed_statuses``.
    """
    import dcap_qvl

    if collateral is None:
        raise AttestationUnavailable("no DCAP collateral source: the TDX quote cannot be verified")
    parsed = _parse(quote)
    collateral_json = collateral(quote)
    try:
        coll = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
    except (ValueError, TypeError) as exc:
        raise AttestationUnavailable("DCAP collateral malformed") from exc
    try:
        report = dcap_qvl.verify(quote, coll, int(now))
    except (ValueError, RuntimeError) as exc:
        raise AttestationRefused(f"TDX quote verification failed: {exc}") from exc
    status = str(report.status)
    if status not in set(allowed_statuses):
        raise AttestationRefused(f"TDX TCB status {status!r} is not accepted")
    td = parsed.report
    attributes = bytes(td.td_attributes)
    return QuoteClaims(
        platform="dstack",
        tcb_status=status,
        mrtd=bytes(td.mr_td).hex(),
        rtmr=(
            bytes(td.rt_mr0).hex(),
            bytes(td.rt_mr1).hex(),
            bytes(td.rt_mr2).hex(),
            bytes(td.rt_mr3).hex(),
        ),
        mr_config_id=bytes(td.mr_config_id).hex(),
        report_data=bytes(td.report_data),
        debug=bool(attributes and attributes[0] & _TD_DEBUG_BIT),
    )


def pccs_collateral_source(pccs_url: str, *, timeout: float = 30.0) -> CollateralSource:
    """A collateral source that asks a PCCS (``dcap_qvl.get_collateral``).

    The fetch runs in a child interpreter: with dcap-qvl 0.7.0 the native
    runtime behind ``get_collateral`` crashes the interpreter at exit, so it
    is kept out of the caller's process. The child's output is only parsed;
    its authenticity comes from dcap-qvl checking the collateral's signatures
    against Intel's root during verification.

    Args:
        pccs_url: the PCCS base URL.
        timeout: seconds for the whole fetch.

    Returns:
        A :data:`CollateralSource`.
    """

    def fetch(quote: bytes) -> str:
        try:
            proc = subprocess.run(  # the interpreter and code are ours, the URL an argument
                [sys.executable, "-c", _FETCH, pccs_url],
                input=quote,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AttestationUnavailable("DCAP collateral fetch failed") from exc
        out = proc.stdout[:_MAX_COLLATERAL]
        try:
            parsed = json.loads(out)
        except ValueError as exc:
            raise AttestationUnavailable("DCAP collateral fetch failed") from exc
        if not isinstance(parsed, dict) or "tcb_info" not in parsed:
            raise AttestationUnavailable("DCAP collateral fetch failed")
        return out.decode("utf-8")

    return fetch
