"""The Noise subpackage stays sans-IO, exports a fixed API and documents it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import hivemind_proto._noise as noise

FORBIDDEN = {"trio", "asyncio", "socket", "time", "random", "os", "secrets", "threading", "select"}
PACKAGE_DIR = Path(noise.__file__).parent


def test_no_io_clock_or_global_rng_imports():
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_public_api_snapshot():
    assert set(noise.__all__) == {
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
    }
    for name in noise.__all__:
        assert hasattr(noise, name)


def test_enum_values_and_protocol_names():
    assert noise.NoisePattern.XXpsk2.value == "XXpsk2"
    assert noise.NoisePattern.KKpsk0.value == "KKpsk0"
    assert noise.NoiseSuite.CHACHAPOLY.value == "25519_ChaChaPoly_SHA256"
    assert noise.NoiseSuite.AESGCM.value == "25519_AESGCM_SHA256"
    assert (
        noise.protocol_name(noise.NoisePattern.XXpsk2, noise.NoiseSuite.CHACHAPOLY)
        == "Noise_XXpsk2_25519_ChaChaPoly_SHA256"
    )
    assert (
        noise.protocol_name(noise.NoisePattern.KKpsk0, noise.NoiseSuite.AESGCM)
        == "Noise_KKpsk0_25519_AESGCM_SHA256"
    )


def test_concrete_classes_are_final():
    for cls in (
        noise.NoiseHandshake,
        noise.NoiseTransport,
        noise.StaticKeypair,
        noise.NoisePublicKey,
    ):
        assert getattr(cls, "__final__", False), cls


def test_public_symbols_are_documented():
    for name in noise.__all__:
        obj = getattr(noise, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and (
                    inspect.isfunction(member) or isinstance(member, property)
                ):
                    assert inspect.getdoc(member), f"{name}.{attr}"
