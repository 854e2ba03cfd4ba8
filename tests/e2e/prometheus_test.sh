#!/usr/bin/env bash
# End to end: a real Prometheus (Debian's package), started here on loopback with a generated
# configuration and conveyor's alert rules, scrapes the whole stack while requests flow:
#   - every service is a target and up; the series Prometheus holds match what was sent: the
#     requests by status, the broker's dispatches, the stages timed, the reply ladder, the LLM's
#     calls and tokens, the tool calls;
#   - the rules of deploy/prometheus/alerts.yml load and evaluate without error, and none fires on
#     a healthy stack (deploy/prometheus/alerts_test.yml fires each from synthetic series);
#   - every query of the dashboard (deploy/grafana/conveyor.json) is PromQL that Prometheus runs,
#     and every metric it names is one a service exposes.
source "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || e2e_fail "prometheus is needed (deploy/local/bootstrap installs Debian's prometheus)"
e2e_setup prometheus
e2e_start_bankapi
e2e_start_fake_llm --default '{"mode": "ok", "content": "You can link it under Cards in the app."}'
e2e_start_orchestrator
declare -A METRICS
for service in intent gatherer decision executor responder; do
    METRICS[$service]=$(e2e_free_port)
done
for service in intent gatherer decision executor; do
    e2e_start_worker "$service" "$service-1" --metrics-listen "127.0.0.1:${METRICS[$service]}"
done
CONVEYOR_LLM_BASE_URL=$E2E_LLM_URL CONVEYOR_LLM_MODEL=stand-in \
    e2e_start_worker responder responder-1 --metrics-listen "127.0.0.1:${METRICS[responder]}"
e2e_wait_ready

# Prometheus: every service a target (scraped each second), the alert rules evaluated each second.
prometheus_port=$(e2e_free_port)
{
    printf 'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
    printf 'rule_files:\n  - %s\n' "$CONVEYOR_SOURCE_DIR/deploy/prometheus/alerts.yml"
    printf 'scrape_configs:\n  - job_name: conveyor-orchestrator\n    static_configs:\n'
    printf '      - targets: ["127.0.0.1:%s"]\n' "$E2E_HTTP_PORT"
    printf '  - job_name: conveyor-workers\n    static_configs:\n'
    for service in "${!METRICS[@]}"; do
        printf '      - targets: ["127.0.0.1:%s"]\n        labels: {service: %s}\n' "${METRICS[$service]}" "$service"
    done
} >"$E2E_DIR/prometheus.yml"
e2e_log "starting Prometheus on 127.0.0.1:$prometheus_port"
prometheus --config.file="$E2E_DIR/prometheus.yml" --storage.tsdb.path="$E2E_DIR/prometheus-data" \
    --web.listen-address="127.0.0.1:$prometheus_port" --log.level=warn >>"$E2E_DIR/prometheus.log" 2>&1 &
E2E_PIDS[prometheus]=$!
PROMETHEUS=http://127.0.0.1:$prometheus_port
e2e_wait 60 "Prometheus to be ready" curl -sf "$PROMETHEUS/-/ready"

# query PROMQL: the scalar value of an instant query's one result, "none" when it has none.
query() {
    curl -sS -G "$PROMETHEUS/api/v1/query" --data-urlencode "query=$1" |
        jq -r 'if .status != "success" then "error: \(.error)" elif (.data.result | length) == 0 then "none"
               else .data.result[0].value[1] end'
}
# expect_value PROMQL VALUE WHAT: waits (up to 30 s: a scrape and an evaluation a second) until
# the query's value is VALUE.
expect_value() {
    local promql=$1 value=$2 what=$3 deadline=$((SECONDS + 30)) got
    until got=$(query "$promql") && [[ $got == "$value" ]]; do
        ((SECONDS < deadline)) || e2e_fail "$what: $promql is $got, not $value"
        sleep 0.5
    done
}

# expect_some PROMQL WHAT: waits (up to 30 s) until the query has a result (a comparison that holds).
expect_some() {
    local deadline=$((SECONDS + 30)) got
    until got=$(query "$1") && [[ $got != none && $got != error* ]]; do
        ((SECONDS < deadline)) || e2e_fail "$2: $1 has no result ($got)"
        sleep 0.5
    done
}

expect_value 'count(up{job=~"conveyor.*"} == 1)' 6 "every service scraped and up"
e2e_ok "Prometheus scrapes the orchestrator and the five workers"

texts=('I lost my card' 'Where is my new card? It still hasnt arrived' 'What is the exchange rate for USD?'
    'I want to know how to top up my account' 'How do I link my new card to the app?')
for text in "${texts[@]}"; do
    e2e_expect "a request" "$(e2e_ask cust-1 "$text")" '.status == "done"'
done
e2e_ok "${#texts[@]} requests answered, one of them by the LLM"

expect_value 'sum(conveyor_requests_total{status="done"})' 5 "the requests Prometheus holds"
expect_value 'sum(conveyor_requests_total{intent="lost_or_stolen_card",method="rule"})' 1 "the lost card, by its rule"
expect_value 'sum(conveyor_dispatches_total{service="intent"})' 5 "the broker's dispatches to the intent workers"
expect_value 'sum(conveyor_stage_duration_seconds_count{stage="respond"})' 5 "the respond stages timed"
expect_value 'count(conveyor_workers{service=~"intent|gatherer|decision|executor|responder"} == 1)' 5 \
    "one worker of each service connected"
expect_value 'sum(conveyor_reply_steps_total{service="responder",rung="llm",outcome="answered"})' 1 \
    "the reply the LLM wrote, on the responder's ladder"
expect_value 'sum(conveyor_llm_calls_total{model="stand-in",outcome="answered"})' 1 "the LLM's calls"
expect_some 'sum(conveyor_llm_tokens_total{model="stand-in",kind="prompt"}) > 0' "the LLM's tokens"
expect_some 'sum(conveyor_tool_calls_total{service="gatherer",status="ok"}) >= 5' "the gatherer's tool calls"
expect_value 'sum(conveyor_request_duration_seconds_count)' 5 "the requests timed"
e2e_ok "Prometheus' series match what was sent: requests, dispatches, stages, ladder, LLM and tools"

# The alert rules: loaded, evaluated without error, none firing.
rules=$(curl -sS "$PROMETHEUS/api/v1/rules")
expected_rules=$(grep -c '^ *- alert:' "$CONVEYOR_SOURCE_DIR/deploy/prometheus/alerts.yml")
e2e_expect "the alert rules" "$rules" \
    "[.data.groups[].rules[]] | length == $expected_rules and all(.health == \"ok\" and .lastEvaluation != \"0001-01-01T00:00:00Z\")"
e2e_expect "the alerts" "$(curl -sS "$PROMETHEUS/api/v1/alerts")" '[.data.alerts[] | select(.state == "firing")] == []'
e2e_ok "the $expected_rules alert rules load and evaluate, and none fires on a healthy stack"

# The dashboard: valid JSON; each query runs; each metric it names is exposed by a service.
dashboard=$CONVEYOR_SOURCE_DIR/deploy/grafana/conveyor.json
jq -e '.panels | length > 0' "$dashboard" >/dev/null || e2e_fail "the dashboard is not valid JSON with panels"
exposed=$E2E_DIR/exposed.txt
for port in "$E2E_HTTP_PORT" "${METRICS[@]}"; do
    curl -sS "http://127.0.0.1:$port/metrics" | awk '$1 == "#" && $2 == "TYPE" { print $3, $4 }'
done | sort -u >"$exposed"
queries=0
while IFS= read -r promql; do
    answer=$(curl -sS -G "$PROMETHEUS/api/v1/query" --data-urlencode "query=$promql")
    [[ $(jq -r .status <<<"$answer") == success ]] || e2e_fail "the dashboard's query $promql: $answer"
    for name in $(grep -oE '\b(conveyor|process)_[a-z_]+' <<<"$promql" | sort -u); do
        base=$name
        [[ $name =~ ^(.*)_(bucket|count|sum)$ ]] && grep -q "^${BASH_REMATCH[1]} histogram$" "$exposed" && base=${BASH_REMATCH[1]}
        grep -q "^$base " "$exposed" || e2e_fail "the dashboard's query $promql names $name, which no service exposes"
    done
    queries=$((queries + 1))
done < <(jq -r '.panels[].targets[]?.expr' "$dashboard")
((queries >= 20)) || e2e_fail "the dashboard has only $queries queries"
e2e_ok "the dashboard's $queries queries run, and every metric they name is exposed"
