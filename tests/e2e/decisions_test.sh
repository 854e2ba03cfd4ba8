#!/usr/bin/env bash
# End to end: the decision log and cost accounting, with the whole stack and a real PostgreSQL:
#   - every ended request writes one JSON line to the orchestrator's log with its decision record
#     (intent and method, tools and outcomes, the rule, the actions and what became of them);
#   - `conveyor decisions --since` lists the records, filtered by --intent and --outcome;
#   - `conveyor costs --since [--by user|intent|stage|request]` adds up what the requests cost,
#     and the sums match the request documents' costs (a priced LLM call, paid tool calls);
#   - bad options are usage errors (2), a database away is a failure (1).
source "$(dirname "$0")/lib.sh"
e2e_setup decisions
e2e_start_bankapi
e2e_start_fake_llm --default '{"mode": "ok", "content": "You can link it under Cards in the app.", "prompt_tokens": 1000, "completion_tokens": 500}'
e2e_start_orchestrator
for service in intent gatherer decision executor; do
    e2e_start_worker "$service" "$service-1"
done
{ cat "$CONVEYOR_SOURCE_DIR/deploy/config/bank-agent.yaml"
  printf 'llm:\n  price_prompt_per_1k: 0.01\n  price_completion_per_1k: 0.02\n'; } >"$E2E_DIR/agent-priced.yaml"
CONVEYOR_AGENT_FILE=$E2E_DIR/agent-priced.yaml CONVEYOR_LLM_BASE_URL=$E2E_LLM_URL CONVEYOR_LLM_MODEL=stand-in \
    e2e_start_worker responder responder-1
e2e_wait_ready

ids=()
for ask in 'cust-1|What is the exchange rate for USD?' 'cust-2|How do I link my new card to the app?' \
    'cust-1|I lost my card'; do
    answer=$(e2e_ask "${ask%%|*}" "${ask#*|}")
    e2e_expect "a request" "$answer" '.status == "done"'
    ids+=("$(jq -r .request_id <<<"$answer")")
done
documents=$(for id in "${ids[@]}"; do curl -sS "$E2E_API/v1/requests/$id"; done | jq -s .)
e2e_expect "the costs the documents show" "$documents" \
    '.[0].cost.tools > 0 and .[1].cost.llm > 0 and .[2].cost.total == 0'
e2e_ok "three requests answered: one with a paid tool, one with a priced LLM call, one free"

# The decision log: one JSON line a request, with its record.
e2e_wait 10 "the decision log's three lines" \
    bash -c "[[ \$(grep -c '\"decision\":{' '$E2E_DIR/orchestrator.log') -ge 3 ]]"
logged=$(grep '"decision":{' "$E2E_DIR/orchestrator.log" | jq -s --arg id "${ids[2]}" '[.[] | select(.request_id == $id)]')
e2e_expect "the lost card's decision log line" "$logged" '
  length == 1 and .[0].level == "info" and .[0].trace_id != null
  and .[0].decision.intent.name == "lost_or_stolen_card" and .[0].decision.intent.method == "rule"
  and .[0].decision.decision.rule == "lost_card_freeze" and .[0].decision.decision.outcome == "freeze_card"
  and ([.[0].decision.decision.actions[] | .kind + ":" + .status] == ["freeze_card:done"])
  and (.[0].decision.tools | length > 0 and all(.status == "ok"))
  and (.[0] | tostring | contains("I lost my card") | not)'
e2e_ok "each request's decision record is a JSON line in the orchestrator's log, without the customer's words"

conveyor() { "$CONVEYOR_BIN/conveyor" "$@" --database-url "$CONVEYOR_DATABASE_URL"; }
listed=$(conveyor decisions --since 1h --json) || e2e_fail "conveyor decisions failed"
[[ $(wc -l <<<"$listed") == 3 ]] || e2e_fail "conveyor decisions listed: $listed"
only=$(conveyor decisions --since 1h --intent lost_or_stolen_card --json)
e2e_expect "decisions of one intent" "$(jq -s . <<<"$only")" "
  length == 1 and .[0].request_id == \"${ids[2]}\" and .[0].user_id == \"cust-1\" and .[0].decision.outcome == \"freeze_card\""
[[ -z $(conveyor decisions --since 1h --outcome no_such_outcome) ]] || e2e_fail "an unknown outcome listed something"
[[ $(conveyor decisions --since 1h --outcome freeze_card --json | jq -r .request_id) == "${ids[2]}" ]] ||
    e2e_fail "decisions by outcome"
text=$(conveyor decisions --since 1h --intent lost_or_stolen_card)
printf '%s\n' "$text" >&2
grep -q "^  decision  freeze_card by lost_card_freeze" <<<"$text" && grep -q "^  actions   freeze_card done" <<<"$text" ||
    e2e_fail "the decision log's text: $text"
e2e_ok "conveyor decisions lists the records, by intent and by outcome"

# Costs: the sums are the documents'.
total=$(jq '[.[].cost.total] | add' <<<"$documents")
tools=$(jq '[.[].cost.tools] | add' <<<"$documents")
llm=$(jq '[.[].cost.llm] | add' <<<"$documents")
prompt=$(jq '[.[].cost.prompt_tokens] | add' <<<"$documents")
close() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a - b < 1e-9 && b - a < 1e-9) }'; }
all=$(conveyor costs --since 1h --json) || e2e_fail "conveyor costs failed"
e2e_expect "the costs in all" "$all" ".key == \"all\" and .requests == 3 and .prompt_tokens == $prompt"
close "$(jq .total <<<"$all")" "$total" && close "$(jq .tools <<<"$all")" "$tools" && close "$(jq .llm <<<"$all")" "$llm" ||
    e2e_fail "costs $all, the documents: total $total, tools $tools, llm $llm"
by_user=$(conveyor costs --since 1h --by user --json | jq -s .)
e2e_expect "costs by user" "$by_user" \
    '(map(.key) | sort) == ["cust-1", "cust-2"] and (map(select(.key == "cust-1"))[0].requests == 2)'
close "$(jq 'map(select(.key == "cust-2"))[0].llm' <<<"$by_user")" "$(jq '.[1].cost.llm' <<<"$documents")" ||
    e2e_fail "cust-2's LLM cost: $by_user"
by_stage=$(conveyor costs --since 1h --by stage --json | jq -s .)
close "$(jq 'map(select(.key == "gather"))[0].tools' <<<"$by_stage")" "$tools" &&
    close "$(jq 'map(select(.key == "respond"))[0].llm' <<<"$by_stage")" "$llm" ||
    e2e_fail "costs by stage: $by_stage"
[[ $(conveyor costs --since 1h --by request --json | wc -l) == 3 ]] || e2e_fail "costs by request"
[[ $(conveyor costs --since 1h --by intent --json | jq -r .key | sort | tr '\n' ' ') == *lost_or_stolen_card* ]] ||
    e2e_fail "costs by intent"
conveyor costs --since 1h --by stage | grep -qE '^gather +3 ' || e2e_fail "the costs table"
e2e_ok "conveyor costs adds up the documents' costs, in all and by user, intent, stage and request"

for bad in '' '--since yesterdayish' '--since 1h --by colour' '--since 1h extra'; do
    rc=0
    # shellcheck disable=SC2086
    conveyor costs $bad >/dev/null 2>"$E2E_DIR/bad.err" || rc=$?
    [[ $rc == 2 ]] || e2e_fail "costs $bad: exit $rc, not a usage error: $(cat "$E2E_DIR/bad.err")"
done
grep -q "neither a duration" <(conveyor costs --since yesterdayish 2>&1) || e2e_fail "a bad --since does not say why"
rc=0
"$CONVEYOR_BIN/conveyor" decisions --since 1h --database-url postgresql://nobody@127.0.0.1:1/none >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || e2e_fail "a database away: exit $rc, not a failure (1)"
e2e_ok "bad options are usage errors; a database away is a failure"
