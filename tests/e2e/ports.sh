# Free TCP ports for the shell tests, handed out under one lock shared by every test on the machine,
# so that two tests running at once never get the same port between the pick and the bind.
#
# Source it from bash. ports_take prints a port below the kernel's ephemeral range (32768-60999)
# that nothing listens on and no live test holds, and records it in CONVEYOR_PORTS_DIR as held by
# the sourcing shell ($$, the same in a command substitution); ports_release frees the shell's
# ports, and a port whose holder has exited is free again without it. ports_hold hands a port to
# another process, for one that must outlive the shell (a server the shell starts and leaves).
# shellcheck shell=bash
CONVEYOR_PORTS_DIR=${CONVEYOR_PORTS_DIR:-${TMPDIR:-/tmp}/conveyor-test-ports}

ports_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ports_take() {
    mkdir -p "$CONVEYOR_PORTS_DIR" || return 1
    (
        exec 9>>"$CONVEYOR_PORTS_DIR/lock"
        flock -w 30 9 || exit 1
        for _ in $(seq 1 200); do
            port=$((20000 + RANDOM % 12768))
            owner=$(cat "$CONVEYOR_PORTS_DIR/$port" 2>/dev/null || true)
            [[ -n $owner && -d /proc/$owner ]] && continue
            ports_busy "$port" && continue
            echo $$ >"$CONVEYOR_PORTS_DIR/$port" || exit 1
            echo "$port"
            exit 0
        done
        exit 1
    )
}

# ports_hold PORT PID: PORT, which this shell holds, is held by PID from now on (until PID exits).
ports_hold() {
    (
        exec 9>>"$CONVEYOR_PORTS_DIR/lock"
        flock -w 30 9 || exit 1
        [[ $(cat "$CONVEYOR_PORTS_DIR/$1" 2>/dev/null) == "$$" && $2 =~ ^[0-9]+$ && -d /proc/$2 ]] || exit 1
        echo "$2" >"$CONVEYOR_PORTS_DIR/$1"
    )
}

ports_release() {
    local file
    for file in "$CONVEYOR_PORTS_DIR"/[0-9]*; do
        [[ -f $file && $(cat "$file" 2>/dev/null) == "$$" ]] && rm -f "$file"
    done
    return 0
}
