"""One way to replace a file: readers see the old content or the new, never half of either.

The gate's baseline and run file and the postmortem are rewritten in place while CI jobs, editors
or a second querywatch may read them; a crash or a full disk mid-write must not leave a torn file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(target: Path, text: str, *, make_parents: bool = False) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to a temporary file beside ``target``, then
    rename it over ``target``, keeping the file's permissions if it exists.

    Raises OSError: callers turn it into their own error naming what could not be written.
    """
    folder = target.parent
    if make_parents:
        folder.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
