"""Errors shared by the config modules (no imports from the rest of ``controller``).

:class:`ConfigError` lives here so that the models embedded in ``controller/config.py``
(``controller.tracking.config``, ``controller.daemon_config``) can raise it without
importing ``controller.config`` back; ``controller.config`` re-exports it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration that cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, list[str]]]:
        # Exceptions are pickled from their args; ours has two, so a process pool
        # (bench/tracking.py) could not send one back to the parent without this.
        return (ConfigError, (self.source, self.problems))
