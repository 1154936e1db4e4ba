"""The emulator's endpoint table against the product's operation table.

The emulator is written from PicWish's documentation, not derived from the product, so this is
a real cross-check: changing either table alone fails here. What is compared, per endpoint:

- names: the emulator serves exactly the product's operations (SPECS keys = ENDPOINTS keys);
- options: the same option names, each with the same set of allowed values. The order, the
  labels, the defaults and the product's `requires` rules are the product's own: the emulator
  accepts `model_type` with `restoration_type` 0, as PicWish does, and the product merely never
  sends it then;
- the fields every endpoint takes besides its options, `sync` and `return_type`, which the
  product's client sets itself and so are not options in SPECS: exactly those two, and no
  option of the product uses their names;
- limits: the same maximum bytes, width and height (both are PicWish's documented limits, or
  the project's assumption where PicWish says nothing), so the emulator neither refuses what
  the product accepts nor accepts what PicWish would refuse;
- formats: where the emulator names formats, the same Pillow formats as the product; where it
  takes whatever the built-in engine decodes, exactly the endpoints listed in ANY_FORMAT, and
  a small image in each of the product's formats really becomes a result there.
"""

import pytest

from emulator import ENDPOINTS
from emulator.endpoints import COMMON_PARAMS
from emulator.results import produce_result
from restorations.jobs.operations import SPECS
from tests.factories import photo_bytes

# Endpoints for which PicWish documents no formats: the emulator takes what the engine decodes.
ANY_FORMAT = {"scale", "colorization", "correction"}
# Fields of every create that the product's client sets itself instead of offering as options.
CLIENT_FIELDS = {"sync", "return_type"}


def test_the_emulator_serves_exactly_the_products_operations():
    assert set(ENDPOINTS) == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_options_and_their_values_agree(name):
    product = {
        option.name: {value for value, _ in option.choices} for option in SPECS[name].options
    }
    emulator = {option: set(values) for option, values in ENDPOINTS[name].params.items()}
    assert emulator == product


def test_the_fields_besides_options_are_the_ones_the_client_sets():
    assert set(COMMON_PARAMS) == CLIENT_FIELDS
    assert all(not CLIENT_FIELDS & set(endpoint.params) for endpoint in ENDPOINTS.values())
    assert all(not CLIENT_FIELDS & {o.name for o in spec.options} for spec in SPECS.values())


@pytest.mark.parametrize("name", sorted(SPECS))
def test_input_limits_agree(name):
    spec, endpoint = SPECS[name], ENDPOINTS[name]
    assert (endpoint.max_bytes, endpoint.max_width, endpoint.max_height) == (
        spec.max_bytes,
        spec.max_width,
        spec.max_height,
    )


def test_endpoints_that_take_any_format_are_the_listed_ones():
    assert {name for name, endpoint in ENDPOINTS.items() if endpoint.formats is None} == ANY_FORMAT


@pytest.mark.parametrize("name", sorted(set(SPECS) - ANY_FORMAT))
def test_named_formats_agree(name):
    assert ENDPOINTS[name].formats == SPECS[name].formats


@pytest.mark.parametrize(
    ("name", "fmt"), sorted((name, fmt) for name, spec in SPECS.items() for fmt in spec.formats)
)
def test_an_image_in_each_format_the_product_accepts_becomes_a_result(name, fmt):
    done = produce_result(name, {}, photo_bytes(24, 16, fmt=fmt), None)
    assert done.failure is None and done.result is not None
