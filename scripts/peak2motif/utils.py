"""Small helpers shared by the library and the rule adapters."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def setup_logging(log_path: str | os.PathLike | None, level: int = logging.INFO) -> None:
    """Send log records to ``log_path`` (the rule's log) and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A crash or an exception leaves no half-written file that a rerun could trust. The file
    gets the mode a plain ``open(path, "w")`` would give it (``0o666`` less the umask, and
    the folder's default ACL): the temporary file is created by ``os.open`` with mode
    ``0o666``, so the kernel applies the umask itself. ``tempfile.mkstemp`` would make it
    0600, unreadable to the rest of a lab on a shared cluster; and reading the umask with
    ``os.umask`` means setting it, which races with other threads.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp_path = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp_path, flags, 0o666))
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name beside {path}")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


USER_ERRORS = ("InputError", "CheckFailed", "TrainingError")


@contextlib.contextmanager
def run_rule(smk) -> Iterator:
    """Run a rule adapter: log to the rule's log, and report every error there.

    An error the user can fix (bad input, a failed contribution check, a training that
    cannot go on) is written as its one-paragraph message, to the log and to stderr, without
    a traceback, and the job exits 1. Any other exception goes into the log with its full
    traceback before it propagates, so ``logs/NAME/RULE.log`` always says why a job failed.
    """
    import sys
    import traceback

    setup_logging(smk.log[0] if smk.log else None)
    log = logging.getLogger("peak2motif")
    try:
        yield smk
    except Exception as err:  # every failure must reach the rule's log
        if type(err).__name__ in USER_ERRORS:
            log.error("%s", err)
            sys.stderr.flush()
            raise SystemExit(1) from None
        log.error("unexpected error:\n%s", traceback.format_exc())
        raise
