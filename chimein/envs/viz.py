"""Draw an episode's timeline with numpy only (no matplotlib): ``render_mode="rgb_array"``.

Rows, top to bottom: user speech (dark blue: addressed to the assistant; light blue: not),
mid-turn pauses (cyan), cue windows (green RESPOND, red INTERVENE, grey IGNORE; a dark band on
top marks safety-critical cues), the assistant speaking (orange), and the actions taken so far
(ticks: green RESPOND, red INTERVENE, grey when ineffective). A black line marks the current
decision time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chimein.scenes.spec import Annotations

COLORS = {
    "bg": (255, 255, 255), "grid": (225, 225, 225), "speech": (40, 70, 160), "speech_other": (140, 170, 230),
    "pause": (90, 200, 220), "RESPOND": (60, 170, 80), "INTERVENE": (215, 60, 50), "IGNORE": (160, 160, 160),
    "safety": (90, 0, 0), "assistant": (245, 150, 30), "ineffective": (150, 150, 150), "cursor": (0, 0, 0),
}
ROW_H = 14
GAP = 4


def timeline_rgb(annotations: Annotations, duration_s: float, events: Sequence[tuple[float, int, bool]],
                 speak_s: float, now_s: float | None = None, width: int = 800) -> np.ndarray:
    """The timeline image, ``uint8 (H, width, 3)``.

    ``events``: ``(time_s, action, effective)`` for every non-WAIT action so far.
    """
    rows = 5
    h = rows * (ROW_H + GAP) + GAP
    img = np.empty((h, width, 3), np.uint8)
    img[:] = COLORS["bg"]
    scale = (width - 1) / max(duration_s, 1e-9)

    def x(t: float) -> int:
        return int(np.clip(round(t * scale), 0, width - 1))

    def box(row: int, t0: float, t1: float, color: tuple[int, int, int], top: int = 0, height: int = ROW_H) -> None:
        y0 = GAP + row * (ROW_H + GAP) + top
        a, b = x(t0), max(x(t1), x(t0) + 1)
        img[y0: y0 + height, a:b] = color

    for r in range(rows):  # faint row backgrounds
        box(r, 0.0, duration_s, COLORS["grid"])
    for sp in annotations.spans:
        if sp.kind == "pause":
            box(1, sp.start_s, sp.end_s, COLORS["pause"])
        else:
            box(0, sp.start_s, sp.end_s, COLORS["speech"] if sp.addressed else COLORS["speech_other"])
    for c in annotations.cues:
        box(2, c.window[0], c.window[1], COLORS[c.expected])
        if c.safety_critical:
            box(2, c.window[0], c.window[1], COLORS["safety"], height=3)
    for t, a, eff in events:
        if eff and speak_s > 0:
            box(3, t, min(t + speak_s, duration_s), COLORS["assistant"])
        color = COLORS["ineffective"] if not eff else (COLORS["RESPOND"] if a == 1 else COLORS["INTERVENE"])
        xi = x(t)
        y0 = GAP + 4 * (ROW_H + GAP)
        img[y0: y0 + ROW_H, max(0, xi - 1): xi + 2] = color
    if now_s is not None:
        img[:, x(now_s)] = COLORS["cursor"]
    return img


def timeline_text(annotations: Annotations, duration_s: float, events: Sequence[tuple[float, int, bool]],
                  now_s: float | None = None, width: int = 80) -> str:
    """A text version of :func:`timeline_rgb` for ``render_mode="ansi"``.

    Rows: ``user`` (``#`` speech, ``.`` pause), ``cues`` (``R``/``I``/``-`` for RESPOND,
    INTERVENE, IGNORE windows), ``acts`` (``r``/``i``, ``x`` when ineffective), ``|`` = now.
    """
    def col(t: float) -> int:
        return int(np.clip(round(t / max(duration_s, 1e-9) * (width - 1)), 0, width - 1))

    user, cues, acts = [" "] * width, [" "] * width, [" "] * width
    for sp in annotations.spans:
        for i in range(col(sp.start_s), col(sp.end_s) + 1):
            user[i] = "." if sp.kind == "pause" else "#"
    for c in annotations.cues:
        ch = {"RESPOND": "R", "INTERVENE": "I", "IGNORE": "-"}[c.expected]
        for i in range(col(c.window[0]), col(c.window[1]) + 1):
            cues[i] = ch
    for t, a, eff in events:
        acts[col(t)] = ("r" if a == 1 else "i") if eff else "x"
    if now_s is not None:
        for row in (user, cues, acts):
            if row[col(now_s)] == " ":
                row[col(now_s)] = "|"
    return "\n".join([f"user |{''.join(user)}|", f"cues |{''.join(cues)}|", f"acts |{''.join(acts)}|",
                      f"      t = {0.0 if now_s is None else now_s:.2f} s of {duration_s:.2f} s"])
