"""The `hfspider` console script dispatches to sub-command modules."""

import pytest

from hfspider import cli


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_every_command_module_has_main() -> None:
    import importlib

    for module_name, _ in cli.COMMANDS.values():
        assert callable(importlib.import_module(module_name).main)
