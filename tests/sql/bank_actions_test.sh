#!/usr/bin/env bash
# Tests the demo bank's write path (deploy/sql/migrations/0006_bank_write_path.sql) against a real
# PostgreSQL, on a migrated and seeded bank: each action does its change once per idempotency key
# (the same key again replays the recorded outcome and changes nothing, also when two sessions
# send it at once), re-checks its precondition under lock (two keys for one payment refund it
# once), refuses with the reason when the precondition no longer holds, and an action's key is
# never another kind's. Then the roles (deploy/sql/roles.sql): the executor's login may call the
# actions and write no table directly; the gatherer's and nobody else may call them.
#
# Needs CONVEYOR_TEST_PG_URL: the owner's URL of a migrated, seeded database with the roles in
# place (ctest gives it a copy of the pg fixture's template).
set -euo pipefail

[[ -n "${CONVEYOR_TEST_PG_URL:-}" ]] || { echo "FAIL: CONVEYOR_TEST_PG_URL is not set" >&2; exit 1; }
url=$CONVEYOR_TEST_PG_URL
# the same database as another role: postgresql://ROLE@HOST:PORT/DB
as_role() { sed -E "s#^postgresql://[^@]*@#postgresql://$1@#" <<<"$url"; }
executor=$(as_role conveyor_executor)
gatherer=$(as_role conveyor_gatherer)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL - $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
# q [URL] SQL: one value, unaligned.
q() { psql -X -q -v ON_ERROR_STOP=1 -tA -d "$url" -c "$1"; }
q_as() { psql -X -q -v ON_ERROR_STOP=1 -tA -d "$1" -c "$2"; }
# expect NAME JSON JQ: the filter holds for the JSON.
expect() { jq -e "$3" <<<"$2" >/dev/null || fail "$1: $2"; }

# freeze_card: done, replayed, refused; the card frozen once
first=$(q_as "$executor" "select bank.freeze_card('freeze-1', 'cust-1', 'card-1-1')")
expect "freeze" "$first" '.outcome == "done" and .replayed == false and .last4 == "4417" and .status == "frozen"'
again=$(q_as "$executor" "select bank.freeze_card('freeze-1', 'cust-1', 'card-1-1')")
expect "freeze replayed" "$again" '.outcome == "done" and .replayed == true and .card_id == "card-1-1"'
[[ $(q "select status from bank.cards where id = 'card-1-1'") == frozen ]] || fail "card-1-1 is not frozen"
other=$(q_as "$executor" "select bank.freeze_card('freeze-2', 'cust-1', 'card-1-1')")
expect "freeze a frozen card" "$other" '.outcome == "refused" and .reason == "the card is frozen, not active"'
theirs=$(q_as "$executor" "select bank.freeze_card('freeze-3', 'cust-2', 'card-1-1')")
expect "freeze another customer's card" "$theirs" '.outcome == "refused" and .reason == "the customer has no such card"'
[[ $(q "select count(*) from bank.applied_actions where kind = 'freeze_card'") == 3 ]] || fail "three freeze keys"
ok "freeze_card: once per key, refused when the card is no longer active or not the customer's"

# a key is one action's: another kind with it is an error, and nothing changes
if q_as "$executor" "select bank.cancel_transfer('freeze-1', 'cust-1', 'tr-1-1')" 2>"$tmp/kind.err"; then
    fail "a freeze key was taken by cancel_transfer"
fi
grep -q "idempotency key freeze-1 was applied by freeze_card, not cancel_transfer" "$tmp/kind.err" ||
    fail "the kind error: $(cat "$tmp/kind.err")"
# ... and to its parameters: the same key for another customer or card is an error, never a
# replay that would hand them this outcome
if q_as "$executor" "select bank.freeze_card('freeze-1', 'cust-2', 'card-2-1')" 2>"$tmp/params.err"; then
    fail "a freeze key replayed for other parameters"
fi
grep -q "idempotency key freeze-1 was applied with other parameters" "$tmp/params.err" ||
    fail "the parameters error: $(cat "$tmp/params.err")"
ok "an idempotency key belongs to one kind of action, with its parameters"

# refund_transaction: a payment refundable today (completed, recent, not refunded), sent twice at
# once with one key, then with another key: one refund
payment=$(q "select t.id from bank.transactions t join bank.accounts a on a.id = t.account_id
              where a.customer_id = 'cust-1' and t.kind = 'card_payment' and t.status = 'completed'
                and t.created_at > now() - interval '60 days'
                and not exists (select from bank.refunds r where r.transaction_id = t.id)
              order by t.created_at desc limit 1")
[[ -n $payment ]] || fail "cust-1 has no refundable payment"
# at_once NAME CALL_A CALL_B: A runs CALL_A in a transaction it keeps open; once B, running
# CALL_B, is seen waiting for a lock A holds, A commits. Their outputs in $tmp/NAME.a and .b.
at_once() {
    local name=$1
    { printf 'begin;\n\\pset tuples_only on\n\\pset format unaligned\nselect %s;\n' "$2"
      # stays open until B waits (the fifo is written below)
      printf '\\! cat %s/%s.go >/dev/null\ncommit;\n' "$tmp" "$name"; } >"$tmp/$name.sql"
    mkfifo "$tmp/$name.go"
    psql -X -q -v ON_ERROR_STOP=1 -d "$executor" -f "$tmp/$name.sql" >"$tmp/$name.a" 2>&1 &
    local a=$!
    # A holds the lock once its call has returned inside the transaction
    local deadline=$((SECONDS + 20))
    until [[ -s $tmp/$name.a ]]; do [[ $SECONDS -lt $deadline ]] || fail "$name: A did not run"; sleep 0.05; done
    q_as "$executor" "select $3" >"$tmp/$name.b" 2>&1 &
    local b=$!
    until [[ $(q "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and usename = 'conveyor_executor'") -ge 1 ]]; do
        [[ $SECONDS -lt $deadline ]] || fail "$name: B never waited for A's lock"
        sleep 0.05
    done
    echo go >"$tmp/$name.go"
    wait "$a" || fail "$name: A failed: $(cat "$tmp/$name.a")"
    wait "$b" || fail "$name: B failed: $(cat "$tmp/$name.b")"
}
at_once same_key "bank.refund_transaction('refund-1', 'cust-1', '$payment', null)" \
    "bank.refund_transaction('refund-1', 'cust-1', '$payment', null)"
outcomes=$(cat "$tmp/same_key.a" "$tmp/same_key.b" | jq -s -c '[.[] | [.outcome, .replayed]]')
[[ $outcomes == '[["done",false],["done",true]]' ]] || fail "one key at once twice: $outcomes"
[[ $(q "select count(*) from bank.refunds where transaction_id = '$payment'") == 1 ]] || fail "not one refund"
later=$(q_as "$executor" "select bank.refund_transaction('refund-2', 'cust-1', '$payment', null)")
expect "a second key for one payment" "$later" '.outcome == "refused" and .reason == "the payment is refunded already"'
ok "refund_transaction: one refund for one key sent twice at once, refused for a second key"

# two keys for one payment at once: the precondition is read under lock, so one refund
payment=$(q "select t.id from bank.transactions t join bank.accounts a on a.id = t.account_id
              where t.kind = 'card_payment' and t.status = 'completed' and t.created_at > now() - interval '60 days'
                and not exists (select from bank.refunds r where r.transaction_id = t.id)
              order by t.id limit 1")
customer=$(q "select a.customer_id from bank.transactions t join bank.accounts a on a.id = t.account_id where t.id = '$payment'")
at_once race "bank.refund_transaction('race-1', '$customer', '$payment', null)" \
    "bank.refund_transaction('race-2', '$customer', '$payment', null)"
outcomes=$(cat "$tmp/race.a" "$tmp/race.b" | jq -s -c '[.[].outcome]')
[[ $outcomes == '["done","refused"]' ]] || fail "two keys at once: $outcomes"
[[ $(q "select count(*) from bank.refunds where transaction_id = '$payment'") == 1 ]] || fail "two keys: not one refund"
none=$(q_as "$executor" "select bank.refund_transaction('refund-3', 'cust-1', 'tx-none', 5)")
expect "no such payment" "$none" '.outcome == "refused" and .reason == "the customer has no such transaction"'
# amounts: more than the payment, not positive, or finer than a cent are refused, as given
partial=$(q "select t.id || ' ' || t.amount from bank.transactions t join bank.accounts a on a.id = t.account_id
              where a.customer_id = '$customer' and t.kind = 'card_payment' and t.status = 'completed'
                and t.created_at > now() - interval '60 days'
                and not exists (select from bank.refunds r where r.transaction_id = t.id) limit 1")
read -r partial_id partial_amount <<<"$partial"
[[ -n $partial_id ]] || fail "$customer has no second refundable payment"
for amount in "$partial_amount + 0.01" 0 -1 0.001 1000000000000000; do
    refusal=$(q_as "$executor" "select bank.refund_transaction('amount-$RANDOM', '$customer', '$partial_id', $amount)")
    expect "refund of $amount" "$refusal" '.outcome == "refused" and (.reason | contains("is not an amount of cents"))'
done
half=$(q_as "$executor" "select bank.refund_transaction('amount-half', '$customer', '$partial_id', 0.01)")
expect "a partial refund" "$half" '.outcome == "done" and .amount == "0.01"'
ok "refund_transaction: two keys at once for one payment refund it once; amounts checked as given"

# cancel_transfer: a pending one, once
transfer=$(q "select tr.id from bank.transfers tr join bank.accounts a on a.id = tr.account_id
               where a.customer_id = 'cust-1' and tr.status = 'pending' limit 1")
[[ -n $transfer ]] || fail "cust-1 has no pending transfer"
done_=$(q_as "$executor" "select bank.cancel_transfer('cancel-1', 'cust-1', '$transfer')")
expect "cancel" "$done_" '.outcome == "done" and .recipient_name == "Sean Murphy"'
[[ $(q "select status from bank.transfers where id = '$transfer'") == cancelled ]] || fail "not cancelled"
again=$(q_as "$executor" "select bank.cancel_transfer('cancel-2', 'cust-1', '$transfer')")
expect "cancel again" "$again" '.outcome == "refused" and .reason == "the transfer is cancelled, not pending"'
ok "cancel_transfer: a pending transfer cancelled once"

# order_replacement_card: for a frozen card whose account has no card on its way
card=$(q "select c.id from bank.cards c where c.status = 'active' and not exists (
              select from bank.cards o where o.account_id = c.account_id and o.status in ('ordered', 'shipped'))
          order by c.id limit 1")
owner=$(q "select customer_id from bank.cards where id = '$card'")
refused=$(q_as "$executor" "select bank.order_replacement_card('replace-0', '$owner', '$card')")
expect "replace an active card" "$refused" '.outcome == "refused" and (.reason | startswith("the card is active"))'
expect "freeze before replacing" "$(q_as "$executor" "select bank.freeze_card('freeze-9', '$owner', '$card')")" '.outcome == "done"'
new=$(q_as "$executor" "select bank.order_replacement_card('replace-1', '$owner', '$card')")
expect "replace" "$new" ".outcome == \"done\" and .replaces == \"$card\" and (.last4 | test(\"^[0-9]{4}\$\"))"
new_id=$(jq -r .card_id <<<"$new")
[[ $(q "select status from bank.cards where id = '$new_id' and customer_id = '$owner'") == ordered ]] || fail "no new card"
replay=$(q_as "$executor" "select bank.order_replacement_card('replace-1', '$owner', '$card')")
expect "replace replayed" "$replay" ".replayed and .card_id == \"$new_id\""
second=$(q_as "$executor" "select bank.order_replacement_card('replace-2', '$owner', '$card')")
expect "replace twice" "$second" '.outcome == "refused" and .reason == "a new card for this account is on its way already"'
[[ $(q "select count(*) from bank.cards where customer_id = '$owner' and status = 'ordered'") == 1 ]] || fail "two new cards"
ok "order_replacement_card: one new card for a frozen card, none while one is on its way"

# the roles: the executor writes no table itself; nobody else may act
for sql in "update bank.cards set status = 'active' where id = 'card-1-1'" \
           "insert into bank.applied_actions (idempotency_key, kind, params, outcome, result) values ('x', 'x', '{}', 'done', '{}')" \
           "select count(*) from requests"; do
    if q_as "$executor" "$sql" 2>"$tmp/denied.err"; then fail "the executor may: $sql"; fi
    grep -q "permission denied" "$tmp/denied.err" || fail "$sql: $(cat "$tmp/denied.err")"
done
# the actions' log is not a tool's to read
if q_as "$gatherer" "select count(*) from bank.applied_actions" 2>"$tmp/log.err"; then fail "the gatherer reads the actions"; fi
grep -q "permission denied for table applied_actions" "$tmp/log.err" || fail "gatherer: $(cat "$tmp/log.err")"
if q_as "$gatherer" "select bank.freeze_card('gatherer-1', 'cust-1', 'card-1-2')" 2>"$tmp/role.err"; then
    fail "the gatherer may freeze a card"
fi
grep -q "permission denied for function freeze_card" "$tmp/role.err" || fail "gatherer: $(cat "$tmp/role.err")"
[[ $(q "select has_function_privilege('public', 'bank.refund_transaction(text, text, text, numeric)', 'execute')") == f ]] ||
    fail "PUBLIC may refund"
[[ $(q "select count(*) from bank.applied_actions where idempotency_key = 'gatherer-1'") == 0 ]] || fail "a key was taken"
ok "roles: the executor acts only through the write path, and only it may"
echo "PASS"
