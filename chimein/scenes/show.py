"""Pictures of scenes: the spectrogram over the annotated timeline, as a PNG.

Rows, top to bottom: log-mel-like spectrogram of the reference microphone; who speaks when
(user turns addressed to the assistant, people talking to each other, TV/radio), mid-turn
pauses; sound events; cue windows coloured by the expected action (RESPOND blue, INTERVENE
red, IGNORE grey; safety-critical hatched); and optionally the actions a policy took.

Used by ``chimein scenes show`` and by evaluation reports. matplotlib is imported here only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chimein.scenes.spec import SceneSpec, Source

COLORS = {"RESPOND": "#1f77b4", "INTERVENE": "#d62728", "IGNORE": "#8c8c8c"}
ROLE_COLORS = {"user": "#2ca02c", "bystander": "#9467bd", "media": "#ff7f0e", "event": "#17becf"}
BACKCHANNEL_COLOR = "#e377c2"


def talker_label(source: Source) -> str:
    """``"user_0: piper joe, speaker piper/joe/0.3"``: who says a speech source, and with which
    generator, voice and speaker (the scene picture's "voices" row and ``chimein scenes show``)."""
    from chimein.scenes.speech import describe

    return f"{source.id}: {describe(source.audio)}"


def speech_listing(spec: SceneSpec) -> list[str]:
    """One line per speech source: onset, role, generator, voice, speaker and text.

    Examples
    --------
    >>> from chimein.scenes.sampler import sample_scene
    >>> spec = sample_scene({"family": "addressed", "difficulty": "easy", "speakers_per_voice": 0,
    ...                      "speech_generators": ["espeak-ng"]}, seed=3)
    >>> speech_listing(spec)[0].split(" | ")[:3]
    ['  1.06 s', 'user     ', 'espeak-ng en-gb-x-rp+f2, speaker espeak-ng/en-gb-x-rp+f2/r157p54']
    """
    from chimein.scenes.speech import describe

    return [f"{s.onset_s:6.2f} s | {s.role:<9} | {describe(s.audio)} | {s.label[:60]}"
            for s in spec.sources if s.kind == "speech"]


def plot_scene(
    spec: SceneSpec,
    audio: np.ndarray | None,
    out: str | Path,
    actions: Sequence[tuple[float, int]] = (),
    title: str | None = None,
    dpi: int = 110,
) -> Path:
    """Draw ``spec``'s timeline (and ``audio``'s spectrogram, if given) to ``out`` (PNG).

    ``actions`` are ``(time_s, action)`` pairs with action 1 = RESPOND, 2 = INTERVENE.
    The file is written atomically.
    """
    import matplotlib.pyplot as plt

    from chimein.io import atomic_write

    fig = scene_figure(spec, audio, actions, title)
    out = Path(out)

    def _save(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")

    atomic_write(out, _save)
    plt.close(fig)
    return out


def scene_figure(spec: SceneSpec, audio: np.ndarray | None, actions: Sequence[tuple[float, int]] = (),
                 title: str | None = None) -> Any:
    """The matplotlib figure of :func:`plot_scene`, with one legend below the timeline for
    every colour, the safety hatch and (when there are ``actions``) the policy's action markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    dur = spec.duration_s
    rows: list[tuple[str, list[tuple[float, float, str, str]]]] = []  # label, [(s, e, color, text)]
    talk: list[tuple[float, float, str, str]] = []
    for sp in spec.annotations.spans:
        if sp.kind == "speech":
            talk.append((sp.start_s, sp.end_s, ROLE_COLORS["user"] if sp.addressed else ROLE_COLORS["bystander"],
                         "to assistant" if sp.addressed else sp.speaker))
        elif sp.kind == "backchannel":
            talk.append((sp.start_s, sp.end_s, BACKCHANNEL_COLOR, "backchannel"))
        else:
            talk.append((sp.start_s, sp.end_s, "#ffd700", "pause"))
    media = []
    events = []
    voices = []
    for src in spec.sources:
        if src.kind == "speech":
            end = src.onset_s + (src.words[-1].end_s if src.words else 2.0)
            voices.append((src.onset_s, end, ROLE_COLORS.get(src.role, "#999999"), talker_label(src)))
        if src.kind == "speech" and src.role == "media":
            end = src.onset_s + (src.words[-1].end_s if src.words else 2.0)
            media.append((src.onset_s, end, ROLE_COLORS["media"], "TV"))
        elif src.kind in ("event", "file"):
            events.append((src.onset_s, src.onset_s + float(src.duration_s or 1.0), ROLE_COLORS["event"],
                           src.label or src.id))
    cues = [(c.window[0], c.window[1], COLORS[c.expected], c.label + (" (!)" if c.safety_critical else ""))
            for c in spec.annotations.cues]
    rows = [("speech", talk), ("voices", voices), ("TV/radio", media), ("events", events), ("cues", cues)]

    n_rows = len(rows)
    fig = plt.figure(figsize=(max(8.0, min(24.0, dur * 0.5)), 2.2 + 0.55 * n_rows))
    gs = fig.add_gridspec(2, 1, height_ratios=[2.2, 0.55 * n_rows], hspace=0.08)
    ax_s = fig.add_subplot(gs[0])
    ax_t = fig.add_subplot(gs[1], sharex=ax_s)
    if audio is not None and len(audio):
        x = audio[:, 0] if audio.ndim == 2 else audio
        ax_s.specgram(x.astype(np.float64) + 1e-9, NFFT=512, Fs=spec.sample_rate, noverlap=384, cmap="magma",
                      scale="dB", vmin=-130)
        ax_s.set_ylim(0, min(8000, spec.sample_rate / 2))
        ax_s.set_ylabel("Hz")
    else:
        ax_s.text(0.5, 0.5, "(no audio)", transform=ax_s.transAxes, ha="center")
    for t, a in actions:
        for ax in (ax_s, ax_t):
            ax.axvline(t, color=COLORS["RESPOND" if a == 1 else "INTERVENE"], lw=1.2, ls="--")
    device = spec.device.get("model", "custom") if spec.device else "ideal mic"
    ax_s.set_title(title or f"{spec.id}  family={spec.family}  difficulty={spec.difficulty}  "
                   f"RT60={spec.room.rt60}s  SNR={spec.meta.get('snr_db', '?')} dB  device={device}", fontsize=9)
    plt.setp(ax_s.get_xticklabels(), visible=False)

    for r, (_, items) in enumerate(rows):
        y = n_rows - 1 - r
        for s, e, col, txt in items:
            hatch = "//" if txt.endswith("(!)") else None
            ax_t.add_patch(Rectangle((s, y + 0.1), max(e - s, 0.02), 0.8, color=col, alpha=0.55, hatch=hatch, lw=0))
            ax_t.text(s + 0.05, y + 0.5, txt[:40], fontsize=6.5, va="center", clip_on=True)
    if actions:
        ax_t.scatter([t for t, _ in actions], [-0.3] * len(actions), marker="^", s=30,
                     c=[COLORS["RESPOND" if a == 1 else "INTERVENE"] for _, a in actions], clip_on=False)
    ax_t.set_yticks([n_rows - 1 - r + 0.5 for r in range(n_rows)], [name for name, _ in rows], fontsize=8)
    ax_t.set_ylim(-0.5 if actions else 0, n_rows)
    ax_t.set_xlim(0, dur)
    ax_t.set_xlabel("time (s)")
    handles = [Patch(color=COLORS[k], alpha=0.55, label=f"{k} cue") for k in COLORS]
    handles += [Patch(facecolor="white", edgecolor="0.3", hatch="//", label="safety-critical cue (!)"),
                Patch(color=ROLE_COLORS["user"], alpha=0.55, label="user to assistant"),
                Patch(color=ROLE_COLORS["bystander"], alpha=0.55, label="people to each other"),
                Patch(color="#ffd700", alpha=0.55, label="mid-turn pause"),
                Patch(color=BACKCHANNEL_COLOR, alpha=0.55, label="backchannel (not a turn)"),
                Patch(color=ROLE_COLORS["media"], alpha=0.55, label="TV/radio"),
                Patch(color=ROLE_COLORS["event"], alpha=0.55, label="sound event")]
    handles += [Line2D([], [], color=COLORS[k], ls="--", lw=1.2, marker="^", ms=6, label=f"policy acts: {k}")
                for a, k in ((1, "RESPOND"), (2, "INTERVENE")) if any(x == a for _, x in actions)]
    ax_t.legend(handles=handles, fontsize=6.5, loc="upper center", ncol=5, frameon=False,
                bbox_to_anchor=(0.5, -0.3))
    return fig


def find_scene_audio(spec_path: str | Path) -> np.ndarray | None:
    """The rendered audio of a spec that lives in a dataset (``DIR/specs/<id>.json``), if any."""
    p = Path(spec_path).resolve()
    root = p.parent.parent
    if (root / "manifest.jsonl").is_file():
        from chimein.scenes.dataset import SceneDataset

        try:
            ds = SceneDataset(root)
            sid = SceneSpec.load(p).id
            return ds.load(ds.index_of(sid)).audio
        except Exception:
            return None
    return None
