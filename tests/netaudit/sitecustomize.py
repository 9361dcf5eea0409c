"""Loaded by a Python process of the tests (not the app) whose PYTHONPATH starts with this folder and
whose environment names DLCORE_NET_AUDIT: records every network look-up and connection the process
(and every Python process it starts, which inherits both) asks for, through CPython's audit events
(PEP 578), and refuses any that is not for this machine, so nothing leaves while a test watches.

Each line of the file DLCORE_NET_AUDIT is JSON: {"pid", "event", "target", "allowed"}; the first
line a process writes is its "start" (its command line as the target).
"""

from __future__ import annotations

import json
import os
import sys

_LOG = os.environ.get("DLCORE_NET_AUDIT")
_LOCAL_NAMES = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0", "::", b"localhost", b"127.0.0.1"}


def _local(host: object) -> bool:
    if host in _LOCAL_NAMES:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    return text.startswith(("127.", "::ffff:127.")) or text in ("::1", "localhost")


def _hook(event: str, args: tuple) -> None:
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
        host = args[0]
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if not isinstance(address, tuple):  # a Unix socket path, or sendmsg on a connected socket
            return
        host = address[0]
    else:
        return
    allowed = _local(host)
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"pid": os.getpid(), "event": event, "target": repr(host), "allowed": allowed}) + "\n")
    if not allowed:
        raise PermissionError(f"outbound network call to {host!r} refused by the test's audit hook")


if _LOG:
    with open(_LOG, "a", encoding="utf-8") as _fh:  # which processes were watched
        _fh.write(json.dumps({"pid": os.getpid(), "event": "start", "target": " ".join(sys.argv[:3]),
                              "allowed": True}) + "\n")
    sys.addaudithook(_hook)
