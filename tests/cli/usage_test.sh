#!/bin/sh
# The conveyor CLI as a user meets it: --help everywhere, unknown commands and options, missing
# and extra arguments, the exit codes `conveyor --help` documents (0 done, 1 failed, 2 usage),
# and migrate / seed against a closed port: exit 1 with a one-line error.
#   usage_test.sh PATH_TO_CONVEYOR
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
# The defaults must not come from the caller's environment.
unset CONVEYOR_DATABASE_URL CONVEYOR_TIMEOUT_MS CONVEYOR_ORCHESTRATOR_CONTROL CONVEYOR_CUSTOMERS CONVEYOR_SEED
unset CONVEYOR_URL CONVEYOR_USER CONVEYOR_TEXT CONVEYOR_JSON
closed=postgresql://conveyor@127.0.0.1:1/conveyor   # port 1: nothing listens there

expect 0 --help
has out "usage: conveyor COMMAND [options]"
has out "probe"
has out "migrate"
has out "seed"
has out "exit status:"
has out "2  usage error"
expect 0 help
has out "usage: conveyor COMMAND [options]"
expect 0 --version
has out "conveyor "

expect 2
has err "usage: conveyor COMMAND [options]"
expect 2 nosuchcommand
has err "conveyor: unknown command 'nosuchcommand' (see conveyor --help)"
one_line err

expect 0 probe --help
has out "usage: conveyor probe SERVICE|ENDPOINT [options]"
has out "--timeout-ms"
has out "CONVEYOR_ORCHESTRATOR_CONTROL, default tcp://127.0.0.1:5556"
expect 0 help probe
has out "usage: conveyor probe SERVICE|ENDPOINT [options]"
expect 0 migrate --help
has out "usage: conveyor migrate [options]"
has out "CONVEYOR_DATABASE_URL, default postgresql://conveyor@127.0.0.1:55432/conveyor"
expect 0 seed --help
has out "--customers"
has out "default 1000"
has out "default 42"

expect 2 probe
has err "conveyor probe: expects one SERVICE or ENDPOINT"
one_line err
expect 2 probe nosuchservice
has err "no service named 'nosuchservice'"
expect 2 probe responder intent
expect 2 probe --bogus tcp://127.0.0.1:1
has err "unknown option --bogus"
expect 2 probe --timeout-ms 0 tcp://127.0.0.1:1
has err "outside 1..600000"
expect 2 probe --timeout-ms
has err "--timeout-ms needs a value"
expect 2 migrate extra
has err "conveyor migrate: takes no arguments"
expect 2 seed --customers many
has err "many is not a whole number"
expect 2 seed --customers 0
CONVEYOR_TIMEOUT_MS=soon "$bin" probe tcp://127.0.0.1:1 >"$work/out" 2>"$work/err"
[ $? -eq 2 ] || fail "a bad CONVEYOR_TIMEOUT_MS is not a usage error"
has err "CONVEYOR_TIMEOUT_MS"

# nothing listens: exit 1 with one line that says so, nothing on stdout
expect 1 migrate --database-url "$closed"
has err "conveyor migrate: cannot reach the database:"
one_line err
[ ! -s "$work/out" ] || fail "migrate printed to stdout when it failed"
CONVEYOR_DATABASE_URL=$closed "$bin" seed --customers 5 >"$work/out" 2>"$work/err"
[ $? -eq 1 ] || fail "seed against a closed port did not exit 1"
has err "conveyor seed: cannot reach the database:"
one_line err
echo "ok - migrate and seed against a closed port"

# tools test: its help, its refusals, and an orchestrator that is not there (a connection error is 2)
expect 0 tools test --help
has out "usage: conveyor tools test INTENT --user USER [--slot NAME=VALUE ...] [options]"
has out "--slot NAME=VALUE (repeatable)"
has out "CONVEYOR_URL, default http://127.0.0.1:8080"
expect 0 help tools
has out "usage: conveyor tools test INTENT"
expect 2 tools
has err "usage: conveyor tools test INTENT"
expect 2 tools frob
has err "conveyor tools: unknown subcommand 'frob'"
one_line err
expect 2 tools test --user cust-1
has err "conveyor tools test: expects one INTENT"
expect 2 tools test card_arrival
has err "conveyor tools test: --user is required"
expect 2 tools test card_arrival --user cust-1 --slot
has err "--slot needs NAME=VALUE"
expect 2 tools test card_arrival --user cust-1 --slot last4
has err "--slot takes NAME=VALUE, not 'last4'"
expect 2 tools test card_arrival --user cust-1 --url ftp://x
has err "--url must be an http:// or https:// URL"
expect 2 tools test card_arrival --user cust-1 --bogus
expect 2 tools test card_arrival --user cust-1 --slot last4=4417 --url http://127.0.0.1:1
has err "conveyor tools test: cannot reach http://127.0.0.1:1/v1/tools/test"
one_line err
[ ! -s "$work/out" ] || fail "tools test printed to stdout when it failed"
echo "ok - tools test usage and a closed port"
