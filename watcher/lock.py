"""The data-directory lock that keeps a second daemon from sharing one state store."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from watcher.errors import LockedError, StoreError

LOCK_NAME = "watcher.lock"


def prepare_data_dir(path: Path) -> Path:
    """Create the data directory if needed and check that it is writable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"data directory {path}: cannot create it ({exc.strerror}); "
            "set [watcher] data_dir or WATCHER_DATA_DIR to a writable folder"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StoreError(f"data directory {path}: {_unwritable(path)}")
    return path


def _unwritable(path: Path) -> str:
    # A read-only mount refuses even root: say so rather than blame permissions.
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        return (
            "on a read-only file system; remount it read-write "
            "or set [watcher] data_dir to another folder"
        )
    return (
        "not writable by this user; fix its permissions or set [watcher] data_dir to another folder"
    )


class DataDirLock:
    """An exclusive flock on ``<data_dir>/watcher.lock``; the OS drops it if the process dies."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open lock file ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LockedError(
                f"data directory {self.path.parent} is in use by another watcher daemon "
                f"(pid {holder}); stop it first or set a different [watcher] data_dir "
                "(WATCHER_DATA_DIR, for replicas sharing one config)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
