"""Shared test settings: hypothesis profiles sized so `make test` stays within minutes on 2 cores."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=os.environ.get("CI") == "true",  # CI replays the same examples; a developer's runs explore new ones
    print_blob=True,  # a failure prints the line that replays it
)
settings.load_profile("default")


@pytest.fixture(autouse=True, scope="session")
def native_cache(tmp_path_factory):
    """tl.compile's native backend caches compiled steps in a directory of the test session, not ~/.cache."""
    os.environ["TINYGRAD_LAB_CACHE"] = str(tmp_path_factory.mktemp("native-cache"))
    return os.environ["TINYGRAD_LAB_CACHE"]
