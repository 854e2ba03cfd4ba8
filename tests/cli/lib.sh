# What the CLI's usage tests share: a folder for each run's output, and checks on exit codes and
# output. A test sources it with $bin set to the conveyor binary.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

fail() {
    echo "FAIL - $*" >&2
    echo "  stdout: $(cat "$work/out")" >&2
    echo "  stderr: $(cat "$work/err")" >&2
    exit 1
}

# expect RC ARGS...: runs conveyor ARGS, which must exit RC; output in $work/out and $work/err.
expect() {
    want=$1
    shift
    "$bin" "$@" >"$work/out" 2>"$work/err"
    got=$?
    [ "$got" -eq "$want" ] || fail "conveyor $* exited $got, expected $want"
    echo "ok - conveyor $* exits $want"
}

# has FILE TEXT: FILE (out or err) contains TEXT.
has() {
    grep -qF -- "$2" "$work/$1" || fail "std$1 lacks '$2'"
}

# one_line FILE: FILE holds exactly one line.
one_line() {
    [ "$(wc -l <"$work/$1")" -eq 1 ] || fail "std$1 is not one line"
}
