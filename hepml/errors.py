"""User-facing errors: the CLI prints them as one line, without a traceback."""

from __future__ import annotations


class HepmlError(Exception):
    """A mistake in the user's input (config, file, argument), reported as one line.

    The message must name the file, key or value at fault.
    """
