"""``chimein serve``: one process holds a policy and serves many audio streams at once.

Clients connect over WebSocket (binary frames of :mod:`chimein.agents.protocol`); each
connection may carry any number of streams. Chunks from all streams are queued and a batcher
steps them together: it takes the first waiting chunk, waits at most ``max_wait_ms`` for more
(up to ``max_batch``), and runs one forward pass over that subset of streams
(:mod:`chimein.agents.lm.slots`) in a worker thread, so the network keeps flowing meanwhile.
A stream has at most one chunk in a batch; later chunks of it go to the next batch, in order.

Back-pressure: at most ``max_queue`` chunks wait in total and ``max_pending`` per stream;
beyond that the chunk is answered BUSY (and dropped) instead of growing memory. A connection
that drops frees its streams; a malformed frame gets an ERROR reply on its own stream only.
SIGINT/SIGTERM stop accepting, answer what is queued, and close connections cleanly.

How it relates to :class:`~chimein.agents.ray_actor.RayPolicyActor`: the Ray actor steps one
lockstep batch per call inside a Ray job; this server is for independent clients (many
processes, live audio) that step whenever their chunk arrives.

Examples
--------
>>> import asyncio
>>> server = PolicyServer("energy-endpoint", port=0, max_streams=8)   # doctest: +SKIP
>>> asyncio.run(server.serve_forever())                               # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import chimein.agents.protocol as P
from chimein.agents.lm.slots import SlotPool, make_slots
from chimein.errors import ChimeinError, ConfigError, RemoteError

__all__ = ["PolicyServer", "ServerConfig", "ServerThread"]

REMOTE_PREFIX = "remote://"
_log = logging.getLogger(__name__)
#: Most microphones per stream (bounds the frame size the server accepts).
MAX_MICS = 64


@dataclass
class ServerConfig:
    """Settings of :class:`PolicyServer` (the ``chimein serve`` keys)."""

    host: str = "127.0.0.1"
    """Address to listen on; the loopback default keeps the server off the network."""
    port: int = 8765
    """TCP port (0: any free port; the server's ``port`` attribute then holds the one bound)."""
    device: str = "cpu"
    """Torch device of a checkpoint policy: ``cpu``, ``cuda`` or ``cuda:N``."""
    chunk_ms: float | None = None
    """Chunk length in milliseconds every stream must send; None: the checkpoint's chunk
    (80 ms for baselines)."""
    sample_rate: int = 16000
    """Sample rate in Hz every stream must send."""
    max_streams: int = 1024
    """Stream slots open at once (sizes the KV cache of a checkpoint)."""
    max_batch: int = 512
    """Most chunks stepped in one forward pass."""
    max_wait_ms: float = 2.0
    """How long, in milliseconds, the batcher waits for more chunks after the first: a longer
    wait fills larger batches (throughput) and delays the first chunk's answer (latency)."""
    max_queue: int = 4096
    """Chunks waiting in total; beyond it a chunk is answered BUSY."""
    max_pending: int = 4
    """Chunks waiting per stream; beyond it a chunk is answered BUSY."""
    threads: int | None = None
    """Torch CPU threads (None: torch's default; 1 is steadiest on a busy CPU)."""
    policy_args: dict[str, Any] = field(default_factory=dict)
    """Policy constructor arguments (e.g. ``dtype="bfloat16"``, ``act_threshold=0.5``)."""


@dataclass
class _Stream:
    slot: int
    conn: Any
    pending: int = 0
    closed: bool = False


@dataclass
class _Item:
    stream: _Stream
    sid: int
    seq: int
    kind: int  # CHUNK or RESET
    audio: np.ndarray | None
    speaking: bool
    t_in: float


class _Stats:
    def __init__(self) -> None:
        self.batch_hist: collections.Counter[int] = collections.Counter()
        self.lat_ms: collections.deque[float] = collections.deque(maxlen=10000)
        self.chunks = self.busy = self.errors = 0

    def percentiles(self) -> dict[str, float | None]:
        if not self.lat_ms:
            return {"p50": None, "p99": None}
        a = np.asarray(self.lat_ms)
        return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99))}


class PolicyServer:
    """The policy server (see the module docstring).

    Parameters
    ----------
    policy
        A policy name (``energy-endpoint``), a checkpoint directory (safetensors only), or a
        built :class:`~chimein.agents.lm.slots.SlotPool`.
    config
        :class:`ServerConfig`; keyword arguments override its fields.
    """

    def __init__(self, policy: str | SlotPool, config: ServerConfig | None = None,
                 **overrides: Any) -> None:
        cfg = config or ServerConfig()
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise ConfigError(f"serve: unknown setting {k!r}; use one of {sorted(vars(cfg))}")
            setattr(cfg, k, v)
        for name in ("max_streams", "max_batch", "max_queue", "max_pending"):
            if int(getattr(cfg, name)) < 1:
                raise ConfigError(f"serve: field {name!r}: must be >= 1, got {getattr(cfg, name)}")
        if not 0 <= float(cfg.max_wait_ms) <= 1000:
            raise ConfigError(f"serve: field 'max_wait_ms': in [0, 1000], got {cfg.max_wait_ms}")
        self.config = cfg
        if cfg.threads is not None:
            import torch

            if int(cfg.threads) < 1:
                raise ConfigError(f"serve: field 'threads': must be >= 1, got {cfg.threads}")
            torch.set_num_threads(int(cfg.threads))
        if isinstance(policy, SlotPool):
            self.slots = policy
        else:
            kw = dict(cfg.policy_args)
            from chimein.agents.registry import looks_like_path

            if looks_like_path(str(policy)):
                kw.setdefault("device", cfg.device)
            self.slots = make_slots(str(policy), cfg.max_streams,
                                    None if cfg.chunk_ms is None else cfg.chunk_ms / 1000.0,
                                    cfg.sample_rate, **kw)
        self.policy_name = str(policy) if isinstance(policy, str) else type(policy).__name__
        self.chunk_samples = int(round(self.slots.chunk_s * self.slots.sample_rate))
        self.queue: collections.deque[_Item] = collections.deque()
        self.carry: collections.deque[_Item] = collections.deque()
        self.stats = _Stats()
        self.streams_open = 0
        self.port: int = int(cfg.port)
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None
        self._conns: set[Any] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False  # a batch is in the worker thread
        self._to_free: list[int] = []  # slots of streams closed while it ran
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="chimein-policy")

    # ---------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """Streams open, queue depth, batch-size histogram, server latency percentiles (ms)."""
        return {
            "protocol": P.PROTOCOL_VERSION, "policy": self.policy_name,
            "chunk_ms": self.slots.chunk_s * 1000, "sample_rate": self.slots.sample_rate,
            "streams_open": self.streams_open, "connections": len(self._conns),
            "queue_depth": len(self.queue) + len(self.carry),
            "batch_hist": {str(k): v for k, v in sorted(self.stats.batch_hist.items())},
            "chunks": self.stats.chunks, "busy": self.stats.busy, "errors": self.stats.errors,
            "latency_ms": self.stats.percentiles(),
        }

    # ---------------------------------------------------------------- connections
    async def _handle(self, ws: Any) -> None:
        streams: dict[int, _Stream] = {}
        self._conns.add(ws)
        try:
            async for frame in ws:
                reply = self._on_frame(ws, streams, frame)
                if isinstance(reply, P.Header):  # a valid OPEN: allocate in the worker thread,
                    reply = await self._open(ws, streams, reply)  # never beside a batch
                if reply is not None:
                    await ws.send(reply)
        except Exception as e:  # noqa: BLE001 - a dropped connection must not stop the server
            from websockets.exceptions import ConnectionClosed

            if not isinstance(e, ConnectionClosed):
                _log.exception("serve: connection handler failed")
        finally:
            self._conns.discard(ws)
            for st in streams.values():
                self._close_stream(st)

    def _close_stream(self, st: _Stream) -> None:
        if not st.closed:
            st.closed = True
            self.streams_open -= 1
            if self._running:  # the worker may be stepping this slot: free it after the batch
                self._to_free.append(st.slot)
            else:
                self.slots.free(st.slot)

    def _on_frame(self, ws: Any, streams: dict[int, _Stream],
                  frame: Any) -> bytes | P.Header | None:
        """Answer one frame; a valid OPEN returns its header (see :meth:`_open`)."""
        try:
            h = P.decode_header(frame)
            st = streams.get(h.stream)
            if h.type == P.MsgType.CHUNK:
                if st is None:
                    raise P.ProtocolError(P.ErrorCode.UNKNOWN_STREAM,
                                          f"stream {h.stream} is not open; send OPEN first",
                                          h.stream, h.seq)
                audio = P.decode_audio(h, frame)
                if h.samples != self.chunk_samples:
                    raise P.ProtocolError(P.ErrorCode.FORMAT, f"chunk of {h.samples} samples; the "
                                          f"server expects {self.chunk_samples}", h.stream, h.seq)
                return self._enqueue(_Item(st, h.stream, h.seq, P.MsgType.CHUNK, audio,
                                           bool(h.flags & P.FLAG_SPEAKING), time.perf_counter()))
            if h.type == P.MsgType.OPEN:
                chunk_ms, sr, mics = P.decode_open(h, frame)
                if st is not None:
                    raise P.ProtocolError(P.ErrorCode.STREAM_EXISTS,
                                          f"stream {h.stream} is already open", h.stream, h.seq)
                want = self.slots.chunk_s * 1000
                if abs(chunk_ms - want) > 1e-3 or sr != self.slots.sample_rate or \
                        not 1 <= mics <= MAX_MICS:
                    raise P.ProtocolError(P.ErrorCode.FORMAT, f"stream format {chunk_ms:g} ms at "
                                          f"{sr} Hz x {mics} mics; the server serves {want:g} ms "
                                          f"chunks at {self.slots.sample_rate} Hz, 1..{MAX_MICS} "
                                          "mics", h.stream, h.seq)
                if self._stop is not None and self._stop.is_set():
                    raise P.ProtocolError(P.ErrorCode.SHUTDOWN, "server is shutting down",
                                          h.stream, h.seq)
                return h
            if h.type == P.MsgType.RESET:
                if st is None:
                    raise P.ProtocolError(P.ErrorCode.UNKNOWN_STREAM,
                                          f"stream {h.stream} is not open", h.stream, h.seq)
                return self._enqueue(_Item(st, h.stream, h.seq, P.MsgType.RESET, None, False,
                                           time.perf_counter()))
            if h.type == P.MsgType.CLOSE:
                if st is None:
                    raise P.ProtocolError(P.ErrorCode.UNKNOWN_STREAM,
                                          f"stream {h.stream} is not open", h.stream, h.seq)
                self._close_stream(streams.pop(h.stream))
                return P.encode(P.MsgType.OK, h.stream, h.seq)
            if h.type == P.MsgType.STATUS:
                return P.encode_json(P.MsgType.STATUS_REPLY, self.status(), h.stream, h.seq)
            raise P.ProtocolError(P.ErrorCode.MALFORMED, f"unknown message type {h.type}",
                                  h.stream, h.seq)
        except P.ProtocolError as e:
            self.stats.errors += 1
            return P.encode_error(e.code, str(e), e.stream, e.seq)

    async def _open(self, ws: Any, streams: dict[int, _Stream], h: P.Header) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            slot = await loop.run_in_executor(self._pool, self.slots.alloc)
        except ChimeinError as e:
            self.stats.errors += 1
            return P.encode_error(P.ErrorCode.CAPACITY, str(e), h.stream, h.seq)
        streams[h.stream] = _Stream(slot, ws)
        self.streams_open += 1
        return P.encode(P.MsgType.OPENED, h.stream, h.seq)

    def _enqueue(self, item: _Item) -> bytes | None:
        st = item.stream
        if self._stop is not None and self._stop.is_set():
            return P.encode_error(P.ErrorCode.SHUTDOWN, "server is shutting down", item.sid,
                                  item.seq)
        if len(self.queue) + len(self.carry) >= self.config.max_queue or \
                st.pending >= self.config.max_pending:
            self.stats.busy += 1
            return P.encode(P.MsgType.BUSY, item.sid, item.seq,
                            b"server overloaded: chunk dropped, stream state unchanged; resend")
        st.pending += 1
        self.queue.append(item)
        assert self._wake is not None
        self._wake.set()
        return None

    # ---------------------------------------------------------------- batching
    def _take_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        seen: set[int] = set()
        deferred: collections.deque[_Item] = collections.deque()
        cap = self.config.max_batch
        for src in (self.carry, self.queue):
            while src and len(batch) < cap:
                it = src.popleft()
                if it.stream.closed:
                    continue
                if id(it.stream) in seen:
                    deferred.append(it)
                else:
                    seen.add(id(it.stream))
                    batch.append(it)
        deferred.extend(self.carry)
        self.carry = deferred
        return batch

    def _run_batch(self, batch: list[_Item]) -> tuple[np.ndarray, np.ndarray, float]:
        t0 = time.perf_counter()
        for it in batch:
            if it.kind == P.MsgType.RESET:
                self.slots.reset(it.stream.slot)
        chunks = [it for it in batch if it.kind == P.MsgType.CHUNK]
        if not chunks:
            return np.zeros(0, np.int64), np.zeros((0, 3), np.float32), 0.0
        mics = min(it.audio.shape[1] for it in chunks if it.audio is not None)
        audio = np.stack([it.audio[:, :mics] for it in chunks if it.audio is not None])
        slots = np.array([it.stream.slot for it in chunks], np.int64)
        speaking = np.array([it.speaking for it in chunks], np.int64)
        actions, probs = self.slots.act(slots, audio, speaking)
        return actions, probs, (time.perf_counter() - t0) * 1000

    async def _batcher(self) -> None:
        assert self._wake is not None and self._stop is not None
        loop = asyncio.get_running_loop()
        wait_s = self.config.max_wait_ms / 1000
        while True:
            if not self.queue and not self.carry:
                if self._stop.is_set():
                    return
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.1)
                continue
            if wait_s > 0 and len(self.queue) + len(self.carry) < self.config.max_batch:
                await asyncio.sleep(wait_s)
            batch = self._take_batch()
            if not batch:
                continue
            for it in batch:
                it.stream.pending -= 1
            self._running = True
            try:
                actions, probs, model_ms = await loop.run_in_executor(
                    self._pool, self._run_batch, batch)
            except Exception as e:  # noqa: BLE001 - answer the batch, keep serving
                for it in batch:
                    await self._send(it, P.encode_error(P.ErrorCode.INTERNAL,
                                                        f"policy failed: {e}", it.sid, it.seq))
                continue
            finally:
                self._running = False
                while self._to_free:
                    self.slots.free(self._to_free.pop())
            now = time.perf_counter()
            chunks = [it for it in batch if it.kind == P.MsgType.CHUNK]
            if chunks:
                self.stats.batch_hist[len(chunks)] += 1
                self.stats.chunks += len(chunks)
            for j, it in enumerate(chunks):
                queue_ms = (now - it.t_in) * 1000 - model_ms
                self.stats.lat_ms.append((now - it.t_in) * 1000)
                await self._send(it, P.encode_action(it.sid, it.seq, int(actions[j]), probs[j],
                                                     queue_ms, model_ms))
            for it in batch:
                if it.kind == P.MsgType.RESET:
                    await self._send(it, P.encode(P.MsgType.OK, it.sid, it.seq))

    async def _send(self, it: _Item, frame: bytes) -> None:
        if it.stream.closed:
            return
        with contextlib.suppress(Exception):  # the client went away: its streams are freed
            await it.stream.conn.send(frame)

    # ---------------------------------------------------------------- lifecycle
    async def serve_forever(self, install_signals: bool = True) -> None:
        """Serve until :meth:`stop` (or SIGINT/SIGTERM when ``install_signals``)."""
        from websockets.asyncio.server import serve as ws_serve

        self._wake, self._stop, self._ready = asyncio.Event(), asyncio.Event(), asyncio.Event()
        loop = self._loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._stop.set)
        batcher = asyncio.create_task(self._batcher())
        # the largest frame a valid message needs: a chunk of up to MAX_MICS channels
        max_size = P.HEADER.size + 4 * self.chunk_samples * MAX_MICS
        async with ws_serve(self._handle, self.config.host, self.config.port, max_size=max_size,
                            compression=None, max_queue=16) as server:
            self.port = int(server.sockets[0].getsockname()[1])
            self._ready.set()
            await self._stop.wait()
            server.close(close_connections=False)
            await batcher  # answer what is queued
            for ws in list(self._conns):
                with contextlib.suppress(Exception):
                    await ws.close(1001, "server shutting down")
        self._pool.shutdown(wait=True)

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to finish; safe to call from any thread."""
        loop, ev = self._loop, self._stop
        if loop is None or ev is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(ev.set)


class ServerThread:
    """Run a :class:`PolicyServer` on a background thread (tests, benchmarks, notebooks).

    Examples
    --------
    >>> with ServerThread(PolicyServer("always-wait", port=0)) as st:
    ...     st.url.startswith("remote://127.0.0.1:")
    True
    """

    def __init__(self, server: PolicyServer, start_timeout_s: float = 30.0) -> None:
        self.server = server
        self.start_timeout_s = float(start_timeout_s)
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        """``remote://host:port`` of the running server."""
        return f"{REMOTE_PREFIX}{self.server.config.host}:{self.server.port}"

    def _main(self) -> None:
        async def run() -> None:
            task = asyncio.create_task(self.server.serve_forever(install_signals=False))
            while self.server._ready is None or not self.server._ready.is_set():
                if task.done():
                    break
                await asyncio.sleep(0.005)
            self._started.set()
            await task

        try:
            asyncio.run(run())
        except BaseException as e:  # noqa: BLE001 - reported by start()
            self.error = e
        finally:
            self._started.set()

    def start(self) -> ServerThread:
        """Start serving; returns once the port is bound."""
        self._thread = threading.Thread(target=self._main, name="chimein-serve", daemon=True)
        self._thread.start()
        if not self._started.wait(self.start_timeout_s) or self.error is not None:
            raise RemoteError(f"serve: the server did not start: {self.error!r}")
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Graceful shutdown; waits for the thread."""
        self.server.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
