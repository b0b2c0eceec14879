"""The package README stays in step with the code: settings, defaults, ranges, error codes.

The source is parsed, not imported: a ``HIVEMIND_*`` name counts when a string
literal holding exactly that name (directly, or through a module constant
bound to it) is passed to an environment lookup (``.get``, ``env_int``,
``env_bool``, ``env_choice``) or used as a key of an environment built for an
agent (a dict key or a subscript assignment). Every such literal must be one
or the other, so a new way of reading the environment makes these tests fail
until they (and the README) learn it.
"""

from __future__ import annotations

import ast
import importlib.util
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hivemind_rooms.api import all_routes
from hivemind_rooms.api.openapi import build_openapi

PACKAGE = Path(__file__).resolve().parents[1]
SOURCE = PACKAGE / "src" / "hivemind_rooms"
README = PACKAGE / "README.md"
NAME = re.compile(r"HIVEMIND_[A-Z0-9_]*[A-Z0-9]")
_LOOKUPS = frozenset({"get", "getenv", "env_int", "env_bool", "env_choice"})
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Mult: operator.mul,
    ast.Pow: operator.pow,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
}


def _number(node: ast.expr) -> Any:
    """Value of a constant expression such as ``50 * 1024 * 1024`` or ``10**9``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _ARITHMETIC[type(node.op)](_number(node.left), _number(node.right))
    raise ValueError(f"not a constant expression: {ast.unparse(node)}")


@dataclass
class CodeNames:
    """What the source does with each ``HIVEMIND_*`` name."""

    literals: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    ints: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    bools: dict[str, bool] = field(default_factory=dict)


def _modules() -> Iterator[ast.Module]:
    for path in sorted(SOURCE.rglob("*.py")):
        yield ast.parse(path.read_text("utf-8"), filename=str(path))


def _name_of(node: ast.AST | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if NAME.fullmatch(node.value) else None
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _constants(modules: list[ast.Module]) -> dict[str, str]:
    """Module constants bound to a name (``X: Final = "HIVEMIND_..."``), across modules.

    One map for the whole package, because a constant is often imported
    elsewhere; two modules binding one constant name to different values would
    make it ambiguous, so that is refused.
    """
    found: dict[str, str] = {}
    for module in modules:
        for stmt in module.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else []
            if isinstance(stmt, ast.AnnAssign):
                targets = [stmt.target]
            name = _name_of(getattr(stmt, "value", None), {})
            for target in targets:
                if name and isinstance(target, ast.Name):
                    assert found.setdefault(target.id, name) == name, target.id
    return found


def _scan_call(call: ast.Call, constants: dict[str, str], out: CodeNames) -> None:
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if called not in _LOOKUPS:
        return
    position = 1 if called in ("env_int", "env_bool", "env_choice") else 0
    if len(call.args) <= position:
        return
    name = _name_of(call.args[position], constants)
    if name is None:
        return
    out.read.add(name)
    if called == "env_int":
        bounds = {k.arg: _number(k.value) for k in call.keywords}
        out.ints[name] = (_number(call.args[2]), bounds["low"], bounds["high"])
    elif called == "env_bool":
        out.bools[name] = bool(_number(call.args[2]))


def _scan_writes(node: ast.AST, constants: dict[str, str], out: CodeNames) -> None:
    keys: list[ast.expr | None] = []
    if isinstance(node, ast.Dict):
        keys = list(node.keys)
    elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
        keys = [node.slice]
    for key in keys:
        name = _name_of(key, constants)
        if name is not None:
            out.written.add(name)


def scan_source() -> CodeNames:
    """Every ``HIVEMIND_*`` literal of the package and how it is used."""
    out = CodeNames()
    modules = list(_modules())
    constants = _constants(modules)
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if NAME.fullmatch(node.value):
                    out.literals.add(node.value)
            elif isinstance(node, ast.Call):
                _scan_call(node, constants, out)
            _scan_writes(node, constants, out)
    return out


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match is not None, f"README has no '## {title}' section"
    return match.group(1)


def _rows(section: str) -> dict[str, list[str]]:
    """Table rows of a section keyed by the variable in their first cell."""
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        first = re.fullmatch(r"`(HIVEMIND_[A-Z0-9_]+)`", cells[0]) if cells else None
        if first is not None:
            assert first.group(1) not in rows, f"{first.group(1)} documented twice"
            rows[first.group(1)] = cells[1:]
    return rows


def _int(text: str) -> int:
    return int(text.replace("_", ""))


CODE = scan_source()
TEXT = README.read_text("utf-8")
SETTINGS = _rows(_section(TEXT, "Settings"))
AGENT_ENV = _rows(_section(TEXT, "Agent environment"))


def test_every_literal_is_read_or_written_for_an_agent() -> None:
    # a literal used some other way would escape both checks below
    assert CODE.read, "the scan found no setting at all"
    assert CODE.literals == CODE.read | CODE.written
    assert not CODE.read & CODE.written


def test_settings_section_lists_exactly_what_the_code_reads() -> None:
    assert set(SETTINGS) - CODE.read == set(), "documented but never read"
    assert CODE.read - set(SETTINGS) == set(), "read but not documented"


def test_agent_environment_lists_exactly_what_runners_set() -> None:
    assert set(AGENT_ENV) == CODE.written
    assert not set(AGENT_ENV) & set(SETTINGS)


def test_integer_defaults_and_ranges_match() -> None:
    assert CODE.ints, "no env_int call found"
    for name, (default, low, high) in CODE.ints.items():
        kind, shown_default = SETTINGS[name][0], SETTINGS[name][1]
        bounds = re.fullmatch(r"int ([\d_]+)\.\.([\d_]+)", kind)
        assert bounds is not None, f"{name}: type should read 'int LOW..HIGH', not {kind!r}"
        assert (_int(bounds.group(1)), _int(bounds.group(2))) == (low, high), name
        assert _int(shown_default.strip("`")) == default, name


def test_boolean_defaults_match() -> None:
    assert CODE.bools, "no env_bool call found"
    for name, default in CODE.bools.items():
        kind, shown_default = SETTINGS[name][0], SETTINGS[name][1]
        assert kind == "bool", name
        assert shown_default == f"`{str(default).lower()}`", name


def test_readme_states_the_boolean_spellings_the_code_accepts() -> None:
    from hivemind_rooms.settings import SettingsError, env_bool

    sentence = re.search(r"booleans accept\s+(\S+)\s+and\s+(\S+)", TEXT)
    assert sentence is not None
    true, false = (re.findall(r"`([^`]+)`", group) for group in sentence.groups())
    for spellings, expected in ((true, True), (false, False)):
        assert spellings, sentence.group(0)
        for word in spellings:
            for spelled in (word, word.upper()):
                assert env_bool({"X": spelled}, "X", not expected) is expected, spelled
    with pytest.raises(SettingsError):  # a spelling the README does not list
        env_bool({"X": "on"}, "X", False)


def test_names_mentioned_in_the_source_exist() -> None:
    # error messages and docstrings must not name a variable nothing reads
    mentioned: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        found = re.findall(r"HIVEMIND_[A-Z0-9_]+", path.read_text("utf-8"))
        mentioned |= {m for m in found if not m.endswith("_")}  # "HIVEMIND_LLM_*" is a prefix
    assert mentioned - CODE.literals == set()
    assert CODE.literals <= mentioned


def test_error_codes_agree_with_openapi() -> None:
    doc = build_openapi(all_routes(), "test")
    codes: dict[str, set[str]] = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                for part in schema.get("allOf", []):
                    code = part.get("properties", {}).get("error", {}).get("const")
                    if code:
                        codes.setdefault(code, set()).add(f"{status} {method} {path}")
    assert set(codes) == {
        "room_sealed",
        "tenant_sealed",
        "run_unreadable",
        "artifact_unreadable",
        "vault_item_unreadable",
    }
    assert "409 get /v1/runs/{run_id}" in codes["run_unreadable"]
    assert "409 get /v1/runs/{run_id}/artifacts/{filename}" in codes["artifact_unreadable"]
    assert "409 get /v1/rooms/{room_id}/data" in codes["vault_item_unreadable"]
    assert "409 post /v1/rooms/{room_id}/runs" in codes["vault_item_unreadable"]
    assert "503 post /v1/rooms/{room_id}/open" in codes["room_sealed"]
    for code in codes:
        assert f"`{code}`" in TEXT, f"README does not explain {code}"
    run = doc["components"]["schemas"]["Run"]["properties"]
    assert run["payload_sealed"]["type"] == "boolean"
    assert "payload_sealed" in TEXT


def _matches(value: Any, schema: dict[str, Any]) -> bool:
    kinds = schema.get("type")
    if "enum" in schema:
        return value in schema["enum"]
    python = {"string": str, "boolean": bool, "array": list, "null": type(None)}
    allowed = kinds if isinstance(kinds, list) else [kinds]
    return any(isinstance(value, python[k]) for k in allowed)


def test_run_schema_describes_real_run_objects(tmp_path: Path) -> None:
    sup = _api_support()
    schema = build_openapi(all_routes(), "test")["components"]["schemas"]["Run"]
    with sup.client(tmp_path) as c:
        tenant = sup.new_tenant(c)
        assert sup.upload_agent(c, tenant["api_key"]).status_code == 200
        runs = c.get("/v1/runs", headers=sup.auth(tenant["api_key"])).json()
        assert runs, "the upload receipt is a run"
        one = c.get(f"/v1/runs/{runs[0]['run_id']}", headers=sup.auth(tenant["api_key"])).json()
    for run in [*runs, one]:
        assert set(schema["required"]) <= set(run)
        for name, rule in schema["properties"].items():
            if name in run:
                assert _matches(run[name], rule), (name, run[name])
        assert run["payload_sealed"] is False


def _api_support() -> Any:
    spec = importlib.util.spec_from_file_location(
        "api_support", Path(__file__).with_name("api_support.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
