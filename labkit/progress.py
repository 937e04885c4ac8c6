"""Progress bars and live loss curves that fall back quietly when nobody is watching.

In JupyterLab you get a tqdm bar and a loss curve that redraws every few seconds. In a
terminal you get a text bar. Headless (CI=true, LABKIT_HEADLESS=1, or papermill runs
started by `labkit run`) you get neither: no bar, no redraws, a few log lines at most.
"""

from __future__ import annotations

import os
import sys
import time


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, papermill)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ in {"ZMQInteractiveShell", "Shell"}


def is_headless() -> bool:
    """True when no person is watching: CI, LABKIT_HEADLESS=1, or a non-interactive run."""
    if _truthy("CI") or _truthy("LABKIT_HEADLESS"):
        return True
    return not in_notebook() and not sys.stderr.isatty()


def bar(iterable=None, *, total=None, desc=None, leave=True, **kwargs):
    """A tqdm progress bar (notebook widget or text); disabled when headless."""
    if in_notebook():
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, leave=leave,
                disable=is_headless(), dynamic_ncols=True, **kwargs)


class LiveCurve:
    """A loss curve redrawn in place in a notebook, at most once every `every` seconds.

    Outside a watched notebook every method is a cheap no-op.
    """

    def __init__(self, title: str = "training", every: float = 2.0):
        self.enabled = in_notebook() and not is_headless()
        self.title, self.every = title, every
        self.series: dict[str, tuple[list, list]] = {}
        self._last = 0.0
        self._handle = None

    def add(self, name: str, step: int, value: float) -> None:
        if not self.enabled:
            return
        xs, ys = self.series.setdefault(name, ([], []))
        xs.append(step)
        ys.append(value)
        if time.monotonic() - self._last >= self.every:
            self.draw()

    def draw(self) -> None:
        if not self.enabled or not self.series:
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig, ax = plt.subplots(figsize=(6, 3))
        for name, (xs, ys) in self.series.items():
            ax.plot(xs, ys, label=name, marker="o" if len(xs) < 30 else None)
        ax.set_xlabel("optimizer step")
        ax.set_title(self.title)
        ax.legend()
        ax.grid(alpha=0.3)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)
        self._last = time.monotonic()

    def close(self) -> None:
        """Clear the live figure: the returned history plots the final picture."""
        if self._handle is not None:
            from IPython.display import HTML
            self._handle.update(HTML(""))
            self._handle = None
