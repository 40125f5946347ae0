#!/usr/bin/env bash
# iperf3 TCP throughput between two network namespaces joined by a veth pair, several paths
# one after the other in one run:
#   clear           straight over the veth
#   palisade        through palisaded (one per namespace), host-to-host tunnel mode,
#                   IKEv2 AES-GCM-128/SHA-256/ECP-256, ESP AES-GCM-128
#   palisade_udp    the same with ESP in UDP (force_udp_encapsulation on the initiator),
#                   which palisaded sends with UDP GSO and receives with UDP GRO
#   strongswan      through charon with kernel-libipsec (one per namespace), same suites
#   strongswan_udp  the same with ESP in UDP (encap = yes on the initiator); not run by
#                   default
# Prints one line per path in Mbit/s (receiver side), then the ratios of the Palisade
# paths to strongSwan and to clear. Each path gets fresh namespaces; everything is
# removed on exit.
#
#   sudo benches/netns_throughput.sh
# Environment: SECONDS_PER_PATH (10), PATHS ("clear palisade palisade_udp strongswan"),
#   REPEAT (1; more: the paths take turns that many times, and the ratios are of each
#   path's median),
#   TUN_MTU (palisaded's TUN MTU, 1400 as its default), PALISADED_SETTINGS (more lines
#   for both daemons' configuration files, e.g. $'[dataplane]\nsender_threads = true'),
#   TCP_CC (iperf3's congestion control, e.g. cubic; the system's default otherwise),
#   PERF_DIR (set: `perf record -g` on both palisadeds during the run, a report per
#   daemon written there), COUNTERS=1 (after each Palisade path, print where packets were lost:
#   both daemons' drop counters, the kernel's UDP and TUN/veth counters), KEEP_LOGS=1 (keep the daemons' logs, path printed),
#   CARGO_TARGET_DIR (build directory; release build of palisaded), PALISADED_BIN (run
#   this palisaded instead, e.g. an older build for an A/B comparison).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "netns_throughput.sh: needs root (network namespaces, TUN, charon); run it with sudo" >&2
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
command -v iperf3 >/dev/null 2>&1 || apt_install iperf3
command -v python3 >/dev/null 2>&1 || apt_install python3

SECONDS_PER_PATH=${SECONDS_PER_PATH:-10}
REPEAT=${REPEAT:-1}
PATHS=${PATHS:-clear palisade palisade_udp strongswan}
TUN_MTU=${TUN_MTU:-1400}
PSK="palisade-bench-$$-secret"
ADDR_A=10.77.0.1
ADDR_B=10.77.0.2
TAG="pbt$$"
NS_A="$TAG-a"
NS_B="$TAG-b"
WORK=$(mktemp -d "/tmp/palisade-bench-$TAG.XXXXXX")
PIDS=()

palisade_log "building palisaded (release, $CARGO_TARGET_DIR)"
cargo build --release --locked -q -p palisaded -p palisade-cli
PALISADED="${PALISADED_BIN:-$CARGO_TARGET_DIR/release/palisaded}"
PALISADE="$CARGO_TARGET_DIR/release/palisade"

# Stops what this script started, then deletes the namespaces.
stop_all() {
    stop_pids
    local ns
    for ns in "$NS_A" "$NS_B"; do
        if ip netns list | grep -q "^$ns\b"; then ip netns del "$ns"; fi
    done
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

setup_namespaces() {
    ip netns add "$NS_A"
    ip netns add "$NS_B"
    ip link add "${TAG}a" netns "$NS_A" type veth peer name "${TAG}b" netns "$NS_B"
    local ns dev addr
    for ns in a b; do
        if [ $ns = a ]; then ns=$NS_A dev=${TAG}a addr=$ADDR_A; else ns=$NS_B dev=${TAG}b addr=$ADDR_B; fi
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$addr/24" dev "$dev"
        ip -n "$ns" link set "$dev" up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip netns exec "$NS_A" ping -c1 -W2 "$ADDR_B" >/dev/null
}

# iperf3 from A to B; prints "<Mbit/s received> <retransmits>".
run_iperf() {
    local spid out
    ip netns exec "$NS_B" iperf3 -s -1 -B "$ADDR_B" >"$WORK/iperf3-server.log" 2>&1 &
    spid=$!
    PIDS+=("$spid")
    sleep 0.5
    out=$(ip netns exec "$NS_A" iperf3 -c "$ADDR_B" -B "$ADDR_A" -t "$SECONDS_PER_PATH" ${TCP_CC:+-C "$TCP_CC"} -J)
    wait "$spid" 2>/dev/null || true
    python3 -c 'import json,sys
e = json.load(sys.stdin)["end"]
print("%.1f %s" % (e["sum_received"]["bits_per_second"] / 1e6, e["sum_sent"].get("retransmits", "?")))' <<<"$out"
}

# assert_protected WHAT [ENCAP]: pings A -> B while tcpdump watches A's veth: the path
# must carry the ping as ESP (proto 50, or in UDP on 4500; only in UDP when ENCAP is
# true or yes) and never in clear.
assert_protected() {
    local what=$1 encap=${2:-false} pcap=$WORK/$1-check.pcap tpid esp clear raw
    ip netns exec "$NS_A" tcpdump -i "${TAG}a" -n -U -s 128 -w "$pcap" >/dev/null 2>"$pcap.log" &
    tpid=$!
    PIDS+=("$tpid")
    for _ in $(seq 50); do
        grep -q "listening on" "$pcap.log" 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.2
    ip netns exec "$NS_A" ping -c3 -i0.2 -W2 "$ADDR_B" >/dev/null
    sleep 0.3
    kill -INT "$tpid"
    wait "$tpid" 2>/dev/null || true
    esp=$(tcpdump -nr "$pcap" 'ip proto 50 or (udp port 4500 and udp[8:4] != 0)' 2>/dev/null | wc -l)
    clear=$(tcpdump -nr "$pcap" 'icmp' 2>/dev/null | wc -l)
    if [ "$esp" -lt 6 ] || [ "$clear" -ne 0 ]; then
        echo "$what: expected the pings as ESP only, saw $esp ESP and $clear clear ICMP packets" >&2
        return 1
    fi
    raw=$(tcpdump -nr "$pcap" 'ip proto 50' 2>/dev/null | wc -l)
    if { [ "$encap" = true ] || [ "$encap" = yes ]; } && [ "$raw" -ne 0 ]; then
        echo "$what: expected ESP in UDP only, saw $raw raw ESP packets" >&2
        return 1
    fi
}

# Pings until the tunnel carries traffic (the first packets trigger the negotiation).
wait_for_tunnel() {
    local what=$1
    for _ in $(seq 30); do
        if ip netns exec "$NS_A" ping -c1 -W1 "$ADDR_B" >/dev/null 2>&1; then return 0; fi
    done
    echo "$what: no traffic through the tunnel after 30 attempts" >&2
    return 1
}

# ---------------------------------------------------------------------------- palisade
palisade_policy() {
    local me=$1 peer=$2
    cat <<EOF
[policy]
name = "bench"

[auth_sets.psk]
method = "preshared_key"
key = "$PSK"

[ike_proposal_sets.gcm]
proposals = [{ cipher = "aes_gcm_128_16icv", integrity = "sha_256", dh_group = "ecp_256" }]

[ipsec_proposal_sets.gcm]
proposals = [{ esp = "gcm_aes_128" }]

[[rules]]
name = "peer"
local = "$me"
remote = "$peer"
action = "require"
mode = "tunnel"
tunnel = { local = "$me", remote = "$peer" }
auth = "psk"
ike_proposals = "gcm"
ipsec_proposals = "gcm"
EOF
}

# start_palisaded NS NAME ME PEER [ENCAP]: ENCAP true forces ESP in UDP.
start_palisaded() {
    local ns=$1 name=$2 me=$3 peer=$4 encap=${5:-false} d=$WORK/palisade-$2 pid
    mkdir -p "$d/state"
    palisade_policy "$me" "$peer" >"$d/policy.toml"
    cat >"$d/palisaded.toml" <<EOF
state_dir = "$d/state"
control_socket = "$d/control.sock"
policy_file = "$d/policy.toml"
log = "${PALISADED_LOG:-info}"

[tun]
mtu = $TUN_MTU

[ike]
force_udp_encapsulation = $encap
${PALISADED_SETTINGS:-}
EOF
    ip netns exec "$ns" "$PALISADED" --config "$d/palisaded.toml" >"$d/palisaded.log" 2>&1 &
    pid=$!
    wait_for_palisaded "$name" "$pid" "$d" || return 1
    echo "$pid"
}

# path_palisade [ENCAP]
path_palisade() {
    local pid_a pid_b encap=${1:-false}
    pid_a=$(start_palisaded "$NS_A" a "$ADDR_A" "$ADDR_B" "$encap" | tail -1)
    PIDS+=("$pid_a")
    pid_b=$(start_palisaded "$NS_B" b "$ADDR_B" "$ADDR_A" | tail -1)
    PIDS+=("$pid_b")
    wait_for_tunnel palisade
    assert_protected "palisade$([ "$encap" = true ] && echo _udp)" "$encap"
    if [ -n "${PERF_DIR:-}" ]; then
        mkdir -p "$PERF_DIR"
        (sleep 2; perf record -g -o "$PERF_DIR/palisaded.perf.data" -p "$pid_a,$pid_b" -- sleep 5 \
            >"$PERF_DIR/perf-record.log" 2>&1; echo "$pid_a $pid_b" >"$PERF_DIR/pids") &
        PIDS+=("$!")
    fi
    run_iperf >"$WORK/result"
    if [ "${COUNTERS:-0}" = 1 ]; then print_counters >&2; fi
}

# Where packets were lost: each daemon's non-zero drop counters, the kernel's UDP
# receive errors and each interface's drops (run after iperf3, before teardown).
print_counters() {
    local name ns
    for name in a b; do
        if [ $name = a ]; then ns=$NS_A; else ns=$NS_B; fi
        echo "--- $name: palisade stats (non-zero drops)"
        "$PALISADE" --socket "$WORK/palisade-$name/control.sock" --json stats |
            python3 -c 'import json,sys
s = json.load(sys.stdin)
def walk(v, path):
    if isinstance(v, dict):
        for k, x in v.items(): walk(x, path + [k])
    elif isinstance(v, (int, float)) and v and any("drop" in p or "full" in p or "error" in p for p in path):
        print("  " + ".".join(path), v)
walk(s, [])'
        echo "--- $name: kernel"
        ip netns exec "$ns" nstat -az 2>/dev/null |
            awk '$2 != 0 && /RcvbufErrors|SndbufErrors|InErrors|NoPorts|TCPBacklogDrop|TCPRcvQDrop|OfoQueue/ {print "  " $1, $2}'
        ip -n "$ns" -s -j link show | python3 -c 'import json,sys
for l in json.load(sys.stdin):
    st = l.get("stats64", {})
    for d in ("rx", "tx"):
        s = st.get(d, {})
        print("  %s %s packets %d dropped %d" % (l["ifname"], d, s.get("packets", 0), s.get("dropped", 0)))'
    done
}

path_palisade_udp() {
    path_palisade true
}

# -------------------------------------------------------------------------- strongswan
# start_charon NS NAME ME PEER [ENCAP]: ENCAP yes forces ESP in UDP.
start_charon() {
    local ns=$1 name=$2 me=$3 peer=$4 encap=${5:-no} d=$WORK/charon-$2
    charon_conf "$d" 1
    cat >"$d/swanctl/swanctl.conf" <<EOF
connections {
  bench {
    version = 2
    local_addrs = $me
    remote_addrs = $peer
    proposals = aes128gcm16-prfsha256-ecp256
    encap = $encap
    dpd_delay = 0
    local { auth = psk
            id = $me }
    remote { auth = psk
             id = $peer }
    children { bench { mode = tunnel
                       local_ts = $me/32
                       remote_ts = $peer/32
                       esp_proposals = aes128gcm16
                       start_action = none } }
  }
}
secrets { ike-bench { id-a = $ADDR_A
                      id-b = $ADDR_B
                      secret = "$PSK" } }
EOF
    start_charon_in "$ns" "$d"
    echo "$CHARON_PID"
}

# path_strongswan [ENCAP]
path_strongswan() {
    PIDS+=("$(start_charon "$NS_A" a "$ADDR_A" "$ADDR_B" "${1:-no}" | tail -1)")
    PIDS+=("$(start_charon "$NS_B" b "$ADDR_B" "$ADDR_A" | tail -1)")
    swan "$WORK/charon-a" --initiate --child bench --timeout 20 >"$WORK/charon-a/initiate.log" 2>&1 || {
        cat "$WORK/charon-a/initiate.log" >&2
        return 1
    }
    wait_for_tunnel strongswan
    assert_protected "strongswan$([ "${1:-no}" = yes ] && echo _udp)" "${1:-no}"
    run_iperf >"$WORK/result"
}

path_strongswan_udp() {
    path_strongswan yes
}

path_clear() {
    run_iperf >"$WORK/result"
}

# ------------------------------------------------------------------------------- main
for path in $PATHS; do
    case $path in clear | palisade | palisade_udp | strongswan | strongswan_udp) ;; *)
        echo "unknown path $path (clear, palisade, palisade_udp, strongswan, strongswan_udp)" >&2
        exit 2
        ;;
    esac
done
# Every run's figure per path (space-separated), and the median the ratios are taken of:
# with REPEAT > 1 the paths take turns, so a phase of the machine falls on all of them.
declare -A RUNS MBPS
for round in $(seq "$REPEAT"); do
    for path in $PATHS; do
        palisade_log "path $path: ${SECONDS_PER_PATH}s of iperf3 TCP $ADDR_A -> $ADDR_B$([ "$REPEAT" -gt 1 ] && echo " (round $round of $REPEAT)")"
        setup_namespaces
        # Not in a subshell: the pids the path starts must reach stop_all.
        "path_$path"
        stop_all
        read -r mbps retrans <"$WORK/result"
        RUNS[$path]="${RUNS[$path]:-} $mbps"
        printf '%-14s %10.1f Mbit/s  (retransmits %s)\n' "$path" "$mbps" "$retrans"
    done
done
for path in $PATHS; do
    MBPS[$path]=$(tr ' ' '\n' <<<"${RUNS[$path]}" | sed '/^$/d' | sort -g |
        awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
    if [ "$REPEAT" -gt 1 ]; then
        printf '%-14s %10.1f Mbit/s  median of%s\n' "$path" "${MBPS[$path]}" "${RUNS[$path]}"
    fi
done

ratio() {
    local num=${MBPS[$1]:-} den=${MBPS[$2]:-}
    if [ -n "$num" ] && [ -n "$den" ]; then
        awk -v n="$num" -v d="$den" -v l="$1/$2" 'BEGIN { printf "%-28s %.3f\n", l, (d > 0 ? n / d : 0) }'
    fi
}
ratio palisade strongswan
ratio palisade_udp strongswan
ratio palisade_udp strongswan_udp
ratio palisade clear
ratio palisade_udp clear
if [ -n "${PERF_DIR:-}" ] && [ -f "$PERF_DIR/palisaded.perf.data" ]; then
    read -r pid_a pid_b <"$PERF_DIR/pids"
    for side in a b; do
        if [ $side = a ]; then pid=$pid_a; else pid=$pid_b; fi
        perf report -i "$PERF_DIR/palisaded.perf.data" --pid "$pid" --no-children --stdio \
            --percent-limit 1 -g none >"$PERF_DIR/report-$side.txt" 2>/dev/null || true
    done
    echo "perf reports of palisaded (a: sender, b: receiver): $PERF_DIR/report-{a,b}.txt"
fi
