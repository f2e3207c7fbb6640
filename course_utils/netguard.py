"""A network guard: refuse every connection that is not to loopback.

The course must run offline (no weights or data sets downloaded at run time). Two users install
this guard in every Python process they start, through a ``sitecustomize`` on ``PYTHONPATH``:

* the test run (``tests/netguard``): the pytest process, Jupyter kernels (nbval, the book build);
* the instructor's grader (``course_utils.grade``): each student notebook's kernel and checks.

Kernels still talk to their client over loopback, which stays allowed. It is a guard against
accidents (a download the course forgot), not a wall: code that wants the network can undo a
patch made in its own process. The OS-level block (a network namespace, ``unshare -n``) is the wall
where the OS allows it. This file uses only the standard library, so that a ``sitecustomize``
can load it by path without importing the course package (and torch).
"""
from __future__ import annotations

import ipaddress
import socket

ENV_FLAG = "COURSE_NETGUARD"


class NetworkBlocked(ConnectionRefusedError):
    """A connection to a non-loopback address was attempted while the guard was on."""


def _is_local(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like
        return True
    host = address[0]
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a host name: resolve it without touching the network beyond DNS
        return False


def install() -> None:
    """Patch ``socket.socket.connect`` (and ``connect_ex``) to refuse non-loopback addresses."""
    if getattr(socket.socket, "_course_guarded", False):
        return
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
            raise NetworkBlocked(
                f"network access to {address!r} is blocked: the course runs offline "
                "(no downloads at run time; see DESIGN.md, 'Data')."
            )
        return original_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
            raise NetworkBlocked(f"network access to {address!r} is blocked: the course runs offline.")
        return original_connect_ex(self, address)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket._course_guarded = True
