from __future__ import annotations

import pytest
from hivemind_rooms.canonical import b64_encode
from hivemind_rooms.credentials import CredentialKind, new_credential
from hivemind_rooms.links import LinkError, RoomLink, normalise_service_url
from hivemind_rooms.manifest import (
    ManifestError,
    ManifestFailure,
    OwnerKey,
    build_manifest,
    sign_manifest,
    verify_signed_manifest,
)
from hypothesis import given
from hypothesis import strategies as st

# A key whose base64 contains "+", "/" and "=": the characters that need escaping.
PUB = b64_encode(bytes([0xFB, 0xFF, 0xBF] * 10 + [0xFB, 0xEF]))
TOKEN = "hmq_" + "A-_z" * 10 + "xyz"


def link(**kw):
    args = {
        "room_id": "room_0123456789ab",
        "service_url": "https://rooms.example:8443/base/path",
        "token": TOKEN,
        "owner_pubkey_b64": PUB,
    }
    args.update(kw)
    return RoomLink(**args)


def test_exact_format():
    assert "+" in PUB
    assert "/" in PUB
    assert PUB.endswith("=")
    text = link().format()
    assert text == (
        "hmroom://rooms.example:8443/room_0123456789ab"
        "?service=https%3A%2F%2Frooms.example%3A8443%2Fbase%2Fpath"
        f"&token={TOKEN}"
        "&owner_pubkey=" + PUB.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    )
    assert RoomLink.parse(text) == link()


def test_authority_is_never_the_service():
    text = link().format().replace("hmroom://rooms.example:8443/", "hmroom://evil.example/")
    parsed = RoomLink.parse(text)
    assert parsed.service_url == "https://rooms.example:8443/base/path"


def test_parameter_order_does_not_matter_and_whitespace_is_trimmed():
    svc = "http%3A%2F%2F127.0.0.1%3A8100"
    pub = PUB.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    text = f"  hmroom://127.0.0.1:8100/room_0123456789ab?owner_pubkey={pub}&token={TOKEN}&service={svc}\n"
    parsed = RoomLink.parse(text)
    assert parsed.service_url == "http://127.0.0.1:8100"
    assert parsed.owner_pubkey_b64 == PUB


def test_ipv6_service():
    lk = link(service_url="http://[::1]:8100")
    assert RoomLink.parse(lk.format()) == lk


GOOD = link().format()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "https://rooms.example/room_0123456789ab",
        GOOD.replace("hmroom://", "hmroom:/"),
        GOOD.replace("room_0123456789ab", "room_0123456789AB"),
        GOOD.replace("room_0123456789ab", "room_0123"),
        GOOD.replace("/room_0123456789ab", "/x/room_0123456789ab"),
        GOOD + "&share=hms_" + "a" * 43,
        GOOD + "&token=" + TOKEN,
        GOOD.replace("&token=", "&tokn="),
        GOOD.replace("&owner_pubkey=", "&owner_pubkey=A"),
        GOOD.replace("%2B", "+"),
        GOOD.replace("token=hmq_", "token=hmk_"),
        GOOD.replace(TOKEN, TOKEN[:-1]),
        GOOD.replace("https%3A", "ftp%3A"),
        GOOD.replace("https%3A%2F%2F", "https%3A%2F%2Fuser%40"),
        GOOD.replace("%2Fbase%2Fpath", "%2Fbase%2Fpath%2F"),
        GOOD.replace("%2Fpath", "%2Fpath%3Fq%3D1"),
        GOOD + "#frag",
        GOOD.replace("?service", " ?service"),
        GOOD.replace("%3A8443%2F", "%3A99999%2F"),
        GOOD.replace("token=", "token=%2568"),
        GOOD[:-3],
        "hmroom:///room_0123456789ab?service=x&token=y&owner_pubkey=z",
    ],
)
def test_malformed_or_tampered_links_are_refused(text):
    with pytest.raises(LinkError):
        RoomLink.parse(text)


def test_non_text_refused():
    with pytest.raises(LinkError):
        RoomLink.parse(None)  # type: ignore[arg-type]


def test_constructor_validates_and_repr_hides_token():
    with pytest.raises(LinkError):
        link(service_url="https://x.example/")
    with pytest.raises(LinkError):
        link(token="hmk_" + "a" * 43)
    assert TOKEN not in repr(link())
    assert normalise_service_url(" https://x.example/// ") == "https://x.example"


def test_wrong_owner_key_in_link_is_rejected_by_manifest_check():
    owner = OwnerKey.generate()
    manifest = build_manifest(
        room_id="room_0123456789ab", tenant_id="t_0123456789ab",
        owner_pubkey_b64=owner.public_key_b64(), scope_agent_id="default-scope",
        created_at=1_700_000_000,
    )  # fmt: skip
    env = sign_manifest(manifest, owner)
    good = link(owner_pubkey_b64=owner.public_key_b64())
    assert verify_signed_manifest(env, good.owner_pubkey_b64, expected_room_id=good.room_id)
    forged = RoomLink.parse(good.format().replace(
        good.format().split("owner_pubkey=")[1],
        PUB.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D"),
    ))  # fmt: skip
    with pytest.raises(ManifestError) as info:
        verify_signed_manifest(env, forged.owner_pubkey_b64, expected_room_id=forged.room_id)
    assert info.value.failure is ManifestFailure.WRONG_OWNER_KEY


hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
paths = st.lists(st.from_regex(r"[A-Za-z0-9._~+=-]{1,8}", fullmatch=True), max_size=3)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=hosts,
    port=st.none() | st.integers(1, 65535),
    path=paths,
    key=st.binary(min_size=32, max_size=32),
)
def test_round_trip(scheme, host, port, path, key):
    service = f"{scheme}://{host}" + (f":{port}" if port else "") + "".join("/" + p for p in path)
    lk = RoomLink(
        room_id="room_00000000beef",
        service_url=service,
        token=new_credential(CredentialKind.INVITE),
        owner_pubkey_b64=b64_encode(key),
    )
    text = lk.format()
    assert RoomLink.parse(text) == lk
    assert RoomLink.parse(text).owner_public_key == key


@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_link_error(text):
    check_parse_is_total(text)


@given(st.text(alphabet="%:/?&=+#@[]abc0123hmqroom_-.", max_size=200))
def test_link_shaped_noise_only_raises_link_error(text):
    check_parse_is_total("hmroom://" + text)


def check_parse_is_total(text):
    """Parsing either fails with LinkError or yields a link that round-trips."""
    try:
        parsed = RoomLink.parse(text)
    except LinkError:
        return
    assert RoomLink.parse(parsed.format()) == parsed
