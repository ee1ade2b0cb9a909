"""Writing a host file the way `Machine.copy_from` promises: whole or not at all, its mode kept.

The new content goes to a file beside the destination, created exclusively under a random name,
which replaces the destination once it is whole; on any error the destination is left as it
was. A symlink's target is what gets replaced. A destination that is not a regular file (a
device such as /dev/null, a FIFO) is written through, as is an existing file in a folder where
no new file can be made (there a failed copy can leave it cut short). The replaced file keeps
its permission bits, not its owner or other hard links.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A file to write `path`'s new content to, put in place when the block ends normally.
    OSError for a destination that cannot be written."""
    target = Path(os.path.realpath(path)) if os.path.islink(path) else path
    try:
        before: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        before = None
    if before is not None and not stat.S_ISREG(before.st_mode):
        with open(target, "wb") as through:  # a device or a FIFO (a folder fails here)
            yield through
        return
    partial = target.parent / f".{target.name or 'copy'}.rustkm-{secrets.token_hex(6)}"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except PermissionError:
        if before is None:
            raise
        with open(target, "wb") as in_place:  # no new file can be made beside it
            yield in_place
        return
    try:
        with os.fdopen(fd, "wb") as sink:
            if before is not None:
                os.fchmod(sink.fileno(), stat.S_IMODE(before.st_mode))
            yield sink
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
