#!/usr/bin/env bash
# The daemons on a realistic network: three network namespaces joined by
# veth pairs, as in a 6TiSCH deployment.
#
#   pledge ns  --(link-local only)--  JP ns  --(ULA fd00:c0:1::/64)--  JRC ns
#   fe80::2                  fe80::1 | fd00:c0:1:0:800::1            fd00:c0:1::c0
#
# The JP listens on its link-local address for pledges and reaches the
# JRC over the ULA link; no IPv6 forwarding anywhere (the JP is an
# application-layer proxy, RFC 9031 section 7.1).  The JP joins the JRC
# first (--id); a second JP whose blacklist names the EUI-64 behind the
# pledge's link-local address drops its datagrams; three pledges join
# through the first, then a rekey reaches the JP's node over the ULA
# link at the address the JRC derives from the JP's pledge id and the
# network prefix (RFC 9031 section 8.2.1: the JP is provisioned without
# an address; its ULA is the prefix and the interface identifier of its
# EUI-64), and join requests sent to the JP's ULA from that link are not
# relayed.  A capture inside the JRC namespace shows
# that the JRC never sees a link-local address of the pledge link, not
# even inside a payload (the JP's token is sealed, RFC 8974).
#
#   tests/integration/netns.sh [path/to/cojp]
#
# Needs root (CAP_NET_ADMIN); without it prints "netns: skipped (...)"
# and exits 0.  Last line: netns: N passed, N failed
set -u
NAME=netns
COJP=${1:-${COJP:-build/cojp}}
COJP=$(cd "$(dirname "$COJP")" && pwd)/$(basename "$COJP")
T=$(mktemp -d /tmp/cojp-netns-XXXXXX)
# shellcheck source=tests/integration/lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
lib_init
DB=$T/jrc.db

# names unique to this run (interface names: at most 15 characters)
tag=$$
NSP=cojp$tag-pledge NSJ=cojp$tag-jp NSR=cojp$tag-jrc
VP=cjp${tag}p VJ=cjp${tag}j   # pledge <-> JP
VK=cjp${tag}k VR=cjp${tag}r   # JP <-> JRC
# the JP's ULA: the prefix and the interface identifier of its pledge id
# 0a00000000000001 (RFC 4291 Appendix A: the U/L bit inverted, 0a -> 08);
# the JRC's: one no pledge id of this test derives
PLEDGE_LL=fe80::2 JP_LL=fe80::1 JP_ULA=fd00:c0:1:0:800::1 JRC_ULA=fd00:c0:1::c0
NODE_PREFIX=fd00:c0:1::/64

skip() {
    echo "netns: skipped ($1)"
    exit 0
}

echo "=== namespaces"
command -v ip >/dev/null 2>&1 || skip "no ip command"
[ -x "$COJP" ] || abort "no binary at $COJP"
if ! ip netns add "$NSP" 2>"$T/ns.err"; then
    skip "cannot create a network namespace: $(head -1 "$T/ns.err")"
fi
lib_netns+=("$NSP")
for ns in "$NSJ" "$NSR"; do
    ip netns add "$ns" || abort "ip netns add $ns"
    lib_netns+=("$ns")
done
if ! ip link add "$VP" type veth peer name "$VJ" 2>"$T/veth.err"; then
    skip "cannot create a veth pair: $(head -1 "$T/veth.err")"
fi
lib_links+=("$VP")
ip link add "$VK" type veth peer name "$VR" || abort "ip link add veth $VK"
lib_links+=("$VK")

# addresses usable at once: no DAD, and no automatic link-local
# addresses besides the ones given here
for ns in "$NSP" "$NSJ" "$NSR"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
        net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.forwarding=0 >/dev/null
    ip -n "$ns" link set lo up
done
setup_if() { # setup_if IF NS ADDR/PLEN
    ip link set "$1" netns "$2" || return 1
    ip -n "$2" link set dev "$1" addrgenmode none 2>/dev/null
    ip netns exec "$2" sysctl -qw "net.ipv6.conf.$1.accept_dad=0" >/dev/null
    ip -n "$2" addr add "$3" dev "$1" nodad || return 1
    ip -n "$2" link set "$1" up
}
if ! { setup_if "$VP" "$NSP" "$PLEDGE_LL/64" && setup_if "$VJ" "$NSJ" "$JP_LL/64" &&
    setup_if "$VK" "$NSJ" "$JP_ULA/64" && setup_if "$VR" "$NSR" "$JRC_ULA/64"; }; then
    abort "veth set-up"
fi
lib_links=() # moved: deleting the namespaces deletes them

check "the pledge namespace has only a link-local address" \
    test "$(ip -n "$NSP" -6 -o addr show scope global | wc -l)" -eq 0
check "no IPv6 forwarding in the JP namespace" \
    test "$(ip netns exec "$NSJ" sysctl -n net.ipv6.conf.all.forwarding)" -eq 0

echo "=== provisioning"
for i in 1 2 3; do
    "$COJP" jrc add --db "$DB" --pledge "020000000000000$i" --psk "$(psk_of "020000000000000$i")" ||
        bad "jrc add $i"
done
check "jrc add of the JP, no update address given" \
    "$COJP" jrc add --db "$DB" --pledge 0a00000000000001 --psk "$(psk_of 0a00000000000001)"

capture=0
if have_capture; then
    if start_capture "$T/jrc.pcap" "$VR" "ip6" ip netns exec "$NSR"; then
        capture=1
        ok "capture started inside the JRC namespace"
    else
        bad "capture inside the JRC namespace"; cat "$T/jrc.pcap.log"
    fi
else
    echo "note: no dumpcap: the JRC side is checked through its logs only"
fi

echo "=== daemons"
start_daemon "$T/jrc.log" '"event":"start"' ip netns exec "$NSR" -- jrc serve --db "$DB" \
    --listen "[$JRC_ULA]:5683" --network-id cafe --ack-timeout 300 --node-prefix "$NODE_PREFIX" ||
    abort "jrc serve in the JRC namespace" "$T/jrc.log"
ok "jrc serve listens on its ULA"
check "... deriving node addresses in $NODE_PREFIX" \
    grep -q "\"node_prefix\":\"$NODE_PREFIX\",\"node_port\":5683" "$T/jrc.log"
jrc_pid=$daemon_pid
start_daemon "$T/jp.log" '"event":"start"' ip netns exec "$NSJ" -- proxy \
    --listen "[$JP_LL%$VJ]:5683" --jrc "[$JRC_ULA]:5683" \
    --id 0a00000000000001 --psk "$(psk_of 0a00000000000001)" --network-id cafe --state "$T/jp.state" ||
    abort "proxy on a link-local address" "$T/jp.log"
ok "proxy listens on [$JP_LL%$VJ]:5683"
jp_pid=$daemon_pid
check "the proxy talks to the JRC from its ULA" grep -q "\"jrc_side\":\"\\[$JP_ULA\\]:5683\"" "$T/jp.log"
check "the JP joined the JRC over the ULA link" wait_for "$T/jp.log" '"event":"proxy_config"' 20

echo "=== a JP with the pledge's EUI-64 on its blacklist drops it at the source"
# RFC 9031 section 8.4.2 at the link layer: the JP drops everything from
# a blacklisted link-layer source.  The daemon sees datagrams, so it takes
# the EUI-64 behind the link-local source (RFC 4291 Appendix A: the
# interface identifier with the U/L bit inverted back); derived here the
# same way.  The pledge runs as 0200000000000001, whose 'kid context' is
# not on the list: only the source check can stop it.  Below, the same
# pledge joins through the JP without a blacklist.
PLEDGE_EUI=$(python3 -c "import socket,sys; b=bytearray(socket.inet_pton(socket.AF_INET6, sys.argv[1])[8:]); b[0]^=2; print(b.hex())" "$PLEDGE_LL")
check "the pledge's link-local address carries EUI-64 $PLEDGE_EUI" test "$PLEDGE_EUI" = 0200000000000002
if start_daemon "$T/jpbl.log" '"event":"start"' ip netns exec "$NSJ" -- proxy \
    --listen "[$JP_LL%$VJ]:5685" --jrc "[$JRC_ULA]:5683" --blacklist "$PLEDGE_EUI"; then
    jpbl_pid=$daemon_pid
    timeout 20 ip netns exec "$NSP" "$COJP" pledge --id 0200000000000001 --psk "$(psk_of 0200000000000001)" \
        --proxy "[$JP_LL%$VP]:5685" --network-id cafe --state "$T/0200000000000001.state" \
        --json --timeout 3 >"$T/bl.json" 2>"$T/bl.err"
    rc=$?
    check "the blacklisted pledge does not join (exit $rc)" test $rc -eq 1
    check "blacklisting JP exits 0 on SIGTERM" stop_daemon "$jpbl_pid"
    check "that JP dropped the pledge's datagrams, forwarded nothing" \
        python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d['event']=='shutdown' and d['dropped_blacklist']>=1 and d['forwarded']==0 else 1)" "$(tail -1 "$T/jpbl.log")"
else
    bad "proxy with --blacklist"; cat "$T/jpbl.log"
fi

echo "=== 3 pledges join from the link-local side"
pp=()
for i in 1 2 3; do
    id=020000000000000$i
    timeout 45 ip netns exec "$NSP" "$COJP" pledge --id "$id" --psk "$(psk_of "$id")" \
        --proxy "[$JP_LL%$VP]:5683" --network-id cafe --state "$T/$id.state" \
        --json --timeout 30 >"$T/$id.json" 2>"$T/$id.err" &
    pp+=($!)
done
for i in 1 2 3; do
    id=020000000000000$i
    wait "${pp[$((i - 1))]}"
    rc=$?
    check "pledge $id joins through the link-local JP (exit $rc)" test $rc -eq 0
    check "pledge $id prints its configuration" json "$T/$id.json" \
        "d['joined'] is True and len(d['keys'])==2 and d['short_id'] is not None"
done
check "the JP relayed to the pledge's link-local address" \
    grep -q "\"event\":\"relayed\",\"pledge_addr\":\"\\[$PLEDGE_LL%$VJ\\]:" "$T/jp.log"
n=$(grep -c '"event":"joined".*"pledge":"0200' "$T/jrc.log")
check "the JRC logged 3 joins" test "$n" -eq 3
check "the JRC saw the pledges via the JP's ULA only" \
    sh -c "grep '\"event\":\"joined\"' '$T/jrc.log' | grep -v -q -F -e '\"via\":\"[$JP_ULA]:5683\"' && exit 1 || exit 0"
check "no link-local address anywhere in the JRC's log" sh -c "! grep -qi 'fe80' '$T/jrc.log'"
"$COJP" jrc list --db "$DB" --json >"$T/list.json"
check "jrc list: 3 pledges and the JP joined, unique short ids" json "$T/list.json" \
    "len([p for p in d['pledges'] if p['joined']])==4 and len({p['short_id'] for p in d['pledges'] if p['joined']})==4"

echo "=== rekey reaches the JP over the ULA link, at the address derived from its id"
newid=$(python3 -c "import json,sys; print(max(json.load(open(sys.argv[1]))['network']['key_ids'])+1)" "$T/list.json")
check "jrc rekey queues" "$COJP" jrc rekey --db "$DB"
check "the JP switched to key $newid" wait_for "$T/jp.log" "\"event\":\"keys_switched\".*\"key_${newid}_fp\"" 20
# the three pledges were one-shot clients, gone: the updates to their
# derived addresses (fd00:c0:1::1 to ::3, nobody there) run out of
# retransmissions (ACK_TIMEOUT 300 ms: 9.3 to 14 s)
check "the JRC finished the campaign" wait_for "$T/jrc.log" '"event":"campaign_done"' 40
"$COJP" jrc list --db "$DB" --json >"$T/list2.json"
check "jrc list: the JP acknowledged" json "$T/list2.json" \
    "[p['last_outcome'] for p in d['pledges'] if p['pledge']=='0a00000000000001']==['acknowledged']"
check "... the gone pledges not reached at their derived addresses" json "$T/list2.json" \
    "sorted(p['last_outcome'] for p in d['pledges'] if p['pledge'].startswith('0200'))==['not reached']*3"
check "no node was without an address" sh -c "! grep -q no_node_address '$T/jrc.log'"

echo "=== the JP's ULA side is no way in for pledges"
# well-formed Join Requests from a stranger on the JRC's link
ip netns exec "$NSR" python3 -c "
import random, socket, sys
sys.path.insert(0, sys.argv[1])
import wire
rng = random.Random(7)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(('$JRC_ULA', 0))
for _ in range(10):
    s.sendto(wire.bogus_oscore(rng, None, bytes.fromhex('0200000000000001'), True), ('$JP_ULA', 5683))
" "$LIB_DIR" || bad "sending from the JRC namespace"
sleep 0.3

echo "=== shutdown"
check "proxy exits 0 on SIGTERM" stop_daemon "$jp_pid"
check "the JP dropped the 10 requests that came from the ULA side" \
    python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d['dropped_source']==10 else 1)" "$(tail -1 "$T/jp.log")"
check "jrc serve exits 0 on SIGTERM" stop_daemon "$jrc_pid"

echo "=== cojp demo on a host without IPv6"
NSV=${NSP}v4
if ip netns add "$NSV" 2>/dev/null; then
    lib_netns+=("$NSV")
    ip netns exec "$NSV" ip link set lo up
    ip netns exec "$NSV" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1
    check "the namespace has no IPv6 loopback" sh -c "! ip netns exec '$NSV' ip -6 addr show dev lo | grep -q inet6"
    ip netns exec "$NSV" "$COJP" demo --pledges 5 >"$T/demo-v4.out" 2>"$T/demo-v4.err"
    rc=$?
    check "demo falls back to 127.0.0.1 and joins 5 of 5" \
        sh -c "[ $rc -eq 0 ] && grep -q '^5 of 5 pledges joined' '$T/demo-v4.out'"
else
    bad "ip netns add $NSV"
fi

if [ $capture -eq 1 ]; then
    echo "=== what the JRC saw on the wire"
    stop_capture
    # the pledge link's addresses, as 16 bytes in hex
    ll_hex() { python3 -c "import socket,sys; print(socket.inet_pton(socket.AF_INET6, sys.argv[1]).hex())" "$1"; }
    python3 "$WIRE" linklocal "$T/jrc.pcap" "$(ll_hex $PLEDGE_LL)" "$(ll_hex $JP_LL)" >"$T/ll.json"
    rc=$?
    cat "$T/ll.json"
    check "the JRC capture has no link-local UDP address and no pledge-link address bytes" test $rc -eq 0
    check "the JRC's UDP traffic is between the two ULAs, and to the gone pledges' derived addresses" \
        json "$T/ll.json" \
        "d['udp'] > 0 and {'$JP_ULA>$JRC_ULA', '$JRC_ULA>$JP_ULA'} <= set(d['pairs']) <= {'$JP_ULA>$JRC_ULA', '$JRC_ULA>$JP_ULA', '$JRC_ULA>fd00:c0:1::1', '$JRC_ULA>fd00:c0:1::2', '$JRC_ULA>fd00:c0:1::3'}"
    # RFC 9031 section 6.1: forwarded join traffic AF43 (38), the JRC's
    # answers AF42 (36); the JP's own exchanges as a node are unmarked
    check "DSCP: the JRC sends AF42 only, the JP's forwarded requests are AF43" json "$T/ll.json" \
        "d['dscp']['[$JRC_ULA]:5683'] == [36] and any(k.startswith('[$JP_ULA]:') and 38 in v for k, v in d['dscp'].items()) and all(set(v) <= {0, 38} for k, v in d['dscp'].items() if k.startswith('[$JP_ULA]:'))"
fi

summary
