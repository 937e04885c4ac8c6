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


SMOKE_NOTICE = ("profile smoke: a check that every code path runs, on tiny slices and "
                "stand-in models, in seconds. Its numbers mean nothing; for the lesson run "
                "quick (the default: unset LABKIT_PROFILE or set PROFILE = \"quick\").")
_noticed = False


def check(profile: str) -> str:
    """Return `profile` if it is known, else raise an error that lists the known ones.
    The first time a process meets `smoke`, say once that smoke's numbers mean nothing."""
    global _noticed
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    if profile == "smoke" and not _noticed:
        _noticed = True
        print(SMOKE_NOTICE)
    return profile


def default() -> str:
    """The profile from LABKIT_PROFILE, else 'quick'."""
    return check(os.environ.get("LABKIT_PROFILE", "quick"))


def choose(profile: str, *, smoke, quick, full=None):
    """The value for `profile` (`full` defaults to the `quick` value)."""
    return {"smoke": smoke, "quick": quick, "full": quick if full is None else full}[check(profile)]
