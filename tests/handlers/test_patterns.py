"""The check on regular expressions a file hands to ``re`` (a text vectorizer's
``token_pattern``): patterns whose matching takes exponential time are refused, the
patterns people write are not."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelsafe._handlers.sklearn._patterns import (
    MAX_PATTERN,
    PatternError,
    check_pattern,
)

# Each can take time exponential in the length of a text it fails on (the classic
# shapes: a repeat inside a repeat, alternatives that overlap inside a repeat).
EXPONENTIAL = [
    r"(a+)+$",
    r"(a*)*b",
    r"(a|aa)+c",
    r"(\w+\s?)+$",
    r"(?:\w+\s?)+\.",
    r"(?:x\w+y)+z",  # the repeat's delimiters are themselves \w
    r"(?:a*b*)*c",
    r"(\d+|\w+)*!",
    r"(?:.|\w|\s)*\.",
    r"(?:.|.)*\.",
    r"(.*a){2,20}b",
    r"(?:a?a?)*b",
    r"(?:a(?:b?|c?))*d",  # two ways to match nothing, inside a repeat
    r"(\s*\w+\s*)+;",
    r"^(([a-z])+.)+[A-Z]([a-z])+$",
    r"(?=(a+)+b)\w",  # inside a lookahead, run at every position
    r"(?<=a)(?:\w+\d?)+!",  # after a lookbehind: a digit is also \w
    r"(?i)(?:A|a\w)+!",
    r"(?>a+)+b",  # atomic groups count as ordinary ones: refused, though re is quick here
]
# Token patterns as people write them (scikit-learn's default, its documentation's, NLTK's
# and common ones); none can take exponential time.
ORDINARY = [
    r"(?u)\b\w\w+\b",
    r"\b\w+\b",
    r"(?u)\b\w+\b",
    r"(?u)\b\w+(?:[-']\w+)*\b",
    r"[A-Za-z]+",
    r"\S+",
    r"[^\s]+",
    r"(?u)\b\w\w+\b|[^\w\s]",
    r"\d+(?:\.\d+)?",
    r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}",
    r"(?:\w+\s)+",
    r"a*a*",  # polynomial, not exponential: not refused (see the module's docstring)
    r"(ab)*c",
    r"(a|b)*c",
    r"(?u)\b[^\d\W]{2,}\b",
    r"\w{2,15}",
    r"[#@]?\w+",
    r"(?:[A-Z]\.)+|\w+(?:-\w+)*|\$?\d+(?:\.\d+)?%?|\.\.\.|[][.,;\"'?():_`-]",
    r"(?i)(a|A)+b",  # re makes [aA] of it: one way per character
    r"(?:\w|\d)+!",  # re makes [\w\d] of it: one way per character
    r"(?<=\s)\w+(?=\s)",
    r"(?x) \w+  # a word",
    r"(?:a{1,3}){1,3}b",  # bounded: at most a constant number of ways
    r"(?:ab|a)+c",  # re factors it into (?:ab?)+c: one way
    r"[\u4e00-\u9fff]|\w+",
    "",
]


@pytest.mark.parametrize("pattern", EXPONENTIAL)
def test_exponential_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError, match="exponential in the length of the text"):
        check_pattern("token_pattern", pattern)


@pytest.mark.parametrize("pattern", ORDINARY)
def test_ordinary_patterns_pass(pattern: str) -> None:
    check_pattern("token_pattern", pattern)


def test_scikit_learn_defaults_pass() -> None:
    from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer

    for vectorizer in (CountVectorizer(), HashingVectorizer()):
        check_pattern("token_pattern", vectorizer.token_pattern)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(\w)\1", "refers back to a group"),
        (r"(?P<w>\w)(?P=w)", "refers back to a group"),
        (r"(\w)?(?(1)a|b)", "refers back to a group"),
        (r"(\w+", "is not a regular expression re compiles"),
        (r"\w{3,2}", "is not a regular expression re compiles"),
        ("a" * (MAX_PATTERN + 1), f"over the {MAX_PATTERN} a token pattern may have"),
        ("(" * 499 + "a" + ")" * 499, "nests too deeply to check"),  # re cannot either
        (r"(?:\w{4}){4}" * 17, "too large to check"),
    ],
)
def test_other_patterns_refused(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        check_pattern("token_pattern", pattern)


def test_none_passes_and_other_types_are_refused() -> None:
    check_pattern("token_pattern", None)  # a vectorizer given its own tokenizer
    for value in (b"\\w+", 3, ["\\w+"]):
        with pytest.raises(TypeError, match="token_pattern must be a str"):
            check_pattern("token_pattern", value)


def test_the_message_names_the_attribute_and_the_pattern() -> None:
    with pytest.raises(PatternError) as info:
        check_pattern("token_pattern", r"(a+)+$")
    assert str(info.value).startswith("token_pattern = '(a+)+$' can take time exponential")


def test_the_exponential_pattern_is_a_real_attack() -> None:
    """The pattern the crafted vectorizer files carry, matched by ``re`` itself on a
    24-character document (a test input's size): it does not end within 5 s, where an
    ordinary token pattern takes microseconds."""
    from tests.handlers.test_sklearn_internals import EXPONENTIAL as CRAFTED

    script = "import re, sys; re.findall(sys.argv[1], 'w12 w3 w7 w25 w1 w9 w14 w2'); print('done')"
    for pattern, ends in ((r"(?u)\b\w\w+\b", True), (CRAFTED, False)):
        try:
            out = subprocess.run(
                [sys.executable, "-c", script, pattern],
                capture_output=True,
                text=True,
                timeout=5,
            )
        except subprocess.TimeoutExpired:
            assert not ends, f"{pattern!r} should have ended"
        else:
            assert ends and out.stdout.strip() == "done", (pattern, out)
