"""Where generated files live. ``LocalFiles`` is a directory; keys are relative POSIX paths."""

from dreamreel.files.local import LocalFiles, valid_key

__all__ = ["LocalFiles", "valid_key"]
