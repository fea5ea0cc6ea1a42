"""Clients of ``chimein serve``: :class:`RemotePolicy` (the Policy interface) and
:class:`AsyncClient` (many streams from one asyncio process).

``RemotePolicy("remote://127.0.0.1:8765")`` is what ``make_policy("remote://...")`` returns:
rollouts, ``chimein eval policy=remote://HOST:PORT`` and the vector env use it like any
policy. Each ``act`` sends one CHUNK per stream on one WebSocket and gathers the replies.
Only the audio (reference + other mics) and the ``assistant_speaking`` flag travel; scene
specs are not sent, so the oracle cannot be served.

Real-time mode (``realtime=True``) paces the chunks at wall-clock speed (chunk ``k`` of a
stream is sent no earlier than ``k * chunk_s`` after its reset) and records the true decision
latency (network + queue + model) of every chunk in :attr:`RemotePolicy.latencies_ms` (one
value per stream and ``act`` call, in stream order, so that ``chimein.eval.runner`` can give
each episode its own chunks' latencies);
:func:`latency_summary` turns it into percentiles to store next to the simulated metrics.

Examples
--------
>>> policy = RemotePolicy("remote://127.0.0.1:8765", realtime=True)   # doctest: +SKIP
>>> policy.configure(0.08); policy.reset(4); policy.act(obs)           # doctest: +SKIP
>>> latency_summary(policy.latencies_ms)                               # doctest: +SKIP
{'n': 400, 'p50_ms': 1.9, 'p90_ms': 2.6, 'p99_ms': 4.1, 'max_ms': 6.0}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

import chimein.agents.protocol as P
from chimein.agents.policy import BasePolicy
from chimein.envs.episode import EpisodeRecord
from chimein.errors import AudioError, ConfigError, RemoteError
from chimein.scenes.spec import SceneSpec

__all__ = ["AsyncClient", "RemotePolicy", "ServerBusy", "latency_summary", "parse_url",
           "rollout_realtime"]


class ServerBusy(RemoteError):
    """The server answered BUSY (overloaded) and retries ran out."""


def parse_url(url: str) -> str:
    """``remote://host:port`` (or ``ws://host:port``) -> ``ws://host:port``."""
    for scheme in ("remote://", "ws://"):
        if url.startswith(scheme):
            rest = url[len(scheme):].rstrip("/")
            host, _, port = rest.rpartition(":")
            if host and port.isdigit() and 0 < int(port) < 65536:
                return f"ws://{host}:{int(port)}"
    raise ConfigError(f"policy {url!r}: expected remote://HOST:PORT, e.g. remote://127.0.0.1:8765")


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | int | None]:
    """Count, mean and p50/p90/p99/max (ms) of decision latencies (None when empty). The one
    implementation; ``chimein.eval.episodes.latency_summary`` rounds it for episode lines."""
    a = np.asarray(list(latencies_ms), np.float64)
    if a.size == 0:
        return {"n": 0, "mean_ms": None, "p50_ms": None, "p90_ms": None, "p99_ms": None,
                "max_ms": None}
    q = np.percentile(a, [50, 90, 99])
    return {"n": int(a.size), "mean_ms": float(a.mean()), "p50_ms": float(q[0]),
            "p90_ms": float(q[1]), "p99_ms": float(q[2]), "max_ms": float(a.max())}


def rollout_realtime(scenes: Sequence[Any], url: str, env_options: Mapping[str, Any] | None = None,
                     **kwargs: Any) -> tuple[list[EpisodeRecord], dict[str, Any]]:
    """Play ``scenes`` against a served policy at wall-clock pace.

    Returns the episodes of :func:`chimein.envs.rollout.rollout` (the simulated timing metrics)
    and :func:`latency_summary` of the true decision latencies of every chunk (network +
    queue + model). ``kwargs`` go to :class:`RemotePolicy`.
    """
    from chimein.envs.rollout import rollout

    policy = RemotePolicy(url, realtime=True, **kwargs)
    try:
        episodes = rollout(scenes, policy, env_options)
    finally:
        policy.close()
    return episodes, latency_summary(policy.latencies_ms)


def _raise_reply(frame: bytes, where: str) -> None:
    h = P.decode_header(frame)
    if h.type == P.MsgType.ERROR:
        code, msg = P.decode_error(frame)
        name = P.ErrorCode(code).name if code in set(P.ErrorCode) else f"code {code}"
        raise RemoteError(f"{where}: server error {name}: {msg}")
    if h.type == P.MsgType.BUSY:
        raise ServerBusy(f"{where}: server busy: {P.decode_text(frame)}")


def _wire_error(e: BaseException, url: str, timeout_s: float) -> RemoteError | None:
    """The project's error for a websockets exception or timeout talking to the server at
    ``url`` (None for any other exception)."""
    from websockets.exceptions import ConnectionClosed, WebSocketException

    if isinstance(e, ConnectionClosed):
        return RemoteError(f"the policy server at {url} closed the connection ({e}); is "
                           "`chimein serve` still running? Reconnect with reset()")
    if isinstance(e, WebSocketException):
        return RemoteError(f"policy server at {url}: {type(e).__name__}: {e}")
    if isinstance(e, TimeoutError):
        return RemoteError(f"policy server at {url}: no reply within {timeout_s:g} s")
    return None


class RemotePolicy(BasePolicy):
    """A policy served by ``chimein serve`` (see the module docstring).

    Parameters
    ----------
    url
        ``remote://HOST:PORT``.
    realtime
        Pace chunks at wall-clock speed and record latencies.
    timeout_s
        Most seconds to wait for any reply.
    busy_retries
        Resends of a chunk answered BUSY (with a 5 ms pause) before raising :class:`ServerBusy`.
    chunk_s, sample_rate, obs_mode
        Stream format (``configure`` sets it again from the env).
    """

    name = "remote"
    obs_modes = ("audio",)

    def __init__(self, url: str, realtime: bool = False, timeout_s: float = 30.0,
                 busy_retries: int = 200, chunk_s: float = 0.08, sample_rate: int = 16000,
                 obs_mode: str = "audio") -> None:
        self.url = parse_url(url)
        self.name = url
        self.realtime = bool(realtime)
        self.timeout_s = float(timeout_s)
        self.busy_retries = int(busy_retries)
        self.latencies_ms: list[float] = []
        self._ws: Any = None
        self._sids: list[int] = []
        self._next_sid = 1
        self._seq = 0
        self._t0: list[float] = []
        self._k: list[int] = []
        super().__init__(chunk_s, sample_rate, obs_mode)

    # ---------------------------------------------------------------- connection
    def _conn(self) -> Any:
        if self._ws is None:
            from websockets.exceptions import InvalidURI, WebSocketException
            from websockets.sync.client import connect

            try:
                self._ws = connect(self.url, max_size=1 << 22, compression=None,
                                   open_timeout=self.timeout_s).__enter__()
            except (OSError, TimeoutError, InvalidURI) as e:
                raise RemoteError(f"policy {self.name!r}: cannot connect to {self.url}: {e}; start "
                                "it with `chimein serve checkpoint=...`") from None
            except WebSocketException as e:  # something else listens there
                raise RemoteError(f"policy {self.name!r}: {self.url} is not a chimein policy "
                                  f"server ({type(e).__name__}: {e})") from None
        return self._ws

    @contextlib.contextmanager
    def _wire(self) -> Iterator[None]:
        """Raise websockets' exceptions (the server stopped, a timeout) as RemoteError naming the
        server; a closed connection is forgotten (its streams are gone: reset() reconnects)."""
        try:
            yield
        except Exception as e:
            err = _wire_error(e, self.url, self.timeout_s)
            if err is None:
                raise
            from websockets.exceptions import ConnectionClosed

            if isinstance(e, ConnectionClosed):
                self._ws, self._sids = None, []
            raise RemoteError(f"policy {self.name!r}: {err}") from e

    def _request(self, frame: bytes) -> bytes:
        ws = self._conn()
        with self._wire():
            ws.send(frame)
            reply = ws.recv(timeout=self.timeout_s)
        _raise_reply(reply, f"policy {self.name!r}")
        return reply

    def close(self) -> None:
        """Close the streams and the connection."""
        if self._ws is not None:
            try:
                for sid in self._sids:
                    self._request(P.encode(P.MsgType.CLOSE, sid))
                self._ws.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
            self._ws = None
        self._sids = []

    def status(self) -> dict[str, Any]:
        """The server's status (streams, batch histogram, queue depth, latency)."""
        return json.loads(P.decode_text(self._request(P.encode(P.MsgType.STATUS))))

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self._ws is not None:
                self._ws.close()
        except Exception:  # noqa: BLE001
            pass

    # ---------------------------------------------------------------- streams
    def _on_configure(self) -> None:
        if self._ws is not None:
            self.close()

    def _reset(self, n_streams: int, specs: list[SceneSpec | None]) -> None:
        for sid in self._sids:
            self._request(P.encode(P.MsgType.CLOSE, sid))
        self._sids = []
        for _ in range(n_streams):
            sid = self._next_sid
            self._next_sid += 1
            self._request(P.encode_open(sid, self.chunk_s * 1000, self.sample_rate, 1))
            self._sids.append(sid)
        now = time.perf_counter()
        self._t0 = [now] * n_streams
        self._k = [0] * n_streams

    def _reset_stream(self, i: int, spec: SceneSpec | None) -> None:
        self._request(P.encode(P.MsgType.RESET, self._sids[i]))
        self._t0[i] = time.perf_counter()
        self._k[i] = 0

    def _act(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        audio = np.asarray(obs["audio"], np.float32)
        if audio.ndim == 2:
            audio = audio[:, :, None]
        if not np.isfinite(audio).all():
            raise AudioError(f"policy {self.name!r}: observation 'audio' contains NaN or inf")
        speaking = self._assistant_speaking(obs)
        n = self.n_streams
        if len(self._sids) != n:
            raise RemoteError(f"policy {self.name!r}: no open streams on {self.url} (the connection "
                              "was lost); call reset()")
        if self.realtime:
            due = max(self._t0[i] + self._k[i] * self.chunk_s for i in range(n))
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        ws = self._conn()
        seq0 = self._seq
        self._seq += n
        frames = [P.encode_chunk(self._sids[i], seq0 + i, audio[i], bool(speaking[i]))
                  for i in range(n)]
        with self._wire():
            actions, probs, lat = self._exchange(ws, frames, seq0)
        if self.realtime:  # one value per stream, in stream order (the eval runner attributes them)
            self.latencies_ms.extend(lat.tolist())
        for i in range(n):
            self._k[i] += 1
        return actions, probs

    def _exchange(self, ws: Any, frames: list[bytes], seq0: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Send one chunk per stream, gather the actions (resending BUSY chunks)."""
        n = len(frames)
        sent = np.zeros(n)
        for i in range(n):
            sent[i] = time.perf_counter()
            ws.send(frames[i])
        actions = np.zeros(n, np.int64)
        probs = np.zeros((n, 3), np.float32)
        lat = np.zeros(n)
        todo = n
        retries = [0] * n
        by_sid = {sid: i for i, sid in enumerate(self._sids)}
        while todo:
            reply = ws.recv(timeout=self.timeout_s)
            h = P.decode_header(reply)
            i = by_sid.get(h.stream)
            if i is None or h.seq != seq0 + i:
                continue  # a late reply of an earlier call
            if h.type == P.MsgType.BUSY and retries[i] < self.busy_retries:
                retries[i] += 1
                time.sleep(0.005)
                ws.send(frames[i])
                continue
            _raise_reply(reply, f"policy {self.name!r}: stream {i}")
            a, p, _, _ = P.decode_action(reply)
            actions[i], probs[i] = a, p
            lat[i] = (time.perf_counter() - sent[i]) * 1000
            todo -= 1
        return actions, probs, lat

    def __repr__(self) -> str:
        return f"RemotePolicy(url={self.url!r}, realtime={self.realtime}, chunk_s={self.chunk_s})"


class AsyncClient:
    """Many streams over one WebSocket from asyncio code.

    Examples
    --------
    >>> async def run():                                              # doctest: +SKIP
    ...     async with AsyncClient("remote://127.0.0.1:8765") as c:
    ...         sid = await c.open(80, 16000)
    ...         action, probs, latency_ms = await c.act(sid, chunk)
    """

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = parse_url(url)
        self.timeout_s = float(timeout_s)
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[tuple[int, int], asyncio.Future[bytes]] = {}
        self._seq = 0
        self._next_sid = 1

    async def __aenter__(self) -> AsyncClient:
        from websockets.asyncio.client import connect

        try:
            self._ws = await connect(self.url, max_size=1 << 22, compression=None,
                                     open_timeout=self.timeout_s)
        except (OSError, TimeoutError) as e:
            raise RemoteError(f"cannot connect to the policy server at {self.url}: {e}") from None
        except Exception as e:
            err = _wire_error(e, self.url, self.timeout_s)
            if err is None:
                raise
            raise err from e
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (the server frees its streams)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with _suppress():
                await self._reader
        self._ws = None

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                h = P.decode_header(frame)
                fut = self._waiting.pop((h.stream, h.seq), None)
                if fut is not None and not fut.done():
                    fut.set_result(frame)
        finally:
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(RemoteError(f"the policy server at {self.url} closed the "
                                                  "connection"))
            self._waiting.clear()

    async def request(self, frame: bytes, sid: int, seq: int) -> bytes:
        """Send ``frame`` and wait for the reply to ``(sid, seq)`` (raw, not checked)."""
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[(sid, seq)] = fut
        try:
            await self._ws.send(frame)
            return await asyncio.wait_for(fut, self.timeout_s)
        except Exception as e:
            self._waiting.pop((sid, seq), None)
            err = _wire_error(e, self.url, self.timeout_s)
            if err is None:
                raise
            raise err from e

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    async def open(self, chunk_ms: float, sample_rate: int = 16000, n_mics: int = 1) -> int:
        """Open a stream; returns its id."""
        sid = self._next_sid
        self._next_sid += 1
        seq = self._next()
        _raise_reply(await self.request(P.encode_open(sid, chunk_ms, sample_rate, n_mics, seq),
                                        sid, seq), "open")
        return sid

    async def act(self, sid: int, audio: np.ndarray, speaking: bool = False
                  ) -> tuple[int, np.ndarray, float]:
        """One chunk -> (action, probs (3,), round-trip latency ms). Raises
        :class:`ServerBusy` on BUSY and :class:`~chimein.errors.RemoteError` on ERROR replies."""
        seq = self._next()
        t = time.perf_counter()
        reply = await self.request(P.encode_chunk(sid, seq, audio, speaking), sid, seq)
        _raise_reply(reply, f"stream {sid}")
        a, p, _, _ = P.decode_action(reply)
        return a, p, (time.perf_counter() - t) * 1000

    async def reset(self, sid: int) -> None:
        """New episode of stream ``sid``."""
        seq = self._next()
        _raise_reply(await self.request(P.encode(P.MsgType.RESET, sid, seq), sid, seq), "reset")

    async def close_stream(self, sid: int) -> None:
        """Close stream ``sid``."""
        seq = self._next()
        _raise_reply(await self.request(P.encode(P.MsgType.CLOSE, sid, seq), sid, seq), "close")

    async def status(self) -> dict[str, Any]:
        """Server status dict."""
        seq = self._next()
        return json.loads(P.decode_text(await self.request(P.encode(P.MsgType.STATUS, 0, seq),
                                                            0, seq)))


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return True
