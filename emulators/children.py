"""Child processes of the local stack die with their parent, even when it is SIGKILLed and cannot stop
them: nothing is left behind (the developers' guide: never leave processes behind)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


# For subprocess.Popen(preexec_fn=...): Linux only; elsewhere the parent's stop() is all there is.
DIE_WITH_PARENT: Callable[[], None] | None = _die_with_parent if sys.platform == "linux" else None
