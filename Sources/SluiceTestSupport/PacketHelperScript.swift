/// The Python helper that the test topologies run inside their namespaces: small TCP/UDP
/// (and SCTP, where the kernel has it) servers that answer with the address pair they saw,
/// and a client that runs batches of probes concurrently with short timeouts.
///
/// Kept as a string so the test bundle needs no resources; `PacketHelper` writes it to a
/// temporary file for its lifetime.
enum PacketHelperScript {
    static let source = #"""
import json, os, socket, sys, threading, time, errno, selectors

# Sluice datapath test helper. Two roles:
#   serve ADDRS PORTS LIFETIME  - answer every TCP connection / UDP datagram (and SCTP when
#                                 the kernel has it) with "<local ip> <local port> <peer ip> <peer port>"
#   probe JSON                  - run a batch of client probes concurrently, print JSON results
#   stream JSON                 - one probe's attempts in a loop (or several loops) until "stop"
#                                 on stdin; a line per attempt with its start and end time
#   session PROTO DST PORT SRC TIMEOUT - keep one TCP connection open; "ping" on stdin sends a
#                                 line and prints the answer (or the error)
#   http URL                    - one GET (5 s timeout): prints "<status> <body as a JSON string>",
#                                 or "none <error>"
# Everything is bounded in time: servers exit after LIFETIME seconds or when stdin closes.

def die_with_parent(lifetime):
    def watch():
        try:
            sys.stdin.read()
        except Exception:
            pass
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()
    t = threading.Timer(lifetime, lambda: os._exit(0))
    t.daemon = True
    t.start()

def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET

def serve(addrs, ports, lifetime, sctp):
    die_with_parent(lifetime)
    sel = selectors.DefaultSelector()
    conns = {}
    for a in addrs:
        for p in ports:
            kinds = [("tcp", socket.SOCK_STREAM, 0), ("udp", socket.SOCK_DGRAM, 0)]
            if sctp:
                kinds.append(("sctp", socket.SOCK_STREAM, socket.IPPROTO_SCTP))
            for kind, st, proto in kinds:
                s = socket.socket(family(a), st, proto)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((a, p))
                if st == socket.SOCK_STREAM:
                    s.listen(512)
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, ("listen" if st == socket.SOCK_STREAM else "udp", s))
    print("ready", flush=True)
    def line(local, peer):
        return ("%s %d %s %d\n" % (local[0], local[1], peer[0], peer[1])).encode()
    while True:
        for key, _ in sel.select(timeout=1.0):
            kind, s = key.data
            try:
                if kind == "listen":
                    c, peer = s.accept()
                    msg = line(c.getsockname(), peer)
                    c.setblocking(False)
                    try:
                        c.send(msg)
                    except OSError:
                        c.close()
                        continue
                    sel.register(c, selectors.EVENT_READ, ("conn", c))
                    conns[c] = msg
                elif kind == "udp":
                    data, peer = s.recvfrom(2048)
                    s.sendto(line(s.getsockname(), peer), peer)
                else:
                    data = s.recv(2048)
                    if not data:
                        raise OSError("eof")
                    for _ in range(data.count(b"\n")):
                        s.send(conns[s])
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                if kind == "conn":
                    sel.unregister(s)
                    conns.pop(s, None)
                    s.close()

def classify(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, OSError) and e.errno is not None:
        return "error " + errno.errorcode.get(e.errno, str(e.errno))
    return "error " + str(e)

def read_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(256)
        if not d:
            if buf:
                break
            raise ConnectionResetError("closed without answer")
        buf += d
    return buf.decode().strip()

def attempt(p, i):
    dst, port, proto = p["dst"], p["port"], p["proto"]
    fam = family(dst)
    st = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    ipproto = socket.IPPROTO_SCTP if proto == "sctp" else 0
    s = socket.socket(fam, st, ipproto)
    try:
        s.settimeout(p.get("timeout", 1.0))
        src = p.get("src") or ""
        sport = p.get("sport", 0)
        if sport:
            sport += i
        if src or sport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((src, sport))
        if st == socket.SOCK_STREAM:
            # Report ICMP errors at once: without IP(V6)_RECVERR, Linux TCP over IPv6 treats an
            # ICMPv6 port unreachable during SYN_SENT as a soft error and keeps retrying.
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, 25, 1)  # IPV6_RECVERR
            else:
                s.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR
        s.connect((dst, port))
        if st == socket.SOCK_DGRAM:
            try:
                s.send(b"hello\n")
            except PermissionError:
                # The node's own datagram was dropped or rejected in its output hook. A
                # reject's ICMP error is already queued on the socket: recv tells them apart.
                s.settimeout(0.2)
                try:
                    s.recv(2048)
                except ConnectionRefusedError:
                    return "refused"
                except Exception:
                    pass
                return "error EPERM"
        return "ok " + read_line(s)
    except socket.timeout:
        # A soft ICMP error (seen too late) still shows in SO_ERROR.
        try:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED:
                return "refused-late"
        except OSError:
            pass
        return "timeout"
    except Exception as e:
        return classify(e)
    finally:
        s.close()

def probe(spec):
    probes = spec["probes"]
    results = [None] * len(probes)
    def run(k):
        p = probes[k]
        n = p.get("count", 1)
        if p.get("summary"):
            counts = {}
            for i in range(n):
                r = attempt(p, i)
                key = r.split()[1] if r.startswith("ok ") else r
                counts[key] = counts.get(key, 0) + 1
            results[k] = counts
        else:
            results[k] = [attempt(p, i) for i in range(n)]
    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(probes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results), flush=True)

def stream(spec):
    # Sequential attempts in `parallel` loops, until "stop" (or EOF) arrives on stdin. One line
    # per attempt as it completes: "<loop> <start> <end> <result>", times in CLOCK_MONOTONIC
    # seconds (time.monotonic), the clock the test reads too; then "done" once every loop ended.
    stop = threading.Event()
    out = threading.Lock()
    def watch():
        try:
            for line in sys.stdin:
                if line.strip() == "stop":
                    break
        except Exception:
            pass
        stop.set()
    threading.Thread(target=watch, daemon=True).start()
    # A safety net only: the test stops the stream (or closes stdin) long before.
    t = threading.Timer(float(spec.get("lifetime", 900)), lambda: os._exit(0))
    t.daemon = True
    t.start()
    pause = float(spec.get("pause", 0))   # between a loop's attempts: a rate, not a wait for an event
    p = dict(spec["probe"])
    p["sport"] = 0   # fresh ephemeral source ports: an unbounded run cannot use a fixed range
    def run(k):
        i = 0
        while not stop.is_set():
            t0 = time.monotonic()
            r = attempt(p, i)
            t1 = time.monotonic()
            with out:
                sys.stdout.write("%d %.6f %.6f %s\n" % (k, t0, t1, r))
                sys.stdout.flush()
            i += 1
            if pause > 0:
                stop.wait(pause)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(int(spec.get("parallel", 1)))]
    print("started", flush=True)
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    with out:
        print("done", flush=True)

def session(proto, dst, port, src, timeout):
    t = threading.Timer(600, lambda: os._exit(0))
    t.daemon = True
    t.start()
    fam = family(dst)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if src:
            s.bind((src, 0))
        s.connect((dst, port))
        print("ok " + read_line(s), flush=True)
    except Exception as e:
        print(classify(e), flush=True)
        return
    for cmd in sys.stdin:
        if cmd.strip() != "ping":
            break
        try:
            s.send(b"ping\n")
            print("ok " + read_line(s), flush=True)
        except Exception as e:
            print(classify(e), flush=True)
    s.close()

def http_get(url):
    import urllib.request, urllib.error
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an http_proxy
    try:
        with opener.open(url, timeout=5) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except Exception as e:
        print("none " + str(e).replace("\n", " "), flush=True)
        return
    print("%d %s" % (status, json.dumps(body.decode(errors="replace"))), flush=True)

if __name__ == "__main__":
    role = sys.argv[1]
    if role == "serve":
        serve(sys.argv[2].split(","), [int(x) for x in sys.argv[3].split(",")], float(sys.argv[4]), sys.argv[5] == "1")
    elif role == "probe":
        probe(json.loads(sys.argv[2]))
    elif role == "stream":
        stream(json.loads(sys.argv[2]))
    elif role == "session":
        session(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], float(sys.argv[6]))
    elif role == "http":
        http_get(sys.argv[2])
    elif role == "sctp-check":
        try:
            socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
            print("yes")
        except OSError:
            print("no")
"""#
}
