"""What every checker test does: run a checker on an answer, and expect it to fail with the
hint that names the mistake. (Each test's progress file is private already: conftest gives
every test its own runs folder.)"""

import types

import pytest

from labkit import checks


def check(exercise, fn) -> None:
    """Run the checker of `exercise` (an id such as "01.1", or a checker function) on `fn`."""
    (checks.get(exercise).check if isinstance(exercise, str) else exercise)(fn)


def wrong(exercise, fn, *words) -> str:
    """Assert that the checker rejects `fn` with a hint naming every one of `words` (in the
    hint or the stronger hint, any case); return the first hint."""
    with pytest.raises(checks.Wrong) as e:
        check(exercise, fn)
    text = (e.value.hint + " " + e.value.stronger).lower()
    missing = [w for w in words if w.lower() not in text]
    assert not missing, (missing, text)
    return e.value.hint


def own_copy(fn):
    """`fn` as a learner's own function: the same code, but not labkit's function object,
    which a checker refuses to let an answer call."""
    return types.FunctionType(fn.__code__.replace(co_name=fn.__code__.co_name), fn.__globals__,
                              fn.__name__, fn.__defaults__, fn.__closure__)
