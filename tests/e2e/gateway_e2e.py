#!/usr/bin/env python3
"""End-to-end test of `modelgate serve` through the official `openai` Python package.

Usage: gateway_e2e.py BASE_URL (e.g. http://127.0.0.1:4000), against a gateway serving
tests/e2e/gateway.toml with --simulator. Keys come from MODELGATE_E2E_KEY (every route) and
MODELGATE_E2E_POOR_KEY (a tiny budget). Every check reads the answer through the client's own
types and exceptions; the first failure exits 1 with a message naming the check.

`tests/gateway_python.rs` starts the server and runs this script (`cargo test --all-features
--test gateway_python`).
"""

import base64
import os
import sys
import traceback

import openai

# A 1x1 PNG, sent as a data URL.
PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2"
        "21bc330000000049454e44ae426082"
    )
).decode()


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def client(base_url, key, **kwargs):
    # No retries: the checks count the gateway's attempts, not the client's.
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=base_url + "/v1", api_key=key, timeout=30, **kwargs)


def check_plain(c, _ctx):
    r = c.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "hello gateway"}]
    )
    expect(r.object == "chat.completion", f"object is {r.object!r}")
    content = r.choices[0].message.content
    expect(content == "You said: hello gateway", f"content is {content!r}")
    expect(r.choices[0].finish_reason == "stop", f"finish_reason {r.choices[0].finish_reason!r}")
    expect(r.usage is not None and r.usage.prompt_tokens > 0, f"usage is {r.usage!r}")
    expect(r.model == "gpt-4o-mini", f"model is {r.model!r}")


def check_stream(c, _ctx):
    stream = c.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    expect(len(chunks) >= 2, f"only {len(chunks)} chunks")
    text = "".join(
        ch.choices[0].delta.content or "" for ch in chunks if ch.choices
    )
    expect(text == "You said: stream this please", f"joined content is {text!r}")
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    expect(finishes == ["stop"], f"finish reasons {finishes!r}")
    last = chunks[-1]
    expect(last.choices == [], f"the usage chunk has choices {last.choices!r}")
    expect(last.usage is not None, "the last chunk has no usage")
    expect(last.usage.prompt_tokens > 0, f"prompt_tokens {last.usage.prompt_tokens!r}")
    expect(last.usage.completion_tokens > 0, f"completion_tokens {last.usage.completion_tokens!r}")
    cost = (last.usage.model_extra or {}).get("cost", getattr(last.usage, "cost", None))
    expect(isinstance(cost, (int, float)) and cost > 0, f"usage.cost is {cost!r}")
    expect(all(ch.usage is None for ch in chunks[:-1]), "usage before the last chunk")


def check_tools(c, _ctx):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    # Forced to call a function, the simulator's echo answer calls it, as a model would: the
    # call comes back in OpenAI's shape whatever provider served it, streamed too.
    for model in ("chat", "claude"):
        r = c.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
        choice = r.choices[0]
        expect(choice.finish_reason == "tool_calls", f"{model}: finish {choice.finish_reason!r}")
        calls = choice.message.tool_calls or []
        expect(len(calls) == 1 and calls[0].function.name == "get_weather", f"{model}: calls {calls!r}")
        expect(calls[0].id and calls[0].type == "function", f"{model}: call {calls[0]!r}")
        expect(calls[0].function.arguments == "{}", f"{model}: arguments {calls[0].function.arguments!r}")
    names = set()
    for chunk in c.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    ):
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                if call.function and call.function.name:
                    names.add(call.function.name)
    expect(names == {"get_weather"}, f"streamed tool call names {names!r}")
    # `auto` leaves the choice to the model; the answer is well formed either way.
    for tool_choice in ("auto",):
        r = c.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=tools,
            tool_choice=tool_choice,
        )
        msg = r.choices[0].message
        expect(msg.role == "assistant", f"role {msg.role!r}")
        expect(
            msg.content or msg.tool_calls,
            f"neither content nor tool calls for tool_choice {tool_choice!r}",
        )
    r = c.chat.completions.create(
        model="chat",
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
        ],
        tools=tools,
    )
    expect(r.choices[0].message.content, "no answer after a tool result")


def check_image(c, _ctx):
    raw = c.chat.completions.with_raw_response.create(
        model="auto",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in this picture?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64," + PIXEL_PNG},
                    },
                ],
            }
        ],
    )
    route = raw.headers.get("x-modelgate-route")
    provider = raw.headers.get("x-modelgate-provider")
    expect(route == "vision", f"x-modelgate-route is {route!r}, not vision")
    expect(provider == "gemini", f"x-modelgate-provider is {provider!r}, not gemini")
    r = raw.parse()
    content = r.choices[0].message.content
    expect(content == "You said: what is in this picture?", f"content is {content!r}")
    # Text only: the rule route's default.
    raw = c.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "just text"}]
    )
    route = raw.headers.get("x-modelgate-route")
    expect(route == "chat", f"a text prompt on auto went to {route!r}, not chat")


def check_upstream_error(c, _ctx):
    try:
        c.chat.completions.create(
            model="broken", messages=[{"role": "user", "content": "hi"}]
        )
    except openai.InternalServerError as e:
        expect(e.status_code == 502, f"status {e.status_code}, not 502")
        expect(isinstance(e.body, dict) and e.body.get("type") == "upstream_error", f"body {e.body!r}")
        # The message says why: each attempt's failure, not only "all 1 attempts failed".
        expect("network" in e.message, f"the message does not say why: {e.message!r}")
        return
    raise CheckFailed("a route whose only target is down answered")


def check_upstream_error_stream(c, _ctx):
    # A stream that fails before its first chunk is a plain HTTP error too.
    try:
        for _ in c.chat.completions.create(
            model="broken", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass
    except openai.APIStatusError as e:
        expect(e.status_code == 502, f"status {e.status_code}, not 502")
        return
    raise CheckFailed("a streamed request to a route whose only target is down answered")


def check_fallback(c, _ctx):
    raw = c.chat.completions.with_raw_response.create(
        model="fallback", messages=[{"role": "user", "content": "fall back"}]
    )
    attempts = raw.headers.get("x-modelgate-attempts")
    provider = raw.headers.get("x-modelgate-provider")
    expect(attempts == "2", f"x-modelgate-attempts is {attempts!r}, not 2")
    expect(provider == "openai", f"x-modelgate-provider is {provider!r}, not openai")
    cost = raw.headers.get("x-modelgate-cost-usd")
    expect(cost is not None and float(cost) > 0, f"x-modelgate-cost-usd is {cost!r}")
    content = raw.parse().choices[0].message.content
    expect(content == "You said: fall back", f"content is {content!r}")
    # The same through a stream: the headers come with the first byte.
    with c.chat.completions.with_streaming_response.create(
        model="fallback", messages=[{"role": "user", "content": "stream fall back"}], stream=True
    ) as resp:
        attempts = resp.headers.get("x-modelgate-attempts")
        expect(attempts == "2", f"streamed x-modelgate-attempts is {attempts!r}, not 2")
        text = "".join(ch.choices[0].delta.content or "" for ch in resp.parse() if ch.choices)
    expect(text == "You said: stream fall back", f"streamed content is {text!r}")


def check_models(c, _ctx):
    ids = {m.id for m in c.models.list()}
    for expected in ("auto", "chat", "vision", "fallback"):
        expect(expected in ids, f"/v1/models lacks {expected!r}: {sorted(ids)}")


def check_unauthorized(_c, ctx):
    bad = client(ctx["url"], "sk-not-a-gateway-key")
    try:
        bad.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    except openai.AuthenticationError as e:
        expect(e.status_code == 401, f"status {e.status_code}")
        expect(e.code == "invalid_api_key", f"code {e.code!r}")
        return
    raise CheckFailed("a wrong gateway key was served")


def check_forbidden_route(_c, ctx):
    poor = client(ctx["url"], ctx["poor_key"])
    try:
        poor.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])
    except openai.PermissionDeniedError as e:
        expect(e.status_code == 403, f"status {e.status_code}")
        return
    raise CheckFailed("a key limited to `chat` used `claude`")


def check_over_budget(_c, ctx):
    # Default retries on: the client must not retry a spent budget (`x-should-retry: false`).
    poor = client(ctx["url"], ctx["poor_key"], max_retries=2)
    # Within the budget: a small max_tokens reserves a few millionths of a dollar.
    r = poor.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "cheap"}], max_tokens=16
    )
    expect(r.choices[0].message.content == "You said: cheap", "the first, cheap request failed")
    # Without max_tokens the call reserves the model's whole output: more than the budget.
    try:
        raw = poor.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "dear"}]
        )
    except openai.RateLimitError as e:
        expect(e.status_code == 429, f"status {e.status_code}")
        expect(e.code == "budget_exceeded", f"code {e.code!r}, body {e.body!r}")
        expect(
            e.response.headers.get("x-should-retry") == "false",
            f"x-should-retry is {e.response.headers.get('x-should-retry')!r}",
        )
        return
    raise CheckFailed(f"an over-budget key was served: {raw.headers!r}")


CHECKS = [
    ("plain chat completion", check_plain),
    ("streamed with usage and cost", check_stream),
    ("tools and tool_choice", check_tools),
    ("image routed to vision", check_image),
    ("upstream error -> 502", check_upstream_error),
    ("upstream error, streamed -> 502", check_upstream_error_stream),
    ("fallback after a dead target", check_fallback),
    ("models list", check_models),
    ("unauthorized key -> 401", check_unauthorized),
    ("route not allowed -> 403", check_forbidden_route),
    ("over-budget key -> 429 budget_exceeded", check_over_budget),
]


def main():
    if len(sys.argv) != 2:
        print("usage: gateway_e2e.py BASE_URL", file=sys.stderr)
        return 2
    url = sys.argv[1].rstrip("/")
    ctx = {
        "url": url,
        "key": os.environ.get("MODELGATE_E2E_KEY", ""),
        "poor_key": os.environ.get("MODELGATE_E2E_POOR_KEY", ""),
    }
    if not ctx["key"] or not ctx["poor_key"]:
        print("gateway_e2e: MODELGATE_E2E_KEY and MODELGATE_E2E_POOR_KEY must be set", file=sys.stderr)
        return 2
    c = client(url, ctx["key"])
    print(f"gateway_e2e: openai {openai.__version__} against {url}")
    failed = []
    for name, check in CHECKS:
        try:
            check(c, ctx)
            print(f"  ok   {name}")
        except CheckFailed as e:
            print(f"  FAIL {name}: {e}")
            failed.append(name)
        except Exception as e:  # an unexpected exception from the client is a failure too
            print(f"  FAIL {name}: {type(e).__name__}: {e}")
            traceback.print_exc()
            failed.append(name)
    if failed:
        print(f"gateway_e2e: {len(failed)} of {len(CHECKS)} checks failed: {', '.join(failed)}")
        return 1
    print(f"gateway_e2e: all {len(CHECKS)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
