"""A helper process that loads an engine once and forks per request (used by :mod:`.piper`).

Why fork per request
--------------------
Some engines keep state that changes with every synthesis and that no API call resets: the
piper voice draws its VITS noise from onnxruntime's ``RandomNormalLike`` kernels, whose
generator is seeded once when the session is created (``onnxruntime.set_seed``) and then
advances with every call, so the second synthesis of a text differs from the first. To make
every request bit-identical whatever ran before, in any process, a helper interpreter loads
the engine once (the expensive part) and then **never synthesises itself**: for each request
it forks, the child answers from the pristine post-load state and exits. The calling process,
which may run torch threads, never forks; it only starts the helper with :mod:`subprocess`.
This is the pattern of :mod:`.espeak` (which keeps its own copy, so its output stays
bit-identical), made generic: a *worker program* defines ``setup(args) -> dict`` (run once;
its result is sent back as the handshake) and ``handle(request) -> (status, bytes)`` (run in
the forked child), and :data:`SERVER_SRC` supplies the loop.

Protocol (little endian): every message from the helper is ``<iI status, n>`` + ``n`` bytes;
the first is the handshake (status 0 and a JSON object, else an error message). A request is
``<I n>`` + ``n`` bytes of JSON. Status 0 is success; other statuses are the worker's errors
(a UTF-8 message), and :data:`STATUS_DIED` means the forked child died without answering.

The helper's protocol pipe is a duplicate of its original stdout, and its fd 1 is pointed at
stderr, so a library that prints to stdout cannot corrupt the protocol.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import Any

__all__ = ["SERVER_SRC", "STATUS_DIED", "ForkHelper", "HelperError"]

STATUS_DIED = 6
"""Reply status when the forked child died before answering."""

SERVER_SRC = r"""
import json as _json, os as _os, signal as _signal, struct as _struct, sys as _sys

def _serve(setup, handle, timeout_s=120):
    proto = _os.fdopen(_os.dup(1), "wb")
    _os.dup2(2, 1)  # stray prints of the engine go to stderr, never into the protocol
    inp = _sys.stdin.buffer

    def send(status, payload):
        proto.write(_struct.pack("<iI", status, len(payload)) + payload)
        proto.flush()

    try:
        info = setup(_json.loads(_sys.argv[1]))
    except BaseException as e:
        send(1, ("%s: %s" % (type(e).__name__, e)).encode())
        _sys.exit(1)
    send(0, _json.dumps(info, sort_keys=True).encode())
    while True:
        head = inp.read(4)
        if len(head) < 4:
            break
        req = _json.loads(inp.read(_struct.unpack("<I", head)[0]))
        r, w = _os.pipe()
        pid = _os.fork()
        if pid == 0:  # pristine copy: answer once, report, exit
            _os.close(r)
            _signal.alarm(timeout_s)
            try:
                status, payload = handle(req)
            except BaseException as e:
                status, payload = 5, ("%s: %s" % (type(e).__name__, e)).encode()
            data = memoryview(_struct.pack("<iI", status, len(payload)) + payload)
            while data:
                data = data[_os.write(w, data):]
            _os._exit(0)
        _os.close(w)
        chunks = []
        while True:
            c = _os.read(r, 1 << 20)
            if not c:
                break
            chunks.append(c)
        _os.close(r)
        _, wstatus = _os.waitpid(pid, 0)
        data = b"".join(chunks)
        ok = len(data) >= 8 and len(data) == 8 + _struct.unpack("<iI", data[:8])[1]
        if wstatus != 0 or not ok:
            send(__DIED__, ("request process died (wait status %d)" % wstatus).encode())
        else:
            proto.write(data)
            proto.flush()
""".replace("__DIED__", str(STATUS_DIED))


class HelperError(RuntimeError):
    """The helper process failed to start or died (it is restarted on the next request)."""


class _Process:
    """One running helper, owned by the process that started it."""

    def __init__(self, argv: list[str], env: Mapping[str, str] | None, name: str) -> None:
        self.name = name
        self.pid_owner = os.getpid()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=None if env is None else dict(env))
        try:
            status, payload = self.read_reply()
        except HelperError:
            self.close()
            raise
        if status != 0:
            self.close()
            raise HelperError(f"the {name} helper failed to start: "
                              f"{payload.decode(errors='replace')}")
        self.info: dict[str, Any] = json.loads(payload)

    def _read_exact(self, n: int) -> bytes:
        assert self.proc.stdout is not None
        data = self.proc.stdout.read(n)
        if data is None or len(data) != n:
            raise HelperError(f"the {self.name} helper process exited unexpectedly")
        return data

    def read_reply(self) -> tuple[int, bytes]:
        status, n = struct.unpack("<iI", self._read_exact(8))
        return status, self._read_exact(n)

    def request(self, req: Mapping[str, Any]) -> tuple[int, bytes]:
        assert self.proc.stdin is not None
        body = json.dumps(req, sort_keys=True).encode("utf-8")
        try:
            self.proc.stdin.write(struct.pack("<I", len(body)) + body)
            self.proc.stdin.flush()
        except OSError as e:
            raise HelperError(f"the {self.name} helper process is gone ({e})") from None
        return self.read_reply()

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_HELPERS: weakref.WeakSet[ForkHelper] = weakref.WeakSet()
_INHERITED: list[_Process] = []  # helpers of a parent, kept (never used) after a fork


class ForkHelper:
    """A lazily started helper process running ``worker_src`` + :data:`SERVER_SRC`.

    Parameters
    ----------
    name : str
        Engine name for messages.
    worker_src : str
        Python source defining ``setup(args: dict) -> dict`` and
        ``handle(request: dict) -> tuple[int, bytes]``.
    args : dict
        JSON-serialisable arguments passed to ``setup`` (as ``argv[1]``).
    env : Mapping[str, str], optional
        Extra environment variables of the helper (added to this process's environment).
    python_flags : tuple of str
        Interpreter flags; ``("-I",)`` (default) isolates the helper from ``PYTHON*``
        variables and the user's site folder; add ``"-S"`` for a stdlib-only worker.

    Notes
    -----
    One helper per process: the helper is started on the first :meth:`request`, restarted
    (once, at once) if it died, and a forked child of the calling process never uses its
    parent's helper (it starts its own). Requests are serialised by a lock.
    """

    def __init__(self, name: str, worker_src: str, args: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, python_flags: tuple[str, ...] = ("-I",)
                 ) -> None:
        self.name = name
        self.program = worker_src + "\n" + SERVER_SRC + "\n_serve(setup, handle)\n"
        self.args = dict(args or {})
        self.env = dict(env or {})
        self.python_flags = tuple(python_flags)
        self._lock = threading.Lock()
        self._proc: _Process | None = None
        self.starts = 0  # helpers started by this process (restarts included)
        _HELPERS.add(self)

    def _start(self) -> _Process:
        env = {**os.environ, **self.env} if self.env else None
        argv = [sys.executable, *self.python_flags, "-c", self.program,
                json.dumps(self.args, sort_keys=True)]
        self.starts += 1
        return _Process(argv, env, self.name)

    def info(self) -> dict[str, Any]:
        """The handshake the worker's ``setup`` returned (starts the helper if needed)."""
        with self._lock:
            return dict(self._ensure().info)

    def _ensure(self) -> _Process:
        if self._proc is None or self._proc.pid_owner != os.getpid():
            self._proc = self._start()
        return self._proc

    def request(self, req: Mapping[str, Any]) -> tuple[int, bytes]:
        """Send one request; ``(status, payload)`` from a pristine fork of the helper.

        Raises
        ------
        HelperError
            The helper could not be started, or died twice in a row.
        """
        with self._lock:
            for attempt in (0, 1):
                proc = self._ensure()
                try:
                    return proc.request(req)
                except HelperError:
                    self._proc = None  # restart on the next attempt / call
                    with contextlib.suppress(OSError, HelperError):
                        proc.close()
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the helper (if this process started it)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.pid_owner == os.getpid():
            with contextlib.suppress(OSError):
                proc.close()

    def _after_fork_in_child(self) -> None:
        if self._proc is not None:
            _INHERITED.append(self._proc)  # keep its file objects alive: never flushed/closed
        self._proc = None
        self._lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child must not talk to its parent's helpers: it starts its own on first use."""
    for h in list(_HELPERS):
        h._after_fork_in_child()


def _close_at_exit() -> None:
    for h in list(_HELPERS):
        with contextlib.suppress(Exception):
            h.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)
