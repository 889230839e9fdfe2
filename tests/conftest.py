"""Hypothesis profiles: ``dev`` (the default) draws new examples on every run, to find what no
one thought of; ``ci`` (``HYPOTHESIS_PROFILE=ci``, set by ``.ci/run``) draws the same examples
every run, so a landing is judged on the code, not on the luck of the draw."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", print_blob=True)
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
