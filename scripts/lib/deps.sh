# shellcheck shell=bash
# Installs what Palisade's tests and demo need, only where it is missing.
# Sourced by scripts/test.sh, scripts/demo.sh and .ci/run.

palisade_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_updated=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        palisade_log "apt-get not found: install these packages by hand: $*"
        return 1
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ "$apt_updated" -eq 0 ]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

# Rust 1.85 or newer (edition 2024). Debian's own rustc is too old, so rustup it is.
ensure_rust() {
    if [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if command -v cargo >/dev/null 2>&1; then
        return 0
    fi
    palisade_log "cargo not found: installing Rust with rustup"
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
    command -v cc >/dev/null 2>&1 || apt_install build-essential
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
}

# The C compiler aws-lc-sys builds with.
ensure_cc() {
    command -v cc >/dev/null 2>&1 || apt_install build-essential
}

# scapy (with cryptography) is the independent ESP/AH implementation the tests check
# Palisade against, byte for byte.
ensure_python_deps() {
    command -v python3 >/dev/null 2>&1 || apt_install python3
    if python3 -c 'import scapy.layers.ipsec, cryptography' 2>/dev/null; then
        return 0
    fi
    palisade_log "installing scapy and cryptography (pip)"
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    python3 -m pip install --quiet scapy cryptography 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages scapy cryptography
}

# strongSwan is the reference IKEv2 peer of the interop tests, which run it in network
# namespaces: charon-systemd (pulls swanctl), kernel-libipsec (libcharon-extra-plugins:
# ESP in userspace, the kernel here has no ESP) and openssl (libstrongswan-standard-plugins:
# AES-GCM, ECP and x25519). Those tests need root, so without root there is nothing to do.
ensure_strongswan() {
    [ "$(id -u)" -eq 0 ] || return 0
    local plugins=/usr/lib/ipsec/plugins missing=()
    [ -x /usr/sbin/charon-systemd ] || missing+=(charon-systemd)
    [ -e "$plugins/libstrongswan-kernel-libipsec.so" ] || missing+=(libcharon-extra-plugins)
    [ -e "$plugins/libstrongswan-openssl.so" ] || missing+=(libstrongswan-standard-plugins)
    command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing+=(iproute2)
    [ "${#missing[@]}" -eq 0 ] && return 0
    palisade_log "installing strongSwan for the interop tests: ${missing[*]}"
    apt_install "${missing[@]}"
    # The tests start their own charon in their own namespaces; the system-wide one
    # Debian enables on install is not wanted (on a machine booted with systemd).
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now strongswan.service >/dev/null 2>&1 || true
    fi
}

# What palisaded runs on and the end-to-end tests look with: iproute2 (namespaces,
# routes), nftables and iptables (the fail-closed rules; iptables for the NFQUEUE
# target), ping, tcpdump (captures that prove only IKE and ESP cross a link). Root only, as
# the tests that use them.
ensure_net_tools() {
    [ "$(id -u)" -eq 0 ] || return 0
    local missing=()
    command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing+=(iproute2)
    command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
    command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing+=(iptables)
    command -v tcpdump >/dev/null 2>&1 || [ -x /usr/bin/tcpdump ] || missing+=(tcpdump)
    command -v ping >/dev/null 2>&1 || [ -x /usr/bin/ping ] || missing+=(iputils-ping)
    # systemd-analyze checks the shipped units (crates/daemon/tests/systemd_units.rs), and
    # e2e_systemd.rs runs them under systemd as PID 1 of a namespaced machine.
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    [ "${#missing[@]}" -eq 0 ] && return 0
    palisade_log "installing network tools: ${missing[*]}"
    apt_install "${missing[@]}"
}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/palisade/target}"
mkdir -p "$CARGO_TARGET_DIR" 2>/dev/null || export CARGO_TARGET_DIR="$HOME/.cache/palisade/target"

# The build output outlives clones. Clones at different paths share it (Cargo names a
# workspace's crates by their path inside the workspace, not on the disk): each rebuilds
# what the last one changed, and a binary one built (target/release/palisaded) is the
# other's after the other builds. Incremental state grows with each change, so the
# directory only grows (64 GB filled the CI disk once). Past a cap, or when
# the disk runs low, the debug builds go and the next build starts cold (some minutes on
# two cores); release builds (benchmarks, the demo) are kept unless they alone are over.
trim_target_dir() {
    local cap_gb="${PALISADE_TARGET_CAP_GB:-25}" min_free_gb="${PALISADE_MIN_FREE_GB:-8}"
    local used_kb free_kb
    [ -d "$CARGO_TARGET_DIR" ] || return 0
    used_kb=$(du -sk "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1)
    free_kb=$(df -Pk "$CARGO_TARGET_DIR" 2>/dev/null | awk 'NR == 2 { print $4 }')
    used_kb=${used_kb:-0}
    free_kb=${free_kb:-0}
    if [ "$used_kb" -le $((cap_gb * 1024 * 1024)) ] && [ "$free_kb" -ge $((min_free_gb * 1024 * 1024)) ]; then
        return 0
    fi
    palisade_log "build output $((used_kb / 1024 / 1024)) GB, $((free_kb / 1024 / 1024)) GB free: removing $CARGO_TARGET_DIR/debug"
    rm -rf "${CARGO_TARGET_DIR:?}/debug"
    used_kb=$(du -sk "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1)
    if [ "${used_kb:-0}" -gt $((cap_gb * 1024 * 1024)) ]; then
        palisade_log "still over ${cap_gb} GB: removing all of $CARGO_TARGET_DIR"
        rm -rf "${CARGO_TARGET_DIR:?}"/*
    fi
}
