"""Errors a user can cause, with messages that say where and how to fix them."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a file, a line in it, or a config key.

    The message names the place (file and line, or config key), what was expected, and how
    to fix it, so a user can act on it without reading a traceback.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
        fix: str | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(f"{path}" + (f", line {line}" if line is not None else ""))
        if key is not None:
            where.append(f"config key '{key}'")
        message = (": ".join([" / ".join(where), problem]) if where else problem).rstrip(".")
        if fix:
            message += f". Fix: {fix}"
        super().__init__(message)
        self.path, self.line, self.key, self.fix = path, line, key, fix
