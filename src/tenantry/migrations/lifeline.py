"""Helper processes that die with their parent: a killed parent leaves no helper behind.

A helper started by :mod:`multiprocessing` (any start method, any platform) holds a sentinel
of its parent: the read end of a pipe only the parent writes to (EOF once the parent is gone),
or on Windows a handle to the parent process. :func:`exit_with_parent` waits on it from a daemon
thread and ends the helper with :func:`os._exit` the moment the parent dies, however it died
(SIGKILL included). The operating system then closes the helper's sockets, so PostgreSQL rolls
back its open transactions and ends its sessions. (Linux's ``PR_SET_PDEATHSIG`` is not used: it
fires when the *thread* that started the helper ends, and exists on Linux only.)
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from multiprocessing.process import BaseProcess

log = logging.getLogger("tenantry.fleet")

#: Exit status of a helper that ended because its parent died.
ORPHANED = 70


def exit_with_parent() -> bool:
    """In a :mod:`multiprocessing` child: exit at once when the parent process dies.

    Returns whether a watch started (``False`` in a process multiprocessing did not start).
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return False
    watch = threading.Thread(target=_wait_then_exit, args=(parent,), daemon=True,
                             name="tenantry-parent-watch")
    watch.start()
    return True


def _wait_then_exit(parent: BaseProcess) -> None:
    parent.join()  # the parent's sentinel: returns once the parent is gone
    log.warning("parent process %s died: helper %s exits", parent.pid, os.getpid())
    os._exit(ORPHANED)
