"""Per-process scratch state under OUTPUT_DIR/state/: entries named after the process id that
owns them (`<pid>` folders, `<pid>.<suffix>` files), so that two crawls sharing an output
never touch each other's, and what a `kill -9` left behind can be told from what is in use."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def remove_stale(folder: Path) -> None:
    """Delete the entries of `folder` whose process id (the name up to its first dot) is
    gone; other names, this process's and live processes' entries are left alone."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        pid = path.name.split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except PermissionError:
            pass  # alive, another user's
