"""Where a demo run writes: one run at a time per video and output folder, results staged and
swapped in only when complete, and SIGTERM handled like Ctrl-C. Torch-free (used before the heavy
imports).

A run of ``demo/demo.py --video V --output DIR`` holds ``DIR/.<V stem>.lock`` (an exclusive
``flock``, released by the kernel when the process dies, whatever kills it), writes its results
into ``DIR/.<V stem>.partial-<pid>/`` and, once all are written, moves them to their final names,
replacing those of an earlier run. So a second run writing the same results refuses while the first
is running, a run that fails or is stopped leaves nothing behind, and the results of an earlier
run stay untouched until a new run has all of its own.
"""

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence

from ovavss_d2.utils.preflight import InputError

logger = logging.getLogger("ovavss_d2.demo")

__all__ = [
    "RunOutput",
    "Stopped",
    "check_inputs_are_not_outputs",
    "result_paths",
    "sigterm_ignored",
    "stop_on_sigterm",
]

# errnos of file systems without flock (some network or FUSE mounts): run without the lock
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class Stopped(BaseException):
    """The process received SIGTERM (raised by the handler of :func:`stop_on_sigterm`)."""

    exit_code = 128 + signal.SIGTERM


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Stopped` (as Ctrl-C raises KeyboardInterrupt),
    so the same cleanup runs; further SIGTERMs are ignored while it does. Outside the main thread
    (where Python cannot install handlers) nothing changes."""

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup is not interrupted again
        raise Stopped()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sigterm_ignored() -> Iterator[None]:
    """Within the block (moving finished results into place), SIGTERM is ignored."""
    try:
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class RunOutput:
    """The results ``names`` (files or folders) of one run in ``folder``, written under
    :attr:`staging` and moved to ``folder`` by :meth:`commit`.

    Args:
        folder: the output folder (created by :meth:`acquire` if needed).
        stem: the name of the lock and staging entries (the video's stem).
        what: the argument naming ``folder``, for messages.
    """

    def __init__(self, folder: Path, stem: str, what: str = "--output"):
        self.folder, self.stem, self.what = Path(folder), stem, what
        self.lock_path = self.folder / f".{stem}.lock"
        self.staging = self.folder / f".{stem}.partial-{os.getpid()}"
        self._created: List[Path] = []  # folders this run created, innermost first
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        """Create the output folder and take the lock; remove what a killed run left.

        Raises:
            InputError: the folder cannot be created or written, or another run holds the lock.
        """
        missing = []
        probe = self.folder.absolute()
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # e.g. below /proc or /sys
            problem = e.strerror if e.errno != errno.ENOENT else "no new folders can be made there"
            raise InputError(
                f"{self.folder}: {self.what} cannot be created in '{probe}': {problem}"
            ) from None
        self._created = [m for m in missing if m.is_dir()]
        try:
            self._lock()
        except BaseException:
            self._remove_created()
            raise

    def _lock(self) -> None:
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise InputError(
                    f"{self.folder}: {self.what} cannot be written: {e.strerror} "
                    f"(creating '{self.lock_path.name}')"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise InputError(
                    f"{self.folder}: another demo run (pid {holder or '?'}) is writing the "
                    f"results of '{self.stem}' there: wait for it to end, or give another "
                    f"{self.what}"
                ) from None
            except OSError as e:
                if e.errno not in _NO_FLOCK:
                    os.close(fd)
                    raise
                logger.warning(
                    "%s: this file system has no file locks: a second run writing the results "
                    "of '%s' there at the same time would not be refused",
                    self.folder,
                    self.stem,
                )
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder released (and removed) it meanwhile: take the new one
        self._fd = fd
        previous = _read_pid(fd)
        if previous:  # a released lock is removed: this one's run was killed
            logger.warning(
                "%s: taking over the lock of demo run pid %s, which ended without releasing it",
                self.lock_path,
                previous,
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        for stale in self.folder.glob(f".{self.stem}.partial-*"):
            logger.warning("removing %s, the partial results of a run that was killed", stale)
            shutil.rmtree(stale, ignore_errors=True)

    def begin(self) -> Path:
        """The (new, empty) staging folder."""
        self.staging.mkdir(parents=True)
        return self.staging

    def final(self, path: Path) -> Path:
        """Where ``path`` (below :attr:`staging`) ends up."""
        try:
            return self.folder / Path(path).relative_to(self.staging)
        except ValueError:
            return Path(path)

    def commit(self, names: Sequence[str]) -> None:
        """Move the staged ``names`` into the output folder, replacing earlier results of the
        same names (each one restored if its replacement cannot be moved in); the last name is
        moved last (the JSON, which names the others)."""
        old = self.staging / ".replaced"
        old.mkdir()
        for name in names:
            target, kept = self.folder / name, old / name
            had = os.path.lexists(target)
            if had:
                os.rename(target, kept)
            try:
                os.rename(self.staging / name, target)
            except OSError:
                if had:
                    os.rename(kept, target)
                raise

    def write_error(self, error: OSError, writing: Optional[Path] = None) -> str:
        """One line for an OSError while writing the results (full disk, no permission...),
        naming the final name of the file (``writing`` when the error names none)."""
        name = self.final(Path(error.filename)) if error.filename else writing
        problem = error.strerror or str(error)
        if error.errno == errno.ENOSPC:
            problem += ": free some space and run again"
        return f"{name or self.folder}: {problem} (this run's results were removed)"

    def discard(self) -> None:
        """Remove the staging folder, release the lock and remove the folders this run created
        if they are empty. Safe to call more than once."""
        if self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
        self.release()
        self._remove_created()

    def release(self) -> None:
        """Remove the staging folder's leftovers (replaced results) and release the lock."""
        if self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock_path)  # while still locked: a waiting run then retries
        os.close(self._fd)
        self._fd = None

    def _remove_created(self) -> None:
        for folder in self._created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def result_paths(folder: Path, stem: str) -> Dict[str, Path]:
    """What a demo run of the video ``<stem>`` writes into ``folder``, by description."""
    return {
        "the overlay video": folder / f"{stem}_overlay.mp4",
        "the label folder": folder / f"{stem}_labels",
        "the detections JSON": folder / f"{stem}.json",
    }


def check_inputs_are_not_outputs(
    inputs: Mapping[str, Optional[str]], outputs: Mapping[str, Path]
) -> None:
    """Refuse an input (flag -> path) that is, or lies inside, one of the run's ``outputs``: the
    run would overwrite it while reading it.

    Raises:
        InputError: naming the input, its flag and the output.
    """
    for flag, path in inputs.items():
        if not path:
            continue
        real = os.path.realpath(path)
        for what, target in outputs.items():
            target = os.path.realpath(target)
            if real == target or real.startswith(target + os.sep):
                raise InputError(
                    f"{path}: {flag} is {what} this run writes ('{target}'): it would be "
                    "overwritten while it is read; copy it elsewhere or give another --output"
                )
