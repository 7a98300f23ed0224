"""The one exception base of Custody, and the errors that are not a store's.

Exceptions mean "could not do the job". Problems found in evidence are findings
(`schemas.media.Finding`), never exceptions. Adapters translate library errors at their
boundary into these, naming the file or object and the problem in one line.
"""

from __future__ import annotations


class CustodyError(Exception):
    """Base of every error Custody raises on purpose; the CLI prints it in one line."""


class InputError(CustodyError):
    """The user's input (a file, a labels file, an argument) cannot be used."""


class CatalogError(CustodyError):
    """The catalog cannot be read or committed."""
