"""The AI front door: tools for agents, a dispatcher that runs them through the Hub under a
consumer's policy, rendering of records for prompts, and an MCP server (:mod:`patchbay.ai.mcp`).

::

    dispatcher = Dispatcher(hub, "support-bot", budget=Budget.from_tokens(2000))
    tools = (await dispatcher.tools()).openai()          # or .anthropic(), .mcp()
    result = await dispatcher.call("search_contact", {"email__contains": "@acme.example"})
"""

from patchbay.ai.dispatch import Dispatcher, ToolResult
from patchbay.ai.render import (
    Budget,
    Document,
    Rendered,
    render_json,
    render_markdown,
    to_documents,
)
from patchbay.ai.tools import Tool, ToolSet, build_tools, tools_for

__all__ = [
    "Budget",
    "Dispatcher",
    "Document",
    "Rendered",
    "Tool",
    "ToolResult",
    "ToolSet",
    "build_tools",
    "render_json",
    "render_markdown",
    "to_documents",
    "tools_for",
]
