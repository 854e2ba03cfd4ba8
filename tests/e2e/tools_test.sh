#!/usr/bin/env bash
# End to end: `conveyor tools test` against the whole stack (the built binaries, the fixture's
# PostgreSQL with the demo bank). An intent's tools run at the gatherer and come back with their
# rows, as a table and as JSON; a slot narrows a tool; a two-step plan runs both steps; http tools
# answer, fail and are retried, and come from the cache; an intent
# the agent file plans no tools for exits 2 naming it; nothing is recorded.
source "$(dirname "$0")/lib.sh"
e2e_setup tools
e2e_start_stack
conveyor=("$CONVEYOR_BIN/conveyor" tools test --url "$E2E_API")
requests_before=$(e2e_psql -c "SELECT count(*) FROM requests")

# The table: one line a tool, then each tool's rows (cust-1 is Alex, with the card ending 4417).
"${conveyor[@]}" lost_or_stolen_card --user cust-1 >"$E2E_DIR/table" 2>"$E2E_DIR/err" ||
    e2e_fail "tools test lost_or_stolen_card exited $?: $(cat "$E2E_DIR/err")"
cat "$E2E_DIR/table" >&2
grep -Eq '^tool +status +ms +attempts +cached +breaker +rows +error' "$E2E_DIR/table" || e2e_fail "no table header"
grep -Eq '^customer_profile +ok +[0-9.]+ +1 +no +closed +1 ' "$E2E_DIR/table" || e2e_fail "customer_profile is not ok with 1 row"
grep -Eq '^active_cards +ok +[0-9.]+ +1 +no +closed +[1-5] ' "$E2E_DIR/table" || e2e_fail "active_cards is not ok with its rows"
grep -q '^customer_profile rows:' "$E2E_DIR/table" && grep -q '^active_cards rows:' "$E2E_DIR/table" ||
    e2e_fail "the rows of each tool are not printed"
grep -q '"first_name":"Alex"' "$E2E_DIR/table" || e2e_fail "customer_profile's row is not printed"
grep -q '"last4":"4417"' "$E2E_DIR/table" || e2e_fail "active_cards' rows are not printed"
e2e_ok "the table, with the rows"

# JSON, with a slot: the card asked for, and only it.
answer=$("${conveyor[@]}" lost_or_stolen_card --user cust-1 --slot card_last4=4417 --json) ||
    e2e_fail "tools test --json exited $?"
e2e_expect "json: the plan's tools" "$answer" '[.tools[].name] == ["customer_profile", "active_cards"]'
e2e_expect "json: each tool explains itself" "$answer" \
    '[.tools[] | .status == "ok" and (.duration_ms | type == "number") and .attempts == 1 and .cached == false and .breaker_open == false and .error == null] | all'
e2e_expect "json: the slot narrows active_cards" "$answer" '[.tools[1].rows[].last4] == ["4417"]'
e2e_expect "json: the rows themselves" "$answer" '.tools[0].rows[0].first_name == "Alex" and .intent == "lost_or_stolen_card" and .user_id == "cust-1"'
answer=$("${conveyor[@]}" lost_or_stolen_card --user cust-1 --slot card_last4=0000 --json) || e2e_fail "no card ending 0000 is still ok"
e2e_expect "json: no card ending 0000" "$answer" '.tools[1].status == "ok" and (.tools[1].rows | length) == 0'
e2e_ok "json and slots"

# A two-step plan: card_payments reads the card active_cards found.
answer=$("${conveyor[@]}" compromised_card --user cust-1 --json) || e2e_fail "tools test compromised_card exited $?"
e2e_expect "two steps" "$answer" \
    '[.tools[] | select(.name == "active_cards" or .name == "card_payments") | [.name, .status, (.rows | length)]] == [["active_cards", "ok", 1], ["card_payments", "ok", 3]]'
e2e_ok "a two-step plan"

# HTTP tools: the card tracker reads the tracking number cards_in_delivery found; the FX service is
# asked for the slot's currency, then, told to fail, retried and reported failed (exit 1), with
# the bank's own rates still there; and a repeated look-up comes from the cache.
answer=$("${conveyor[@]}" card_arrival --user cust-1 --json) || e2e_fail "tools test card_arrival exited $?"
e2e_expect "the card tracker" "$answer" \
    '.tools[] | select(.name == "delivery_status") | .status == "ok" and .attempts == 1 and .rows[0].carrier == "An Post"'
answer=$("${conveyor[@]}" exchange_rate --user cust-1 --slot currency=GBP --json) || e2e_fail "tools test exchange_rate exited $?"
e2e_expect "the FX service" "$answer" '.tools[] | select(.name == "fx_rate") | .status == "ok" and .rows[0].quote == "GBP"'
curl -sf -X POST "$CONVEYOR_BANKAPI_URL/_test/faults" -d '{"route": "fx", "mode": "status", "status": 503}' >/dev/null ||
    e2e_fail "the bank API took no fault"
rc=0
answer=$("${conveyor[@]}" exchange_rate --user cust-1 --slot currency=CHF --json) || rc=$?
[[ $rc == 1 ]] || e2e_fail "a failed http tool exited $rc, not 1"
e2e_expect "the FX service failing" "$answer" \
    '[.tools[] | [.name, .status, .attempts]] == [["customer_profile", "ok", 1], ["fx_rate", "failed", 3], ["exchange_rates", "ok", 1]] and (.tools[1].error | contains("HTTP 503"))'
answer=$("${conveyor[@]}" exchange_rate --user cust-2 --slot currency=GBP --json) || e2e_fail "a cached rate exited $?"
e2e_expect "a shared rate from the cache" "$answer" '.tools[] | select(.name == "fx_rate") | .status == "ok" and .cached and .attempts == 0'
curl -sf -X DELETE "$CONVEYOR_BANKAPI_URL/_test/faults" >/dev/null || e2e_fail "the bank API's faults did not clear"
e2e_ok "http tools: answered, failing and retried, cached"

# An intent the agent file plans no tools for: exit 2, one line naming it, nothing on stdout.
rc=0
"${conveyor[@]}" no_such_intent --user cust-1 >"$E2E_DIR/out" 2>"$E2E_DIR/err" || rc=$?
[[ $rc == 2 ]] || e2e_fail "an unknown intent exited $rc: $(cat "$E2E_DIR/err")"
grep -q 'unknown intent no_such_intent' "$E2E_DIR/err" || e2e_fail "the message does not name the intent: $(cat "$E2E_DIR/err")"
[[ $(wc -l <"$E2E_DIR/err") == 1 && ! -s $E2E_DIR/out ]] || e2e_fail "an unknown intent printed more than one line"
e2e_ok "an unknown intent: $(cat "$E2E_DIR/err")"

# A diagnostic: no request row, no checkpoint.
[[ $(e2e_psql -c "SELECT count(*) FROM requests") == "$requests_before" ]] || e2e_fail "a tool test was recorded"
e2e_ok "nothing recorded"
e2e_log "PASS"
