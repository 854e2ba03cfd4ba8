#!/usr/bin/env bash
# Tests the SQL migrations and the demo bank generator against a real PostgreSQL:
# the migrations apply, bank.generate() is deterministic (and independent of the session
# TimeZone), later migrations' generator gives the rows 0002's gave and leaves the schema's
# constraints and indexes as they were, the seed matters, every cust-1 guarantee of
# 0002_demo_bank.sql holds, the knowledge base has an article for each of the 77 intents
# (0004_kb_all_intents.sql), and size 1 works.
#
# Needs CONVEYOR_TEST_PG_URL: a superuser URL to an empty database the test may use (it
# creates schema bank and the core tables, and drops them again at the end unless
# CONVEYOR_TEST_KEEP=1). ctest gives it one from the pg fixture; without it the test fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
migrations="$root/deploy/sql/migrations"
# The 77 intent names (Banking77, PolyAI, CC BY 4.0; see data/banking77/NOTICE.md), which the
# pipeline writes without characters outside [A-Za-z0-9_.:-] (learn/learn_examples.h).
intents=$(tr -d '\n' <"$root/data/banking77/categories.json")
as_of='2026-01-15 12:00+00'

if [[ -z "${CONVEYOR_TEST_PG_URL:-}" ]]; then
    echo "FAIL: CONVEYOR_TEST_PG_URL is not set (ctest sets it from the pg fixture)" >&2
    exit 1
fi
url=$CONVEYOR_TEST_PG_URL
# Everything the test prints or compares is rendered in UTC.
export PGTZ=UTC

fail() {
    echo "FAIL - $*" >&2
    exit 1
}

# Runs SQL, prints unaligned tuples-only output.
q() {
    psql -X -q -v ON_ERROR_STOP=1 -tA -d "$url" -c "$1"
}

# check NAME SQL: SQL must return exactly 't'.
check() {
    local got
    got=$(q "$2") || fail "$1 (query error)"
    [[ "$got" == t ]] || fail "$1 (got '$got')"
    echo "ok - $1"
}

# One md5 per bank table, over all its rows in key order.
fingerprint() {
    q "select string_agg(t || '=' || h, ' ' order by t) from (
        select 'customers' t, md5(coalesce(string_agg(x::text, '|' order by x.id), '')) h from bank.customers x
        union all select 'accounts', md5(coalesce(string_agg(x::text, '|' order by x.id), '')) from bank.accounts x
        union all select 'cards', md5(coalesce(string_agg(x::text, '|' order by x.id), '')) from bank.cards x
        union all select 'transactions', md5(coalesce(string_agg(x::text, '|' order by x.id), '')) from bank.transactions x
        union all select 'transfers', md5(coalesce(string_agg(x::text, '|' order by x.id), '')) from bank.transfers x
        union all select 'topups', md5(coalesce(string_agg(x::text, '|' order by x.id), '')) from bank.topups x
        union all select 'refunds', md5(coalesce(string_agg(x::text, '|' order by x.id), '')) from bank.refunds x
        union all select 'exchange_rates', md5(coalesce(string_agg(x::text, '|' order by x.base, x.quote), '')) from bank.exchange_rates x
        union all select 'kb_articles', md5(coalesce(string_agg(x::text, '|' order by x.slug), '')) from bank.kb_articles x
    ) z"
}

generate() {
    q "select bank.generate($1, $2, '$as_of')"
}

# The cust-1 guarantees documented at the top of 0002_demo_bank.sql.
check_cust1() {
    local T="'$as_of'::timestamptz" label=$1
    check "$label: cust-1 exists" \
        "select exists (select 1 from bank.customers where id = 'cust-1')"
    check "$label: cust-1 has an account in EUR" \
        "select exists (select 1 from bank.accounts where customer_id = 'cust-1' and currency = 'EUR')"
    check "$label: cust-1 has an active card ending 4417" \
        "select exists (select 1 from bank.cards
                        where customer_id = 'cust-1' and last4 = '4417' and status = 'active')"
    check "$label: cust-1 has a shipped card arriving within the next days" \
        "select exists (select 1 from bank.cards
                        where customer_id = 'cust-1' and status = 'shipped' and last4 = '9052'
                          and shipped_at <= $T and delivery_tracking <> ''
                          and expected_arrival > ($T at time zone 'UTC')::date
                          and expected_arrival <= ($T at time zone 'UTC')::date + 7)"
    check "$label: cust-1 has a completed card payment in the last 3 days (Lidl 23.47)" \
        "select exists (select 1 from bank.transactions t join bank.accounts a on a.id = t.account_id
                        where a.customer_id = 'cust-1' and t.kind = 'card_payment' and t.status = 'completed'
                          and t.created_at between $T - interval '3 days' and $T
                          and t.merchant = 'Lidl' and t.amount = 23.47 and t.card_id is not null)"
    check "$label: cust-1 has a pending transfer" \
        "select exists (select 1 from bank.transfers t join bank.accounts a on a.id = t.account_id
                        where a.customer_id = 'cust-1' and t.status = 'pending' and t.expected_at > $T)"
    check "$label: cust-1 has a failed top-up with a failure reason" \
        "select exists (select 1 from bank.topups t join bank.accounts a on a.id = t.account_id
                        where a.customer_id = 'cust-1' and t.status = 'failed'
                          and coalesce(t.failure_reason, '') <> '')"
    check "$label: cust-1 was charged twice (Deliveroo 18.90, same day, minutes apart)" \
        "select exists (select 1 from bank.transactions t1
                          join bank.transactions t2 on t2.account_id = t1.account_id and t2.id <> t1.id
                          join bank.accounts a on a.id = t1.account_id
                        where a.customer_id = 'cust-1'
                          and t1.kind = 'card_payment' and t2.kind = 'card_payment'
                          and t1.status = 'completed' and t2.status = 'completed'
                          and t1.merchant = t2.merchant and t1.amount = t2.amount
                          and t1.merchant = 'Deliveroo' and t1.amount = 18.90
                          and (t1.created_at at time zone 'UTC')::date = (t2.created_at at time zone 'UTC')::date
                          and t2.created_at - t1.created_at between interval '1 minute' and interval '15 minutes'
                          and t2.created_at <= $T)"
    check "$label: cust-1 has an unrecognised-looking card payment" \
        "select exists (select 1 from bank.transactions
                        where id = 'tx-1-1-10' and merchant = 'SQ *BLUE HERON TRADING' and amount = 42.80)"
    check "$label: cust-1 has a refund requested for the Zara payment" \
        "select exists (select 1 from bank.refunds r join bank.transactions t on t.id = r.transaction_id
                        where r.status = 'requested' and t.merchant = 'Zara' and t.account_id = 'acc-1-1')"
}

# Shape of the whole data set.
check_shape() {
    local T="'$as_of'::timestamptz" label=$1
    check "$label: every customer has 1-2 accounts" \
        "select coalesce(bool_and(n between 1 and 2), false) from (
             select count(a.id) n from bank.customers c left join bank.accounts a on a.customer_id = c.id group by c.id) x"
    check "$label: every customer has 1-3 cards, every account a card" \
        "select coalesce(bool_and(n between 1 and 3), false)
                and not exists (select 1 from bank.accounts a
                                where a.customer_id <> 'cust-1'
                                  and not exists (select 1 from bank.cards k where k.account_id = a.id))
         from (select count(k.id) n from bank.customers c left join bank.cards k on k.customer_id = c.id group by c.id) x"
    check "$label: every customer has 5-40 transactions" \
        "select coalesce(bool_and(n between 5 and 40), false) from (
             select count(t.id) n from bank.customers c
             left join bank.accounts a on a.customer_id = c.id
             left join bank.transactions t on t.account_id = a.id group by c.id) x"
    check "$label: nothing happened after as_of" \
        "select not exists (select 1 from bank.transactions where created_at > $T)
            and not exists (select 1 from bank.transfers where created_at > $T)
            and not exists (select 1 from bank.topups where created_at > $T)
            and not exists (select 1 from bank.refunds where created_at > $T)"
    check "$label: card payments are on a card of the same account" \
        "select not exists (select 1 from bank.transactions t left join bank.cards k on k.id = t.card_id
                            where t.kind = 'card_payment' and (k.id is null or k.account_id <> t.account_id))"
    check "$label: transaction currency is the account's" \
        "select not exists (select 1 from bank.transactions t join bank.accounts a on a.id = t.account_id
                            where t.currency <> a.currency)"
    check "$label: at least 12 exchange rates including EUR/GBP and GBP/EUR" \
        "select count(*) >= 12 and bool_or(base = 'EUR' and quote = 'GBP') and bool_or(base = 'GBP' and quote = 'EUR')
         from bank.exchange_rates"
    check "$label: knowledge base covers the demo intents" \
        "select count(*) >= 15 and array['card_arrival', 'lost_or_stolen_card', 'request_refund',
                    'pending_transfer', 'top_up_failed', 'exchange_rate', 'card_payment_not_recognised',
                    'transaction_charged_twice'] <@ array_agg(intent)
         from bank.kb_articles"
    check "$label: knowledge base has an article for every Banking77 intent" \
        "select array(select distinct intent from bank.kb_articles order by 1)
                = array(select regexp_replace(name, '[^A-Za-z0-9_.:-]', '', 'g')
                          from jsonb_array_elements_text('$intents'::jsonb) name order by 1)"
    check "$label: knowledge base search finds the card arrival article" \
        "select slug = 'card-arrival' from bank.kb_articles, websearch_to_tsquery('english', 'when will my card arrive') q
         where tsv @@ q order by ts_rank(tsv, q) desc, slug limit 1"
}

# --- migrations ---------------------------------------------------------------------------

[[ "$(q "select to_regclass('public.requests') is null and to_regnamespace('bank') is null")" == t ]] ||
    fail "the database behind CONVEYOR_TEST_PG_URL is not empty (public.requests or schema bank exists)"

cleanup() {
    if [[ "${CONVEYOR_TEST_KEEP:-}" != 1 ]]; then
        q "drop schema if exists bank cascade;
           drop table if exists public.actions, public.checkpoints, public.requests" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# apply FILE...: applies each migration as `conveyor migrate` does, in its own transaction.
apply() {
    local f
    for f in "$@"; do
        # conveyor migrate owns the transaction and the version table.
        if grep -qiE '^[[:space:]]*(begin|commit|rollback)[[:space:]]*;' "$f"; then
            fail "$(basename "$f") contains its own BEGIN/COMMIT"
        fi
        if grep -qiE 'create[[:space:]]+table[[:space:]]+(if[[:space:]]+not[[:space:]]+exists[[:space:]]+)?(public\.)?schema_migrations' "$f"; then
            fail "$(basename "$f") creates schema_migrations"
        fi
        psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$url" -f "$f" >/dev/null ||
            fail "$(basename "$f") does not apply"
        echo "ok - $(basename "$f") applies"
    done
}

# The schema bank's constraints and indexes, one definition a line.
schema_keys() {
    q "select string_agg(d, E'\n' order by d) from (
        select conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) d
          from pg_constraint where connamespace = 'bank'::regnamespace
        union all select indexdef from pg_indexes where schemaname = 'bank') x"
}

apply "$migrations/0001_core.sql" "$migrations/0002_demo_bank.sql"

check "core tables exist" \
    "select to_regclass('public.requests') is not null and to_regclass('public.checkpoints') is not null
        and to_regclass('public.actions') is not null"
check "idempotency key is unique per user" \
    "select count(*) = 1 from pg_indexes where tablename = 'requests' and indexdef ilike '%unique%(user_id, idempotency_key)%'"

# --- later migrations ---------------------------------------------------------------------

# The generator as 0002 wrote it, to compare its successors with.
generate 50 7 >/dev/null
fp0=$(fingerprint)
later=()
for f in "$migrations"/*.sql; do
    case "$(basename "$f")" in 0001_* | 0002_*) ;; *) later+=("$f") ;; esac
done
apply "${later[@]}"

# --- determinism --------------------------------------------------------------------------

keys0=$(schema_keys)

[[ "$(generate 50 7)" == 50 ]] || fail "generate(50, 7) does not return 50"
echo "ok - generate(50, 7) returns 50"
fp1=$(fingerprint)
generate 50 7 >/dev/null
fp2=$(fingerprint)
[[ "$fp1" == "$fp2" ]] || fail "two runs of generate(50, 7) differ: $fp1 / $fp2"
echo "ok - generate(50, 7) twice gives identical data"
# The knowledge base is not the generator's: 0004 rewrote its articles on purpose.
without_kb() { sed -E 's/(^| )kb_articles=[0-9a-f]+//' <<<"$1"; }
[[ "$(without_kb "$fp0")" == "$(without_kb "$fp1")" ]] ||
    fail "generate(50, 7) no longer gives the rows 0002's generator gave: $fp0 / $fp1"
echo "ok - generate(50, 7) gives the rows 0002's generator gave"
# It sets constraints and indexes aside while it loads: they must all be back, as they were.
[[ "$(schema_keys)" == "$keys0" ]] || fail "generate changed the constraints or indexes of schema bank:
$(diff <(echo "$keys0") <(schema_keys))"
check "schema bank has its foreign keys and indexes" \
    "select count(*) filter (where contype = 'f') >= 8 from pg_constraint where connamespace = 'bank'::regnamespace"
echo "ok - generate leaves the constraints and indexes of schema bank as they were"

# A session in another time zone (with a 45-minute offset) must produce the same rows.
psql -X -q -v ON_ERROR_STOP=1 -d "$url" \
    -c "set timezone = 'Pacific/Chatham'" -c "select bank.generate(50, 7, '$as_of')" >/dev/null
fp3=$(fingerprint)
[[ "$fp1" == "$fp3" ]] || fail "generate(50, 7) depends on the session TimeZone"
echo "ok - generate(50, 7) does not depend on the session TimeZone"

check_cust1 "size 50"
check_shape "size 50"

generate 50 8 >/dev/null
fp4=$(fingerprint)
[[ "$fp1" != "$fp4" ]] || fail "seeds 7 and 8 give the same data"
[[ "${fp1%% *}" != "${fp4%% *}" ]] || fail "seeds 7 and 8 give the same accounts"
echo "ok - a different seed gives different data"
check_cust1 "size 50 seed 8"

# --- small and invalid sizes --------------------------------------------------------------

[[ "$(generate 1 7)" == 1 ]] || fail "generate(1, 7) does not return 1"
check "size 1: exactly one customer" "select count(*) = 1 from bank.customers"
check_cust1 "size 1"
check_shape "size 1"

if q "select bank.generate(0, 7)" >/dev/null 2>&1; then
    fail "generate(0, 7) was accepted"
fi
echo "ok - generate(0, 7) is refused"

echo "ok - demo bank"
