"""A local server speaking the providers' APIs with known timing, token counts and faults: the target of the tests,
of `python main.py --simulate` and of the accuracy benchmark. One module per API beside the server (server.py holds
the table of routes); the models' profiles and faults apart (profiles.py)."""

from .profiles import DEFAULT_PROFILE, DEFAULT_PROFILES, FAULTS, ModelProfile
from .server import Simulator
from .state import RequestRecord

__all__ = ["DEFAULT_PROFILE", "DEFAULT_PROFILES", "FAULTS", "ModelProfile", "RequestRecord", "Simulator"]
