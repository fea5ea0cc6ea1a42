"""``chimein serve``: serve a policy to many streams over WebSocket (loopback by default)."""

from __future__ import annotations

import asyncio
from typing import Any

from chimein.cli.common import container
from chimein.config import read_config
from chimein.errors import ConfigError


def serve(cfg: Any) -> None:
    """``chimein serve``: entry point of the CLI (a composed config with ``checkpoint`` and the
    :class:`ServerConfig` keys)."""
    from chimein.agents.server import PolicyServer, ServerConfig

    c = container(cfg)
    target = c.pop("checkpoint", None)
    if not target:
        raise ConfigError("serve: field 'checkpoint': a checkpoint directory or a policy name, e.g. "
                        "checkpoint=energy-endpoint")
    server = PolicyServer(str(target), read_config(ServerConfig, c, "serve"))
    print(f"chimein serve: {server.policy_name} on ws://{server.config.host}:{server.config.port} "
          f"({server.slots.chunk_s * 1000:g} ms chunks, max {server.config.max_streams} streams)",
          flush=True)
    asyncio.run(server.serve_forever())
    print("chimein serve: stopped", flush=True)
