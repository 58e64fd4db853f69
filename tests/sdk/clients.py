"""Drives gateprobe's mocks with the providers' own Python SDKs and prints what each
SDK made of the replies, one JSON object, for tests/sdk_clients.rs to judge.

Environment: BEDROCK_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
VLLM_URL, VLLM_KEY, AZURE_URL, AZURE_KEY, AZURE_API_VERSION.
"""

import json
import os

import anthropic
import openai

env = os.environ
out = {}

claude = anthropic.AnthropicBedrock(
    aws_access_key=env["AWS_ACCESS_KEY_ID"],
    aws_secret_key=env["AWS_SECRET_ACCESS_KEY"],
    aws_region=env["AWS_REGION"],
    base_url=env["BEDROCK_URL"],
    max_retries=0,
)
model = "anthropic.claude-3-5-sonnet-20241022-v2:0"
ask = [{"role": "user", "content": "Say hello."}]
for name, max_tokens in (("stream_cut", 5), ("stream_whole", 1000)):
    # messages.stream() folds the whole event sequence into a message and raises on
    # a sequence it cannot fold (a delta before its content_block_start, ...).
    with claude.messages.stream(model=model, max_tokens=max_tokens, messages=ask) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    out[name] = {
        "text": text,
        "final_text": "".join(b.text for b in final.content if b.type == "text"),
        "stop_reason": final.stop_reason,
        "output_tokens": final.usage.output_tokens,
        "id": final.id,
    }
whole = claude.messages.create(model=model, max_tokens=5, messages=ask)
out["create_cut"] = {"stop_reason": whole.stop_reason, "output_tokens": whole.usage.output_tokens}

vllm = openai.OpenAI(base_url=env["VLLM_URL"] + "/v1", api_key=env["VLLM_KEY"], max_retries=0)
served = vllm.models.list().data[0].id
many = vllm.chat.completions.create(model=served, messages=ask, n=3, max_tokens=4)
out["n_whole"] = {
    "indexes": [c.index for c in many.choices],
    "finish": [c.finish_reason for c in many.choices],
    "completion_tokens": many.usage.completion_tokens,
}
texts = {}
finish = {}
for chunk in vllm.chat.completions.create(model=served, messages=ask, n=2, stream=True):
    for c in chunk.choices:
        texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
        if c.finish_reason:
            finish[c.index] = c.finish_reason
out["n_stream"] = {"texts": texts, "finish": finish}

azure = openai.AzureOpenAI(
    azure_endpoint=env["AZURE_URL"],
    api_key=env["AZURE_KEY"],
    api_version=env["AZURE_API_VERSION"],
    max_retries=0,
)
out["azure_models"] = [m.id for m in azure.models.list().data]

print(json.dumps(out))
