"""A PicWish task API emulator: a real HTTP server on loopback, for tests and benchmarks.

It speaks the create/poll protocol of PicWish's visual endpoints (auth, QPS limit, task states,
result URLs that expire) and adds scriptable faults, so the project's HTTP client, tests and
benchmarks can run without a PicWish key or network. Results come from the built-in engine
(`restorations.engines.local`); nothing in the product imports this package, and it is not
installed with it. It uses no Django. `python -m emulator` serves it; docs/emulator.md
describes every option and the control API under /_emulator/.
"""

from .config import DEFAULT_FAILURE_CODES, EmulatorConfig, Outcome
from .endpoints import ENDPOINTS, MB, Endpoint
from .server import PicWishEmulator
from .states import is_final
from .timeline import PROGRESS_CURVES, progress_at
from .window import QpsWindow

__all__ = [
    "DEFAULT_FAILURE_CODES",
    "ENDPOINTS",
    "MB",
    "PROGRESS_CURVES",
    "EmulatorConfig",
    "Endpoint",
    "Outcome",
    "PicWishEmulator",
    "QpsWindow",
    "is_final",
    "progress_at",
]
