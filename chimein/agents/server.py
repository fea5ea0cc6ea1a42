"""``chimein serve``: one process holds a policy and serves many audio streams at once.

Clients connect over WebSocket (binary frames of :mod:`chimein.agents.protocol`); each
connection may carry any number of streams. Chunks from all streams are queued and a batcher
steps them together: it takes the first waiting chunk, waits at most ``max_wait_ms`` for more
(up to ``max_batch``), and runs one forward pass over that subset of streams
(:mod:`chimein.agents.lm.slots`) in a worker thread, so the network keeps flowing meanwhile.
A stream has at most one chunk in a batch; later chunks of it go to the next batch, in order.

Back-pressure: at most ``max_queue`` chunks wait in total and ``max_pending`` per stream;
beyond that the chunk is answered BUSY (and dropped) instead of growing memory. One connection
holds at most ``max_conn_streams`` streams. A connection that drops frees its streams; a
malformed frame gets an ERROR reply on its own stream only.

Replies never wait on a client: each connection has its own outbox (a queue of at most
``outbox_size`` frames) drained by its own sender task, so the batcher only appends to it. A
client that stops reading fills its outbox; the server then drops that connection (WebSocket
code 1008 with the reason, its streams freed) and every other stream goes on unaffected. A
connection whose socket has taken nothing for ``send_timeout_s`` is dropped the same way.
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
import math
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import chimein.agents.protocol as P
from chimein.agents.lm.slots import SlotPool, make_slots
from chimein.envs.core import CHUNK_MS_RANGE
from chimein.errors import ChimeinError, ConfigError, RemoteError

__all__ = ["PolicyServer", "ServerConfig", "ServerThread"]

REMOTE_PREFIX = "remote://"
_log = logging.getLogger(__name__)
#: Most microphones per stream (bounds the frame size the server accepts).
MAX_MICS = 64
#: WebSocket close code of a connection dropped because it does not read its replies.
CLOSE_SLOW_READER = 1008
#: Seconds a dropped or shut-down connection gets to finish the close handshake before its
#: transport is aborted (a client that reads nothing never answers the close frame).
CLOSE_TIMEOUT_S = 2.0
#: Replies a connection's handler queues before it lets the sender run: frames that arrive
#: together are read without yielding, so a pipelining client's replies would otherwise pile
#: up in its outbox although it reads them.
HANDLER_BURST = 32


def chunk_ms_problem(chunk_ms: Any, sample_rate: int | None = None) -> str | None:
    """Why ``chunk_ms`` is not a valid stream chunk (None when it is): a finite number in the
    env's range (:data:`chimein.envs.core.CHUNK_MS_RANGE`) and, given ``sample_rate``, a whole
    number of samples."""
    lo, hi = CHUNK_MS_RANGE
    if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, (int, float, np.number)) or \
            not math.isfinite(chunk_ms):
        return f"expected a number of milliseconds in [{lo:g}, {hi:g}], got {chunk_ms!r}"
    if not lo <= chunk_ms <= hi:
        return f"must be in [{lo:g}, {hi:g}] ms (the env's range), got {chunk_ms:g}"
    if sample_rate is None:
        return None
    samples = float(chunk_ms) * int(sample_rate) / 1000.0
    if abs(samples - round(samples)) > 1e-3:
        return (f"{chunk_ms:g} ms is {samples:g} samples at {sample_rate} Hz; choose a chunk that "
                "is a whole number of samples")
    return None


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
    """Chunk length in milliseconds every stream must send, within the env's range
    (:data:`chimein.envs.core.CHUNK_MS_RANGE`) and a whole number of samples; None: the
    checkpoint's chunk (80 ms for baselines)."""
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
    max_conn_streams: int = 256
    """Streams one connection may hold open; an OPEN beyond it is refused (ERROR CAPACITY) and
    the connection stays usable. Keeps one client from taking every slot."""
    outbox_size: int = 4096
    """Reply frames queued per connection while its client does not read them; a connection
    whose outbox is full is dropped (close code 1008) so that it delays nobody else. At least
    ``max_conn_streams x max_pending + 32`` (what a connection may be owed at once must fit)."""
    send_timeout_s: float = 30.0
    """Seconds one reply may wait on a client's socket; a connection that has taken nothing for
    this long is dropped (close code 1008) even when its outbox is not full, so a client that
    stopped reading and sending does not hold its streams forever."""
    threads: int | None = None
    """Torch CPU threads (None: torch's default; 1 is steadiest on a busy CPU)."""
    policy_args: dict[str, Any] = field(default_factory=dict)
    """Policy constructor arguments (e.g. ``dtype="bfloat16"``, ``act_threshold=0.5``)."""


class _Conn:
    """One client connection: its streams and its outbox of reply frames (None: close)."""

    def __init__(self, ws: Any, outbox_size: int) -> None:
        self.ws = ws
        self.streams: dict[int, _Stream] = {}
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue(outbox_size)
        self.sender: asyncio.Task[None] | None = None
        self.dropped = False
        self.sending_since: float | None = None  # loop time the current send began


@dataclass
class _Stream:
    slot: int
    conn: _Conn
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
        self.chunks = self.busy = self.errors = self.dropped = 0

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
        for name in ("max_streams", "max_batch", "max_queue", "max_pending", "max_conn_streams",
                     "outbox_size"):
            if int(getattr(cfg, name)) < 1:
                raise ConfigError(f"serve: field {name!r}: must be >= 1, got {getattr(cfg, name)}")
        burst = min(int(cfg.max_conn_streams), int(cfg.max_streams)) * int(cfg.max_pending)
        if int(cfg.outbox_size) < burst + HANDLER_BURST:
            raise ConfigError(f"serve: field 'outbox_size': must be >= max_conn_streams x "
                              f"max_pending + {HANDLER_BURST} = {burst + HANDLER_BURST} (the "
                              "replies a connection may be owed at once), got "
                              f"{cfg.outbox_size}")
        if not float(cfg.send_timeout_s) > 0:
            raise ConfigError(f"serve: field 'send_timeout_s': must be > 0, got "
                              f"{cfg.send_timeout_s}")
        if not 0 <= float(cfg.max_wait_ms) <= 1000:
            raise ConfigError(f"serve: field 'max_wait_ms': in [0, 1000], got {cfg.max_wait_ms}")
        if cfg.chunk_ms is not None and (why := chunk_ms_problem(cfg.chunk_ms, cfg.sample_rate)):
            raise ConfigError(f"serve: field 'chunk_ms': {why}")
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
        why = chunk_ms_problem(self.slots.chunk_s * 1000, self.slots.sample_rate)
        if why:  # a checkpoint's own chunk (chunk_ms=None) is held to the same range
            raise ConfigError(f"serve: the policy's chunk: {why}; set chunk_ms")
        self.chunk_samples = int(round(self.slots.chunk_s * self.slots.sample_rate))
        self.queue: collections.deque[_Item] = collections.deque()
        self.carry: collections.deque[_Item] = collections.deque()
        self.stats = _Stats()
        self.streams_open = 0
        self.port: int = int(cfg.port)
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None
        self._conns: set[_Conn] = set()
        self._closing: set[asyncio.Task[None]] = set()  # closes of dropped connections
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
            "dropped_connections": self.stats.dropped,
            "outbox_max": max((c.outbox.qsize() for c in list(self._conns)), default=0),
            "latency_ms": self.stats.percentiles(),
        }

    # ---------------------------------------------------------------- connections
    async def _handle(self, ws: Any) -> None:
        conn = _Conn(ws, int(self.config.outbox_size))
        conn.sender = asyncio.create_task(self._sender(conn))
        self._conns.add(conn)
        try:
            async for frame in ws:
                if conn.dropped:  # frames still arriving before the close completes
                    continue
                reply = self._on_frame(conn, frame)
                if isinstance(reply, P.Header):  # a valid OPEN: allocate in the worker thread,
                    reply = await self._open(conn, reply)  # never beside a batch
                if reply is not None:
                    self._reply(conn, reply)
                if conn.outbox.qsize() >= HANDLER_BURST:
                    await asyncio.sleep(0)  # let the sender deliver (when its client reads)
        except Exception as e:  # noqa: BLE001 - a dropped connection must not stop the server
            from websockets.exceptions import ConnectionClosed

            if not isinstance(e, ConnectionClosed):
                _log.exception("serve: connection handler failed")
        finally:
            self._conns.discard(conn)
            for st in conn.streams.values():
                self._close_stream(st)
            if conn.sender is not None and not conn.sender.done():
                conn.sender.cancel()  # the connection is gone: nothing left to deliver

    async def _sender(self, conn: _Conn) -> None:
        """Deliver ``conn``'s outbox in order; the only place that awaits its socket."""
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await conn.outbox.get()
                if frame is None:  # shutdown: everything before it was delivered
                    await self._close_ws(conn.ws, 1001, "server shutting down")
                    return
                conn.sending_since = loop.time()
                await conn.ws.send(frame)
                conn.sending_since = None
        except ConnectionClosed:
            return  # the handler frees the streams
        except Exception:  # noqa: BLE001 - its outbox then fills and the connection is dropped
            _log.exception("serve: sender of a connection failed")

    def _reply(self, conn: _Conn, frame: bytes | None) -> None:
        """Queue ``frame`` for ``conn`` without waiting; a full outbox drops the connection."""
        if conn.dropped:
            return
        try:
            conn.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self._drop(conn, f"client does not read its replies: {conn.outbox.maxsize} unread "
                             "(outbox_size); connection dropped, its streams closed")

    async def _watchdog(self) -> None:
        """Drop connections whose socket has taken nothing for ``send_timeout_s``."""
        limit = float(self.config.send_timeout_s)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            now = loop.time()
            for conn in list(self._conns):
                t = conn.sending_since
                if not conn.dropped and t is not None and now - t > limit:
                    self._drop(conn, f"client has read no reply for {limit:g} s "
                                     "(send_timeout_s); connection dropped, its streams closed")

    def _drop(self, conn: _Conn, reason: str) -> None:
        conn.dropped = True
        self.stats.dropped += 1
        _log.warning("serve: %s", reason)
        for st in conn.streams.values():
            self._close_stream(st)
        if conn.sender is not None:
            conn.sender.cancel()  # it waits on a socket nobody reads
        task = asyncio.create_task(self._close_ws(conn.ws, CLOSE_SLOW_READER, reason[:120]))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_ws(ws: Any, code: int, reason: str) -> None:
        """Close with ``code`` and ``reason``; abort the transport when the client does not
        complete the handshake within :data:`CLOSE_TIMEOUT_S`."""
        try:
            await asyncio.wait_for(ws.close(code, reason), CLOSE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - timed out or already broken: cut it
            with contextlib.suppress(Exception):
                ws.transport.abort()

    def _close_stream(self, st: _Stream) -> None:
        if not st.closed:
            st.closed = True
            self.streams_open -= 1
            if self._running:  # the worker may be stepping this slot: free it after the batch
                self._to_free.append(st.slot)
            else:
                self.slots.free(st.slot)

    def _on_frame(self, conn: _Conn, frame: Any) -> bytes | P.Header | None:
        """Answer one frame; a valid OPEN returns its header (see :meth:`_open`)."""
        streams = conn.streams
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
                self._check_open(h, chunk_ms, sr, mics)
                if len(streams) >= self.config.max_conn_streams:
                    raise P.ProtocolError(P.ErrorCode.CAPACITY, f"this connection holds "
                                          f"{len(streams)} streams, the most one connection may "
                                          "open (max_conn_streams); close one or open another "
                                          "connection", h.stream, h.seq)
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

    def _check_open(self, h: P.Header, chunk_ms: float, sr: int, mics: int) -> None:
        """Raise a FORMAT :class:`~chimein.agents.protocol.ProtocolError` naming the OPEN field
        that does not match the server's stream format."""
        want = self.slots.chunk_s * 1000
        problem = None
        if (why := chunk_ms_problem(chunk_ms)):
            problem = f"field 'chunk_ms': {why}"
        elif abs(chunk_ms - want) > 1e-3:
            problem = f"field 'chunk_ms': {chunk_ms:g} ms; the server serves {want:g} ms chunks"
        elif sr != self.slots.sample_rate:
            problem = f"field 'sample_rate': {sr} Hz; the server serves {self.slots.sample_rate} Hz"
        elif not 1 <= mics <= MAX_MICS:
            problem = f"field 'n_mics': {mics}; the server takes 1..{MAX_MICS} microphones"
        if problem:
            raise P.ProtocolError(P.ErrorCode.FORMAT, f"OPEN {problem}", h.stream, h.seq)

    async def _open(self, conn: _Conn, h: P.Header) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            slot = await loop.run_in_executor(self._pool, self.slots.alloc)
        except ChimeinError as e:
            self.stats.errors += 1
            return P.encode_error(P.ErrorCode.CAPACITY, str(e), h.stream, h.seq)
        conn.streams[h.stream] = _Stream(slot, conn)
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
                    self._send(it, P.encode_error(P.ErrorCode.INTERNAL, f"policy failed: {e}",
                                                  it.sid, it.seq))
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
                self._send(it, P.encode_action(it.sid, it.seq, int(actions[j]), probs[j],
                                               queue_ms, model_ms))
            for it in batch:
                if it.kind == P.MsgType.RESET:
                    self._send(it, P.encode(P.MsgType.OK, it.sid, it.seq))

    def _send(self, it: _Item, frame: bytes) -> None:
        """Queue a reply of ``it``'s stream (never waits: see :meth:`_reply`)."""
        if not it.stream.closed:  # a closed stream's client went away or was dropped
            self._reply(it.stream.conn, frame)

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
        watchdog = asyncio.create_task(self._watchdog())
        # the largest frame a valid message needs: a chunk of up to MAX_MICS channels
        max_size = P.HEADER.size + 4 * self.chunk_samples * MAX_MICS
        async with ws_serve(self._handle, self.config.host, self.config.port, max_size=max_size,
                            compression=None, max_queue=16) as server:
            self.port = int(server.sockets[0].getsockname()[1])
            self._ready.set()
            await self._stop.wait()
            server.close(close_connections=False)
            await batcher  # answer what is queued
            watchdog.cancel()
            for conn in list(self._conns):
                self._reply(conn, None)  # each sender delivers its outbox, then closes (1001)
            senders = [c.sender for c in self._conns if c.sender is not None]
            if senders:
                await asyncio.wait(senders, timeout=2 * CLOSE_TIMEOUT_S)
            if self._closing:
                await asyncio.wait(list(self._closing), timeout=2 * CLOSE_TIMEOUT_S)
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
