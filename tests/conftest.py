"""Test settings shared by every module.

Hypothesis runs derandomized by default, so that the suite (and CI) sees the same examples
on every run and a failure reproduces as it is. `HYPOTHESIS_PROFILE=explore` draws fresh
examples each run, for looking for new counterexamples.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
