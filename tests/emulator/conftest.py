import pytest

from emulator import EmulatorConfig, PicWishEmulator
from tests.emulator.support import DURATION, KEY, api_client


@pytest.fixture
def emulator():
    config = EmulatorConfig(
        api_key=KEY, qps=1000, duration_min=DURATION, duration_max=DURATION, seed=11
    )
    with PicWishEmulator(config) as running:
        yield running


@pytest.fixture
def client(emulator):
    with api_client(emulator.url) as http:
        yield http
