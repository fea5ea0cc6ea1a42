"""The training objective: the module the optimiser trains and the loss of a batch."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from chimein.agents.lm.model import TimingLM
from chimein.agents.lm.tokenizer import ACTION_IDS, UNIT_OFFSET
from chimein.training.labels import DEFAULT_DENSE_TARGETS

__all__ = ["TrainModule", "compute_loss"]


class TrainModule(torch.nn.Module):
    """What the optimiser trains: the timing LM and the auxiliary dense head (a linear map of the
    final hidden state at each chunk's action position to the logits of the ``n_dense`` columns
    of :func:`~chimein.training.labels.dense_targets`; used only in training, not saved in
    checkpoints)."""

    def __init__(self, model: TimingLM, n_dense: int = len(DEFAULT_DENSE_TARGETS)) -> None:
        super().__init__()
        self.model = model
        self.aux = torch.nn.Linear(model.cfg.hidden_size, int(n_dense))


def compute_loss(
    model: TimingLM,
    batch: Mapping[str, torch.Tensor],
    class_w: torch.Tensor,
    unit_loss_weight: float,
    aux: torch.nn.Module | None = None,
    aux_loss_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss of a batch (see the module docstring) and its parts."""
    ids, am = batch["input_ids"], batch["attention_mask"]
    h = model.hidden(ids, am)
    idx = batch["act_index"]
    ha = h.gather(1, idx[..., None].expand(-1, -1, h.shape[-1]))
    logits = model.lm.lm_head(ha)  # (B, C, V)
    label = batch["act_label"]
    target = torch.as_tensor(ACTION_IDS, device=ids.device)[label]
    ce = (
        F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
        .view_as(label)
        .float()
    )
    w = batch["act_weight"] * class_w[label]
    loss_act = (ce * w).sum() / w.sum().clamp_min(1e-6)
    parts = {"loss_act": loss_act.detach()}
    loss = loss_act
    if unit_loss_weight > 0:
        tgt = ids[:, 1:]
        m = (tgt >= UNIT_OFFSET) & (am[:, 1:] > 0)
        lg = model.lm.lm_head(h[:, :-1][m])
        loss_unit = F.cross_entropy(lg, tgt[m])
        loss = loss + unit_loss_weight * loss_unit
        parts["loss_unit"] = loss_unit.detach()
    if aux is not None and aux_loss_weight > 0 and "dense" in batch:
        cm = batch["chunk_mask"]
        bce = F.binary_cross_entropy_with_logits(aux(ha).float(), batch["dense"], reduction="none")
        loss_dense = (bce.mean(-1) * cm).sum() / cm.sum().clamp_min(1.0)
        loss = loss + aux_loss_weight * loss_dense
        parts["loss_dense"] = loss_dense.detach()
    with torch.no_grad():
        act_lg = logits[..., torch.as_tensor(ACTION_IDS, device=ids.device)]
        pred = act_lg.argmax(-1)
        valid = batch["act_weight"] > 0
        for c, name in enumerate(("wait", "respond", "intervene")):
            sel = valid & (label == c)
            parts[f"n_{name}"] = sel.sum()
            parts[f"correct_{name}"] = (sel & (pred == c)).sum()
        mass = torch.logsumexp(act_lg.float(), -1) - torch.logsumexp(logits.float(), -1)
        parts["log_action_mass"] = (mass * valid).sum() / valid.sum().clamp_min(1)
    return loss, parts
