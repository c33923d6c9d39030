"""The AI examples run: the agent tool loop against the demo, and the MCP host snippet (its
command and arguments, launched as a host would, with the official SDK's client)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ai_support
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

# The shared fixture (tests/ai/ai_support.py: a conftest.py here would shadow the root one).
ai_config = ai_support.ai_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_agent_tool_loop_runs_against_the_demo(demo_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "agent_tools.py")],
        cwd=demo_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith('search_contact{"email__contains": "kessler-tools"')
    assert lines[1].startswith('search_invoice{"customer_id": "erp:10008", "status": "open"')
    assert lines[-1].startswith("Open invoices: erp:")


async def test_the_mcp_host_snippet_starts_a_working_server(ai_config: Path) -> None:
    host = json.loads((EXAMPLES / "mcp_host_config.json").read_text())
    server = host["mcpServers"]["patchbay"]
    assert server["command"] == "patchbay"
    # The host runs the installed script; here, the one next to this Python, on this config.
    command = str(Path(sys.executable).parent / server["command"])
    args = [str(ai_config) if a.endswith("patchbay.yaml") else a for a in server["args"]]
    params = StdioServerParameters(
        command=command, args=args, env={"PATH": os.environ.get("PATH", "")}
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert "search_contact" in names and "get_invoice" not in names  # support_bot
        result = await session.call_tool("search_contact", {"limit": 1})
        assert not result.is_error
