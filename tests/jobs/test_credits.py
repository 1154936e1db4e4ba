"""What a photo costs in PicWish credits, from PicWish's price table (old-photo repair is our
estimate), and the same rule as the upload page's script reads it."""

import pytest

from restorations.jobs.operations import OLD_PHOTO_CREDITS_ESTIMATE, SPECS
from restorations.jobs.validation import browser_limits


@pytest.mark.parametrize(
    ("operation", "options", "size", "credits"),
    [
        ("scale", {}, (2048, 2048), 2),
        ("scale", {}, (2048, 100), 2),
        ("scale", {}, (2049, 100), 3),
        ("scale", {}, (100, 4096), 3),
        ("scale-pro", {"type": "0"}, (100, 100), 5),
        ("scale-pro", {"type": "1"}, (100, 100), 4),
        ("scale-pro", {"type": "1"}, (4096, 4096), 4),
        ("colorization", {"format": "png"}, (4096, 4096), 1),
        ("correction", {"type": "1"}, (640, 480), 3),
        ("restoration-old-photo", {"restoration_type": "2"}, (2048, 2048), 5),
    ],
)
def test_credits_per_photo(operation, options, size, credits):
    assert SPECS[operation].credits_per_photo(options, *size) == credits


def test_only_old_photo_repair_is_an_estimate():
    estimates = {name for name, spec in SPECS.items() if spec.credits.estimate}
    assert estimates == {"restoration-old-photo"}
    assert SPECS["restoration-old-photo"].credits.base == OLD_PHOTO_CREDITS_ESTIMATE
    assert "an estimate" in SPECS["restoration-old-photo"].credits_summary


def test_the_price_in_words():
    assert SPECS["scale"].credits_summary == (
        "2 credits per photo, 3 credits when its long edge is over 2048 pixels"
    )
    assert SPECS["scale-pro"].credits_summary == (
        "Per photo: 5 credits with Ultra HD, 4 credits with HD"
    )
    assert SPECS["colorization"].credits_summary == "1 credit per photo"


def test_the_browser_gets_each_operations_rule_and_limits_from_the_specs():
    limits = browser_limits(SPECS.values())["operations"]
    assert set(limits) == set(SPECS)
    for name, spec in SPECS.items():
        entry = limits[name]
        assert (entry["max_bytes"], entry["max_width"], entry["max_height"]) == (
            spec.max_bytes,
            spec.max_width,
            spec.max_height,
        )
        assert set(entry["types"].values()) == set(entry["extensions"].values()) == spec.formats
        assert entry["credits"] == spec.credits.as_dict()
    assert limits["scale-pro"]["credits"]["per_value"] == {"0": 5, "1": 4}
    assert limits["scale"]["credits"]["large_over"] == 2048
    assert limits["restoration-old-photo"]["types"] == {
        "image/jpeg": "JPEG",
        "image/pjpeg": "JPEG",
        "image/png": "PNG",
    }


def test_every_option_is_explained_in_one_sentence():
    for spec in SPECS.values():
        for option in spec.options:
            assert option.help.endswith(".") and option.help.count(". ") == 0, option
