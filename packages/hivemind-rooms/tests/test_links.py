from __future__ import annotations

import pytest
from hivemind_rooms.canonical import b64_encode
from hivemind_rooms.credentials import CredentialKind, new_credential
from hivemind_rooms.links import LinkError, LinkKind, RoomLink, normalise_service_url
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


_CREDENTIAL_OF = {LinkKind.INVITE: CredentialKind.INVITE, LinkKind.SHARE: CredentialKind.SHARE}


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=hosts,
    port=st.none() | st.integers(1, 65535),
    path=paths,
    key=st.binary(min_size=32, max_size=32),
    kind=st.sampled_from(list(LinkKind)),
    secret=st.binary(min_size=32, max_size=32),
)
def test_round_trip(scheme, host, port, path, key, kind, secret):
    service = f"{scheme}://{host}" + (f":{port}" if port else "") + "".join("/" + p for p in path)
    lk = RoomLink(
        room_id="room_00000000beef",
        service_url=service,
        token=new_credential(_CREDENTIAL_OF[kind], rng=lambda n: secret[:n]),
        owner_pubkey_b64=b64_encode(key),
        kind=kind,
    )
    text = lk.format()
    parsed = RoomLink.parse(text)
    assert parsed == lk
    assert parsed.kind is kind
    assert parsed.is_share is (kind is LinkKind.SHARE)
    assert parsed.owner_public_key == key
    assert parsed.format() == text
    # exactly one credential parameter, named after the kind
    assert f"&{kind.value}=" in text
    assert text.count("&token=") + text.count("&share=") == 1


@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_link_error(text):
    check_parse_is_total(text)


@given(st.text(alphabet="%:/?&=+#@[]abc0123hmqsroom_-.", max_size=200))
def test_link_shaped_noise_only_raises_link_error(text):
    check_parse_is_total("hmroom://" + text)


def check_parse_is_total(text):
    """Parsing either fails with LinkError or yields a link that round-trips."""
    try:
        parsed = RoomLink.parse(text)
    except LinkError:
        return
    assert RoomLink.parse(parsed.format()) == parsed


# -- share links --------------------------------------------------------------------

SHARE = "hms_" + "Zz9-_" * 8 + "abc"
SHARE_GOOD = link(token=SHARE, kind=LinkKind.SHARE).format()


def test_share_link_exact_format():
    assert len(SHARE) == 47
    assert GOOD.replace(f"&token={TOKEN}", f"&share={SHARE}") == SHARE_GOOD
    parsed = RoomLink.parse(SHARE_GOOD)
    assert parsed.kind is LinkKind.SHARE
    assert parsed.is_share
    assert parsed.token == SHARE
    assert parsed == link(token=SHARE, kind=LinkKind.SHARE)
    assert not RoomLink.parse(GOOD).is_share
    assert RoomLink.parse(GOOD).kind is LinkKind.INVITE


def test_share_link_parameter_order_does_not_matter():
    svc = "http%3A%2F%2F127.0.0.1%3A8100"
    pub = PUB.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    text = (
        f"hmroom://127.0.0.1:8100/room_0123456789ab?share={SHARE}&owner_pubkey={pub}&service={svc}"
    )
    parsed = RoomLink.parse(text)
    assert (parsed.kind, parsed.token, parsed.service_url) == (
        LinkKind.SHARE,
        SHARE,
        "http://127.0.0.1:8100",
    )


def test_the_service_renders_share_links_the_parser_accepts():
    """The text ``POST .../share-link`` answers with parses into the same credential."""
    from hivemind_rooms.api.sharing import _share_link_text

    text = _share_link_text("http://127.0.0.1:8100/", "room_0123456789ab", SHARE, PUB)
    parsed = RoomLink.parse(text)
    assert (parsed.kind, parsed.token, parsed.service_url, parsed.owner_pubkey_b64) == (
        LinkKind.SHARE,
        SHARE,
        "http://127.0.0.1:8100",
        PUB,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SHARE_GOOD + f"&token={TOKEN}", "both token and share"),
        (GOOD + f"&share={SHARE}", "both token and share"),
        (SHARE_GOOD + f"&share={SHARE}", "repeated parameter 'share'"),
        (SHARE_GOOD.replace(f"&share={SHARE}", ""), "missing token (or share)"),
        (SHARE_GOOD.replace("share=hms_", "share=hmq_"), "cannot stand in share="),
        (GOOD.replace("token=hmq_", "token=hms_"), "cannot stand in token="),
        (SHARE_GOOD.replace("share=hms_", "share=hmk_"), "invalid share token"),
        (SHARE_GOOD.replace(SHARE, SHARE[:-1]), "invalid share token"),
        (SHARE_GOOD.replace(SHARE, SHARE + "a"), "invalid share token"),
        (SHARE_GOOD.replace("share=", "share=%2568"), "invalid share token"),
        (SHARE_GOOD.replace("share=", "shares="), "unexpected parameter 'shares'"),
        (SHARE_GOOD.replace("share=", "Share="), "unexpected parameter 'Share'"),
        (SHARE_GOOD.replace(f"share={SHARE}", "share="), "invalid share token"),
        (SHARE_GOOD + "#frag", "fragment"),
    ],
)
def test_malformed_share_links_are_refused_with_a_reason(text, message):
    with pytest.raises(LinkError) as info:
        RoomLink.parse(text)
    assert message in str(info.value)
    assert SHARE not in str(info.value)


def test_constructor_checks_the_credential_against_the_kind():
    with pytest.raises(LinkError, match="cannot stand in share="):
        link(kind=LinkKind.SHARE)  # an hmq_ token in a share link
    with pytest.raises(LinkError, match="cannot stand in token="):
        link(token=SHARE)  # an hms_ token in an invite link
    with pytest.raises(LinkError, match="invalid link kind"):
        link(kind="share")  # type: ignore[arg-type]
    assert SHARE not in repr(link(token=SHARE, kind=LinkKind.SHARE))
    assert "LinkKind.SHARE" in repr(link(token=SHARE, kind=LinkKind.SHARE))


def test_link_kind_vocabulary():
    assert [k.value for k in LinkKind] == ["token", "share"]
    assert LinkKind.INVITE.prefix == CredentialKind.INVITE.value == "hmq_"
    assert LinkKind.SHARE.prefix == CredentialKind.SHARE.value == "hms_"
    assert LinkKind.SHARE.matches(SHARE)
    assert not LinkKind.INVITE.matches(SHARE)
    assert LinkKind.INVITE.matches(TOKEN)
    assert not LinkKind.SHARE.matches(TOKEN)
    assert not LinkKind.SHARE.matches(None)


@given(st.sampled_from([GOOD, SHARE_GOOD]), st.data())
def test_any_single_character_edit_of_the_credential_is_refused_or_round_trips(base, data):
    """Mutating the credential either breaks the link or yields another valid one (never a mix)."""
    start = base.index("=hm", base.index("&")) + 1
    pos = data.draw(st.integers(start, start + 46))
    char = data.draw(st.sampled_from("AZaz09-_%+=/&?#hmqs"))
    edited = base[:pos] + char + base[pos + 1 :]
    check_parse_is_total(edited)
    try:
        parsed = RoomLink.parse(edited)
    except LinkError:
        return
    assert parsed.kind is RoomLink.parse(base).kind
    assert parsed.token.startswith(parsed.kind.prefix)
