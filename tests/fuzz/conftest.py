"""Property-based fuzzing of the public entry points (hypothesis).

Profiles: ``ci`` (the default) draws a fixed, derandomised sequence so a CI run is repeatable;
``explore`` draws fresh random input, many more examples, for a long local run:

    HYPOTHESIS_PROFILE=explore .venv/bin/pytest tests/fuzz
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    # One Django test client and one database transaction serve every example of a test.
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "database": None,
}
settings.register_profile("ci", max_examples=1000, derandomize=True, **_COMMON)
settings.register_profile("explore", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
