#!/usr/bin/env python3
"""Python reference for caption_benchmark: the original tool's approach (a thread pool of
blocking HTTP clients, one keep-alive connection per thread) against the same local
OpenAI-compatible server. Prints one line: `captions_per_s <value>`.

usage: caption_reference.py BASE_URL N CONCURRENCY
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

CATEGORIES = [l.strip() for l in open("convforever/caption/data/categories.txt") if l.strip()]


def main():
    base, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    url = urllib.parse.urlparse(base)
    local = threading.local()

    def classify(i):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        caption = "a dog photo number %d" % i
        body = json.dumps({
            "model": "bench",
            "messages": [
                {"role": "system", "content": "You are a precise image caption classifier."},
                {"role": "user", "content": "Classify the image described by the caption below into the "
                 "single most appropriate category from this list:\n" + ", ".join(CATEGORIES) +
                 "\n\nAnswer with the category name only, nothing else.\n\nCaption: " + caption},
            ],
            "temperature": 0, "max_tokens": 20})
        local.conn.request("POST", url.path + "/chat/completions", body,
                           {"Content-Type": "application/json"})
        resp = local.conn.getresponse()
        answer = json.loads(resp.read())["choices"][0]["message"]["content"].strip().lower()
        return answer if answer in CATEGORIES else "unknown"

    start = time.perf_counter()
    with ThreadPoolExecutor(conc) as pool:
        labels = list(pool.map(classify, range(n)))
    wall = time.perf_counter() - start
    assert labels.count("dog") == n, "reference got wrong labels"
    print("captions_per_s %.1f" % (n / wall))


if __name__ == "__main__":
    main()
