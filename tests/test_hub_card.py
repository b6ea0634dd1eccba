"""Model cards: front matter under limits, plain-text descriptions, and hostile cards.

Every hostile card must yield a ModelCard (what could be read plus warnings), quickly.
"""

import time
from typing import Any

import pytest
import yaml

from hfspider.hub.card import (
    CardError,
    CardLimits,
    describe,
    load_front_matter,
    parse_card,
    split_front_matter,
)

CARD = """---
language:
- en
- fr
license: apache-2.0
tags: [text-classification, demo]
base_model: org/base-model
released: 2024-05-01
model-index:
- name: tiny
  results:
  - task: {type: text-classification}
    metrics: [{type: accuracy, value: 0.91}]
---
<!-- Provide a quick summary of what the model is/does. -->
[![CI](https://img.shields.io/badge/ci-passing-green.svg)](https://ci.example.org) ![logo](logo.png)

# Tiny Classifier

<p align="center"><img src="banner.png" width="400"/></p>

| Metric | Value |
|--------|-------|
| F1     | 0.9   |

```python
from transformers import pipeline
print("this is code, not a description")
```

**Tiny Classifier** is a _small_ text classifier fine-tuned from [the base model](https://huggingface.co/org/base-model)
on the `emotion` dataset &amp; friends. See <https://example.org/paper> for details.

## Usage

Second paragraph, not part of the description.
"""

EXPECTED_DESCRIPTION = (
    "Tiny Classifier is a small text classifier fine-tuned from the base model on the emotion "
    "dataset & friends. See for details."
)


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def test_a_regular_card() -> None:
    card = parse_card(CARD.encode())
    assert card.warnings == ()
    assert card.text == CARD
    assert card.data == {
        "language": ["en", "fr"],
        "license": "apache-2.0",
        "tags": ["text-classification", "demo"],
        "base_model": "org/base-model",
        "released": "2024-05-01",  # YAML dates become ISO strings (JSON has no dates)
        "model-index": [
            {
                "name": "tiny",
                "results": [
                    {
                        "task": {"type": "text-classification"},
                        "metrics": [{"type": "accuracy", "value": 0.91}],
                    }
                ],
            }
        ],
    }
    assert card.description == EXPECTED_DESCRIPTION


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Title\n=====\n\nThe actual text of this card.", "The actual text of this card."),
        ("Title\n---\n\nThe actual text of this card.", "The actual text of this card."),
        ("> Quoted **words** in a block here\n", "Quoted words in a block here"),
        ("- item one\n- item two\n\nA real paragraph of prose.", "A real paragraph of prose."),
        ("- only a list here\n- nothing else\n", "only a list here nothing else"),
        ("Short.\n\nThen a longer paragraph of text.", "Then a longer paragraph of text."),
        ("<details><summary>Click</summary>Hidden text</details>", "Click Hidden text"),
        ("<div>\nText inside a div element.\n</div>", "Text inside a div element."),
        (
            "<style>\np { color: red; }\n</style>\nVisible text after style.",
            "Visible text after style.",
        ),
        ("<table>\n<tr><td>cell text</td></tr>\n</table>\nProse after the table.", None),
        ("    indented code block line\n\nPlain paragraph with words.", None),
        ("<!--\nmulti\nline note\n-->\nText after a note here.", "Text after a note here."),
        ("[ref]: https://x.org\nText with [a ref][ref] link inside.", None),
        ("Text with ![img](a.png) image, *emphasis*, snake_case_name.", None),
        ("~~~\ncode in tildes\n~~~\nText after the tilde fence.", "Text after the tilde fence."),
        ("```inline code``` is text in this line.", "inline code is text in this line."),
        ("x = 2 * 3 * 4 is kept as math here", "x = 2 * 3 * 4 is kept as math here"),
        ("", None),
        ("# Only a heading\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", None),
    ],
)
def test_description_drops_markdown_noise(body: str, expected: str | None) -> None:
    defaults = {
        "<table>": "Prose after the table.",
        "    indented": "Plain paragraph with words.",
        "[ref]": "Text with a ref link inside.",
        "Text with ![img]": "Text with image, emphasis, snake_case_name.",
    }
    for prefix, text in defaults.items():
        if body.startswith(prefix):
            expected = text
    assert describe(body, 1000) == expected


def test_description_is_cut_on_a_word_boundary() -> None:
    text = describe("word " * 500, 100)
    assert text is not None and len(text) <= 100 and text.endswith("word…")


def test_front_matter_needs_both_delimiters() -> None:
    assert split_front_matter("---\na: 1\n---\nbody") == ("a: 1\n", "body")
    assert split_front_matter("\n  ---\na: 1\n---  \n") == ("a: 1\n", "")
    assert split_front_matter("---\na: 1\nno end") == (None, "---\na: 1\nno end")
    assert split_front_matter("text\n---\na: 1\n---\n") == (None, "text\n---\na: 1\n---\n")
    card = parse_card(b"---\n---\nJust a body with text.")
    assert (card.data, card.description, card.warnings) == (None, "Just a body with text.", ())


def test_odd_unicode_bom_crlf_and_invalid_utf8() -> None:
    raw = (
        "\ufeff---\r\nlicense: mit\r\nlanguage: [zh, ar]\r\n---\r\n"
        "Modèle 中文 ‮reversed‬ ‍ emoji 👩‍🔬 with combining é and NUL \x00 here.\r\n"
    ).encode() + b"\xff\xfe tail"
    card = parse_card(raw)
    assert card.data == {"license": "mit", "language": ["zh", "ar"]}
    assert card.warnings == ("card is not valid UTF-8; undecodable bytes replaced by U+FFFD",)
    assert card.description is not None
    assert card.description.startswith("Modèle 中文") and "👩‍🔬" in card.description
    assert "\x00" not in card.description and "\r" not in card.description
    assert "\ufffd" in card.text


def test_a_multi_megabyte_card_is_cut_not_a_crash() -> None:
    body = ("A paragraph of ordinary words that goes on. " * 40 + "\n\n") * 3000
    raw = ("---\nlicense: mit\n---\n" + body).encode() + "é".encode() * 10
    assert len(raw) > 5_000_000
    limits = CardLimits(max_bytes=1_000_001)
    card, seconds = timed(parse_card, raw, limits)
    assert seconds < 1.0
    assert len(card.text.encode()) <= 1_000_001
    assert card.warnings == (f"card is {len(raw)} bytes; kept the first 1000001",)
    assert card.data == {"license": "mit"}
    assert card.description is not None and len(card.description) <= 1000


@pytest.mark.parametrize(
    "line",
    [
        "[" * 3_000_000,
        "![" * 1_500_000,
        "<a " * 1_000_000,
        "*_" * 1_500_000,
        "`" * 3_000_000,
        "<!-- -->" * 400_000,
        "- " * 1_500_000 + "x",
        "a\n" * 1_500_000,
        "ab\n\n" * 700_000,
    ],
)
def test_pathological_markdown_stays_linear(line: str) -> None:
    card, seconds = timed(parse_card, line.encode(), CardLimits(max_bytes=4_000_000))
    assert seconds < 1.5
    assert card.description is None or len(card.description) <= 1000


def test_a_cut_inside_a_multibyte_character_never_splits_it() -> None:
    card = parse_card("é".encode() * 100, CardLimits(max_bytes=51))
    assert card.text == "é" * 25
    assert len(card.warnings) == 1 and "kept the first 51" in card.warnings[0]


@pytest.mark.parametrize("character", ["é", "€", "🤗"])
@pytest.mark.parametrize("extra", [1, 2, 3])
def test_a_card_cut_by_a_range_request_drops_only_the_cut_character(
    character: str, extra: int
) -> None:
    """The spider asks for the first max_bytes of a big card: the answer may end inside a
    character; that is no decoding error, and whole characters before it are kept."""
    whole = ("a" * extra + character * 40).encode()
    for size in range(extra, len(whole)):
        cut = whole[:size]
        card = parse_card(cut, CardLimits(max_bytes=size))
        assert card.warnings == ()
        assert whole.decode().startswith(card.text)
        assert len(cut) - len(card.text.encode()) < len(character.encode())


def test_a_card_of_exactly_the_limit_with_bad_bytes_inside_still_says_so() -> None:
    raw = b"ab\xffcd"
    card = parse_card(raw, CardLimits(max_bytes=len(raw)))
    assert card.text == "ab\ufffdcd"
    assert any("not valid UTF-8" in warning for warning in card.warnings)


ALIAS_BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_an_alias_bomb_is_refused_fast_by_count_and_by_expansion() -> None:
    card, seconds = timed(parse_card, f"---\n{ALIAS_BOMB}---\nThe body of a card here.".encode())
    assert seconds < 0.5
    assert card.data is None and card.description == "The body of a card here."
    assert card.warnings == (
        "card front matter ignored: YAML aliases expand too far (possible alias bomb)",
    )
    # With fewer aliases allowed, the count alone refuses it, before the graph is complete.
    with pytest.raises(CardError, match="too many YAML aliases"):
        load_front_matter(ALIAS_BOMB, CardLimits(max_aliases=10))


def test_merge_key_bomb_and_long_string_aliases_are_refused() -> None:
    merges = "a0: &a0 {x0: 1}\n" + "".join(
        f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], x{i}: 1}}\n" for i in range(1, 40)
    )
    with pytest.raises(CardError, match="alias"):
        load_front_matter(merges)
    strings = "s: &s '" + "x" * 100_000 + "'\nl: [" + ", ".join(["*s"] * 50) + "]\n"
    with pytest.raises(CardError, match="expand too far"):
        load_front_matter(strings)


def test_a_few_ordinary_aliases_are_fine() -> None:
    yaml_text = "defaults: &d {lr: 0.1, epochs: 3}\nrun1: *d\nrun2: {<<: *d, lr: 0.2}\n"
    assert load_front_matter(yaml_text) == {
        "defaults": {"lr": 0.1, "epochs": 3},
        "run1": {"lr": 0.1, "epochs": 3},
        "run2": {"lr": 0.2, "epochs": 3},
    }


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("a: &a [*a]\n", "refers to itself"),
        ("a: [1, 2\n", "invalid YAML"),
        ("- just\n- a list\n", "not a mapping"),
        ("'a string'\n", "not a mapping"),
        ("a: !!python/object:os.system x\n", "invalid YAML"),
        ("a: 1\n...\nb: 2\n", "invalid YAML"),
        ("date: 2024-13-45\n", "unreadable YAML value"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
        ("- " * 100_000 + "x\n", "nested"),
        ("a: *undefined\n", "invalid YAML"),
        ("a: \x07bell\n", "invalid YAML"),
        ("[1, 2]: unhashable key\n", "invalid YAML"),
    ],
)
def test_malformed_front_matter_is_a_clear_card_error(yaml_text: str, message: str) -> None:
    with pytest.raises(CardError, match=message):
        load_front_matter(yaml_text)
    card = parse_card(f"---\n{yaml_text}---\nStill a readable body of text.".encode())
    assert card.data is None
    assert card.description == "Still a readable body of text."
    assert len(card.warnings) == 1 and card.warnings[0].startswith("card front matter ignored:")


def test_front_matter_over_the_size_limit_is_ignored_not_parsed() -> None:
    yaml_text = "tags:\n" + "- tag\n" * 100_000
    card, seconds = timed(parse_card, f"---\n{yaml_text}---\nBody text of the card.".encode())
    assert seconds < 0.5
    assert card.data is None
    assert "over the 262144-byte limit" in card.warnings[0]
    assert card.description == "Body text of the card."


def test_yaml_values_become_json_compatible() -> None:
    data = load_front_matter(
        "when: 2024-01-02 03:04:05\nbig: 123456789012345678901234567890\nnan: .nan\n"
        "inf: -.inf\nblob: !!binary aGVsbG8=\nset: !!set {b: null, a: null}\n"
        "2: int key\nnull: null key\ntrue: bool key\n2024-01-01: date key\n"
    )
    assert data == {
        "when": "2024-01-02T03:04:05",
        "big": "123456789012345678901234567890",
        "nan": None,
        "inf": None,
        "blob": "aGVsbG8=",
        "set": ["a", "b"],
        "2": "int key",
        "null": "null key",
        "true": "bool key",
        "2024-01-01": "date key",
    }


def test_deep_flow_nesting_is_refused_before_the_yaml_scanner_sees_it() -> None:
    # PyYAML's scanner is quadratic in flow depth: 250 000 brackets would take minutes.
    yaml_text = "a: " + "[" * 250_000
    card, seconds = timed(
        parse_card, f"---\n{yaml_text}\n---\nBody text here, still read.".encode()
    )
    assert seconds < 0.5
    assert card.warnings == ("card front matter ignored: YAML nested too deeply",)
    assert card.description == "Body text here, still read."


LIBYAML_CASES = [
    "license: mit\ntags: [a, b]\n",
    "a: &x [1, 2]\nb: *x\nc: *x\n",
    "a:\t1\n",  # libyaml takes the tab, PyYAML refuses it: PyYAML's answer counts
    "'a': [\n\t1]\n",
    "x: &a\n  y: *a\n",
    "a: 2024-13-45\n",
    "a: b: c\n",
    "- a\n",
    "a: 1\n---\nb: 2\n",
    "a: !!python/name:os.system\n",
    "a: 0x1F\nb: 1_000\nc: yes\nd: ~\ne: .inf\nf: 2001-12-14t21:59:43.10-05:00\n",
    "".join(f"k{i}: &a{i} [v]\n" for i in range(30))
    + "l: ["
    + ", ".join(f"*a{i}" for i in range(30)) * 5
    + "]\n",
    "- " * 5000 + "x\n",  # deeper than libyaml is trusted with: PyYAML's parser, bounded
]


@pytest.mark.parametrize("text", LIBYAML_CASES)
def test_libyaml_and_pyyaml_load_the_same(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def load() -> tuple[str, Any]:
        try:
            return "ok", load_front_matter(text, CardLimits(max_aliases=100))
        except CardError as exc:
            return "error", str(exc)

    fast = load()
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    assert fast == load()
