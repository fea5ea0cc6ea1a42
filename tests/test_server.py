"""Tests of the policy server: protocol, subset-steppable slots, served == in-process decisions,
faults (malformed frames, disconnects, overload), status, shutdown, and a loopback load test."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from chimein.agents import protocol as P
from chimein.agents.lm.slots import make_slots
from chimein.agents.registry import make_policy
from chimein.agents.remote import (
    AsyncClient,
    RemotePolicy,
    ServerBusy,
    latency_summary,
    parse_url,
)
from chimein.agents.server import PolicyServer, ServerThread
from chimein.errors import ConfigError, RemoteError, SpecError

CH = 1280  # 80 ms at 16 kHz


def _audio(n: int, k: int, seed: int) -> np.ndarray:
    """(n, k*CH) float32: bursts of loud noise and silence, so the endpointer acts."""
    rng = np.random.default_rng(seed)
    env = np.repeat(rng.random((n, k)) < 0.4, CH, axis=1) * 0.2 + 1e-3
    return (env * rng.standard_normal((n, k * CH))).astype(np.float32)


def _wait_until(cond, timeout_s: float = 120.0) -> None:
    """Poll ``cond`` until it holds; ``timeout_s`` only turns a hang into a failure."""
    t = time.perf_counter()
    while not cond():
        assert time.perf_counter() - t < timeout_s, "condition not reached"
        time.sleep(0.01)


class _Clock:
    """A ``time`` stand-in whose clock jumps over sleeps instead of sleeping.

    Pacing is then checked on the policy's own clock: what a chunk waited for is exact, and a
    slow machine can only make chunks later, never make the test fail.
    """

    def __init__(self) -> None:
        self.skipped = 0.0

    def perf_counter(self) -> float:
        return time.perf_counter() + self.skipped

    def sleep(self, s: float) -> None:
        self.skipped += max(float(s), 0.0)


def _reference(name: str, audio: np.ndarray, **kw) -> tuple[np.ndarray, np.ndarray]:
    n, k = audio.shape[0], audio.shape[1] // CH
    p = make_policy(name, **kw)
    p.configure(0.08, 16000, "audio")
    p.reset(n)
    acts, probs = [], []
    for j in range(k):
        a, q = p.act({"audio": audio[:, j * CH : (j + 1) * CH, None]})
        acts.append(a)
        probs.append(q)
    return np.stack(acts, 1), np.stack(probs, 1)  # (n, k), (n, k, 3)


@pytest.fixture(scope="module")
def ckpt(stream_ckpt: str) -> str:
    """The shared tiny two-layer timing-LM checkpoint (``stream_ckpt`` of conftest.py)."""
    return stream_ckpt


# ------------------------------------------------------------------------------ protocol
def test_protocol_roundtrip_and_rejections() -> None:
    a = np.arange(2 * CH, dtype=np.float32).reshape(CH, 2)
    f = P.encode_chunk(5, 9, a, speaking=True)
    h = P.decode_header(f)
    assert (h.type, h.stream, h.seq, h.samples, h.channels, h.flags) == (P.MsgType.CHUNK, 5, 9, CH, 2, 1)
    assert np.array_equal(P.decode_audio(h, f), a)
    r = P.encode_action(5, 9, 2, np.array([0.1, 0.2, 0.7]), 1.5, 0.5)
    act, probs, q, m = P.decode_action(r)
    assert act == 2 and np.allclose(probs, [0.1, 0.2, 0.7]) and (q, m) == (1.5, 0.5)
    with pytest.raises(P.ProtocolError) as e:
        P.decode_header(P.encode(P.MsgType.STATUS, version=2))
    assert e.value.code == P.ErrorCode.VERSION
    with pytest.raises(P.ProtocolError, match="shorter"):
        P.decode_header(b"CHMN")
    with pytest.raises(P.ProtocolError, match="magic"):
        P.decode_header(b"XXXX" + f[4:])
    with pytest.raises(P.ProtocolError, match="text frame"):
        P.decode_header("hello")
    with pytest.raises(P.ProtocolError) as e:
        P.decode_audio(h, f[:-4])
    assert e.value.code == P.ErrorCode.MALFORMED
    bad = bytearray(f)
    bad[20] = 7  # dtype byte
    with pytest.raises(P.ProtocolError) as e:
        P.decode_audio(P.decode_header(bytes(bad)), bytes(bad))
    assert e.value.code == P.ErrorCode.DTYPE
    nan = a.copy()
    nan[3, 1] = np.nan
    f2 = P.encode_chunk(5, 9, nan)
    with pytest.raises(P.ProtocolError) as e:
        P.decode_audio(P.decode_header(f2), f2)
    assert e.value.code == P.ErrorCode.NOT_FINITE
    # short replies and unknown error codes: the project's errors, not struct.error/ValueError
    from chimein.agents.remote import _raise_reply

    for kind in (P.MsgType.ACTION, P.MsgType.ERROR):
        with pytest.raises(P.ProtocolError, match="reply of 25 bytes"):
            (P.decode_action if kind == P.MsgType.ACTION else P.decode_error)(P.encode(kind, 1, 1, b"\x01"))
    with pytest.raises(RemoteError, match="server error code 999: odd"):
        _raise_reply(P.encode_error(999, "odd"), "here")
    assert parse_url("remote://127.0.0.1:8765") == "ws://127.0.0.1:8765"
    with pytest.raises(ConfigError, match="remote://HOST:PORT"):
        parse_url("remote://nohost")


# ------------------------------------------------------------------------------ slots
def test_lm_slots_on_random_subsets_equal_lm_policy(ckpt) -> None:
    n, k = 5, 24  # 24 chunks x 3 tokens: the 26-slot ring wraps about three times
    audio = _audio(n, k, 1)
    ref_a, ref_p = _reference(ckpt, audio)
    assert len(np.unique(ref_a)) > 1  # decisions depend on the audio
    pool = make_slots(ckpt, capacity=8)
    pool.alloc()  # a slot no stream uses: streams land on slots != their index
    slots = [pool.alloc() for _ in range(n)]
    rng = np.random.default_rng(3)
    ks = [0] * n
    got_a, got_p = np.zeros((n, k), np.int64), np.zeros((n, k, 3), np.float32)
    while min(ks) < k:
        sub = [i for i in range(n) if ks[i] < k and rng.random() < 0.5]
        if not sub:
            continue
        a, p = pool.act(np.array([slots[i] for i in sub]),
                        np.stack([audio[i, ks[i] * CH : (ks[i] + 1) * CH, None] for i in sub]))
        for j, i in enumerate(sub):
            got_a[i, ks[i]], got_p[i, ks[i]] = a[j], p[j]
            ks[i] += 1
    assert np.array_equal(got_a, ref_a)
    assert np.abs(got_p - ref_p).max() < 1e-5
    # a freed and reallocated slot starts a fresh stream
    pool.free(slots[0])
    s = pool.alloc()
    a, p = pool.act(np.array([s]), audio[:1, :CH, None])
    assert a[0] == ref_a[0, 0] and np.allclose(p[0], ref_p[0, 0], atol=1e-5)


def test_subset_decoder_matches_lockstep_decoder_through_rebase(ckpt) -> None:
    import torch

    from chimein.agents.lm.checkpoint import load_checkpoint
    from chimein.agents.lm.decoder import IncrementalDecoder

    model = load_checkpoint(ckpt).model
    n, steps = 3, 60  # 180 tokens per stream: several rebases at rebase_at = 2 ring sizes
    rng = np.random.default_rng(5)
    toks = torch.from_numpy(rng.integers(4, 20, size=(steps, n, 3)))
    ref = IncrementalDecoder(model, n, rebase_at=2 * 26)
    want = [ref.step(toks[k]).action_logits for k in range(steps)]
    dec = IncrementalDecoder(model, 4, rebase_at=2 * 26, rewind_on_reset=True)
    ks = [0] * n
    while min(ks) < steps:
        sub = [i for i in range(n) if ks[i] < steps and rng.random() < 0.6]
        if not sub:
            continue
        idx = torch.tensor([i + 1 for i in sub])  # slot 0 unused
        out = dec.step(torch.stack([toks[ks[i], i] for i in sub]), idx)
        for j, i in enumerate(sub):
            assert torch.allclose(out.action_logits[j], want[ks[i]][i], atol=1e-4)
            ks[i] += 1
    assert int(dec.pos.max()) < 2 * 26 + 3  # positions were rebased


def test_refuses_pickle_checkpoints_and_bad_settings(ckpt, tmp_path) -> None:
    bad = tmp_path / "pickled"
    shutil.copytree(ckpt, bad)
    (bad / "model.safetensors").rename(bad / "pytorch_model.bin")
    with pytest.raises(SpecError, match="pickle"):
        PolicyServer(str(bad), port=0)
    with pytest.raises(ConfigError, match="max_batch"):
        PolicyServer("always-wait", port=0, max_batch=0)
    with pytest.raises(ConfigError, match="unknown setting"):
        PolicyServer("always-wait", port=0, nope=1)


# ------------------------------------------------------------------------------ served
def test_remote_policy_equals_in_process_and_reports_status(monkeypatch) -> None:
    import chimein.agents.remote as remote

    audio = _audio(3, 30, 2)
    ref_a, ref_p = _reference("energy-endpoint", audio)
    with ServerThread(PolicyServer("energy-endpoint", port=0, max_streams=8)) as st:
        pol = make_policy(st.url, realtime=True)
        assert isinstance(pol, RemotePolicy)
        pol.configure(0.08, 16000, "audio")
        clock = _Clock()
        monkeypatch.setattr(remote, "time", clock)
        t0 = clock.perf_counter()
        pol.reset(3)
        sent: list[float] = []  # the policy's clock when each chunk (of 3 streams) left
        ws = pol._conn()
        send = ws.send
        monkeypatch.setattr(ws, "send", lambda frame: (sent.append(clock.perf_counter()), send(frame))[1])
        for j in range(30):
            a, p = pol.act({"audio": audio[:, j * CH : (j + 1) * CH, None],
                            "assistant_speaking": np.zeros(3, np.int64)})
            assert np.array_equal(a, ref_a[:, j]) and np.allclose(p, ref_p[:, j])
        # paced at the chunk rate: chunk j of every stream leaves no earlier than j * 80 ms
        assert len(sent) == 90
        assert all(t >= t0 + (i // 3) * 0.08 for i, t in enumerate(sent)), np.subtract(sent, t0)
        lat = latency_summary(pol.latencies_ms)  # the figures: benchmarks/bench_server.py
        assert lat["n"] == 90 and lat["p50_ms"] <= lat["p99_ms"]
        s = pol.status()
        assert s["streams_open"] == 3 and s["chunks"] == 90 and s["latency_ms"]["p99"] > 0
        assert sum(int(b) * c for b, c in s["batch_hist"].items()) == 90
        # reset_stream restarts that stream only
        pol.reset_stream(1)
        a, _ = pol.act({"audio": audio[:, :CH, None]})
        assert a[1] == ref_a[1, 0]
        pol.close()
        with pytest.raises(RemoteError, match="chunk"):
            bad = RemotePolicy(st.url, chunk_s=0.16)
            bad.reset(1)


def test_remote_policy_drives_the_vector_env() -> None:
    from chimein.envs.vector import ResponseTimingVectorEnv

    envs = ResponseTimingVectorEnv(2, "synthetic", chunk_ms=80)
    ref = make_policy("energy-endpoint")
    try:
        with ServerThread(PolicyServer("energy-endpoint", port=0)) as st:
            pol = make_policy(st.url)
            obs, _ = envs.reset(seed=0)
            for p in (pol, ref):
                p.configure(0.08, 16000, "audio")
                p.reset(2)
            for _ in range(25):
                a, _ = pol.act(obs)
                b, _ = ref.act(obs)
                assert np.array_equal(a, b)
                obs, *_ = envs.step(a)
            pol.close()
    finally:
        envs.close()


def test_malformed_frames_get_errors_and_do_not_disturb_other_streams() -> None:
    audio = _audio(1, 12, 5)
    ref_a, _ = _reference("energy-endpoint", audio)

    async def main(url: str) -> None:
        async with AsyncClient(url) as c:
            good = await c.open(80, 16000)
            bad = await c.open(80, 16000)

            async def err(frame: bytes, sid: int, seq: int) -> int:
                r = await c.request(frame, sid, seq)
                assert P.decode_header(r).type == P.MsgType.ERROR
                return P.decode_error(r)[0]

            assert await err(P.encode_chunk(bad, 901, np.zeros(CH - 1, np.float32)), bad, 901) \
                == P.ErrorCode.FORMAT
            f = bytearray(P.encode_chunk(bad, 902, np.zeros(CH, np.float32)))
            f[20] = 2
            assert await err(bytes(f), bad, 902) == P.ErrorCode.DTYPE
            f = P.encode_chunk(bad, 903, np.zeros(CH, np.float32))
            assert await err(f[:-8], bad, 903) == P.ErrorCode.MALFORMED
            x = np.zeros(CH, np.float32)
            x[7] = np.nan
            assert await err(P.encode_chunk(bad, 904, x), bad, 904) == P.ErrorCode.NOT_FINITE
            assert await err(P.encode(P.MsgType.STATUS, bad, 905, version=9), bad, 905) \
                == P.ErrorCode.VERSION
            assert await err(P.encode_chunk(77, 906, np.zeros(CH, np.float32)), 77, 906) \
                == P.ErrorCode.UNKNOWN_STREAM
            assert await err(P.encode_open(bad, 80, 16000, 1, 907), bad, 907) \
                == P.ErrorCode.STREAM_EXISTS
            assert await err(P.encode_open(99, 100, 16000, 1, 908), 99, 908) == P.ErrorCode.FORMAT
            await c._ws.send("a text frame")  # answered with an ERROR on stream 0
            for j in range(12):  # interleave junk with the good stream
                a, _, _ = await c.act(good, audio[0, j * CH : (j + 1) * CH])
                assert a == ref_a[0, j]
                await c._ws.send(b"garbage")
            s = await c.status()
            assert s["errors"] >= 20 and s["streams_open"] == 2

    with ServerThread(PolicyServer("energy-endpoint", port=0)) as st:
        asyncio.run(main(st.url))
        _wait_until(lambda: st.server.streams_open == 0)  # the connection closed: freed


def test_overload_answers_busy_instead_of_queueing() -> None:
    async def main(url: str) -> None:
        async with AsyncClient(url) as c:
            sid = await c.open(80, 16000)
            x = np.zeros(CH, np.float32)
            res = await asyncio.gather(*[c.act(sid, x) for _ in range(30)], return_exceptions=True)
            busy = [r for r in res if isinstance(r, ServerBusy)]
            ok = [r for r in res if isinstance(r, tuple)]
            assert busy and ok and len(busy) + len(ok) == 30
            s = await c.status()
            assert s["busy"] == len(busy) and s["queue_depth"] == 0

    with ServerThread(PolicyServer("energy-endpoint", port=0, max_pending=2, max_queue=3,
                                   max_wait_ms=20)) as st:
        asyncio.run(main(st.url))


def _slow_reader_socket(url: str):
    """A TCP socket to the server whose receive buffer is small, so that unread replies back up
    into the server soon."""
    import socket

    so = socket.socket()
    so.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    so.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    so.setblocking(False)
    return so


async def _never_reading_client(url: str):
    """A connection with stream 1 open that reads nothing (``max_queue=1``: its reading stops
    at the first unread reply)."""
    from websockets.asyncio.client import connect

    bad = await connect(parse_url(url), sock=_slow_reader_socket(url), max_queue=1,
                        compression=None, ping_interval=None)
    await bad.send(P.encode_open(1, 80, 16000, 1))
    return bad


async def _flood(bad, j: int, per_round: int = 64) -> None:
    """One chunk and ``per_round`` STATUS requests, whose replies are large."""
    await bad.send(P.encode_chunk(1, j, np.zeros(CH, np.float32)))
    for _ in range(per_round):
        await bad.send(P.encode(P.MsgType.STATUS, 0, j))


def test_a_client_that_never_reads_is_dropped_without_stalling_other_streams() -> None:
    """A client sends chunks (and STATUS requests, whose replies are large) but reads nothing;
    beside it a well-behaved stream plays its audio, one chunk per round of the flood. The
    order of events: the good stream is answered while the bad client's unread replies pile up
    in its outbox, the bad connection is dropped when the outbox is full, and the good stream
    goes on (before the fix the batcher waited on the bad socket and every stream froze)."""
    k, outbox = 600, 256
    audio = _audio(1, k, 11)
    ref_a, _ = _reference("energy-endpoint", audio)
    events: list[tuple[int, int, int, int, int]] = []  # (j, action, outbox_max, dropped, streams)

    async def main(url: str) -> int:
        bad = await _never_reading_client(url)
        async with AsyncClient(url, timeout_s=20) as good:
            sid = await good.open(80, 16000)
            flooding, after = True, 0
            for j in range(k):
                if flooding:
                    try:  # the bound only keeps a stuck send from hanging the test
                        await asyncio.wait_for(_flood(bad, j), 60)
                    except (ConnectionClosed, OSError):  # the server dropped it
                        flooding = False
                a, _, _ = await good.act(sid, audio[0, j * CH : (j + 1) * CH])
                s = await good.status()
                events.append((j, a, s.get("outbox_max", 0), s.get("dropped_connections", 0),
                               s["streams_open"]))
                after += bool(events[-1][3])
                if after > 10:
                    break
            for _ in range(2000):  # the dropped connection goes (close handshake or abort)
                if (await good.status())["connections"] == 1:
                    return 1
                await asyncio.sleep(0.01)
            return 2

    with ServerThread(PolicyServer("energy-endpoint", port=0, outbox_size=outbox,
                                   max_conn_streams=8)) as st:
        connections_left = asyncio.run(main(st.url))
    drops = [e[3] for e in events]
    assert drops[-1] == 1, "the client that never reads was not dropped"
    d = drops.index(1)
    assert drops == [0] * d + [1] * (len(drops) - d)
    # the good stream was answered while the bad client's replies piled up unread ...
    # (more than 64: beyond the 32 a handler may queue before its sender runs)
    assert any(e[2] > 64 for e in events[:d]), events[d - 5 : d + 1]
    # ... and after the drop, which closed the bad client's stream at once
    assert len(events) - d > 10 and events[d][4] == 1
    assert [e[1] for e in events] == ref_a[0, : len(events)].tolist()
    assert connections_left == 1


def test_a_stalled_connection_is_dropped_after_send_timeout_s() -> None:
    """A client that stops reading, then stops sending, does not hold its streams forever: its
    outbox never fills, and it is dropped once a reply has waited ``send_timeout_s``."""

    async def main(url: str) -> list[tuple[int, int, int]]:
        bad = await _never_reading_client(url)
        async with AsyncClient(url) as ctl:
            for j in range(5000):  # until its replies back up in the server (see above)
                if (await ctl.status())["outbox_max"] > 64:
                    break
                try:
                    await _flood(bad, j)
                except (ConnectionClosed, OSError):  # dropped already (a slow machine): fine
                    break
            seen = []  # then it sends nothing more
            for _ in range(5000):
                s = await ctl.status()
                seen.append((s["outbox_max"], s["dropped_connections"], s["streams_open"]))
                if s["dropped_connections"]:
                    break
                await asyncio.sleep(0.01)
            return seen

    with ServerThread(PolicyServer("always-wait", port=0, send_timeout_s=2.0)) as st:
        seen = asyncio.run(main(st.url))
    assert seen[0][:2] != (0, 0) and seen[-1][1:] == (1, 0), seen[-3:]
    assert max(o for o, _, _ in seen) < st.server.config.outbox_size  # dropped before full
    with pytest.raises(ConfigError, match="send_timeout_s"):
        PolicyServer("always-wait", port=0, send_timeout_s=0)


def test_per_connection_stream_cap_refuses_and_keeps_the_connection() -> None:
    async def main(url: str) -> None:
        async with AsyncClient(url) as c:
            sids = [await c.open(80, 16000) for _ in range(3)]
            with pytest.raises(RemoteError, match="CAPACITY.*max_conn_streams"):
                await c.open(80, 16000)
            a, _, _ = await c.act(sids[0], np.zeros(CH, np.float32))  # still usable
            assert a == 0
            await c.close_stream(sids[1])
            await c.open(80, 16000)  # a freed place can be taken again
            async with AsyncClient(url) as other:  # the cap is per connection
                await other.open(80, 16000)
                assert (await c.status())["streams_open"] == 4
            # the server frees `other`'s stream when it sees the close: wait for that event
            for _ in range(500):
                if (await c.status())["streams_open"] == 3:
                    break
                await asyncio.sleep(0.01)
            assert (await c.status())["streams_open"] == 3

    with ServerThread(PolicyServer("always-wait", port=0, max_streams=16,
                                   max_conn_streams=3)) as st:
        asyncio.run(main(st.url))
    with pytest.raises(ConfigError, match="outbox_size"):
        PolicyServer("always-wait", port=0, max_conn_streams=64, outbox_size=100)


@pytest.mark.parametrize("chunk_ms", [7.0, 1.0, 1000 / 16000, float("nan"), float("inf"), 401.0])
def test_chunk_ms_held_to_the_env_range(chunk_ms: float) -> None:
    from chimein.envs.core import CHUNK_MS_RANGE

    with pytest.raises(ConfigError, match="'chunk_ms'"):
        PolicyServer("always-wait", port=0, chunk_ms=chunk_ms)

    async def main(url: str) -> None:
        async with AsyncClient(url) as c:
            r = await c.request(P.encode_open(5, chunk_ms, 16000, 1, 1), 5, 1)
            code, msg = P.decode_error(r)
            assert code == P.ErrorCode.FORMAT and "OPEN field 'chunk_ms'" in msg, msg
            assert (await c.status())["streams_open"] == 0

    with ServerThread(PolicyServer("always-wait", port=0)) as st:
        asyncio.run(main(st.url))
    for ok in CHUNK_MS_RANGE:  # the bounds themselves are served
        PolicyServer("always-wait", port=0, chunk_ms=ok)


def test_remote_policy_raises_remote_error_naming_the_server_when_it_stops() -> None:
    st = ServerThread(PolicyServer("always-wait", port=0)).start()
    url = st.url
    try:
        pol = RemotePolicy(url, timeout_s=10)
        pol.reset(1)
        pol.act({"audio": np.zeros((1, CH, 1), np.float32)})
    finally:
        st.stop()
    where = parse_url(url)
    with pytest.raises(RemoteError, match=f"server at {where} closed the connection") as e:
        pol.act({"audio": np.zeros((1, CH, 1), np.float32)})
    assert "ConnectionClosed" in type(e.value.__cause__).__name__
    with pytest.raises(RemoteError, match=where):  # the connection is gone: no stream left
        pol.act({"audio": np.zeros((1, CH, 1), np.float32)})
    with pytest.raises(RemoteError, match=f"cannot connect to {where}"):
        pol.reset(1)
    pol.close()


def _load(url: str, audio: np.ndarray, n_drop: int) -> dict[int, list[int]]:
    """Every stream on its own connection plays its audio; ``n_drop`` of them abort mid-way."""
    n, k = audio.shape[0], audio.shape[1] // CH

    async def one(i: int) -> list[int]:
        c = AsyncClient(url, timeout_s=60)
        await c.__aenter__()
        sid = await c.open(80, 16000)
        out = []
        for j in range(k):
            if i < n_drop and j == k // 2:
                c._ws.transport.abort()  # abrupt disconnect: no close handshake
                c._reader.cancel()
                return out
            while True:
                try:
                    a, _, _ = await c.act(sid, audio[i, j * CH : (j + 1) * CH])
                    break
                except ServerBusy:
                    await asyncio.sleep(0.005)
            out.append(a)
        await c.aclose()
        return out

    async def main() -> dict[int, list[int]]:
        res = await asyncio.gather(*[one(i) for i in range(n)])
        return dict(enumerate(res))

    return asyncio.run(main())


def test_load_many_streams_with_abrupt_disconnects() -> None:
    n, k, drop = 150, 8, 20
    audio = _audio(n, k, 7)
    ref_a, _ = _reference("energy-endpoint", audio)
    with ServerThread(PolicyServer("energy-endpoint", port=0, max_streams=160,
                                   max_queue=100)) as st:
        got = _load(st.url, audio, drop)
        for i in range(drop, n):
            assert got[i] == ref_a[i].tolist(), i
        _wait_until(lambda: st.server.streams_open == 0)
        s = st.server.status()
        assert s["streams_open"] == 0 and s["chunks"] >= (n - drop) * k
        assert max(int(b) for b in s["batch_hist"]) > 1  # chunks of many streams batched


def test_served_lm_equals_in_process_lm_under_load(ckpt) -> None:
    n, k, drop = 24, 10, 4
    audio = _audio(n, k, 8)
    ref_a, _ = _reference(ckpt, audio)
    with ServerThread(PolicyServer(ckpt, port=0, max_streams=32)) as st:
        got = _load(st.url, audio, drop)
        s = st.server.status()
    for i in range(drop, n):
        assert got[i] == ref_a[i].tolist(), i
    assert max(int(b) for b in s["batch_hist"]) > 1


def test_cli_serve_stops_cleanly_on_sigterm(tmp_path) -> None:
    import socket

    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "chimein.cli", "serve",
                             "checkpoint=always-wait", f"port={port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        pol = None
        for _ in range(600):
            try:
                pol = RemotePolicy(f"remote://127.0.0.1:{port}", timeout_s=5)
                pol.reset(2)
                break
            except RemoteError:  # not listening yet
                pol = None
                time.sleep(0.05)
        assert pol is not None, "server did not come up"
        a, p = pol.act({"audio": np.zeros((2, CH, 1), np.float32)})
        assert a.tolist() == [0, 0] and np.allclose(p[:, 0], 1.0)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped" in out
        with pytest.raises(RemoteError, match="closed the connection"):  # not websockets' own
            pol.act({"audio": np.zeros((2, CH, 1), np.float32)})
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_realtime_rollout_and_eval_through_the_server(tiny_suite, tmp_path) -> None:
    from chimein.agents.remote import rollout_realtime
    from chimein.envs.rollout import rollout
    from chimein.envs.sources import SyntheticSource
    from chimein.eval.runner import evaluate

    src = SyntheticSource(duration_s=(2.0, 2.4))
    scenes = [src.load(k) for k in (1, 2)]
    ref = rollout(scenes, make_policy("energy-endpoint"))
    with ServerThread(PolicyServer("energy-endpoint", port=0)) as st:
        got, lat = rollout_realtime(scenes, st.url)
        served = evaluate(st.url, tiny_suite, out=tmp_path / "served", workers=1, progress=False,
                          report=False, resamples=20)
    assert [e.action_log for e in got] == [e.action_log for e in ref]
    assert lat["n"] >= sum(e.n_steps for e in ref) and lat["p99_ms"] > 0
    local = evaluate("energy-endpoint", tiny_suite, out=tmp_path / "local", workers=1, progress=False,
                     report=False, resamples=20)
    assert served["metrics"] == local["metrics"]
