"""Token lookup (huggingface_hub's order) and the same-origin rule for sending it."""

from pathlib import Path

import pytest

from hfspider.hub.auth import get_token, is_hub_origin, token_path

SECRET = "hf_SecretValue123"


def test_environment_variables_come_first_in_order(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("hf_from_file\n")
    env = {"HF_HOME": str(tmp_path), "HUGGING_FACE_HUB_TOKEN": "hf_legacy"}
    assert get_token(env) == "hf_legacy"
    assert get_token({**env, "HF_TOKEN": " hf_new\n"}) == "hf_new"
    assert get_token({**env, "HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "  "}) == "hf_from_file"


def test_token_file_locations(tmp_path: Path) -> None:
    explicit = tmp_path / "elsewhere" / "tok"
    explicit.parent.mkdir()
    explicit.write_text("hf_explicit")
    assert token_path({"HF_TOKEN_PATH": str(explicit), "HF_HOME": "/nowhere"}) == explicit
    assert get_token({"HF_TOKEN_PATH": str(explicit)}) == "hf_explicit"
    assert token_path({"HF_HOME": str(tmp_path)}) == tmp_path / "token"
    assert token_path({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "huggingface" / "token"
    assert token_path({}) == Path("~/.cache/huggingface/token").expanduser()


def test_no_token_anywhere_means_anonymous(tmp_path: Path) -> None:
    assert get_token({"HF_HOME": str(tmp_path)}) is None
    (tmp_path / "token").write_text("\n")
    assert get_token({"HF_HOME": str(tmp_path)}) is None


def test_a_token_that_could_split_a_header_is_refused_without_being_quoted(tmp_path: Path) -> None:
    for value in (f"{SECRET}\r\nX-Evil: 1", f"{SECRET} x", f"{SECRET}é"):
        with pytest.raises(ValueError, match=r"\$HF_TOKEN contains") as raised:
            get_token({"HF_TOKEN": value})
        assert SECRET not in str(raised.value)
    (tmp_path / "token").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="cannot read the Hub token file") as raised:
        get_token({"HF_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://huggingface.co/api/models?cursor=x", True),
        ("https://HuggingFace.co:443/gpt2/resolve/main/a", True),
        ("http://huggingface.co/api/models", False),  # another scheme
        ("https://huggingface.co:8443/api/models", False),  # another port
        ("https://cdn-lfs.huggingface.co/x", False),  # a subdomain (the CDN)
        ("https://huggingface.co.evil.com/x", False),
        ("https://huggingface.co@evil.com/x", False),
        ("https://evil.com\\@huggingface.co/x", False),
        ("https://user@huggingface.co/x", False),
        ("https://huggingface.co:99999/x", False),
        ("//huggingface.co/x", False),
        ("/api/models", False),
        ("https://huggingface.co/x\r\nHost: evil", False),
        ("", False),
    ],
)
def test_token_goes_only_to_the_hub_origin(url: str, allowed: bool) -> None:
    assert is_hub_origin(url, "https://huggingface.co") is allowed


def test_origin_of_a_local_emulator_includes_its_port() -> None:
    assert is_hub_origin("http://localhost:8080/api/models", "http://localhost:8080")
    assert not is_hub_origin("http://localhost:8081/x", "http://localhost:8080")
    assert not is_hub_origin("http://127.0.0.1:8080/x", "http://localhost:8080")
    assert is_hub_origin("http://hub/x", "http://hub:80")
