#!/usr/bin/env bash
# End to end: the official openai client for JavaScript (npm's `openai`, at the version
# openai_client/package-lock.json pins, installed into the build tree by this test) talks to
# conveyor's /v1 as any application would: models.list(), a plain chat completion, a streamed one
# (raw chunks, and the client's stream helper), and its error classes for mistakes. With the whole
# stack and a real PostgreSQL; the requests it made are then looked up in conveyor's own API.
source "$(dirname "$0")/lib.sh"

command -v node >/dev/null && command -v npm >/dev/null ||
    e2e_fail "node and npm are needed (deploy/local/bootstrap installs them)"
client_src=$CONVEYOR_SOURCE_DIR/tests/e2e/openai_client
client_dir=$CONVEYOR_BIN/../openai-client
if ! cmp -s "$client_src/package-lock.json" "$client_dir/package-lock.json" || [[ ! -d $client_dir/node_modules/openai ]]; then
    e2e_log "installing the openai client from npm into $client_dir"
    mkdir -p "$client_dir"
    cp "$client_src/package.json" "$client_src/package-lock.json" "$client_dir/"
    npm ci --prefix "$client_dir" --no-audit --no-fund --cache "$client_dir/.npm-cache" >&2 ||
        e2e_fail "npm ci of the openai client failed (is the npm registry reachable?)"
fi
cp "$client_src/chat_client.mjs" "$client_dir/"
e2e_log "the openai client $(node -p "require('$client_dir/node_modules/openai/package.json').version") on node $(node --version)"

e2e_setup openai_client
e2e_start_bankapi
e2e_start_orchestrator --chat-model bank-desk
for service in intent gatherer decision executor responder; do
    e2e_start_worker "$service" "$service-1"
done
e2e_wait_ready

ids=$(node "$client_dir/chat_client.mjs" "$E2E_API/v1" bank-desk cust-1) || e2e_fail "the openai client's checks"
e2e_ok "the openai client's checks passed"

e2e_expect "the plain completion's request" "$(curl -sS "$E2E_API/v1/requests/$(jq -r .plain <<<"$ids")")" \
    '.status == "done" and .user_id == "cust-1" and .intent.name == "lost_or_stolen_card"'
e2e_expect "the streamed completion's request" "$(curl -sS "$E2E_API/v1/requests/$(jq -r .stream <<<"$ids")")" \
    '.status == "done" and .user_id == "cust-1" and (.reply.text | test("1 EUR = [0-9.]+ USD"))'
e2e_ok "the client's requests are conveyor requests, answered and recorded"
