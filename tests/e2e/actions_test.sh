#!/usr/bin/env bash
# End to end: the decisions' actions performed through the bank's write path, exactly once, and
# the replies and the request's document saying only what happened. With the whole stack and a
# real PostgreSQL:
#   - "I lost my card": cust-1's card 4417 is frozen in bank.cards, under one idempotency key in
#     bank.applied_actions; the action's row says done; the reply says it is frozen.
#   - The same request again with the same idempotency key: the first answer, and nothing applied
#     a second time.
#   - A precondition that stops holding between the look-up and the action: cust-2's card is
#     frozen (as the customer would, in the app) while the request waits for an executor; the
#     bank refuses, nothing changes, and the reply says why instead of claiming the freeze.
source "$(dirname "$0")/lib.sh"
e2e_setup actions
e2e_start_bankapi
# A deadline that outlasts the wait for an executor in the third part.
e2e_start_orchestrator --request-timeout-ms 60000
for service in intent gatherer decision executor responder; do
    e2e_start_worker "$service" "$service-1"
done
e2e_wait_ready

applied() { e2e_psql -c "SELECT count(*) FROM bank.applied_actions WHERE kind = 'freeze_card' AND params->>'customer_id' = '$1'"; }

# 1. A lost card, frozen.
[[ $(e2e_psql -c "SELECT status FROM bank.cards WHERE customer_id = 'cust-1' AND last4 = '4417'") == active ]] ||
    e2e_fail "cust-1's card 4417 is not active to start with"
body='{"user_id": "cust-1", "text": "I lost my card", "idempotency_key": "lost-1"}'
first=$(e2e_post "$body")
[[ ${first%% *} == 200 ]] || e2e_fail "the lost card: ${first%% *} ${first#* }"
first=${first#* }
id=$(jq -r .request_id <<<"$first")
e2e_expect "the lost card" "$first" \
    '.status == "done" and .decision.rule == "lost_card_freeze" and .decision.actions_status == "done"
     and (.decision.actions[0] | .kind == "freeze_card" and .status == "done" and .result.last4 == "4417")'
e2e_expect "the lost card: reply" "$first" '.reply.template == "lost_card_freeze.done" and (.reply.text | contains("4417"))'
[[ $(e2e_psql -c "SELECT status FROM bank.cards WHERE customer_id = 'cust-1' AND last4 = '4417'") == frozen ]] ||
    e2e_fail "cust-1's card 4417 is not frozen"
[[ $(applied cust-1) == 1 ]] || e2e_fail "the freeze was applied $(applied cust-1) times"
# Read back, the document says when the action's row was recorded and when it was performed.
e2e_expect "the lost card, read back" "$(curl -sS "$E2E_API/v1/requests/$id")" \
    '.decision.actions[0] | .status == "done" and (.recorded_at | test("^20[0-9-]+T[0-9:.]+Z$")) and (.performed_at | test("^20[0-9-]+T")) and .performed_at >= .recorded_at'
[[ $(e2e_psql -c "SELECT status || ':' || attempts || ':' || replayed FROM actions WHERE request_id = '$id'") == done:1:false ]] ||
    e2e_fail "the action's row: $(e2e_psql -c "SELECT * FROM actions WHERE request_id = '$id'")"
e2e_ok "a lost card is frozen, once"

# 2. The same idempotency key: the first request's answer, no second run, nothing applied again.
again=$(e2e_post "$body")
[[ ${again%% *} == 200 ]] || e2e_fail "the same key again: ${again%% *} ${again#* }"
[[ $(jq -r .request_id <<<"${again#* }") == "$id" ]] || e2e_fail "the same key gave another request"
e2e_expect "the same key again" "${again#* }" '.reply.template == "lost_card_freeze.done"'
[[ $(applied cust-1) == 1 ]] || e2e_fail "the freeze was applied $(applied cust-1) times after a retry"
[[ $(e2e_psql -c "SELECT count(*) FROM requests WHERE user_id = 'cust-1'") == 1 ]] || e2e_fail "the retry ran again"
e2e_ok "a retry with the same key acts once"

# 3. The card is frozen by someone else between the look-up and the action: with no executor, the
# request waits at its execute stage, its action recorded; then the card changes, an executor comes.
e2e_kill executor-1
curl -sS -m 90 -o "$E2E_DIR/stale.body" -w '%{http_code}' -X POST "$E2E_API/v1/requests" -H 'Content-Type: application/json' \
    --data-binary '{"user_id": "cust-2", "text": "I lost my card"}' >"$E2E_DIR/stale.status" &
poster=$!
recorded() { [[ $(e2e_psql -c "SELECT count(*) FROM actions a JOIN requests r ON r.id = a.request_id WHERE r.user_id = 'cust-2' AND a.status = 'recorded'") == 1 ]]; }
e2e_wait 30 "the action recorded, waiting for an executor" recorded
card=$(e2e_psql -c "SELECT a.params->>'card_id' FROM actions a JOIN requests r ON r.id = a.request_id WHERE r.user_id = 'cust-2'")
last4=$(e2e_psql -c "SELECT last4 FROM bank.cards WHERE id = '$card' AND customer_id = 'cust-2' AND status = 'active'")
[[ -n $last4 ]] || e2e_fail "the action is not for an active card of cust-2's: '$card'"
e2e_psql -c "UPDATE bank.cards SET status = 'frozen' WHERE id = '$card'"
e2e_start_worker executor executor-2
wait "$poster" || e2e_fail "the request whose card changed was not answered"
[[ $(cat "$E2E_DIR/stale.status") == 200 ]] || e2e_fail "the request whose card changed: $(cat "$E2E_DIR/stale.status") $(cat "$E2E_DIR/stale.body")"
stale=$(cat "$E2E_DIR/stale.body")
e2e_expect "a stale look-up" "$stale" \
    '.decision.rule == "lost_card_freeze" and .decision.actions_status == "refused"
     and (.decision.actions[0] | .status == "refused" and (.reason | contains("frozen")))'
e2e_expect "a stale look-up: reply" "$stale" ".reply.template == \"lost_card_freeze.refused\" and (.reply.text | contains(\"$last4\"))"
[[ $(applied cust-2) == 1 ]] || e2e_fail "the refused freeze has $(applied cust-2) applied keys"
[[ $(e2e_psql -c "SELECT a.status FROM actions a JOIN requests r ON r.id = a.request_id WHERE r.user_id = 'cust-2'") == refused ]] ||
    e2e_fail "the refused action's row does not say refused"
e2e_ok "an action whose precondition no longer holds is refused, and the reply says so"
