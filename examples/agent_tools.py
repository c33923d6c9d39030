"""An agent's tool loop over patchbay: tools offered to a model, its calls run by the dispatcher.

The model here is a stand-in (no network, no key): it asks for the tools a real model would
and answers from their results. Swap ``stand_in_model`` for your client, e.g.
``client.chat.completions.create(model=..., messages=messages, tools=tools)`` (OpenAI), or use
``(await dispatcher.tools()).anthropic()`` and ``result.anthropic(id)`` with Anthropic's
Messages API.

Run from a folder holding the demo (``patchbay demo --dir DIR``; then ``cd DIR``).
"""

import asyncio
import json
from typing import Any

from patchbay import Hub
from patchbay.ai import Budget, Dispatcher


def stand_in_model(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Plays the model: find the customer, then its open invoices, then answer."""
    offered = {tool["function"]["name"] for tool in tools}
    results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]

    def call(name: str, **arguments: Any) -> dict[str, Any]:
        assert name in offered, f"{name} is not offered"
        function = {"name": name, "arguments": json.dumps(arguments)}
        return {
            "role": "assistant",
            "tool_calls": [
                {"id": f"call_{len(results)}", "type": "function", "function": function}
            ],
        }

    if not results:
        return call("search_contact", email__contains="kessler-tools", fields=["company_id"])
    if len(results) == 1:
        company_id = results[0]["untrusted_records"][0]["company_id"]
        return call(
            "search_invoice",
            customer_id=company_id,
            status="open",
            fields=["number", "due_on", "balance"],
        )
    invoices = results[1]["untrusted_records"]
    listed = ", ".join(
        f"{i['id']} ({i['balance']['amount']} {i['balance']['currency']})" for i in invoices
    )
    return {"role": "assistant", "content": f"Open invoices: {listed or 'none'}."}


async def main() -> None:
    async with Hub.from_config("patchbay.yaml") as hub:
        # Every call runs as this consumer: its policy decides the tools and the fields.
        dispatcher = Dispatcher(hub, "local", budget=Budget.from_tokens(2_000))
        tools = (await dispatcher.tools()).openai()
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": "Which invoices of Kessler Tools are still open?"}
        ]
        while True:
            reply = stand_in_model(messages, tools)
            messages.append(reply)
            if "tool_calls" not in reply:
                break
            for tool_call in reply["tool_calls"]:
                function = tool_call["function"]
                result = await dispatcher.call(function["name"], json.loads(function["arguments"]))
                print(
                    f"{function['name']}{function['arguments']} -> "
                    f"{result.data.get('returned', result.data.get('error'))} "
                    f"(~{result.estimated_tokens} tokens)"
                )
                messages.append(result.openai(tool_call["id"]))
        print(reply["content"])


asyncio.run(main())
