"""Which files of a model are fetched: glob allow and deny lists, size caps per file and model.

A pattern with a `/` matches the whole repo path, one without matches the file name in any
folder (`*.json` matches `config.json` and `onnx/config.json`); matching is fnmatch's,
case-sensitive. Deny wins over allow. Files are taken in the record's order; a file whose
size would pass the per-model cap is skipped and later, smaller files may still fit.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from hfspider.files.config import FilesConfig


def matches(path: str, pattern: str) -> bool:
    target = path if "/" in pattern else path.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(target, pattern)


@dataclass(frozen=True)
class Selection:
    allow: tuple[str, ...]
    deny: tuple[str, ...] = ()
    max_file_size: int = 0  # 0: no limit
    max_model_size: int = 0

    @classmethod
    def from_config(cls, config: FilesConfig) -> Selection:
        return cls(config.allow, config.deny, config.max_file_size, config.max_model_size)

    def skip_reason(self, path: str, size: int | None, used: int) -> str | None:
        """Why the file is not fetched, or None to fetch it. `used`: bytes of this model
        already selected. An unknown size passes (the download refuses such a file: without
        the Hub's size and hash there is nothing to verify it against)."""
        denied = next((p for p in self.deny if matches(path, p)), None)
        if denied is not None:
            return f"denied by FILES_DENY pattern {denied!r}"
        if not any(matches(path, p) for p in self.allow):
            return "not selected by FILES_ALLOW"
        if size is not None:
            return self._size_reason(size, used)
        return None

    def _size_reason(self, size: int, used: int) -> str | None:
        if self.max_file_size and size > self.max_file_size:
            return f"{size} bytes, over FILES_MAX_FILE_SIZE ({self.max_file_size})"
        if self.max_model_size and used + size > self.max_model_size:
            return (
                f"{size} bytes would pass FILES_MAX_MODEL_SIZE ({self.max_model_size}; "
                f"{used} already selected)"
            )
        return None
