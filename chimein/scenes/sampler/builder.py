"""One scene under construction (:class:`_Builder`: its talkers, sources, cues and spans) and
its room, microphones and source positions."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chimein.errors import SpecError
from chimein.scenes.pack_speech import Pieces
from chimein.scenes.sampler.config import SamplerConfig, _event_pool, _pack, _played
from chimein.scenes.spec import (
    Cue,
    Mics,
    Room,
    Source,
    Span,
    Vec3,
)


# ============================================================================================
# Composition
# ============================================================================================
class _Builder:
    """Collects sources, cues and spans of one scene while segments are placed in time."""

    def __init__(self, cfg: SamplerConfig, rng: np.random.Generator, room: Room, mics: Mics,
                 candidates: list[Vec3] | None) -> None:
        self.cfg, self.rng, self.room, self.mics, self.candidates = cfg, rng, room, mics, candidates
        self.events = _event_pool(cfg.recorded_sounds_dir)  # the classes this scene may draw
        self.sources: list[Source] = []
        self.cues: list[Cue] = []
        self.spans: list[Span] = []
        self._talkers: dict[str, Any] = {}
        self._positions: dict[str, Vec3] = {}
        self._streams: dict[str, np.random.Generator] = {}
        self._seed_seq: np.random.SeedSequence = rng.bit_generator.seed_seq  # type: ignore[assignment]

    def stream(self, name: str) -> np.random.Generator:
        """The scene's random stream ``name``: seeded from the scene's seed and ``name``, never
        drawing from ``rng``, so draws added to it shift no other draw of the scene."""
        if name not in self._streams:
            ss = self._seed_seq
            tag = zlib.crc32(name.encode("utf-8"))
            self._streams[name] = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, tag)))
        return self._streams[name]

    # ------------------------------------------------------------------ helpers
    def u(self, r: Sequence[float]) -> float:
        return float(self.rng.uniform(float(r[0]), float(r[1])))

    def _sid(self, prefix: str) -> str:
        return f"{prefix}{sum(1 for s in self.sources if s.id.startswith(prefix))}"

    def position(self, who: str, role: str) -> Vec3:
        """A valid position for a talker/sound, stable per talker within the scene."""
        if who in self._positions:
            return self._positions[who]
        if self.candidates:
            p = self.candidates[int(self.rng.integers(len(self.candidates)))]
        else:
            p = _place(self.rng, self.room, self.mics.center, role)
        self._positions[who] = p
        return p

    def talker(self, who: str) -> Any:
        """The :class:`~chimein.scenes.talkers.Talker` of ``who``, drawn on first use."""
        from chimein.scenes.talkers import draw_talker

        if who not in self._talkers:
            self._talkers[who] = draw_talker(self.cfg, self.rng, list(self._talkers.values()))
        return self._talkers[who]

    def walk(self, who: str, role: str, here: Vec3, seconds: float) -> tuple[tuple[Vec3, ...] | None, float | None]:
        """With probability ``walk_rate``, a person (not the TV) walks while speaking: a straight
        path from ``here`` at ``walk_speed_mps``, kept inside the room (0.3 m from the walls);
        they stay where they stopped. ``(None, None)``: standing (no draw at rate 0)."""
        rate = float(self.cfg.walk_rate or 0.0)
        if rate <= 0.0 or role not in ("user", "bystander") or self.rng.random() >= rate:
            return None, None
        speed = round(self.u(self.cfg.walk_speed_mps), 2)  # type: ignore[arg-type]
        dist = max(0.3, speed * seconds)
        L, W, _ = self.room.dims
        for k in range(50):  # a random heading; shorter walks when the room is small
            a = float(self.rng.uniform(0.0, 2.0 * math.pi))
            d = max(0.3, dist * (1.0 - k / 50.0))
            end = (round(here[0] + d * math.cos(a), 3), round(here[1] + d * math.sin(a), 3), here[2])
            if self.room.contains(end, 0.3) and math.dist(end[:2], self.mics.center[:2]) >= 0.5:
                self._positions[who] = end
                return (end,), speed
        return None, None

    def say(self, who: str, role: str, text: str, t0: float, level_db: float | None = None,
            pauses: Sequence[Any] = (), addressed: bool | None = None) -> tuple[Source, float, float]:
        """Place an utterance starting at ``t0``; return the source and its speech start/end.

        ``pauses`` (:class:`~chimein.scenes.turns.PlannedPause`) are placed inside the one
        utterance, lengths from ``pause_s``; with ``addressed`` given, the speech and pause spans
        of the turn are annotated too.
        """
        from chimein.scenes.speech import realize

        talker = self.talker(who)
        audio: dict[str, Any] = {"text": text, **talker.audio}
        if pauses:
            audio["pauses"] = [{"after_word": p.after_word, "pause_s": round(self.u(self.cfg.pause_s), 3),  # type: ignore[arg-type]
                                "lengthen": round(self.u((1.1, 1.6)), 3)} for p in pauses]
        sp = realize(audio, self.cfg.sample_rate)
        lvl = self.u(self.cfg.speech_level_db) if level_db is None else level_db  # type: ignore[arg-type]
        if not talker.legacy:
            lvl = float(np.clip(lvl + talker.level_db, -60.0, 0.0))
        here = self.position(who, role)
        path, speed = self.walk(who, role, here, sp.duration_s)
        src = Source(
            id=self._sid(who + "_"), kind="speech", role=role,  # type: ignore[arg-type]
            audio=audio, onset_s=round(t0, 4), level_db=round(lvl, 2),
            position=here, words=sp.words, label=text, path=path, speed_mps=speed,
        )
        self.sources.append(src)
        start = src.onset_s + (sp.words[0].start_s if sp.words else 0.0)
        end = src.onset_s + (sp.words[-1].end_s if sp.words else sp.duration_s)
        if addressed is not None:
            cuts = sorted(int(p["after_word"]) for p in audio.get("pauses", ()))
            a = start
            for k in cuts:
                ps, pe = src.onset_s + sp.words[k].end_s, src.onset_s + sp.words[k + 1].start_s
                self.span(a, ps, who, addressed=addressed)
                self.span(ps, pe, who, kind="pause", addressed=addressed)
                a = pe
            self.span(a, end, who, addressed=addressed)
        return src, start, end

    def event(self, cls_name: str, t0: float, level_db: float | None = None, role: str = "event") -> tuple[Source, Any]:
        from chimein.scenes.events import get_event_class

        ec = get_event_class(cls_name)
        dur = round(self.u(ec.default_duration_s), 3)
        lvl = self.u(self.cfg.event_level_db) if level_db is None else level_db  # type: ignore[arg-type]
        src = Source(
            id=self._sid("ev_"), kind="event", role=role,  # type: ignore[arg-type]
            audio={"cls": ec.name, "seed": int(self.rng.integers(2**31))},
            onset_s=round(t0, 4), level_db=round(lvl, 2), duration_s=dur,
            position=self.position(f"ev{len(self.sources)}", "event"), label=ec.name,
        )
        self.sources.append(src)
        return src, ec

    def cue(self, expected: str, start: float, end: float, label: str, sc: bool, srcs: Sequence[Source],
            onset: float | None = None) -> None:
        self.cues.append(Cue(
            id=f"c{len(self.cues)}", expected=expected, window=(round(start, 4), round(end, 4)),  # type: ignore[arg-type]
            label=label, safety_critical=sc, source_ids=tuple(s.id for s in srcs),
            onset_s=None if onset is None else round(onset, 4),
        ))

    def span(self, start: float, end: float, speaker: str, kind: str = "speech", addressed: bool = False) -> None:
        self.spans.append(Span(round(start, 4), round(end, 4), speaker, kind, addressed))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ event choice
    def event_names(self, decision: str) -> list[str]:
        allowed = self.cfg.event_classes
        return sorted(n for n, ec in self.events.items()
                      if ec.decision == decision and (allowed is None or n in allowed))

    def pack_entries(self, action: str | tuple[str, ...],
                     keep: Callable[[tuple[str, Any]], bool] | None = None) -> list[tuple[str, Any]]:
        """``(pack root, entry)`` of every sound-pack recording whose action is ``action`` (or
        one of them) and that ``keep`` accepts."""
        out = []
        for p in self.cfg.sound_packs or ():
            pack = _pack(str(p))
            for a in (action,) if isinstance(action, str) else action:
                out += [(str(pack.root), e) for e in pack.by_action(a)]
        return out if keep is None else [x for x in out if keep(x)]

    def use_pack(self, action: str | tuple[str, ...],
                 keep: Callable[[tuple[str, Any]], bool] | None = None) -> tuple[str, Any] | None:
        """With probability ``pack_fraction``, a pack recording of ``action`` that ``keep``
        accepts (else None). Draws no random number when no recording fits, so scenes without
        packs are those of a sampler without this option."""
        entries = self.pack_entries(action, keep)
        if not entries or self.rng.random() >= float(self.cfg.pack_fraction):  # type: ignore[arg-type]
            return None
        return entries[int(self.rng.integers(len(entries)))]

    def recording(self, pick: tuple[str, Any], t0: float, role: str, who: str,
                  level_db: float) -> tuple[Source, Pieces]:
        """Place a sound-pack recording at ``t0``; return the source and its speech pieces in
        scene time (:func:`_played`; recordings longer than :data:`MAX_RECORDING_S` are cropped)."""
        root, entry = pick
        pieces, dur = _played(entry, self.cfg.sample_rate)
        audio: dict[str, Any] = {"path": entry.rel_path, "pack": root}
        if self.cfg.pack_levels == "recorded":  # keep its level relative to its pack (no draw)
            from chimein.scenes.pack_levels import pack_levels

            pack = next(pk for pk in map(_pack, map(str, self.cfg.sound_packs or ())) if str(pk.root) == root)
            level_db, audio["level_offset_db"] = pack_levels(pack, self.cfg.sample_rate).place(entry, level_db)
            audio["level_offset_db"] = round(audio["level_offset_db"], 2)
        src = Source(
            id=self._sid("rec_"), kind="file", role=role,  # type: ignore[arg-type]
            audio=audio,
            onset_s=round(t0, 4), level_db=round(level_db, 2), duration_s=round(dur, 3),
            position=self.position(who, role), label=entry.description,
        )
        self.sources.append(src)
        return src, tuple((src.onset_s + a, src.onset_s + b) for a, b in pieces)

    def pick(self, names: Sequence[str]) -> str:
        if not names:
            raise SpecError("scenes config: field 'event_classes': no event class of the needed kind is allowed")
        return names[int(self.rng.integers(len(names)))]


def _place(rng: np.random.Generator, room: Room, center: Vec3, role: str) -> Vec3:
    """Rejection-sample a plausible position for ``role`` (inside the room, >= 0.3 m from the
    walls, >= 0.5 m from the microphones; talkers at head height within 0.7-3.5 m)."""
    L, W, H = room.dims
    m = 0.3
    for _ in range(200):
        if role in ("user", "bystander"):
            r = rng.uniform(0.7, 3.5)
            a = rng.uniform(0, 2 * math.pi)
            p = (center[0] + r * math.cos(a), center[1] + r * math.sin(a), rng.uniform(1.1, min(1.85, H - m)))
        elif role == "media":  # a TV or radio near a wall
            wall = int(rng.integers(4))
            x = rng.uniform(m, L - m) if wall < 2 else (m if wall == 2 else L - m)
            y = rng.uniform(m, W - m) if wall >= 2 else (m if wall == 0 else W - m)
            p = (x, y, rng.uniform(0.6, min(1.6, H - m)))
        else:
            p = (rng.uniform(m, L - m), rng.uniform(m, W - m), rng.uniform(0.2, min(2.0, H - m)))
        if room.contains(p, m) and math.dist(p, center) >= 0.5:
            return (round(p[0], 3), round(p[1], 3), round(p[2], 3))
    # tiny rooms: fall back to the farthest corner region, still valid
    p = (m if center[0] > L / 2 else L - m, m if center[1] > W / 2 else W - m, min(1.5, H - m))
    return (round(p[0], 3), round(p[1], 3), round(p[2], 3))


def _loudspeaker(cfg: SamplerConfig, seed: int, room: Room, mics: Mics) -> dict[str, Any] | None:
    """The assistant's loudspeaker with probability ``loudspeaker_rate``
    (:func:`chimein.scenes.loudspeaker.draw_loudspeaker`), else None. Every draw comes from
    streams of its own (the scene seed, the room), never from the scene's generator, so turning
    it on moves no other draw; at rate 0 nothing is drawn."""
    rate = float(cfg.loudspeaker_rate or 0.0)
    if rate <= 0.0:
        return None
    from chimein.scenes.loudspeaker import draw_loudspeaker

    if rate < 1.0 and np.random.default_rng(np.random.SeedSequence([int(seed), 0x10D5, 1])).random() >= rate:
        return None
    return draw_loudspeaker(seed, room, mics, cfg.loudspeaker_distance_m or (0.05, 0.15),
                            cfg.loudspeaker_level_db or (-32.0, -20.0))


def _room(cfg: SamplerConfig, rng: np.random.Generator) -> tuple[Room, Mics, list[Vec3] | None]:
    if cfg.room_pool:  # the room, mics and candidate positions depend only on the pool index
        idx = int(rng.integers(int(cfg.room_pool)))
        rng = np.random.default_rng(np.random.SeedSequence([int(cfg.room_pool_seed or 0), idx, 0x600D]))

    def u(r: Sequence[float]) -> float:
        return float(rng.uniform(float(r[0]), float(r[1])))

    dims = (round(u(cfg.room_length), 2), round(u(cfg.room_width), 2), round(u(cfg.room_height), 2))  # type: ignore[arg-type]
    room = Room(dims=dims, rt60=round(u(cfg.rt60), 3), ray_tracing=bool(cfg.ray_tracing))  # type: ignore[arg-type]
    L, W, H = dims
    center = (round(rng.uniform(0.6, L - 0.6), 3), round(rng.uniform(0.6, W - 0.6), 3),
              round(rng.uniform(0.7, min(1.5, H - 0.3)), 3))
    n = int(cfg.n_mics or 1)
    mics = Mics.array(center, cfg.mic_shape or "single", n, float(cfg.mic_spacing or 0.05))
    if not all(room.contains(p) for p in mics.positions):
        raise SpecError("scenes config: field 'mic_spacing': the microphone array does not fit in the room")
    candidates = None
    if cfg.room_pool:
        roles = ("user", "user", "bystander", "media", "event", "event", "event", "event")
        candidates = [_place(rng, room, center, roles[i % len(roles)]) for i in range(int(cfg.positions_per_room or 8))]
    return room, mics, candidates


