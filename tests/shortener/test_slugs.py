from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from shortener.errors import InvalidSlugError
from shortener.slugs import (
    ALPHABET,
    RANDOM_SLUG_LENGTH,
    RESERVED_SLUGS,
    SLUG_MAX_LENGTH,
    random_slug,
    validate_slug,
)


@pytest.mark.parametrize(
    "slug",
    [
        "spring",
        "Spring-Sale_2025",
        "a",
        "A",
        "0",
        "-",
        "_",
        "x" * SLUG_MAX_LENGTH,
        "apis",
        "my-admin",
        "qr2",
    ],
)
def test_valid_slug_is_returned_unchanged(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize(
    ("slug", "fragment"),
    [
        ("", "non-empty"),
        ("x" * (SLUG_MAX_LENGTH + 1), "at most 64"),
        ("spring sale", "may contain only"),
        (" spring", "may contain only"),
        ("spring\n", "may contain only"),
        ("spring\t", "may contain only"),
        ("a/b", "may contain only"),
        ("a.b", "may contain only"),
        ("a?b", "may contain only"),
        ("a#b", "may contain only"),
        ("a%20b", "may contain only"),
        ("a\\b", "may contain only"),
        ("ümlaut", "may contain only"),
        ("\uff53\uff50\uff52\uff49\uff4e\uff47", "may contain only"),
        ("spring\x00", "may contain only"),
        ("favicon.ico", "may contain only"),
        ("robots.txt", "may contain only"),
    ],
)
def test_invalid_slug_is_rejected_with_a_reason(slug: str, fragment: str) -> None:
    with pytest.raises(InvalidSlugError) as raised:
        validate_slug(slug)
    assert raised.value.field == "slug"
    assert fragment in raised.value.message


@pytest.mark.parametrize("slug", [None, 42, b"spring"])
def test_non_string_slug_is_rejected(slug: object) -> None:
    with pytest.raises(InvalidSlugError):
        validate_slug(slug)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "slug",
    ["api", "API", "Api", "static", "health", "healthz", "metrics", "Dashboard", "login",
     "LOGOUT", "signin", "signout", "admin", "ADMIN", "app", "assets", "robots", "qr", "QR",
     "links", "touchpoints", "stages", "reports", "docs", "openapi", "www", "WWW", "settings",
     "account", "users", "new", "edit"],
)  # fmt: skip
def test_reserved_slug_is_rejected_whatever_its_case(slug: str) -> None:
    with pytest.raises(InvalidSlugError, match="reserved"):
        validate_slug(slug)


def test_reserved_slugs_are_lowercase_and_spellable() -> None:
    # A reserved word that no slug could spell would be dead weight in the list.
    for word in RESERVED_SLUGS:
        assert word == word.lower()
        with pytest.raises(InvalidSlugError, match="reserved"):
            validate_slug(word)


@pytest.mark.parametrize("char", "0Oo1lI")
def test_alphabet_leaves_out_look_alike_characters(char: str) -> None:
    assert char not in ALPHABET


def test_alphabet_is_made_of_distinct_slug_characters() -> None:
    assert len(set(ALPHABET)) == len(ALPHABET)
    assert validate_slug(ALPHABET) == ALPHABET


def test_random_slug_has_default_length_and_uses_only_the_alphabet() -> None:
    for _ in range(1_000):
        slug = random_slug()
        assert len(slug) == RANDOM_SLUG_LENGTH
        assert set(slug) <= set(ALPHABET)
        assert validate_slug(slug) == slug


def test_random_slugs_do_not_repeat() -> None:
    slugs = {random_slug() for _ in range(1_000)}
    assert len(slugs) == 1_000


def test_random_slugs_draw_every_character_of_the_alphabet() -> None:
    seen = set("".join(random_slug() for _ in range(1_000)))
    assert seen == set(ALPHABET)


@pytest.mark.parametrize("length", [1, 12, SLUG_MAX_LENGTH])
def test_random_slug_honours_the_requested_length(length: int) -> None:
    assert len(random_slug(length)) == length


@pytest.mark.parametrize("length", [0, -1, SLUG_MAX_LENGTH + 1])
def test_random_slug_refuses_a_length_no_slug_can_have(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        random_slug(length)


def test_random_slug_redraws_when_it_spells_a_reserved_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "metrics" can be spelled from the alphabet, so the draw must be retried rather than returned.
    draws: Iterator[str] = iter("metrics" + "abcdefg")
    monkeypatch.setattr(secrets, "choice", lambda _alphabet: next(draws))
    assert random_slug(7) == "abcdefg"
