"""One writer at a time: an advisory lock file that a second process waits on, saying so.

The lock is ``flock`` on a small file that is never deleted (deleting a lock file lets a
third process lock a new file while the second still holds the old one); the kernel drops
the lock when its holder ends, even when killed, so a crash leaves nothing stale.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def exclusive(lock_file: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` for the block; while another process holds
    it, log that this one waits (``what``: the work it guards) and wait.

    Where ``lock_file`` cannot be created, the block runs unlocked: in a folder this user
    may read but not write it cannot write either, so it cannot disturb a writer; a folder
    that does not exist yet is not created here (a mistyped path is left uncreated).
    """
    lock_file = Path(lock_file)
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):
            raise
        fd = None
    if fd is None:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            log.warning("waiting for another %s (pid %s) to finish: %s is locked",
                        what, holder, lock_file)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
