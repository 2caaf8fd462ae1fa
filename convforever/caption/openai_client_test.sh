#!/usr/bin/env bash
# The real `openai` Python client (the repository's .venv) against fake_openai_server: a plain
# completion, 429s with retry hints that the client retries itself, a JSON-schema
# response_format, and a refused key (testing/openai_client_check.py). Without the venv the test
# fails under CI=true and is skipped, saying so, elsewhere.
set -euo pipefail
runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
check="${runfiles}/convforever/caption/testing/openai_client_check.py"
server="${runfiles}/convforever/caption/fake_openai_server"
# The runfile is a link to the source file (.bazelrc: --spawn_strategy=local); its real path is in
# the workspace, whose root holds .venv.
root="$(cd "$(dirname "$(realpath "$check")")/../../.." && pwd)"
python="${root}/.venv/bin/python"
if ! "$python" -c 'import openai' 2>/dev/null; then
  msg="no openai package in ${root}/.venv (create the venv at the repository root: python3 -m venv .venv && .venv/bin/pip install openai)"
  if [ "${CI:-}" = "true" ]; then
    echo "FAIL: $msg" >&2
    exit 1
  fi
  echo "SKIPPED: $msg"
  exit 0
fi
url_file="${TEST_TMPDIR}/fake_openai.url"
FAKE_OPENAI_API_KEY=sk-test-openai-client "$server" --url_file="$url_file" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  [ -s "$url_file" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: fake_openai_server exited" >&2; exit 1; }
  sleep 0.1
done
[ -s "$url_file" ] || { echo "FAIL: fake_openai_server wrote no URL" >&2; exit 1; }
"$python" "$check" "$(cat "$url_file")" sk-test-openai-client
