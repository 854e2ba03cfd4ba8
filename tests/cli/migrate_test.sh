#!/usr/bin/env bash
# `conveyor migrate` and `conveyor seed` against a real PostgreSQL (the `pg` fixture), in a fresh,
# empty database of the test's own: migrate applies every migration, a second run applies none,
# seed fills the demo bank and its customers are there.
#   migrate_test.sh PATH_TO_CONVEYOR PATH_TO_PG_FIXTURE   (CONVEYOR_TEST_PG_DIR from ctest)
set -euo pipefail
bin=$1
fixture=$2
dir=${CONVEYOR_TEST_PG_DIR:?run through ctest: the pg fixture sets CONVEYOR_TEST_PG_DIR}
db=cli_migrate_test
unset CONVEYOR_CUSTOMERS CONVEYOR_SEED

fail() {
    echo "FAIL - $*" >&2
    exit 1
}

url=$(bash "$fixture" createdb "$dir" "$db" empty)
cleanup() {
    psql -X -q -d "${url%/*}/postgres" -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
q() {
    psql -X -q -v ON_ERROR_STOP=1 -tA -d "$url" -c "$1"
}
export CONVEYOR_DATABASE_URL=$url

migrations=$(cd "$(dirname "$0")/../../deploy/sql/migrations" && pwd)
count=$(find "$migrations" -maxdepth 1 -name '*.sql' | wc -l)
last=$(basename "$(find "$migrations" -maxdepth 1 -name '*.sql' | sort | tail -n 1)")
latest=$((10#${last%%[!0-9]*}))
out=$("$bin" migrate) || fail "first migrate failed"
echo "$out"
[[ $out == "applied $count migration"*" in "*"; schema version $latest" ]] || fail "first migrate said '$out'"
[[ $(q "select count(*) from schema_migrations") == "$count" ]] || fail "schema_migrations does not list $count"
echo "ok - migrate applies all $count migrations"

out=$("$bin" migrate --database-url "$url") || fail "second migrate failed"
echo "$out"
[[ $out == "applied 0 migrations: already up to date; schema version $latest" ]] || fail "second migrate said '$out'"
echo "ok - migrate again applies none"

out=$("$bin" seed --customers 20 --seed 1) || fail "seed failed"
echo "$out"
[[ $out == "seeded the demo bank with 20 customers (seed 1) in "*" s: "*" accounts, "*" top-ups" ]] ||
    fail "seed said '$out'"
[[ $(q "select count(*) from bank.customers where id in ('cust-1', 'cust-20')") == 2 ]] ||
    fail "cust-1 and cust-20 are not both there"
[[ $(q "select count(*) from bank.customers") == 20 ]] || fail "not 20 customers"
[[ $(q "select name from bank.customers where id = 'cust-1'") == "Alex Morgan" ]] || fail "cust-1 is not Alex Morgan"
accounts=$(q "select count(*) from bank.accounts")
[[ $out == *": $accounts accounts, "* ]] || fail "seed reported other account numbers than there are ($accounts)"
echo "ok - seed made cust-1 .. cust-20"

# the same size and seed give the same data
before=$(q "select md5(string_agg(x::text, '|' order by x.id)) from bank.accounts x")
"$bin" seed --customers 20 --seed 1 >/dev/null || fail "second seed failed"
[[ $(q "select md5(string_agg(x::text, '|' order by x.id)) from bank.accounts x") == "$before" ]] ||
    fail "seeding twice with the same seed differs"
echo "ok - seed is deterministic"

# a database without the demo bank: seed says to migrate first
bash "$fixture" createdb "$dir" "${db}_empty" empty >/dev/null
empty=${url%/*}/${db}_empty
set +e
err=$("$bin" seed --customers 5 --database-url "$empty" 2>&1 >/dev/null)
rc=$?
set -e
psql -X -q -d "${url%/*}/postgres" -c "drop database if exists ${db}_empty with (force)" >/dev/null
[[ $rc -eq 1 && $err == "conveyor seed: this database has no demo bank (bank.generate): run \`conveyor migrate\` first" ]] ||
    fail "seed without migrations: exit $rc, '$err'"
echo "ok - seed before migrate says what to do"
