"""The TOML settings loader: one source of defaults, no silent overrides."""

from pathlib import Path

import pytest
from scrapy.settings import Settings

from hfspider import settings as settings_module
from hfspider.config import load_settings


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")


def test_tables_become_prefixed_settings_and_scrapy_table_passes_through(tmp_path: Path) -> None:
    text = '[files]\nallow = ["*.json"]\nmax_size = 10\n[scrapy]\nLOG_LEVEL = "DEBUG"\n'
    write(tmp_path, "a.toml", text)
    write(tmp_path, "notes.txt", "not a settings file")
    assert load_settings(tmp_path) == {
        "FILES_ALLOW": ["*.json"],
        "FILES_MAX_SIZE": 10,
        "LOG_LEVEL": "DEBUG",
    }


def test_same_setting_in_two_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", "[hub]\nendpoint = 'x'\n")
    write(tmp_path, "b.toml", "[hub]\nendpoint = 'y'\n")
    with pytest.raises(ValueError, match="HUB_ENDPOINT is defined in both a.toml and b.toml"):
        load_settings(tmp_path)


def test_top_level_values_must_be_tables(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", "endpoint = 'x'\n")
    with pytest.raises(ValueError, match="must be a \\[table\\]"):
        load_settings(tmp_path)


def test_project_settings_are_hardened() -> None:
    settings = Settings()
    settings.setmodule(settings_module, priority="project")
    assert settings.getbool("REMOTE_CONTROL_ENABLED") is False
    assert settings.getbool("TELNETCONSOLE_ENABLED") is False
    assert settings.getbool("DOWNLOAD_VERIFY_CERTIFICATES") is True
    assert settings.getint("DOWNLOAD_MAXSIZE") <= 64 * 1024 * 1024
    handlers = settings.getdict("DOWNLOAD_HANDLERS")
    assert all(handlers[scheme] is None for scheme in ("file", "data", "ftp", "s3"))
