"""``chimein serve``: serve a policy to many streams over WebSocket (loopback by default)."""

from __future__ import annotations

import asyncio
from typing import Any

from chimein.errors import SpecError


def serve(cfg: Any) -> None:
    """``chimein serve``: entry point of the CLI (a composed config with ``checkpoint`` and the
    :class:`ServerConfig` keys)."""
    from omegaconf import OmegaConf

    from chimein.agents.server import PolicyServer, ServerConfig

    c = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(c, dict)
    target = c.pop("checkpoint", None)
    if not target:
        raise SpecError("serve: field 'checkpoint': a checkpoint directory or a policy name, e.g. "
                        "checkpoint=energy-endpoint")
    keys = set(vars(ServerConfig()))
    server = PolicyServer(str(target), ServerConfig(**{k: v for k, v in c.items() if k in keys}))
    print(f"chimein serve: {server.policy_name} on ws://{server.config.host}:{server.config.port} "
          f"({server.slots.chunk_s * 1000:g} ms chunks, max {server.config.max_streams} streams)",
          flush=True)
    asyncio.run(server.serve_forever())
    print("chimein serve: stopped", flush=True)
