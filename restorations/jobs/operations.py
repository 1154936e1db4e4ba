"""The operations users can choose, their options, their input limits and what PicWish charges.

One entry per PicWish endpoint. The limits apply whichever engine runs the task, so a photo
accepted here is never refused later for its size.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

MB = 1024 * 1024


class Operation(models.TextChoices):
    OLD_PHOTO = "restoration-old-photo", _("Old-photo repair")
    ENHANCE = "scale", _("Enhance")
    UPSCALE = "scale-pro", _("Upscale (Ultra HD)")
    COLOURISE = "colorization", _("Colourise")
    CORRECT = "correction", _("Crop and correct")


@dataclass(frozen=True)
class Option:
    name: str
    label: str
    choices: tuple[tuple[str, str], ...]  # (value as sent to the engine, label)
    default: str
    help: str = ""
    # The option is only accepted when this other option has one of these values.
    requires: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Credits:
    """What PicWish charges for one photo: `base`, or `large` for a photo whose long edge is
    over `large_over` pixels, or the figure `per_value` gives for the value of `option`.
    `estimate` marks a figure PicWish does not publish."""

    base: int
    large: int | None = None
    large_over: int | None = None
    option: str = ""
    per_value: tuple[tuple[str, int], ...] = ()
    estimate: bool = False

    def for_photo(self, options: dict[str, str], width: int, height: int) -> int:
        if self.option:
            return dict(self.per_value).get(options.get(self.option, ""), self.base)
        if self.large is not None and max(width, height) > self.large_over:
            return self.large
        return self.base

    def as_dict(self) -> dict:
        """The rule for the upload page's script, which prices a selection before it is sent."""
        return {
            "base": self.base,
            "large": self.large,
            "large_over": self.large_over,
            "option": self.option,
            "per_value": dict(self.per_value),
            "estimate": self.estimate,
        }


@dataclass(frozen=True)
class OperationSpec:
    operation: Operation
    description: str
    formats: frozenset[str]  # Pillow format names
    max_bytes: int
    max_width: int
    max_height: int
    options: tuple[Option, ...] = field(default=())
    # Typical time PicWish takes, used to plan polls before anything is measured.
    typical_seconds: float = 8.0
    credits: Credits = Credits(1)

    @property
    def label(self) -> str:
        return str(self.operation.label)

    @property
    def max_long_edge(self) -> int:
        return max(self.max_width, self.max_height)

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)

    def credits_per_photo(self, options: dict[str, str], width: int, height: int) -> int:
        """PicWish credits one photo of `width` × `height` costs with these (cleaned) options."""
        return self.credits.for_photo(options, width, height)

    @property
    def credits_summary(self) -> str:
        """The price in words, for the upload page: "2 credits per photo, 3 over 2048 px"."""
        rule = self.credits
        if rule.option:
            labels = dict(self.option(rule.option).choices)
            return "Per photo: " + ", ".join(
                f"{_credits(count)} with {labels[value]}" for value, count in rule.per_value
            )
        if rule.large is not None:
            return (
                f"{_credits(rule.base)} per photo, {_credits(rule.large)} when its long edge is "
                f"over {rule.large_over} pixels"
            )
        if rule.estimate:
            return (
                f"About {_credits(rule.base)} per photo (an estimate: PicWish does not publish "
                "this price)"
            )
        return f"{_credits(rule.base)} per photo"


def _credits(count: int) -> str:
    return f"{count} credit{'' if count == 1 else 's'}"


_COMMON = frozenset({"JPEG", "PNG", "WEBP", "BMP"})

# Credits per photo from PicWish's price table; old-photo repair is not in it (docs/decisions.md).
OLD_PHOTO_CREDITS_ESTIMATE = 5

SPECS: dict[str, OperationSpec] = {
    spec.operation.value: spec
    for spec in [
        OperationSpec(
            Operation.OLD_PHOTO,
            "Repairs scratches, blur and fading in old photos, and can colourise them.",
            frozenset({"JPEG", "PNG"}),
            20 * MB - 1,  # "< 20 MB"
            2048,
            2048,
            (
                Option(
                    "restoration_type",
                    "Damage",
                    (("0", "Light"), ("1", "Medium"), ("2", "Severe")),
                    "0",
                    "How worn the photo is: a heavier setting repairs more and changes more.",
                ),
                Option(
                    "model_type",
                    "Model",
                    (("1", "Realistic"), ("2", "Smart enhancement"), ("3", "Ultra HD")),
                    "1",
                    "Only for medium or severe damage: Realistic keeps the photo's character, "
                    "the others sharpen and add detail.",
                    requires=("restoration_type", ("1", "2")),
                ),
                Option(
                    "change_color",
                    "Colourise",
                    (("1", "Yes"), ("0", "No")),
                    "1",
                    "Whether the repaired photo is also given natural colour.",
                ),
            ),
            typical_seconds=10.0,
            credits=Credits(OLD_PHOTO_CREDITS_ESTIMATE, estimate=True),
        ),
        OperationSpec(
            Operation.ENHANCE,
            "Sharpens and cleans up a photo, optionally enlarging it.",
            _COMMON,
            30 * MB,
            4096,
            4096,
            (
                Option(
                    "type",
                    "Style",
                    (("clean", "Clean"), ("face", "Faces")),
                    "clean",
                    "Clean suits most photos; Faces works hardest on people's faces.",
                ),
                Option(
                    "scale_factor",
                    "Enlarge",
                    (("", "Automatic"), ("1", "1x"), ("2", "2x"), ("4", "4x")),
                    "",
                    "How much larger the result is; Automatic lets the service choose.",
                ),
            ),
            typical_seconds=6.0,
            credits=Credits(2, large=3, large_over=2048),
        ),
        OperationSpec(
            Operation.UPSCALE,
            "Enlarges a photo to a sharper, higher resolution.",
            _COMMON | {"TIFF"},
            30 * MB,
            4096,
            4096,
            (
                Option(
                    "type",
                    "Quality",
                    (("0", "Ultra HD"), ("1", "HD")),
                    "0",
                    "Ultra HD gives the most detail; HD costs one credit less.",
                ),
            ),
            typical_seconds=12.0,
            credits=Credits(5, option="type", per_value=(("0", 5), ("1", 4))),
        ),
        OperationSpec(
            Operation.COLOURISE,
            "Adds natural colour to a black-and-white photo.",
            _COMMON,
            30 * MB,
            4096,
            4096,
            (
                Option(
                    "format",
                    "Result format",
                    (("jpg", "JPG"), ("png", "PNG"), ("webp", "WebP")),
                    "jpg",
                    "The file type of the coloured result.",
                ),
            ),
            typical_seconds=6.0,
            credits=Credits(1),
        ),
        OperationSpec(
            Operation.CORRECT,
            "Crops, straightens and evens out documents and product photos.",
            _COMMON,
            30 * MB,
            4096,
            4096,
            (
                Option(
                    "type",
                    "Subject",
                    (
                        ("0", "Type 0"),
                        ("1", "Document (default)"),
                        ("2", "Type 2"),
                        ("3", "Type 3"),
                        ("4", "Type 4"),
                    ),
                    "1",
                    "What the photo shows; Document suits pages, receipts and whiteboards.",
                ),
            ),
            typical_seconds=6.0,
            credits=Credits(3),
        ),
    ]
}


def spec_for(operation: str) -> OperationSpec:
    try:
        return SPECS[operation]
    except KeyError:
        raise ValidationError(
            _("Unknown operation “%(op)s”. Choose one of: %(ops)s."),
            params={"op": operation, "ops": ", ".join(SPECS)},
            code="unknown_operation",
        ) from None


def clean_options(operation: str, raw: dict[str, str]) -> dict[str, str]:
    """Checked options with defaults filled in; unknown names and values are errors."""
    spec = spec_for(operation)
    known = {o.name for o in spec.options}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValidationError(
            _("%(op)s has no option %(names)s. Its options are: %(known)s."),
            params={
                "op": spec.label,
                "names": ", ".join(unknown),
                "known": ", ".join(sorted(known)) or "none",
            },
            code="unknown_option",
        )
    cleaned = {}
    for option in spec.options:
        value = str(raw.get(option.name, option.default)).strip()
        allowed = [v for v, _label in option.choices]
        if value not in allowed:
            raise ValidationError(
                _("%(label)s must be one of %(allowed)s, not “%(value)s”."),
                params={
                    "label": option.label,
                    "allowed": ", ".join(a or "(empty)" for a in allowed),
                    "value": value,
                },
                code="bad_option",
            )
        cleaned[option.name] = value
    for option in spec.options:
        if option.requires and option.name in raw:
            other, values = option.requires
            if cleaned[other] not in values:
                raise ValidationError(
                    _("%(label)s applies only when %(other)s is %(values)s."),
                    params={
                        "label": option.label,
                        "other": spec.option(other).label,
                        "values": " or ".join(dict(spec.option(other).choices)[v] for v in values),
                    },
                    code="option_not_applicable",
                )
        if option.requires and cleaned[option.requires[0]] not in option.requires[1]:
            del cleaned[option.name]  # not sent when it does not apply
    return cleaned
