"""Where environments live: the interface every secrets backend implements.

A backend keeps ESC environment *definitions* (YAML) by name, each with a revision number that
grows on every write, and opens an environment into its evaluated values. The local store
(``store.LocalStore``, the default) keeps each definition in a file of its own with every
``fn::secret`` value encrypted and evaluates offline with ``sophia.secrets.esc``; the Pulumi ESC
backend (``pulumi.PulumiBackend``) keeps them in Pulumi Cloud (or a self-hosted ESC) and lets the
service evaluate.

Secret values are written as ``fn::secret: <plaintext>`` by callers (``put``); a backend stores
them encrypted and ``definition`` returns them as ``fn::secret: {ciphertext: …}``, never plain.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from sophia.errors import SophiaError
from sophia.secrets.esc import Diag

__all__ = ["Backend", "ConflictError", "EnvironmentError_", "NotFoundError", "Opened", "TamperedError"]


class EnvironmentError_(SophiaError):
    """An environment could not be read, written or evaluated; the message names which and why."""


class NotFoundError(EnvironmentError_):
    """No environment of that name."""


class ConflictError(EnvironmentError_):
    """The environment changed since it was read (its revision is not the one the writer expected)."""


class TamperedError(EnvironmentError_):
    """A stored definition, secret or archive failed its integrity check: nothing was decrypted."""


@dataclass
class Opened:
    """An evaluated environment.

    ``values`` is the plain tree with secrets revealed; ``redacted`` the same tree with ``[secret]``
    in place of each secret; ``secrets`` every secret leaf's plaintext (strings, for masking);
    ``environment_variables`` and ``files`` the reserved outputs; ``diags`` ESC's diagnostics
    (evaluation stops at none: a caller that needs a clean environment checks ``diags``).
    """

    name: str
    revision: int
    values: Any
    redacted: Any
    secrets: list[str] = field(default_factory=list)
    environment_variables: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    diags: list[Diag] = field(default_factory=list)


class Backend(ABC):
    """A store of ESC environment definitions."""

    #: a short name for messages: ``local`` or ``pulumi``
    kind: str = "backend"

    @abstractmethod
    def names(self) -> list[str]:
        """Every environment's name, sorted."""

    @abstractmethod
    def revision(self, name: str) -> int:
        """The current revision of ``name`` (NotFoundError when there is none). Cheap: watchers poll it."""

    @abstractmethod
    def definition(self, name: str) -> str:
        """The YAML definition of ``name``, secrets as ciphertext (NotFoundError, TamperedError)."""

    @abstractmethod
    def put(self, name: str, yaml_text: str, *, expected_revision: int | None = None) -> int:
        """Create or replace ``name`` with ``yaml_text``; plaintext ``fn::secret`` values are stored
        encrypted. With ``expected_revision``, ConflictError unless the stored revision is that one
        (0 means "must not exist yet"). Returns the new revision."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove ``name`` (NotFoundError when there is none)."""

    @abstractmethod
    def open(self, name: str, *, rotate: bool | list[str] = False) -> Opened:
        """Evaluate ``name`` with its imports (and, with ``rotate``, run its ``fn::rotate`` rotators
        and store the new states)."""
