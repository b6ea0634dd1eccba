"""The Hub token: where it comes from, and the one rule for where it may go.

Lookup order is huggingface_hub's: $HF_TOKEN, then the legacy $HUGGING_FACE_HUB_TOKEN, then the
token file that `hf auth login` writes ($HF_TOKEN_PATH, else $HF_HOME/token, with HF_HOME
defaulting to $XDG_CACHE_HOME/huggingface, i.e. ~/.cache/huggingface). The token is sent only
to the Hub's own origin (scheme, host and port), never to a CDN a file redirects to nor to a
`Link` pointing elsewhere. Error messages never quote the token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

TOKEN_ENVS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
DEFAULT_PORTS = {"http": 80, "https": 443}


def token_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where huggingface_hub keeps the token of `hf auth login`."""
    env = os.environ if environ is None else environ
    if env.get("HF_TOKEN_PATH"):
        return Path(env["HF_TOKEN_PATH"]).expanduser()
    cache = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    home = env.get("HF_HOME") or os.path.join(cache, "huggingface")
    return Path(home).expanduser() / "token"


def get_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The user's Hub token, or None to crawl anonymously."""
    env = os.environ if environ is None else environ
    for name in TOKEN_ENVS:
        value = (env.get(name) or "").strip()
        if value:
            return _checked(value, f"${name}")
    path = token_path(env)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the Hub token file {path}: {type(exc).__name__}") from None
    return _checked(value, str(path)) if value else None


def _checked(token: str, source: str) -> str:
    # A token goes into an HTTP header: anything but visible ASCII could split the header.
    if not all(33 <= ord(char) <= 126 for char in token):
        raise ValueError(f"the Hub token from {source} contains spaces or non-ASCII characters")
    return token


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, default ports made explicit; None if invalid.

    URLs with user info, backslashes, spaces or control characters count as invalid: parsers
    disagree on their host (`https://evil\\@hub/` is `hub` to urlsplit, `evil` to a browser).
    """
    if any(char == "\\" or ord(char) < 33 or ord(char) == 127 for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def is_hub_origin(url: str, endpoint: str) -> bool:
    """True if `url` has the same origin as the Hub `endpoint`: only then may the token go."""
    target = origin(url)
    return target is not None and target == origin(endpoint)
