#!/usr/bin/env bash
# End to end: actions that wait for a person. A refund above the agent file's amount_above is not
# performed: the reply says it waits, the request ends pending_approval, GET /v1/approvals lists
# it (with the operator token only: 401 without it, 403 when none is configured). Approved, its
# follow-up request performs it once (approving again gives the same follow-up; rejecting then is
# refused, 409; an unknown id is 404); rejected, or left to expire,
# nothing reaches the bank and the follow-up's reply says so. Who decided and when is recorded.
source "$(dirname "$0")/lib.sh"
e2e_setup approvals
export CONVEYOR_OPERATOR_TOKEN=operator-secret-1
e2e_start_bankapi
e2e_start_orchestrator
for service in intent gatherer decision executor responder; do
    e2e_start_worker "$service" "$service-1"
done
e2e_wait_ready

# big_payment CUSTOMER: a card payment of 250.00 just now, the customer's latest; prints its id.
big_payment() {
    local id=tx-approval-$1
    e2e_psql -c "INSERT INTO bank.transactions (id, account_id, card_id, kind, merchant, amount, currency, status)
                 SELECT '$id', a.id, NULL, 'card_payment', 'Harvey Norman', 250.00, a.currency, 'completed'
                 FROM bank.accounts a WHERE a.customer_id = '$1' ORDER BY a.id LIMIT 1" >/dev/null
    echo "$id"
}
refunds() { e2e_psql -c "SELECT count(*) FROM bank.refunds WHERE transaction_id = '$1'"; }
# operator METHOD PATH [BODY]: the operator's call; prints "STATUS BODY".
operator() {
    curl -sS -m 30 -o "$E2E_DIR/op.body" -w '%{http_code}' -X "$1" "$E2E_API$2" -H "Authorization: Bearer $CONVEYOR_OPERATOR_TOKEN" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} >"$E2E_DIR/op.status" || true
    printf '%s %s' "$(cat "$E2E_DIR/op.status")" "$(cat "$E2E_DIR/op.body")"
}
# pending CUSTOMER: asks for the refund of the big payment; prints the request's id once checked.
pending() {
    local answer
    answer=$(e2e_ask "$1" "I want a refund for my last purchase")
    e2e_expect "$1: waits for approval" "$answer" \
        '.status == "pending_approval" and .decision.rule == "refund_recent_payment" and .decision.actions_status == "pending_approval"
         and (.decision.actions[0] | .kind == "refund_transaction" and .requires_approval and .status == "pending_approval")
         and .reply.template == "refund_recent_payment.pending_approval" and (.reply.text | contains("250.00"))'
    jq -r .request_id <<<"$answer"
}

# 1. Waiting: nothing performed, listed for the operator only.
tx=$(big_payment cust-3) || e2e_fail "no big payment for cust-3"
id=$(pending cust-3) || exit 1
[[ $(refunds "$tx") == 0 ]] || e2e_fail "a refund waiting for approval reached the bank"
[[ $(e2e_psql -c "SELECT status FROM requests WHERE id = '$id'") == pending_approval ]] || e2e_fail "the request is not pending_approval"
[[ $(e2e_psql -c "SELECT status FROM actions WHERE request_id = '$id'") == pending_approval ]] || e2e_fail "its action is not pending_approval"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$E2E_API/v1/approvals") == 401 ]] || e2e_fail "the approvals list without the token"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$E2E_API/v1/approvals") == 401 ]] ||
    e2e_fail "the approvals list with a wrong token"
listed=$(operator GET /v1/approvals)
[[ ${listed%% *} == 200 ]] || e2e_fail "GET /v1/approvals: $listed"
e2e_expect "the approvals list" "${listed#* }" \
    ".approvals | map(select(.request_id == \"$id\")) | length == 1 and .[0].kind == \"refund_transaction\" and .[0].user_id == \"cust-3\" and .[0].params.transaction_id == \"$tx\""
e2e_ok "a refund above the limit waits for a person, and is listed"

# 2. Approved: the follow-up performs it, once.
answer=$(operator POST "/v1/requests/$id/approve" '{}')
[[ ${answer%% *} == 400 ]] || e2e_fail "an approval without an approver: $answer"
answer=$(operator POST "/v1/requests/$id/approve" '{"approver": "alice"}')
[[ ${answer%% *} == 200 ]] || e2e_fail "the approval: $answer"
follow_up=$(jq -r .request_id <<<"${answer#* }")
e2e_expect "the approved follow-up" "${answer#* }" \
    ".status == \"done\" and .parent_id == \"$id\" and .approval.decision == \"approved\" and .approval.approver == \"alice\"
     and .decision.actions[0].status == \"done\" and .reply.template == \"refund_recent_payment.done\""
[[ $(refunds "$tx") == 1 ]] || e2e_fail "the approved refund is not in the bank"
again=$(operator POST "/v1/requests/$id/approve" '{"approver": "alice"}')
[[ ${again%% *} == 200 && $(jq -r .request_id <<<"${again#* }") == "$follow_up" ]] || e2e_fail "approving twice: $again"
[[ $(refunds "$tx") == 1 ]] || e2e_fail "approving twice refunded twice"
opposite=$(operator POST "/v1/requests/$id/reject" '{"approver": "bob"}')
[[ ${opposite%% *} == 409 ]] || e2e_fail "rejecting what was approved: $opposite"
unknown=$(operator POST "/v1/requests/r-no-such-request/approve" '{"approver": "alice"}')
[[ ${unknown%% *} == 404 ]] || e2e_fail "approving an unknown request: $unknown"
not_waiting=$(operator POST "/v1/requests/$follow_up/approve" '{"approver": "alice"}')
[[ ${not_waiting%% *} == 409 ]] || e2e_fail "approving a request that waits for nobody: $not_waiting"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary '{"approver": "mallory"}' \
    "$E2E_API/v1/requests/$id/approve") == 401 ]] || e2e_fail "an approval without the token"
[[ $(e2e_psql -c "SELECT status || ':' || approver || ':' || (decided_at IS NOT NULL) FROM actions WHERE request_id = '$id'") == approved:alice:true ]] ||
    e2e_fail "the parent's action does not record the approval"
e2e_expect "the parent, read back" "$(curl -sS "$E2E_API/v1/requests/$id")" \
    ".status == \"done\" and .follow_up_id == \"$follow_up\" and (.decision.actions[0] | .status == \"approved\" and .approver == \"alice\" and (.decided_at | test(\"^20\")))"
e2e_ok "approved: performed once by the follow-up; approving twice is harmless"

# 3. Rejected: nothing reaches the bank, and the reply says so.
tx=$(big_payment cust-4) || e2e_fail "no big payment for cust-4"
id=$(pending cust-4) || exit 1
answer=$(operator POST "/v1/requests/$id/reject" '{"approver": "bob"}')
[[ ${answer%% *} == 200 ]] || e2e_fail "the rejection: $answer"
e2e_expect "the rejected follow-up" "${answer#* }" \
    '.approval.decision == "rejected" and .decision.actions[0].status == "rejected" and .reply.template == "refund_recent_payment.rejected"'
[[ $(refunds "$tx") == 0 ]] || e2e_fail "a rejected refund reached the bank"
e2e_ok "rejected: nothing performed"

# 4. Expiry: a request nobody decides on is rejected as expired. Without a token the routes are off.
e2e_kill orchestrator
unset CONVEYOR_OPERATOR_TOKEN
e2e_start_orchestrator --approval-expiry-s 1
e2e_wait_ready
[[ $(curl -s -o /dev/null -w '%{http_code}' "$E2E_API/v1/approvals") == 403 ]] || e2e_fail "approvals without a configured token"
tx=$(big_payment cust-5) || e2e_fail "no big payment for cust-5"
id=$(pending cust-5) || exit 1
expired() { [[ $(curl -s "$E2E_API/v1/requests/$id" | jq -r '.follow_up_id // empty') != "" ]]; }
e2e_wait 30 "the approval to expire" expired
follow_up=$(curl -s "$E2E_API/v1/requests/$id" | jq -r .follow_up_id)
finished() { [[ $(curl -s "$E2E_API/v1/requests/$follow_up" | jq -r .status) == done ]]; }
e2e_wait 30 "the expired follow-up to finish" finished
e2e_expect "the expired follow-up" "$(curl -s "$E2E_API/v1/requests/$follow_up")" \
    '.approval.approver == "expired" and .decision.actions[0].status == "rejected" and (.decision.actions[0].reason | contains("expired")) and .reply.template == "refund_recent_payment.rejected"'
[[ $(refunds "$tx") == 0 ]] || e2e_fail "an expired refund reached the bank"
e2e_ok "expired: rejected, nothing performed"
