# shellcheck shell=bash
# What the benchmark scripts share: stopping the processes they started, and charon (the
# strongSwan daemon) in a namespace with its own configuration directory.
# Sourced by benches/netns_throughput.sh and benches/ike_setups.sh; they keep the pids of
# what they start in the array PIDS.

# Stops every process in PIDS (TERM, then KILL after 5 s) and reaps it.
stop_pids() {
    local pid
    for pid in "${PIDS[@]}"; do
        if [ -e "/proc/$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            [ -e "/proc/$pid" ] || break
            sleep 0.1
        done
        if [ -e "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}

# swanctl against the charon whose directory is $1.
swan() {
    local d=$1
    shift
    STRONGSWAN_CONF="$d/strongswan.conf" SWANCTL_DIR="$d/swanctl" swanctl "$@"
}

# Writes $1/strongswan.conf; $2 is the file log's default level, $3 more lines for the
# `charon` section. The plugin list is explicit: kernel-libipsec (ESP in userspace; the
# kernel here may have no ESP) before kernel-netlink, nothing with a fixed socket path;
# the fwmark pair keeps charon's own packets out of a host-to-host tunnel. Also makes the
# swanctl directories charon expects.
charon_conf() {
    local d=$1 level=$2 extra=${3:-} s
    mkdir -p "$d/run"
    for s in x509 x509ca x509ocsp x509aa x509ac x509crl pubkey private rsa ecdsa bliss pkcs8 pkcs12; do
        mkdir -p "$d/swanctl/$s"
    done
    cat >"$d/strongswan.conf" <<CONF
charon-systemd { journal { default = -1 } }
charon {
  filelog { charonlog { path = $d/charon.log
                        append = no
                        default = $level } }
$extra
  load_modular = no
  load = random nonce openssl kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
  routing_table = 220
  routing_table_prio = 220
  plugins {
    vici { socket = unix://$d/charon.vici }
    kernel-libipsec { allow_peer_ts = yes }
    socket-default { fwmark = 0x42 }
    kernel-netlink { fwmark = !0x42 }
  }
}
swanctl { socket = unix://$d/charon.vici
          load = pem pkcs1 x509 pubkey openssl random nonce }
CONF
}

# Starts charon in namespace $1 with the configuration in $2 (charon_conf and a
# swanctl.conf), waits for its VICI socket, loads the connections and sets CHARON_PID.
# `ip netns exec` gives its child a mount namespace of its own: the bind mount over /run
# (charon's fixed socket and pid paths) stays there; sh execs charon.
start_charon_in() {
    local ns=$1 d=$2
    STRONGSWAN_CONF="$d/strongswan.conf" ip netns exec "$ns" \
        sh -c 'mount --bind "$1" /run && exec "$2"' sh "$d/run" /usr/sbin/charon-systemd \
        >"$d/stdout.log" 2>&1 </dev/null &
    CHARON_PID=$!
    PIDS+=("$CHARON_PID")
    for _ in $(seq 100); do
        if [ -S "$d/charon.vici" ] && swan "$d" --stats >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    swan "$d" --load-all --noprompt >"$d/load.log" 2>&1 || {
        cat "$d/load.log" "$d/charon.log" >&2
        return 1
    }
}

# wait_for_palisaded NAME PID DIR: waits up to 15 s for the palisaded started as PID to
# open DIR/control.sock; prints the end of DIR/palisaded.log and fails if it exits
# first, kills it and fails if it never does.
wait_for_palisaded() {
    local name=$1 pid=$2 d=$3
    for _ in $(seq 150); do
        [ -S "$d/control.sock" ] && return 0
        if ! [ -e "/proc/$pid" ]; then
            echo "palisaded $name exited:" >&2
            tail -20 "$d/palisaded.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "palisaded $name: no control socket after 15 s" >&2
    kill -KILL "$pid" 2>/dev/null || true
    return 1
}
