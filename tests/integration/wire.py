#!/usr/bin/env python3
"""Wire-level checks of the daemon fault tests (crash.sh, netns.sh).

  wire.py nonces PCAP JRC_PORT[,JRC_PORT...] [PORTS.json]
      Every datagram the JRC sent, matched to the pledge it answered:
      a JRC response carries the token of the JP's request (the JP's
      sealed state, RFC 8974), and that request's OSCORE 'kid context'
      is the pledge identifier (RFC 9031 section 8.1.1).  The AEAD nonce
      of a response is the JRC's own Partial IV when the response
      carries one, otherwise the request's (RFC 8613 section 5.2).  A
      parameter update the JRC sends (a request, section 8.2) goes to
      the node's own port: PORTS.json maps the port to the pledge id;
      its nonce is the JRC's Partial IV in the same sender sequence as
      the responses of that pledge's context.  Fails when one nonce of
      one pledge protected two different ciphertexts, or when a datagram
      cannot be matched (the check would be blind).

  wire.py linklocal PCAP HEXADDR...
      Every UDP/IPv6 datagram of the capture: neither address is
      link-local (fe80::/10); and none of the given 16-byte addresses
      appears anywhere in any frame (not even inside a payload).

  wire.py extract PCAP JP_PORT JRC_PORT OUT.json
      One genuine exchange from a capture on both ports: the pledge's
      request to the JP, the JP's request to the JRC, the JRC's response.

  wire.py hostile REF.json JRC_ADDR JP_ADDR JRC_PORT IDS SPOOFED.txt
      Hostile datagrams to the JRC and to the JP (section 7 of the test):
      garbage, truncated and bit-flipped copies of the genuine requests,
      oversize datagrams, well-formed CoAP with bogus OSCORE, forged and
      replayed JRC responses to the JP (from the JRC's own address and
      port, written through a raw socket; their payloads go to
      SPOOFED.txt in hex).  Then listens 1.5 s for any answer: the one
      allowed is the Reset with which the JRC or the JP rejects a version
      1 CON it cannot process (RFC 7252 section 4.2), counted apart.
      Prints a JSON summary.

  wire.py replay REF.json JRC_ADDR
      An exact copy of the genuine JP request, from a stranger's port: by
      design (include/cojp/jrc.h, repeats) the JRC may answer it with its
      cached response, which must then be that response's very Partial
      IV and ciphertext (nothing new is protected).  Prints a summary.

  wire.py quiet PCAP JRC_PORT JP_PORT SPOOFED.txt
      During the hostile phase: the JRC sent nothing but Resets of
      version 1 CONs sent to it (the spoofed datagrams aside), the JP
      nothing but requests to the JRC and Resets of version 1 CONs sent
      to it.

  wire.py conjrc JP_ADDR JRC_PORT
      A JRC of another implementation, on [::1]:JRC_PORT, that answers
      the JP's NON requests with separate responses in CON messages (RFC
      7252 section 5.2.2, RFC 8974 section 3.3), and a pledge.  For a CON
      and a NON Join Request: the JP acknowledges the CON response with
      an Empty ACK of its message ID from the address it forwarded from,
      and relays it to the pledge once (piggybacked ACK, or NON); two
      retransmissions are acknowledged again and not relayed; a copy
      with one token bit flipped gets nothing at all.  Prints a JSON
      summary.

Classic pcap files only (dumpcap -P).  Exit 0 when the check holds.
"""
import json
import os
import random
import socket
import struct
import sys
import time

OPT_URI_HOST, OPT_OSCORE, OPT_PROXY_SCHEME = 3, 9, 39


def pcap_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise SystemExit("%s: not a classic pcap file" % path)
    linktype = struct.unpack(e + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        yield linktype, data[off:off + incl]
        off += incl


def ip_packet(linktype, frame):
    """(ethertype, network-layer bytes) of a frame."""
    if linktype == 1:  # Ethernet (Linux lo and veths)
        et, p = struct.unpack(">H", frame[12:14])[0], frame[14:]
        while et == 0x8100 and len(p) >= 4:
            et, p = struct.unpack(">H", p[2:4])[0], p[4:]
        return et, p
    if linktype == 113:  # Linux cooked v1
        return struct.unpack(">H", frame[14:16])[0], frame[16:]
    if linktype == 276:  # Linux cooked v2
        return struct.unpack(">H", frame[0:2])[0], frame[20:]
    if linktype in (12, 101):  # raw IP
        return (0x86DD if frame and frame[0] >> 4 == 6 else 0x0800), frame
    return None, b""


def udp_datagrams(path):
    """(src, sport, dst, dport, payload) of every UDP datagram."""
    for lt, frame in pcap_frames(path):
        et, p = ip_packet(lt, frame)
        if et == 0x86DD and len(p) >= 40:
            nh, src, dst, l4 = p[6], p[8:24], p[24:40], p[40:]
        elif et == 0x0800 and len(p) >= 20:
            ihl = (p[0] & 15) * 4
            nh, src, dst, l4 = p[9], p[12:16], p[16:20], p[ihl:]
        else:
            continue
        if nh != 17 or len(l4) < 8:
            continue
        sport, dport, ulen = struct.unpack(">HHH", l4[:6])
        yield src, sport, dst, dport, l4[8:ulen]


def coap_parse(b):
    """A CoAP message (RFC 7252 section 3, RFC 8974 token lengths) as a
    dict with options (number, offset of the value, value), or None."""
    if len(b) < 4 or b[0] >> 6 != 1:
        return None
    tkl, off = b[0] & 15, 4
    if tkl == 13:
        if len(b) < 5:
            return None
        tkl, off = b[4] + 13, 5
    elif tkl == 14:
        if len(b) < 6:
            return None
        tkl, off = (b[4] << 8 | b[5]) + 269, 6
    elif tkl == 15:
        return None
    if off + tkl > len(b):
        return None
    m = {"type": (b[0] >> 4) & 3, "code": b[1], "mid": b[2] << 8 | b[3],
         "token": bytes(b[off:off + tkl]), "opts": [], "payload": b"",
         "payload_off": len(b)}
    off += tkl
    num = 0
    while off < len(b):
        if b[off] == 0xFF:
            if off + 1 == len(b):
                return None
            m["payload"], m["payload_off"] = bytes(b[off + 1:]), off + 1
            break
        d, ln = b[off] >> 4, b[off] & 15
        off += 1
        vals = []
        for x in (d, ln):
            if x == 13:
                if off >= len(b):
                    return None
                x, off = b[off] + 13, off + 1
            elif x == 14:
                if off + 1 >= len(b):
                    return None
                x, off = (b[off] << 8 | b[off + 1]) + 269, off + 2
            elif x == 15:
                return None
            vals.append(x)
        num += vals[0]
        if off + vals[1] > len(b):
            return None
        m["opts"].append((num, off, bytes(b[off:off + vals[1]])))
        off += vals[1]
    return m


def opt(m, number):
    for n, _, v in m["opts"]:
        if n == number:
            return v
    return None


def oscore_option(v):
    """RFC 8613 section 6.1: (piv, kid_context, kid) of an option value."""
    if v is None:
        return None
    if not v:
        return b"", None, None
    flags, off = v[0], 1
    n = flags & 7
    piv = v[off:off + n]
    off += n
    ctx = kid = None
    if flags & 0x10:
        s = v[off]
        ctx = v[off + 1:off + 1 + s]
        off += 1 + s
    if flags & 0x08:
        kid = v[off:]
    return bytes(piv), ctx and bytes(ctx), kid and bytes(kid)


def is_request(m):
    return 1 <= m["code"] <= 31


# ---- nonces -------------------------------------------------------------


def cmd_nonces(pcap, jrc_port, ports_path=None):
    # one JRC port, or several separated by commas (JRC instances that
    # share one registry: a pledge's contexts are the same on all)
    jrc_ports = {int(p) for p in jrc_port.split(",")}
    ports = {}
    if ports_path:
        ports = {int(k): bytes.fromhex(v) for k, v in json.load(open(ports_path)).items()}
    by_token = {}  # JP token -> (pledge id, request Partial IV)
    sealed = {}  # (pledge, nonce kind, PIV) -> set of ciphertexts
    stats = {"requests": 0, "responses": 0, "matched": 0, "unmatched": 0,
             "with_piv": 0, "jrc_requests": 0, "pledges": 0, "reused": []}
    for _, sport, _, dport, pl in udp_datagrams(pcap):
        m = coap_parse(pl)
        if m is None:
            continue
        osc = oscore_option(opt(m, OPT_OSCORE))
        if dport in jrc_ports and is_request(m) and osc and osc[1]:
            stats["requests"] += 1
            by_token[m["token"]] = (osc[1], osc[0])
        elif sport in jrc_ports and is_request(m):
            stats["jrc_requests"] += 1
            pledge = ports.get(dport)
            if pledge is None or osc is None or not osc[0]:
                stats["unmatched"] += 1
                continue
            stats["matched"] += 1
            sealed.setdefault((pledge, "jrc", osc[0]), set()).add(m["payload"])
        elif sport in jrc_ports and m["code"] >= 64:
            stats["responses"] += 1
            req = by_token.get(m["token"])
            if req is None or osc is None:
                stats["unmatched"] += 1
                continue
            stats["matched"] += 1
            pledge, req_piv = req
            if osc[0]:
                stats["with_piv"] += 1
                key = (pledge, "jrc", osc[0])
            else:
                key = (pledge, "request", req_piv)
            sealed.setdefault(key, set()).add(m["payload"])
    for (pledge, kind, piv), cts in sealed.items():
        if len(cts) > 1:
            stats["reused"].append({"pledge": pledge.hex(), "nonce": kind,
                                    "piv": piv.hex(), "ciphertexts": len(cts)})
    stats["pledges"] = len({k[0] for k in sealed})
    print(json.dumps(stats))
    return 0 if not stats["reused"] and stats["unmatched"] == 0 and stats["matched"] else 1


# ---- link-local ---------------------------------------------------------


def cmd_linklocal(pcap, *hexaddrs):
    banned = [bytes.fromhex(h) for h in hexaddrs]
    st = {"packets": 0, "ipv6": 0, "udp": 0, "link_local": 0, "banned_bytes": 0,
          "pairs": [], "dscp": {}}
    pairs = set()
    dscp = {}
    for lt, frame in pcap_frames(pcap):
        st["packets"] += 1
        et, p = ip_packet(lt, frame)
        if et == 0x86DD and len(p) >= 40:
            st["ipv6"] += 1
            src, dst = p[8:24], p[24:40]
            if p[6] == 17:
                for a in (src, dst):
                    if a[0] == 0xFE and a[1] & 0xC0 == 0x80:
                        st["link_local"] += 1
                st["udp"] += 1
                pair = (socket.inet_ntop(socket.AF_INET6, src),
                        socket.inet_ntop(socket.AF_INET6, dst))
                pairs.add(pair)
                # Diffserv code point (the traffic class without its ECN
                # bits) per sender: "[address]:port"
                tc = ((p[0] & 0x0F) << 4) | (p[1] >> 4)
                sport = struct.unpack(">H", p[40:42])[0] if len(p) >= 42 else 0
                dscp.setdefault("[%s]:%d" % (pair[0], sport), set()).add(tc >> 2)
        if any(b in frame for b in banned):
            st["banned_bytes"] += 1
    st["pairs"] = sorted("%s>%s" % x for x in pairs)
    st["dscp"] = {k: sorted(v) for k, v in sorted(dscp.items())}
    print(json.dumps(st))
    return 0 if st["udp"] and not st["link_local"] and not st["banned_bytes"] else 1


# ---- extract / hostile / quiet ------------------------------------------


def cmd_extract(pcap, jp_port, jrc_port, out):
    jp_port, jrc_port = int(jp_port), int(jrc_port)
    ref = {}
    for _, sport, _, dport, pl in udp_datagrams(pcap):
        m = coap_parse(pl)
        if m is None:
            continue
        if dport == jp_port and sport != jrc_port and is_request(m):
            ref.setdefault("pledge_request", pl.hex())
        elif dport == jrc_port and is_request(m):
            ref.setdefault("jp_request", pl.hex())
        elif sport == jrc_port and dport == jp_port and m["code"] >= 64:
            ref.setdefault("jrc_response", pl.hex())
    with open(out, "w") as f:
        json.dump(ref, f)
    print(json.dumps({k: len(v) // 2 for k, v in ref.items()}))
    return 0 if len(ref) == 3 else 1


def addr(s):
    host, port = s.rsplit(":", 1)
    return host.strip("[]"), int(port)


def protected_region(msg):
    """Offsets of the OSCORE option value and of the payload: what the
    OSCORE verification (or the JRC's repeat check) covers.  Flipping a
    bit of the CoAP header or token instead makes a copy that a stateless
    JP and the JRC rightly treat as a retransmission (RFC 9031 section
    7.1; include/cojp/jrc.h, repeats), which is answered."""
    m = coap_parse(msg)
    region = []
    for n, off, v in m["opts"]:
        if n == OPT_OSCORE:
            region += range(off, off + len(v))
    region += range(m["payload_off"], len(msg))
    return region



def coap_options(opts):
    """(number, value) pairs, in ascending order, as CoAP option bytes
    (RFC 7252 section 3.1; deltas and lengths below 269)."""
    out, last = b"", 0
    for n, v in opts:
        d, ln = n - last, len(v)
        last = n
        hdr, ext = 0, b""
        for x, shift in ((d, 4), (ln, 0)):
            if x < 13:
                hdr |= x << shift
            else:
                hdr |= 13 << shift
                ext += bytes([x - 13])
        out += bytes([hdr]) + ext + v
    return out

def bogus_oscore(rng, template, pledge_id, with_proxy_scheme):
    """A well-formed Join Request whose OSCORE part is invented: a real
    pledge id as 'kid context', a random Partial IV and ciphertext."""
    piv = rng.randrange(1, 1 << 16).to_bytes(2, "big")
    osc = bytes([0x18 | len(piv)]) + piv + bytes([len(pledge_id)]) + pledge_id
    opts = [(OPT_URI_HOST, b"6tisch.arpa"), (OPT_OSCORE, osc)]
    if with_proxy_scheme:
        opts.append((OPT_PROXY_SCHEME, b"coap"))
    tok = rng.randbytes(4)
    b = bytearray([0x40 | (0x10 if not with_proxy_scheme else 0) | len(tok), 0x02])
    b += rng.randbytes(2) + tok
    b += coap_options(opts)
    payload_len = (len(coap_parse(template)["payload"]) if template else 0) or 24
    return bytes(b) + b"\xff" + rng.randbytes(payload_len)


def forged_response(rng, token_len):
    """A NON 2.04 from 'the JRC' with a random token (RFC 8974 length)."""
    tok = rng.randbytes(token_len)
    if token_len < 13:
        head = bytes([0x50 | token_len, 0x44]) + rng.randbytes(2)
    else:
        head = bytes([0x50 | 13, 0x44]) + rng.randbytes(2) + bytes([token_len - 13])
    osc = bytes([0x01, rng.randrange(256)])
    return head + tok + bytes([0x90 | len(osc)]) + osc + b"\xff" + rng.randbytes(40)


def spoof_socket():
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
    # IPV6_CHECKSUM (7): the kernel fills in the UDP checksum at offset 6
    s.setsockopt(socket.IPPROTO_IPV6, getattr(socket, "IPV6_CHECKSUM", 7), 6)
    return s


def cmd_hostile(ref_path, jrc_s, jp_s, jrc_port, ids, spoofed_path):
    ref = {k: bytes.fromhex(v) for k, v in json.load(open(ref_path)).items()}
    ids = [bytes.fromhex(x) for x in ids.split(",") if x]
    jrc, jp = addr(jrc_s), addr(jp_s)
    jrc_port = int(jrc_port)
    rng = random.Random(int(os.environ.get("COJP_HOSTILE_SEED", "9031")))
    sj = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    for s in (sj, sp):
        s.bind(("::1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    raw = spoof_socket()
    sent = {}
    count = [0]
    spoofed_log = open(spoofed_path, "w")

    con_mids = {sj: set(), sp: set()}  # of version 1 CONs sent, by socket

    def send(kind, sock, dest, data):
        if len(data) >= 4 and data[0] & 0xf0 == 0x40:
            con_mids[sock].add(data[2:4])
        sock.sendto(data, dest)
        sent[kind] = sent.get(kind, 0) + 1
        count[0] += 1
        if count[0] % 40 == 0:
            time.sleep(0.01)  # stay within the daemons' socket buffers

    def spoofed(kind, data):
        udp = struct.pack(">HHHH", jrc_port, jp[1], 8 + len(data), 0) + data
        raw.sendto(udp, (jp[0], 0))
        spoofed_log.write(data.hex() + "\n")
        sent[kind] = sent.get(kind, 0) + 1

    for target, sock, dest, genuine in (("jrc", sj, jrc, ref["jp_request"]),
                                        ("jp", sp, jp, ref["pledge_request"])):
        for _ in range(150):
            send(target + "_garbage", sock, dest, rng.randbytes(rng.randrange(0, 300)))
        for n in range(len(genuine)):
            send(target + "_truncated", sock, dest, genuine[:n])
        for off in protected_region(genuine):
            for bit in range(8):
                b = bytearray(genuine)
                b[off] ^= 1 << bit
                send(target + "_bitflip", sock, dest, bytes(b))
        for size in (2000, 65000):
            send(target + "_oversize", sock, dest, genuine + rng.randbytes(size - len(genuine)))
            send(target + "_oversize", sock, dest, rng.randbytes(size))
        for i in range(60):
            send(target + "_bogus_oscore", sock, dest,
                 bogus_oscore(rng, genuine, ids[i % len(ids)], target == "jp"))
    # responses to the JP as if from the JRC: forged tokens, then a replay
    # of a response the JP has relayed already; a forged one from a
    # stranger's address too
    for i in range(100):
        spoofed("jp_forged_response", forged_response(rng, (4, 8, 20, 54, 60)[i % 5]))
    for _ in range(5):
        spoofed("jp_replayed_response", ref["jrc_response"])
        send("jp_response_from_stranger", sp, jp, ref["jrc_response"])
        send("jrc_replayed_response", sj, jrc, ref["jrc_response"])
    spoofed_log.close()
    time.sleep(1.5)
    # The only answer allowed: the Reset with which the JRC, or the JP,
    # rejects a version 1 CON it cannot process (RFC 7252 section 4.2),
    # four bytes echoing the Message ID of one that was sent to it.
    answers, resets = 0, {sj: 0, sp: 0}
    for s in (sj, sp):
        s.setblocking(False)
        while True:
            try:
                a = s.recvfrom(70000)[0]
            except BlockingIOError:
                break
            if len(a) == 4 and a[:2] == b"\x70\x00" and a[2:] in con_mids[s]:
                resets[s] += 1
            else:
                answers += 1
    print(json.dumps({"sent": sent, "total": sum(sent.values()), "answers": answers,
                      "resets": resets[sj], "jp_resets": resets[sp]}))
    return 0 if answers == 0 else 1


def cmd_replay(ref_path, jrc_s):
    ref = {k: bytes.fromhex(v) for k, v in json.load(open(ref_path)).items()}
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::1", 0))
    s.settimeout(1.0)
    s.sendto(ref["jp_request"], addr(jrc_s))
    answers = []
    try:
        while True:
            answers.append(s.recvfrom(70000)[0])
    except socket.timeout:
        pass
    want = coap_parse(ref["jrc_response"])
    same = 0
    for a in answers:
        m = coap_parse(a)
        if m and m["code"] == want["code"] and m["payload"] == want["payload"] and \
                opt(m, OPT_OSCORE) == opt(want, OPT_OSCORE):
            same += 1
    print(json.dumps({"answers": len(answers), "cached_copies": same}))
    return 0 if len(answers) <= 1 and same == len(answers) else 1


def cmd_quiet(pcap, jrc_port, jp_port, spoofed_path):
    jrc_port, jp_port = int(jrc_port), int(jp_port)
    spoofed = {bytes.fromhex(x) for x in open(spoofed_path).read().split()}
    st = {"datagrams": 0, "spoofed": 0, "from_jrc": 0, "jrc_resets": 0, "jp_to_jrc": 0,
          "jp_resets": 0, "jp_elsewhere": 0}
    # of version 1 CONs sent to the JRC and to the JP, whose Resets are allowed
    con_mids = {jrc_port: set(), jp_port: set()}
    for _, sport, _, dport, pl in udp_datagrams(pcap):
        st["datagrams"] += 1
        if dport in con_mids and len(pl) >= 4 and pl[0] & 0xf0 == 0x40:
            con_mids[dport].add(pl[2:4])
        reset = len(pl) == 4 and pl[:2] == b"\x70\x00"
        if sport == jrc_port and dport == jp_port and pl in spoofed:
            st["spoofed"] += 1
        elif sport == jrc_port and reset and pl[2:] in con_mids[jrc_port]:
            st["jrc_resets"] += 1
        elif sport == jrc_port:
            st["from_jrc"] += 1
        elif sport == jp_port and dport == jrc_port:
            st["jp_to_jrc"] += 1
        elif sport == jp_port and reset and pl[2:] in con_mids[jp_port]:
            st["jp_resets"] += 1
        elif sport == jp_port:
            st["jp_elsewhere"] += 1
    print(json.dumps(st))
    return 0 if st["datagrams"] and not st["from_jrc"] and not st["jp_elsewhere"] else 1


def coap_build(typ, code, mid, token, opts, payload):
    """CoAP bytes (RFC 7252 section 3; RFC 8974 token lengths up to 268)."""
    if len(token) < 13:
        b = bytearray([0x40 | typ << 4 | len(token), code, mid >> 8, mid & 255])
    else:
        b = bytearray([0x40 | typ << 4 | 13, code, mid >> 8, mid & 255, len(token) - 13])
    b += token
    b += coap_options(opts)
    if payload:
        b += b"\xff" + payload
    return bytes(b)


def cmd_conjrc(jp_s, jrc_port):
    CON, NON, ACK = 0, 1, 2
    jp = addr(jp_s)
    jrc = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    jrc.bind(("::1", int(jrc_port)))
    pledge = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    pledge.bind(("::1", 0))
    pid = bytes.fromhex("0200000000000009")
    osc_req = bytes([0x19, 0x05, len(pid)]) + pid      # h k n=1, PIV 5, kid ctx
    osc_resp = bytes([0x01, 0x07])                    # n=1, PIV 7
    payload = bytes(range(0xe0, 0xf0))
    st = {"flows": 0, "acks": 0, "relayed": 0, "extra_to_pledge": 0,
          "extra_to_jrc": 0, "errors": []}

    def recv(sock, timeout):
        sock.settimeout(timeout)
        try:
            return sock.recvfrom(70000)
        except socket.timeout:
            return None, None

    def err(what):
        st["errors"].append(what)

    def silence(what):
        for sock, key in ((jrc, "extra_to_jrc"), (pledge, "extra_to_pledge")):
            d, _ = recv(sock, 0.5)
            if d is not None:
                st[key] += 1
                err("%s: %s got %s" % (what, key, d.hex()))

    for typ, pmid, rmid in ((CON, 0x1234, 0x4242), (NON, 0x1235, 0x4343)):
        st["flows"] += 1
        ptok = bytes([0xa1, 0xb2, 0xc3, typ])
        pledge.sendto(coap_build(typ, 0x02, pmid, ptok,
                                 [(OPT_URI_HOST, b"6tisch.arpa"), (OPT_OSCORE, osc_req),
                                  (OPT_PROXY_SCHEME, b"coap")], payload), jp)
        req, jp_side = recv(jrc, 5)
        m = req and coap_parse(req)
        if not m or m["type"] != NON or len(m["token"]) < 22 or opt(m, OPT_PROXY_SCHEME):
            err("no NON request with a JP token at the JRC")
            break
        resp = coap_build(CON, 0x44, rmid, m["token"], [(OPT_OSCORE, osc_resp)], payload)
        want_ack = bytes([0x60, 0, rmid >> 8, rmid & 255])
        for copy in range(3):  # the response, then two retransmissions
            jrc.sendto(resp, jp_side)
            a, src = recv(jrc, 5)
            if a != want_ack or src != jp_side:
                err("copy %d: %s from %s, not the empty ACK" % (copy, a and a.hex(), src))
            else:
                st["acks"] += 1
            if copy == 0:
                r, _ = recv(pledge, 5)
                rm = r and coap_parse(r)
                want_type = ACK if typ == CON else NON
                if not rm or rm["type"] != want_type or rm["code"] != 0x44 or \
                        rm["token"] != ptok or rm["payload"] != payload or \
                        opt(rm, OPT_OSCORE) != osc_resp or \
                        (typ == CON and rm["mid"] != pmid):
                    err("relayed response: %s" % (r and r.hex()))
                else:
                    st["relayed"] += 1
            else:
                silence("retransmission %d" % copy)
        # one token bit flipped, fresh message ID: neither ACK nor RST
        bad = bytearray(resp)
        bad[2:4] = bytes([rmid >> 8, (rmid + 1) & 255])
        bad[10] ^= 0x01
        jrc.sendto(bytes(bad), jp_side)
        silence("forged token")
    ok = not st["errors"] and st["flows"] == 2 and st["relayed"] == 2 and st["acks"] == 6
    print(json.dumps(st))
    return 0 if ok else 1


def main(argv):
    cmds = {"nonces": cmd_nonces, "linklocal": cmd_linklocal, "extract": cmd_extract,
            "hostile": cmd_hostile, "replay": cmd_replay, "quiet": cmd_quiet,
            "conjrc": cmd_conjrc}
    if len(argv) < 2 or argv[1] not in cmds:
        sys.stderr.write(__doc__)
        return 2
    return cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
