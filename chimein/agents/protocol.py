"""Binary wire format of the policy server (``chimein serve``), protocol version 1.

Every message is one binary WebSocket frame: a fixed 24-byte little-endian header followed by
a payload. Audio travels as raw float32 PCM (never JSON floats).

Header (``struct`` format ``<4sBBHIIIBBH``, 24 bytes)
------------------------------------------------------
=========  ======  ==========================================================================
field      type    meaning
=========  ======  ==========================================================================
magic      4s      ``b"CHMN"``
version    u8      :data:`PROTOCOL_VERSION`; the server answers other versions with ERROR
type       u8      a :class:`MsgType`
flags      u16     CHUNK: bit 0 = the assistant is speaking (the env's ``assistant_speaking``)
stream     u32     client-chosen stream id (unique per connection)
seq        u32     client sequence number, echoed in the reply
samples    u32     CHUNK: samples per channel in the payload
dtype      u8      CHUNK: :data:`DTYPE_F32LE` (1); other values are refused
channels   u8      CHUNK: microphones in the payload (interleaved, sample-major)
reserved   u16     0
=========  ======  ==========================================================================

Payloads
--------
- OPEN: ``<fIH`` chunk_ms (float32), sample_rate (u32), n_mics (u16). Reply OPENED, or ERROR
  FORMAT naming the field that differs from the server's stream format (``chunk_ms`` must be
  finite and within the env's range, :data:`chimein.envs.core.CHUNK_MS_RANGE`), or ERROR
  CAPACITY (the server's slots, or the connection's ``max_conn_streams``, are taken).
- CHUNK: ``samples * channels`` float32 LE, sample-major ``(samples, channels)``.
  Reply ACTION: ``<B3fff`` action (u8), p(WAIT), p(RESPOND), p(INTERVENE), queue_ms, model_ms.
- RESET (new episode of the stream), CLOSE: empty. Reply OK.
- STATUS: empty. Reply STATUS_REPLY with UTF-8 JSON (streams, batch histogram, queue, latency).
- ERROR replies: ``<H`` error code + UTF-8 message. BUSY replies: UTF-8 message (overloaded;
  the chunk was dropped and the stream state is unchanged -- resend it later).

Examples
--------
>>> import numpy as np
>>> frame = encode_chunk(7, 3, np.zeros((1280, 1), np.float32))
>>> h = decode_header(frame)
>>> h.type == MsgType.CHUNK, h.stream, h.seq, h.samples, len(frame)
(True, 7, 3, 1280, 5144)
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from chimein.errors import AudioError, RemoteError

__all__ = [
    "DTYPE_F32LE", "HEADER", "MAGIC", "PROTOCOL_VERSION", "ErrorCode", "Header", "MsgType",
    "ProtocolError", "decode_action", "decode_audio", "decode_error", "decode_header",
    "decode_open", "encode", "encode_action", "encode_chunk", "encode_error", "encode_open",
]

MAGIC = b"CHMN"
PROTOCOL_VERSION = 1
DTYPE_F32LE = 1
HEADER = struct.Struct("<4sBBHIIIBBH")
_OPEN = struct.Struct("<fIH")
_ACTION = struct.Struct("<B3fff")
_ERROR = struct.Struct("<H")
FLAG_SPEAKING = 1


class MsgType(enum.IntEnum):
    """Message types (requests < 16 <= replies)."""

    OPEN = 1
    CHUNK = 2
    RESET = 3
    CLOSE = 4
    STATUS = 5
    OPENED = 16
    ACTION = 17
    OK = 18
    STATUS_REPLY = 19
    ERROR = 20
    BUSY = 21


class ErrorCode(enum.IntEnum):
    """Codes of ERROR replies."""

    MALFORMED = 1  # bad magic, short frame, text frame, wrong payload length
    VERSION = 2  # unsupported protocol version
    DTYPE = 3  # dtype other than float32 LE
    NOT_FINITE = 4  # NaN or inf in the audio
    FORMAT = 5  # chunk size / sample rate / mics do not match the server's stream format
    UNKNOWN_STREAM = 6  # chunk/reset/close for a stream that is not open
    STREAM_EXISTS = 7  # open of a stream id already open on this connection
    CAPACITY = 8  # the server holds its maximum number of streams, or the connection its cap
    SHUTDOWN = 9  # the server is stopping
    INTERNAL = 10  # the policy failed on this batch


class ProtocolError(RemoteError):
    """A frame that cannot be decoded; ``code`` is the :class:`ErrorCode` to answer with."""

    def __init__(self, code: ErrorCode, message: str, stream: int = 0, seq: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.stream = stream
        self.seq = seq


@dataclass(frozen=True)
class Header:
    """A decoded header (see the module docstring)."""

    version: int
    type: int
    flags: int
    stream: int
    seq: int
    samples: int
    dtype: int
    channels: int


def encode(kind: int, stream: int = 0, seq: int = 0, payload: bytes = b"", flags: int = 0,
           samples: int = 0, channels: int = 0, dtype: int = 0,
           version: int = PROTOCOL_VERSION) -> bytes:
    """Header + ``payload`` as one frame."""
    return HEADER.pack(MAGIC, version, int(kind), flags, stream & 0xFFFFFFFF, seq & 0xFFFFFFFF,
                       samples, dtype, channels, 0) + payload


def decode_header(frame: bytes | bytearray | memoryview | str) -> Header:
    """Check magic, size and version of ``frame``; raise :class:`ProtocolError` when bad."""
    if isinstance(frame, str):
        raise ProtocolError(ErrorCode.MALFORMED, "text frame; the protocol uses binary frames")
    if len(frame) < HEADER.size:
        raise ProtocolError(ErrorCode.MALFORMED,
                            f"frame of {len(frame)} bytes is shorter than the {HEADER.size}-byte header")
    magic, ver, kind, flags, stream, seq, samples, dtype, ch, _ = HEADER.unpack_from(frame)
    if magic != MAGIC:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad magic {magic!r}; expected {MAGIC!r}")
    if ver != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.VERSION, f"protocol version {ver} is not supported; this "
                            f"server speaks version {PROTOCOL_VERSION}", stream, seq)
    return Header(ver, kind, flags, stream, seq, samples, dtype, ch)


def encode_open(stream: int, chunk_ms: float, sample_rate: int, n_mics: int, seq: int = 0) -> bytes:
    """OPEN request of ``stream``."""
    return encode(MsgType.OPEN, stream, seq, _OPEN.pack(chunk_ms, sample_rate, n_mics))


def decode_open(h: Header, frame: bytes) -> tuple[float, int, int]:
    """(chunk_ms, sample_rate, n_mics) of an OPEN frame."""
    if len(frame) != HEADER.size + _OPEN.size:
        raise ProtocolError(ErrorCode.MALFORMED, f"OPEN payload must be {_OPEN.size} bytes, got "
                            f"{len(frame) - HEADER.size}", h.stream, h.seq)
    chunk_ms, sr, mics = _OPEN.unpack_from(frame, HEADER.size)
    return float(chunk_ms), int(sr), int(mics)


def encode_chunk(stream: int, seq: int, audio: np.ndarray, speaking: bool = False) -> bytes:
    """CHUNK frame of float32 ``audio`` ``(samples,)`` or ``(samples, channels)``."""
    a = np.asarray(audio, dtype="<f4")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise AudioError(f"audio must be (samples,) or (samples, channels), got {a.shape}")
    return encode(MsgType.CHUNK, stream, seq, np.ascontiguousarray(a).tobytes(),
                  flags=FLAG_SPEAKING if speaking else 0, samples=a.shape[0], channels=a.shape[1],
                  dtype=DTYPE_F32LE)


def decode_audio(h: Header, frame: bytes) -> np.ndarray:
    """float32 ``(samples, channels)`` of a CHUNK frame; checks dtype, length and finiteness."""
    if h.dtype != DTYPE_F32LE:
        raise ProtocolError(ErrorCode.DTYPE, f"audio dtype code {h.dtype} is not supported; send "
                            f"float32 little-endian (dtype code {DTYPE_F32LE})", h.stream, h.seq)
    n = h.samples * h.channels
    if h.channels < 1 or len(frame) - HEADER.size != 4 * n:
        raise ProtocolError(ErrorCode.MALFORMED, f"CHUNK payload of {len(frame) - HEADER.size} bytes "
                            f"does not hold {h.samples} samples x {h.channels} channels of float32",
                            h.stream, h.seq)
    a = np.frombuffer(frame, dtype="<f4", count=n, offset=HEADER.size).reshape(h.samples, h.channels)
    if not np.isfinite(a).all():
        raise ProtocolError(ErrorCode.NOT_FINITE, "audio contains NaN or inf", h.stream, h.seq)
    return a.astype(np.float32, copy=False)


def encode_action(stream: int, seq: int, action: int, probs: np.ndarray, queue_ms: float,
                  model_ms: float) -> bytes:
    """ACTION reply."""
    p = np.asarray(probs, np.float32)
    return encode(MsgType.ACTION, stream, seq,
                  _ACTION.pack(int(action), float(p[0]), float(p[1]), float(p[2]), queue_ms, model_ms))


def _check_payload(frame: bytes, need: struct.Struct, what: str) -> None:
    if len(frame) < HEADER.size + need.size:
        raise ProtocolError(ErrorCode.MALFORMED, f"{what} reply of {len(frame)} bytes; it needs "
                            f"{HEADER.size + need.size} (header + payload)")


def decode_action(frame: bytes) -> tuple[int, np.ndarray, float, float]:
    """(action, probs float32 (3,), queue_ms, model_ms) of an ACTION reply."""
    _check_payload(frame, _ACTION, "ACTION")
    a, p0, p1, p2, q, m = _ACTION.unpack_from(frame, HEADER.size)
    return int(a), np.array([p0, p1, p2], np.float32), float(q), float(m)


def encode_error(code: int, message: str, stream: int = 0, seq: int = 0) -> bytes:
    """ERROR reply."""
    return encode(MsgType.ERROR, stream, seq, _ERROR.pack(int(code)) + message.encode("utf-8"))


def decode_error(frame: bytes) -> tuple[int, str]:
    """(code, message) of an ERROR reply."""
    _check_payload(frame, _ERROR, "ERROR")
    (code,) = _ERROR.unpack_from(frame, HEADER.size)
    return int(code), bytes(frame[HEADER.size + _ERROR.size :]).decode("utf-8", "replace")


def encode_json(kind: int, obj: Any, stream: int = 0, seq: int = 0) -> bytes:
    """A reply whose payload is UTF-8 JSON (STATUS_REPLY)."""
    return encode(kind, stream, seq, json.dumps(obj).encode("utf-8"))


def decode_text(frame: bytes) -> str:
    """UTF-8 payload (BUSY, STATUS_REPLY)."""
    return bytes(frame[HEADER.size :]).decode("utf-8", "replace")
