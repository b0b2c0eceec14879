"""Run the README's Walkthrough verbatim against a real room service.

The shell blocks of the root README's "Walkthrough" section are interpreted
line by line: ``export NAME=value`` and ``NAME=value`` set variables,
``NAME=$(hmctl ...)`` captures a command's output, ``hmctl ...`` runs through
CliRunner. The one substitution: ``hmctl rooms serve --data-dir DIR`` starts
the real service in a thread on port 0 (instead of 8100), and ``SERVICE``
takes that URL. The ask step is checked against what the service supports:
a verified answer when runs work, or the clean "not available" refusal.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
from pathlib import Path

import httpx

_spec = importlib.util.spec_from_file_location(
    "room_support", Path(__file__).with_name("room_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)
room_env = sup.room_env

README = sup.REPO / "README.md"
_CAPTURE = re.compile(r"^([A-Z_]+)=\$\((hmctl .*)\)$")
_ASSIGN = re.compile(r"^(?:export )?([A-Z_]+)=(.*)$")
_VAR = re.compile(r"\$\{?([A-Z_]+)\}?")


def walkthrough_lines() -> list[str]:
    text = README.read_text("utf-8")
    section = text.split("\n## Walkthrough\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(blocks) >= 2, "the Walkthrough needs its shell blocks"
    lines = [ln.strip() for block in blocks for ln in block.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _expand(text: str, variables: dict[str, str]) -> str:
    return _VAR.sub(lambda m: variables[m.group(1)], text)


class Walk:
    def __init__(self, room_env: Path, monkeypatch) -> None:
        self.cwd = room_env
        self.monkeypatch = monkeypatch
        self.vars: dict[str, str] = {}
        self.pinned: set[str] = set()
        self.server: sup.RoomServer | None = None
        self.results: list[tuple[list[str], object]] = []

    def hmctl(self, line: str) -> object:
        argv = shlex.split(_expand(line, self.vars))
        assert argv[0] == "hmctl"
        if argv[1:3] == ["rooms", "serve"]:
            return self.serve(argv)
        world = sup.World(self.server, sup.CliRunner())
        result = world.run(*argv[1:])
        self.results.append((argv, result))
        return result

    def serve(self, argv: list[str]) -> None:
        data_dir = self.cwd / argv[argv.index("--data-dir") + 1]
        admin = os.environ["HIVEMIND_ADMIN_KEY"]
        self.server = sup.RoomServer(data_dir, admin_key=admin).__enter__()
        self.vars["SERVICE"] = self.server.url
        self.pinned.add("SERVICE")

    def step(self, line: str) -> None:
        captured = _CAPTURE.match(line)
        if captured:
            result = self.hmctl(captured.group(2))
            assert result.exit_code == 0, (line, result.stdout, result.stderr)
            self.vars[captured.group(1)] = result.stdout.strip()
            return
        assigned = _ASSIGN.match(line)
        if assigned:
            name, value = assigned.groups()
            if name not in self.pinned:
                self.vars[name] = _expand(value, self.vars)
                if line.startswith("export "):
                    self.monkeypatch.setenv(name, self.vars[name])
            return
        assert line.startswith("hmctl "), f"unexpected walkthrough line: {line}"
        result = self.hmctl(line)
        if " room ask " in line:
            self.check_ask(result)
        elif result is not None:
            assert result.exit_code == 0, (line, result.stdout, result.stderr)


def test_readme_walkthrough_runs_verbatim(room_env, monkeypatch):
    (room_env / "agents").symlink_to(sup.AGENTS, target_is_directory=True)
    walk = Walk(room_env, monkeypatch)
    asked = []

    def check_ask(result):
        asked.append(result)
        room_id = walk.vars["LINK"].split("/")[3].split("?")[0]
        if result.exit_code == 0:
            assert "attestation verified" in result.stdout
            note = next(
                shlex.split(_expand(ln, walk.vars))[6]
                for ln in walkthrough_lines()
                if " room add-data " in ln
            )
            assert note.split(",")[0] in result.stdout
            return
        # the service cannot run rooms yet: the CLI must say so cleanly (exit 7)
        assert result.exit_code == 7, result.stderr
        assert "not available" in result.stderr
        probe = httpx.post(f"{walk.vars['SERVICE']}/v1/rooms/{room_id}/runs", json={"query": "x"})
        assert probe.status_code in (401, 501)

    walk.check_ask = check_ask
    try:
        for line in walkthrough_lines():
            walk.step(line)
    finally:
        if walk.server is not None:
            walk.server.__exit__(None, None, None)
    assert len(asked) == 1, "the walkthrough must end with a question"
    commands = [argv[1:4] for argv, _ in walk.results]
    assert ["--profile", "bob", "room"] in commands
    inspected = next(r for argv, r in walk.results if "inspect" in argv)
    assert "Signature" in inspected.stdout
    assert "UNATTESTED (dev)" in inspected.stdout
