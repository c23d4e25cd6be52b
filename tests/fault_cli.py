"""``hepml`` in a process that SIGKILLs itself just before its first output is renamed into place.

::

    python fault_cli.py VERB ARGS...

The temporary file is complete but never renamed: what a kill at the worst
moment of a write leaves behind.
"""

from __future__ import annotations

import os
import signal
import sys


def _killed(*_args: object, **_kwargs: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    from hepml import cli

    os.replace = _killed  # type: ignore[assignment]
    sys.exit(cli.main(sys.argv[1:]))
