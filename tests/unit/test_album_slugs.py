"""Album slugs: lowercase ASCII from any title, bounded, numbered when taken."""

import pytest

from functions.domain.catalog.album_slugs import MAX_SLUG_LENGTH, slugify, with_suffix
from functions.domain.catalog.albums import clean_description, clean_title
from functions.errors import InvalidAlbum


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Night Drive", "night-drive"),
        ("  --Night   Drive!!--  ", "night-drive"),
        ("Café del Mar (Vol. 2)", "cafe-del-mar-vol-2"),
        ("Ærø Straße", "aero-strasse"),  # letters NFKD keeps whole are transliterated
        ("Łódź — Kraków", "lodz-krakow"),
        ("Ｆｕｌｌ　Ｗｉｄｔｈ ＡＢＣ", "full-width-abc"),  # compatibility forms fold to ASCII
        ("ﬁnal ﬂight", "final-flight"),  # ligatures too
        ("Rock & Roll / 1977", "rock-roll-1977"),
        ("東京", "album"),  # nothing left: the fallback
        ("!!!", "album"),
        ("", "album"),
    ],
)
def test_titles_become_lowercase_ascii_slugs(title, slug):
    assert slugify(title) == slug


def test_a_slug_is_at_most_80_characters_and_never_ends_in_a_hyphen():
    assert slugify("a" * 200) == "a" * 80
    # The cut lands right after a separator: the trailing hyphen goes too.
    assert slugify("b" * 79 + " tail") == "b" * 79
    assert len(slugify("word " * 100)) <= MAX_SLUG_LENGTH
    assert not slugify("word " * 100).endswith("-")


def test_suffixes_number_a_taken_slug_within_the_length_bound():
    assert [with_suffix("night-drive", n) for n in (1, 2, 3, 10)] == [
        "night-drive",
        "night-drive-2",
        "night-drive-3",
        "night-drive-10",
    ]
    long = "c" * 80
    assert with_suffix(long, 2) == "c" * 78 + "-2"
    assert with_suffix("d" * 77 + "-x", 1000) == "d" * 75 + "-1000"
    assert with_suffix("e" * 77 + "-f", 2) == "e" * 77 + "-2"  # no doubled hyphen at the cut


def test_titles_and_descriptions_are_trimmed_and_bounded():
    assert clean_title("  Late Hours  ") == "Late Hours"
    assert clean_description("  ") is None
    assert clean_description("") is None
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(InvalidAlbum) as refused:
            clean_title(bad)
        assert refused.value.code == "invalid_album"
    with pytest.raises(InvalidAlbum):
        clean_description("d" * 5001)
