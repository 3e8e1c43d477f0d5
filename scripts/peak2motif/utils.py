"""Small helpers shared by the library and the rule adapters."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
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

    A crash or an exception leaves no half-written file that a rerun could trust.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
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
