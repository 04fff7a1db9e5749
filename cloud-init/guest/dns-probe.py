#!/usr/bin/python3
# labsmith DNS probe: an A query over UDP (or TCP with --tcp) with the standard library only,
# since the image has python3 but no dig. Usage: dns-probe.py SERVER NAME [--tcp] [--port N]
# Exit 0 when the answer has at least one address; prints them.
import random, socket, struct, sys

def query(server, name, tcp, port=53):
    qid = random.randrange(65536)
    packet = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    packet += b''.join(bytes([len(p)]) + p.encode() for p in name.rstrip('.').split('.')) + b'\0'
    packet += struct.pack('>HH', 1, 1)
    if tcp:
        with socket.create_connection((server, port), timeout=3) as s:
            s.sendall(struct.pack('>H', len(packet)) + packet)
            size = struct.unpack('>H', s.recv(2))[0]
            data = b''
            while len(data) < size:
                data += s.recv(size - len(data))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(packet, (server, port))
        data = s.recv(4096)
    rid, flags, _, ancount = struct.unpack('>HHHH', data[:8])
    if rid != qid:
        raise SystemExit('answer id mismatch')
    if flags & 0xF:
        raise SystemExit('rcode %d' % (flags & 0xF))
    pos, addresses = 12, []
    while data[pos] != 0:
        pos += data[pos] + 1
    pos += 5
    for _ in range(ancount):
        pos += 2 if data[pos] & 0xC0 == 0xC0 else len(data[pos:].split(b'\0', 1)[0]) + 1
        rtype, _, _, rdlength = struct.unpack('>HHIH', data[pos:pos + 10])
        pos += 10
        if rtype == 1:
            addresses.append(socket.inet_ntoa(data[pos:pos + rdlength]))
        pos += rdlength
    return addresses

if __name__ == '__main__':
    extra = sys.argv[3:]
    port = int(extra[extra.index('--port') + 1]) if '--port' in extra else 53
    found = query(sys.argv[1], sys.argv[2], '--tcp' in extra, port)
    if not found:
        raise SystemExit('no A record for ' + sys.argv[2])
    print(' '.join(found))
