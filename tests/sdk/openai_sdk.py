"""The official OpenAI Python SDK against Switchyard, unchanged: chat (plain, streaming with
usage, tools), completions, embeddings, model listing, and error mapping. Run by tests/sdk/run.sh
against a live proxy in front of the fake fleet; exits non-zero on the first failure."""

import json
import sys

import openai
from openai import OpenAI

base_url, key = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url, api_key=key, max_retries=0)


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


models = [m.id for m in client.models.list().data]
check("production-llm" in models, f"models.list shows the model groups {models}")

r = client.chat.completions.create(
    model="production-llm",
    messages=[{"role": "user", "content": "Say hello."}],
    extra_headers={"x-switchyard-output-tokens": "12"},
)
check(r.choices[0].message.content and r.usage.completion_tokens == 12, "chat completion with usage")
raw = client.chat.completions.with_raw_response.create(model="production-llm", messages=[{"role": "user", "content": "hi"}])
check(raw.headers.get("x-litellm-call-id") is not None, "LiteLLM headers on the response")

chunks = list(
    client.chat.completions.create(
        model="production-llm",
        messages=[{"role": "user", "content": "Count."}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-switchyard-output-tokens": "8"},
    )
)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check(len(text) > 0, "streamed content")
check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8 and chunks[-1].choices == [], "final usage chunk with include_usage")

stream_no_usage = list(client.chat.completions.create(model="production-llm", messages=[{"role": "user", "content": "x"}], stream=True))
check(all(c.usage is None for c in stream_no_usage), "no usage chunk unless asked")

# Anthropic behind the OpenAI API: tools come back as OpenAI tool calls.
r = client.chat.completions.create(
    model="claude",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}],
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
)
check(r.choices[0].message.content is not None and r.usage.prompt_tokens > 0, "Anthropic deployment through the OpenAI SDK")
s = list(client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}))
check(s[-1].usage is not None and len({c.id for c in s}) == 1, "Anthropic stream: one id, usage at the end")

# LiteLLM's client-side fallbacks through extra_body: the requested group fails on purpose.
raw = client.chat.completions.with_raw_response.create(
    model="production-llm",
    messages=[{"role": "user", "content": "hi"}],
    extra_body={"fallbacks": ["claude"], "mock_testing_fallbacks": True},
)
check(
    raw.headers.get("x-litellm-model-group") == "claude" and raw.headers.get("x-litellm-attempted-fallbacks") == "1",
    "extra_body fallbacks with mock_testing_fallbacks answer from the fallback group",
)

c = client.completions.create(model="production-llm", prompt="Once upon a time", max_tokens=5)
check(c.usage is not None, "completions")
e = client.embeddings.create(model="embedder", input=["a", "b"])
check(len(e.data[0].embedding) > 0, "embeddings")

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    check(False, "unknown model raises")
except openai.BadRequestError as err:
    check(err.status_code == 400 and "Invalid model name" in str(err), "unknown model is a 400 BadRequestError")

bad = OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0)
try:
    bad.models.list()
    check(False, "wrong key raises")
except openai.AuthenticationError as err:
    check(err.status_code == 401, "wrong key is a 401 AuthenticationError")

print("all OpenAI SDK checks passed")
