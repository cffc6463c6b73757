"""Progress of long work (generation, perplexity, fine-tuning) the way users expect.

On a terminal a tqdm bar; elsewhere (a log file, a SLURM job, a pipe) a log line at least
every ``interval`` seconds (30 by default, from a background timer while a batch runs), and
one at the end, e.g.::

    generate: 16/32 requests (50%), 41.3 tokens/s, 1m20s elapsed, ETA 1m20s

Any engine can use it: ``update(n, tokens=...)`` after each unit of work. ``clock`` and
``tty`` are injectable so tests check the timing without waiting.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pipeline.progress")

INTERVAL_S = 30.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """``total`` units (``unit``: requests, steps) of the work ``desc``; use as a context
    manager. ``tokens`` counted in :meth:`update` give the tokens/s figure."""

    def __init__(self, desc: str, total: int, unit: str = "requests", *,
                 interval: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 tty: bool | None = None, logger: logging.Logger = log) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.interval, self.clock, self.log = interval, clock, logger
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.done = self.tokens = 0
        self._logged = 0  # ``done`` as the last line showed it
        self.start = self.last = clock()
        self.extra = ""  # shown after the counts (e.g. the last training loss)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit.rstrip("s"),
                             dynamic_ncols=True, leave=True)
        elif self.clock is time.monotonic:  # a real clock: a timer logs during long batches
            self._thread = threading.Thread(target=self._heartbeat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.close()
        elif self.done != self._logged and exc[0] is None:
            self._emit()  # the final count, unless the last line showed it

    def update(self, n: int = 1, tokens: int = 0, extra: str | None = None) -> None:
        """``n`` more units done, ``tokens`` more tokens processed."""
        with self._lock:
            self.done += n
            self.tokens += tokens
            if extra is not None:
                self.extra = extra
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix_str(self._rates().removeprefix(", "), refresh=False)
        else:
            self.tick()

    def tick(self) -> None:
        """Log a line when ``interval`` seconds passed since the last one."""
        if self._bar is None and self.clock() - self.last >= self.interval:
            self._emit()

    def line(self) -> str:
        """The progress line as it is now."""
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        elapsed = self.clock() - self.start
        eta = (f", ETA {_duration(elapsed * (self.total - self.done) / self.done)}"
               if 0 < self.done < self.total else "")
        return (f"{self.desc}: {self.done}/{self.total} {self.unit}{pct}{self._rates()}, "
                f"{_duration(elapsed)} elapsed{eta}")

    def _rates(self) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        tokens = f", {self.tokens / elapsed:.1f} tokens/s" if self.tokens else ""
        return tokens + (f", {self.extra}" if self.extra else "")

    def _emit(self) -> None:
        with self._lock:
            self.last, self._logged = self.clock(), self.done
            text = self.line()
        self.log.info("%s", text)

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(self.interval, 5.0)):
            self.tick()
