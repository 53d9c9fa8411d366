"""Where generated files live. ``LocalStorage`` is a directory; keys are relative POSIX paths."""

from dreamreel.storage.local import LocalStorage, valid_key

__all__ = ["LocalStorage", "valid_key"]
