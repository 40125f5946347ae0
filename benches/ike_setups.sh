#!/usr/bin/env bash
# IKE_SA + CHILD_SA setups per second a responder completes over loopback: palisaded,
# then strongSwan's charon (kernel-libipsec), in one run, each in a fresh network
# namespace of its own with the load generator (crates/daemon/examples/ike_load.rs)
# beside it. The generator keeps CONCURRENCY negotiations in flight, each from a fresh
# 127.1.x.y source address, and counts the CHILD_SAs completed in SECONDS_PER_RESPONDER.
# Suites: IKE AES-GCM-128 / PRF HMAC-SHA-256 / ECP-256, PSK; ESP AES-GCM-128.
# Prints one line per responder, the ratio palisade/strongswan, and each responder's
# CPU time per setup (its user + system time over the run / setups).
#
#   sudo benches/ike_setups.sh
# Environment: PALISADED_BIN (another palisaded, for A/B runs), SECONDS_PER_RESPONDER (10),
#   CONCURRENCY (16), RESPONDERS
#   ("palisade strongswan"), IPV6=1 (leave IPv6 on in the namespace), KEEP_LOGS=1,
#   PERF_DIR (perf record -g on palisaded), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "ike_setups.sh: needs root (network namespaces, palisaded, charon); run it with sudo" >&2
    exit 1
fi

# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh
ensure_rust
ensure_cc
ensure_net_tools
ensure_strongswan

SECONDS_PER_RESPONDER=${SECONDS_PER_RESPONDER:-10}
CONCURRENCY=${CONCURRENCY:-16}
RESPONDERS=${RESPONDERS:-palisade strongswan}
PSK="palisade-ike-bench-$$-secret"
TAG="pik$$"
NS="$TAG-ns"
WORK=$(mktemp -d "/tmp/palisade-ike-bench-$TAG.XXXXXX")
PIDS=()

palisade_log "building palisaded and the ike_load example (release, $CARGO_TARGET_DIR)"
cargo build --release --locked -q -p palisaded --bin palisaded --example ike_load
PALISADED="${PALISADED_BIN:-$CARGO_TARGET_DIR/release/palisaded}"
IKE_LOAD="$CARGO_TARGET_DIR/release/examples/ike_load"

stop_all() {
    stop_pids
    if ip netns list | grep -q "^$NS\b"; then ip netns del "$NS"; fi
}

cleanup() {
    local rc=$?
    stop_all
    if [ "${KEEP_LOGS:-0}" = 1 ]; then
        echo "logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# IPv6 is off in the namespace unless IPV6=1, as in the figures of BENCHMARKS.md (taken
# while palisaded still looped its TUN's IPv6 router solicitations through its data
# plane; since 84ff494 it drops them).
setup_namespace() {
    ip netns add "$NS"
    if [ "${IPV6:-0}" != 1 ]; then
        ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    fi
    ip -n "$NS" link set lo up
}

# user + system CPU seconds of a process so far.
cpu_seconds() {
    local hz
    hz=$(getconf CLK_TCK)
    awk -v hz="$hz" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

# Runs the generator against 127.0.0.1 and measures the responder `pid`'s CPU time.
load() {
    local name=$1 pid=$2 mode=$3 before after out
    before=$(cpu_seconds "$pid")
    out=$(ip netns exec "$NS" "$IKE_LOAD" --responder 127.0.0.1 --psk "$PSK" --mode "$mode" \
        --seconds "$SECONDS_PER_RESPONDER" --concurrency "$CONCURRENCY")
    after=$(cpu_seconds "$pid")
    echo "$out" >"$WORK/$name.load"
    awk -v b="$before" -v a="$after" '{ print } END { printf "responder_cpu_s=%.2f\n", a - b }' \
        "$WORK/$name.load" >"$WORK/result"
}

# ---------------------------------------------------------------------------- palisade
path_palisade() {
    local d=$WORK/palisade pid
    mkdir -p "$d/state"
    # Transport mode: a tunnel rule names one remote gateway, and every setup here comes
    # from another address.
    cat >"$d/policy.toml" <<EOF
[policy]
name = "ike-bench"

[auth_sets.psk]
method = "preshared_key"
key = "$PSK"

[ike_proposal_sets.gcm]
proposals = [{ cipher = "aes_gcm_128_16icv", integrity = "sha_256", dh_group = "ecp_256" }]

[ipsec_proposal_sets.gcm]
proposals = [{ esp = "gcm_aes_128" }]

[[rules]]
name = "load"
local = "127.0.0.1"
remote = "127.1.0.0/16"
action = "require"
auth = "psk"
ike_proposals = "gcm"
ipsec_proposals = "gcm"
EOF
    cat >"$d/palisaded.toml" <<EOF
state_dir = "$d/state"
control_socket = "$d/control.sock"
policy_file = "$d/policy.toml"
log = "info"
EOF
    ip netns exec "$NS" "$PALISADED" --config "$d/palisaded.toml" >"$d/palisaded.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_for_palisaded responder "$pid" "$d"
    sleep 0.5
    if [ -n "${PERF_DIR:-}" ]; then
        mkdir -p "$PERF_DIR"
        (sleep 1; perf record -g -o "$PERF_DIR/palisaded-ike.perf.data" -p "$pid" -- sleep 5 \
            >"$PERF_DIR/perf-record-ike.log" 2>&1) &
        PIDS+=("$!")
    fi
    load palisade "$pid" transport
}

# -------------------------------------------------------------------------- strongswan
path_strongswan() {
    local d=$WORK/charon
    # kernel-libipsec only does tunnel mode. The IKE SA table gets buckets for thousands
    # of SAs (its default is one bucket, a list); logging at the level palisaded's
    # `info` has (one line per SA). Everything else is charon's default: 16 threads,
    # cookies above 30 half-open IKE SAs.
    charon_conf "$d" 0 "  ikesa_table_size = 4096
  ikesa_table_segments = 16"
    cat >"$d/swanctl/swanctl.conf" <<EOF
connections {
  load {
    version = 2
    local_addrs = 127.0.0.1
    remote_addrs = 127.1.0.0/16
    proposals = aes128gcm16-prfsha256-ecp256
    dpd_delay = 0
    local { auth = psk
            id = 127.0.0.1 }
    remote { auth = psk }
    children { load { mode = tunnel
                      esp_proposals = aes128gcm16
                      start_action = none } }
  }
}
secrets { ike-load { secret = "$PSK" } }
EOF
    start_charon_in "$NS" "$d"
    load strongswan "$CHARON_PID" tunnel
}

# ------------------------------------------------------------------------------- main
declare -A RATE
for r in $RESPONDERS; do
    case $r in palisade | strongswan) ;; *)
        echo "unknown responder $r (palisade, strongswan)" >&2
        exit 2
        ;;
    esac
    palisade_log "responder $r: ${SECONDS_PER_RESPONDER}s, $CONCURRENCY negotiations in flight"
    setup_namespace
    "path_$r"
    stop_all
    line=$(head -1 "$WORK/result")
    cpu=$(sed -n 's/^responder_cpu_s=//p' "$WORK/result")
    setups=$(sed -n 's/.*setups=\([0-9]*\).*/\1/p' <<<"$line")
    rate=$(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' <<<"$line")
    RATE[$r]=$rate
    per_setup=$(awk -v c="$cpu" -v n="$setups" 'BEGIN { printf "%.2f", (n > 0 ? c * 1000 / n : 0) }')
    printf '%-11s %8.1f setups/s  (responder CPU %.2f s, %s ms per setup; %s)\n' \
        "$r" "$rate" "$cpu" "$per_setup" "$line"
done
if [ -n "${RATE[palisade]:-}" ] && [ -n "${RATE[strongswan]:-}" ]; then
    awk -v p="${RATE[palisade]}" -v s="${RATE[strongswan]}" \
        'BEGIN { printf "%-20s %.3f\n", "palisade/strongswan", (s > 0 ? p / s : 0) }'
fi
if [ -n "${PERF_DIR:-}" ] && [ -f "$PERF_DIR/palisaded-ike.perf.data" ]; then
    perf report -i "$PERF_DIR/palisaded-ike.perf.data" --no-children --stdio --percent-limit 1 \
        >"$PERF_DIR/report-ike.txt" 2>/dev/null || true
    echo "perf report of palisaded: $PERF_DIR/report-ike.txt"
fi
