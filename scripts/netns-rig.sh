#!/usr/bin/env bash
# A test rig for "a graph that spans hosts" on one machine (issue 16, point 6): two or three network
# namespaces standing in for hosts.
#
#   scripts/netns-rig.sh up [N]            N = 2 or 3 (default 2): namespaces agrig-a, agrig-b (, agrig-c);
#                                          prints one line per namespace: ns=agrig-a addr=10.231.0.1
#   scripts/netns-rig.sh down              removes every namespace and link named agrig-* (idempotent;
#                                          also after a partial or crashed `up`)
#   scripts/netns-rig.sh exec NS CMD...    runs CMD inside NS (agrig-a or just a)
#   scripts/netns-rig.sh loss NS PERCENT   drops PERCENT % (0-100; 0 removes the rule) of the packets
#                                          arriving in NS over its link (nftables `numgen random mod 100`);
#                                          exit 3 with one line when nft is not installed
#   scripts/netns-rig.sh status            prints the lines of `up` for the namespaces that exist
#
# Topology: every node namespace has one veth pair whose other end sits in a hub namespace,
# agrig-hub, enslaved to a bridge there (a switch of its own). Why not the root namespace: joining
# namespaces to each other through the root one needs either IP forwarding there or a bridge there,
# and on this host the root namespace has br_netfilter on (bridge-nf-call-iptables=1), so bridged
# packets would cross the host's firewall; both would change the host. With the hub, nothing outside
# agrig-* namespaces is configured, the root namespace only briefly holds a new veth pair before it
# is moved, and `ip link set agrig-X down` (inside NS) or `ip -n agrig-hub link set agrig-X-hub
# down` cuts one host off the others, as a switch port going down would.
#
#   agrig-a [agrig-a 10.231.0.1/24] ──veth── [agrig-a-hub] ┐
#   agrig-b [agrig-b 10.231.0.2/24] ──veth── [agrig-b-hub] ├─ agrig-br (bridge, no address) in agrig-hub
#   agrig-c [agrig-c 10.231.0.3/24] ──veth── [agrig-c-hub] ┘
#
# Addresses come only from 10.231.0.0/24 and only inside these namespaces. The root namespace cannot
# reach them (nothing routes there): run clients with `exec` (or `ip netns exec`).
#
# One rig at a time: `up` records the process that asked for it (its parent, or $AGRIG_OWNER) in
# /run/agrig-rig/owner and refuses (exit 3) while that process is alive and the rig exists; a rig
# left by a process that died is removed and rebuilt. Exit codes: 0 done, 1 a step failed (`up` has
# removed what it made), 2 cannot run here (not root, no `ip netns`), 3 refused or skipped, 64 usage.
set -uo pipefail

prog=netns-rig
# A second, independent rig (e.g. `actorgraph cluster`'s, beside the tests' one): AGRIG_PREFIX names its
# namespaces and links (default agrig; 2-7 lower-case letters), AGRIG_NET its /24 (default 10.231.0).
prefix=${AGRIG_PREFIX:-agrig}
net=${AGRIG_NET:-10.231.0}
[[ "$prefix" =~ ^[a-z]{2,7}$ ]] || { echo "netns-rig: AGRIG_PREFIX must be 2-7 lower-case letters (got '$prefix')" >&2; exit 64; }
[[ "$net" =~ ^10\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "netns-rig: AGRIG_NET must be 10.X.Y (got '$net')" >&2; exit 64; }
state_dir=/run/$prefix-rig
names=(a b c)
nft_table=${prefix}_loss

die() { echo "$prog: $2" >&2; exit "$1"; }

require_root_and_netns() {
    [ "$(id -u)" = 0 ] || die 2 "needs root (ip netns add); run as root or skip"
    command -v ip >/dev/null 2>&1 || die 2 "the ip command (iproute2) is not installed"
    ip netns list >/dev/null 2>&1 || die 2 "ip netns does not work here: $(ip netns list 2>&1 | head -n 1)"
}

# agrig-a or a -> agrig-a; anything else is refused (never a namespace this script did not create).
ns_name() {
    local n=${1#"$prefix"-}
    case "$n" in a|b|c) echo "$prefix-$n" ;; *) die 64 "unknown namespace '$1' ($prefix-a, $prefix-b or $prefix-c)" ;; esac
}

addr_of() { # a -> 10.231.0.1
    case "$1" in a) echo "$net.1" ;; b) echo "$net.2" ;; c) echo "$net.3" ;; esac
}

existing_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$prefix-" || true; }

print_lines() {
    local n
    for n in "${names[@]}"; do
        ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$prefix-$n" && echo "ns=$prefix-$n addr=$(addr_of "$n")"
    done
    return 0
}

do_down() {
    local ns link
    # nftables rules live inside the namespaces and go with them; removed first anyway, so a rule
    # never outlives its reason should a namespace deletion fail.
    if command -v nft >/dev/null 2>&1; then
        for ns in $(existing_namespaces); do
            ip netns exec "$ns" nft delete table inet "$nft_table" >/dev/null 2>&1 || true
        done
    fi
    # Deleting a namespace destroys its veth ends, and a veth's peer goes with it.
    for ns in $(existing_namespaces); do
        ip netns delete "$ns" 2>/dev/null || ip netns delete "$ns" 2>/dev/null || echo "$prog: could not delete namespace $ns" >&2
    done
    # A partial `up` may have left a pair in the root namespace before moving it.
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^$prefix-" || true); do
        ip link delete "$link" 2>/dev/null || true
    done
    rm -rf "$state_dir"
    local left
    left="$(existing_namespaces) $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^$prefix-" || true)"
    if [ -n "${left// /}" ]; then
        echo "$prog: left behind: $left" >&2
        return 1
    fi
    return 0
}

do_up() {
    local count=${1:-2}
    case "$count" in 2|3) ;; *) die 64 "up takes 2 or 3 namespaces (got '$count')" ;; esac
    local owner=${AGRIG_OWNER:-$PPID}
    if [ -n "$(existing_namespaces)" ]; then
        local previous
        previous=$(cat "$state_dir/owner" 2>/dev/null || echo "")
        if [ -n "$previous" ] && kill -0 "$previous" 2>/dev/null; then
            die 3 "a rig is already up (owner pid $previous); run 'scripts/netns-rig.sh down' first"
        fi
        do_down || die 1 "could not remove the rig left by pid ${previous:-unknown}"
    fi

    # From here on, any failing step removes everything made so far.
    # A global, not a local: the EXIT trap runs after the function's locals are gone.
    up_done=0
    trap 'if [ "$up_done" = 0 ]; then echo "$prog: up failed; removing what it made" >&2; do_down >/dev/null 2>&1; exit 1; fi' EXIT
    set -e
    mkdir -p "$state_dir"
    echo "$owner" > "$state_dir/owner"

    ip netns add "$prefix-hub"
    ip -n "$prefix-hub" link set lo up
    ip -n "$prefix-hub" link add "$prefix-br" type bridge
    ip -n "$prefix-hub" link set "$prefix-br" up
    local i n ns
    for ((i = 0; i < count; i++)); do
        n=${names[$i]}
        ns=$prefix-$n
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # Created in the root namespace (the only place both ends can be named), moved at once.
        ip link add "$prefix-$n" type veth peer name "$prefix-$n-hub"
        ip link set "$prefix-$n" netns "$ns"
        ip link set "$prefix-$n-hub" netns "$prefix-hub"
        ip -n "$prefix-hub" link set "$prefix-$n-hub" master "$prefix-br"
        ip -n "$prefix-hub" link set "$prefix-$n-hub" up
        ip -n "$ns" addr add "$(addr_of "$n")/24" dev "$prefix-$n"
        ip -n "$ns" link set "$prefix-$n" up
    done
    set +e
    up_done=1
    trap - EXIT
    print_lines
}

do_exec() {
    [ $# -ge 2 ] || die 64 "usage: $prog exec NS CMD..."
    local ns
    ns=$(ns_name "$1") || exit $?
    shift
    ip netns list | awk '{print $1}' | grep -qx "$ns" || die 1 "namespace $ns does not exist (run up first)"
    exec ip netns exec "$ns" "$@"
}

do_loss() {
    [ $# -eq 2 ] || die 64 "usage: $prog loss NS PERCENT"
    local ns percent=$2
    ns=$(ns_name "$1") || exit $?
    [[ "$percent" =~ ^[0-9]+$ ]] && [ "$percent" -le 100 ] || die 64 "loss percent must be 0...100 (got '$percent')"
    ip netns list | awk '{print $1}' | grep -qx "$ns" || die 1 "namespace $ns does not exist (run up first)"
    command -v nft >/dev/null 2>&1 || die 3 "loss skipped: nft is not installed (apt-get install -y nftables)"
    ip netns exec "$ns" nft delete table inet "$nft_table" >/dev/null 2>&1 || true
    [ "$percent" = 0 ] && { echo "$prog: $ns loss 0 %"; return 0; }
    # Inbound only, on the rig link only (lo untouched): a round trip crossing two namespaces with
    # loss on one of them loses PERCENT % of its requests or replies there.
    ip netns exec "$ns" nft -f - <<EOF || die 1 "nft refused the loss rule in $ns"
table inet $nft_table {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "$ns" numgen random mod 100 < $percent drop
    }
}
EOF
    echo "$prog: $ns loss $percent %"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    up) require_root_and_netns; do_up "$@" ;;
    down) require_root_and_netns; do_down ;;
    exec) require_root_and_netns; do_exec "$@" ;;
    loss) require_root_and_netns; do_loss "$@" ;;
    status) require_root_and_netns; print_lines ;;
    *) die 64 "usage: $prog up [2|3] | down | exec NS CMD... | loss NS PERCENT | status" ;;
esac
