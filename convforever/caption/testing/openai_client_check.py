"""The real openai Python client against our fake OpenAI-compatible server (fake_openai.h).

Usage: openai_client_check.py BASE_URL API_KEY. Run by openai_client_test.sh with the repository's
.venv python. Exits non-zero (an AssertionError or the client's exception) on any mismatch.
"""
import json
import sys

import openai

CATEGORIES = ["dog", "cat", "bird", "fish"]


def messages(caption):
    # The layout the classifier sends (convforever/caption/prompt.cc) and the fake parses.
    return [
        {"role": "system", "content": "You label image captions."},
        {"role": "user", "content": "Pick the single best category from this list:\n"
                                    + ", ".join(CATEGORIES) + "\n\nCaption: " + caption},
    ]


def main():
    base_url, key = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=3, timeout=30)

    plain = client.chat.completions.create(model="test-model", messages=messages("a dog on the grass"),
                                           temperature=0, max_tokens=20)
    assert plain.choices[0].message.content == "dog", plain
    assert plain.choices[0].finish_reason == "stop", plain
    assert plain.usage.total_tokens == 42, plain.usage

    # A 429 with a retry hint on the first attempt: the client waits and retries on its own.
    for mode, header in (("429ms", "retry-after-ms"), ("429ra", "retry-after")):
        raw = client.chat.completions.with_raw_response.create(
            model="test-model", messages=messages("[[%s]] a cat on a sofa" % mode), max_tokens=20)
        assert raw.headers["x-fake-attempt"] == "2", (mode, dict(raw.headers))
        assert raw.parse().choices[0].message.content == "cat", (mode, raw.parse())

    # Structured output: a JSON-schema response_format gets {"category": ...} back.
    schema = {"type": "object", "properties": {"category": {"type": "string", "enum": CATEGORIES}},
              "required": ["category"], "additionalProperties": False}
    structured = client.chat.completions.create(
        model="test-model", messages=messages("a small bird in a tree"), max_tokens=20,
        response_format={"type": "json_schema", "json_schema": {"name": "category", "strict": True,
                                                                "schema": schema}})
    assert json.loads(structured.choices[0].message.content) == {"category": "bird"}, structured

    # A wrong key is a 401 the client maps to its AuthenticationError, not retried.
    bad = openai.OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0)
    try:
        bad.chat.completions.create(model="test-model", messages=messages("a dog"))
    except openai.AuthenticationError as e:
        assert e.status_code == 401, e
    else:
        raise AssertionError("a wrong key was accepted")
    print("openai %s: plain, 429 retried (retry-after-ms, retry-after), json_schema, 401: ok" % openai.__version__)


if __name__ == "__main__":
    main()
