"""The three profiles every notebook runs under.

    smoke  for CI: seconds per notebook, tiny slices, every code path runs, no claims
    quick  the default: about 5 minutes on a 2-core CPU with no network; the lesson shows
    full   a GPU server or Colab: hub models and full datasets when the hub is reachable

    >>> from labkit.profile import choose
    >>> steps = choose("quick", smoke=5, quick=300, full=3000)
"""

from __future__ import annotations

import os

PROFILES = ("smoke", "quick", "full")


def check(profile: str) -> str:
    """Return `profile` if it is known, else raise an error that lists the known ones."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    return profile


def default() -> str:
    """The profile from LABKIT_PROFILE, else 'quick'."""
    return check(os.environ.get("LABKIT_PROFILE", "quick"))


def choose(profile: str, *, smoke, quick, full=None):
    """The value for `profile` (`full` defaults to the `quick` value)."""
    return {"smoke": smoke, "quick": quick, "full": quick if full is None else full}[check(profile)]
