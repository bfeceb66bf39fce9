"""Test-wide settings: in CI, hypothesis runs derandomised (the same examples every run) with no deadline,
so a loaded machine cannot make a property test flaky."""

import os

from hypothesis import settings

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
