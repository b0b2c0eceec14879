"""docs/cli.md is generated from the commands' help and must stay current."""

from __future__ import annotations

from pathlib import Path

from hmctl import cli
from hmctl._docs import iter_commands, render

DOCS = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def test_cli_reference_is_current():
    assert DOCS.read_text("utf-8") == render(), "docs/cli.md is stale: run `make docs`"


def test_every_command_has_help_and_is_documented():
    text = DOCS.read_text("utf-8")
    paths = []
    for path, command, _ctx in iter_commands(cli):
        paths.append(path)
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        assert f"## `{' '.join(path)}`" in text
        if path[1:2] in (("hub",), ("eval",)):
            continue  # documented by their own packages' conventions
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert (param.help or "").strip(), f"{' '.join(path)} {param.opts} has no help"
    names = {" ".join(p) for p in paths}
    for expected in ("hmctl room ask", "hmctl trust dev-root add", "hmctl admin prices set"):
        assert expected in names
    assert "hmctl up" in names


def test_docs_generator_detects_staleness(tmp_path):
    from hmctl._docs import main

    target = tmp_path / "cli.md"
    assert main(["--check", str(target)]) == 1
    assert main([str(target)]) == 0
    assert main(["--check", str(target)]) == 0
    target.write_text(target.read_text() + "edited\n")
    assert main(["--check", str(target)]) == 1
