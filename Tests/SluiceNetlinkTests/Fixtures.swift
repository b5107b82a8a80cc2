import SluiceIR
import SluiceNetlink
import SluiceTestSupport

/// `a.b.c.d` as the IR's host-order integer.
func ip4(_ s: String) -> UInt32 {
    s.split(separator: ".").reduce(0) { ($0 << 8) | UInt32($1)! }
}

/// A few IPv6 helpers for the fixtures (only the forms used here).
func ip6(_ hi: UInt64, _ lo: UInt64) -> Datum { .ipv6(hi, lo) }

let fd00: UInt64 = 0xfd00_0000_0000_0000

/// An IPv4 table that exercises every Statement, Expr, Value, Datum and set flag the IR has
/// (except `mapLookup` inside a match, which nft 1.0.6 cannot parse; it is covered by the
/// read-back round trip instead).
func everyCaseTable() -> Table {
    let svcKey: Expr = .concat([.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport)])
    let affKey: Expr = .concat([.payload(.ipSaddr), .payload(.ipDaddr), .meta(.l4proto), .payload(.thDport)])
    let sets: [SetDecl] = [
        SetDecl(name: "cluster-ips", key: [.payload(.ipDaddr)], comment: "cips"),
        SetDecl(name: "lbsrc", key: [.payload(.ipSaddr)], flags: .interval),
        SetDecl(name: "ports", key: [.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport)]),
        SetDecl(name: "fw", key: [.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport), .payload(.ipSaddr)], flags: .interval),
        SetDecl(name: "slots", key: [.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport), .numgenRandom(mod: 3)],
                data: [.payload(.ipDaddr), .payload(.thDport)]),
        SetDecl(name: "aff", key: [.payload(.ipSaddr), .payload(.ipDaddr), .meta(.l4proto), .payload(.thDport)],
                data: [.payload(.ipDaddr), .payload(.thDport)], flags: [.dynamic, .timeout], timeoutSeconds: 10800, size: 65535),
        SetDecl(name: "affs", key: [.payload(.ipSaddr)], flags: [.dynamic, .timeout], timeoutSeconds: 10800, size: 65535),
        SetDecl(name: "np", key: [.meta(.l4proto), .payload(.thDport)], data: [.payload(.ipDaddr)]),
        SetDecl(name: "ng", key: [.numgenRandom(mod: 2)], data: [.meta(.mark)]),
        SetDecl(name: "hslots", key: [.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport), .symhash(mod: 4)],
                data: [.payload(.ipDaddr), .payload(.thDport)]),
        SetDecl(name: "nphslots", key: [.meta(.l4proto), .payload(.thDport), .symhash(mod: 251)],
                data: [.payload(.ipDaddr), .payload(.thDport)]),
        SetDecl(name: "mk", key: [.meta(.mark)]),
        SetDecl(name: "mkfw", key: [.meta(.mark), .payload(.ipSaddr)], flags: .interval),
    ]
    let elements: [String: ElementMap] = [
        "cluster-ips": [[.ipv4(ip4("10.96.0.1"))]: [], [.ipv4(ip4("10.96.0.10"))]: []],
        "lbsrc": [[.prefix4(ip4("10.0.0.0"), 8)]: [], [.prefix4(ip4("192.168.1.0"), 25)]: [], [.ipv4(ip4("1.2.3.4"))]: [],
                  [.prefix4(ip4("11.96.0.0"), 16)]: [], [.prefix4(ip4("11.97.0.0"), 16)]: [], [.prefix4(ip4("255.255.255.0"), 24)]: []],
        "ports": [[.ipv4(ip4("10.96.0.1")), .tcp, .port(443)]: []],
        "fw": [[.ipv4(ip4("10.96.0.1")), .tcp, .port(443), .prefix4(ip4("10.0.0.0"), 8)]: [],
               [.ipv4(ip4("10.96.0.1")), .udp, .port(53), .ipv4(ip4("1.2.3.4"))]: []],
        "slots": [[.ipv4(ip4("10.96.0.1")), .tcp, .port(443), .integer(1)]: [.ipv4(ip4("10.244.0.5")), .port(6443)],
                  [.ipv4(ip4("10.96.0.1")), .tcp, .port(443), .integer(0)]: [.ipv4(ip4("10.244.0.6")), .port(6443)]],
        "np": [[.tcp, .port(30080)]: [.ipv4(ip4("10.96.0.1"))]],
        "ng": [[.integer(1)]: [.integer(0x10)]],
        "hslots": [[.ipv4(ip4("10.96.0.1")), .tcp, .port(443), .integer(3)]: [.ipv4(ip4("10.244.0.7")), .port(6443)]],
        "nphslots": [[.tcp, .port(30080), .integer(250)]: [.ipv4(ip4("10.244.0.8")), .port(80)]],
        "mk": [[.integer(0x4000)]: []],
        "mkfw": [[.integer(0x10), .prefix4(ip4("10.0.0.0"), 8)]: [], [.integer(0x20), .ipv4(ip4("10.1.1.1"))]: []],
    ]
    let svc: [Rule] = [
        Rule([.lookup(svcKey, set: "ports", negated: false), .verdict(.jump("marks"))]),
        Rule([.lookup(svcKey, set: "ports", negated: true), .verdict(.return)]),
        Rule([.match(.ct(.state), .eq, .ctState(.new)), .match(.payload(.ipSaddr), .eq, .datum(.prefix4(ip4("10.0.0.0"), 8))), .verdict(.accept)]),
        Rule([.match(.ct(.state), .neq, .ctState(.established)), .verdict(.drop)]),
        Rule([.match(.ct(.status), .eq, .ctStatus(.dnat)), .verdict(.goto("marks"))]),
        Rule([.match(.ct(.originalDaddr(.ip)), .eq, .datum(.ipv4(ip4("10.1.2.3")))), .verdict(.accept)]),
        Rule([.match(.meta(.l4proto), .eq, .datum(.tcp)), .match(.ct(.originalProtoDst), .eq, .datum(.port(80))), .verdict(.accept)]),
        Rule([.match(.fibType(.saddr), .eq, .fibType(.local)), .verdict(.accept)]),
        Rule([.match(.fibType(.daddr), .neq, .fibType(.local)), .verdict(.accept)]),
        Rule([.match(.and(.meta(.mark), 0x4000), .eq, .datum(.integer(0))), .verdict(.return)]),
        Rule([.match(.and(.meta(.mark), 0x4000), .neq, .datum(.integer(0x4000))), .verdict(.return)]),
        Rule([.match(.meta(.mark), .eq, .datum(.integer(0x10))), .verdict(.accept)]),
        Rule([.setMark(.or(0x4000))]),
        Rule([.setMark(.xor(0x4000))]),
        Rule([.match(.payload(.ipSaddr), .neq, .datum(.ipv4(ip4("10.0.0.1")))), .reject]),
        Rule([.match(.payload(.ipSaddr), .eq, .datum(.prefix4(ip4("203.0.113.0"), 25))), .verdict(.accept)]),
        Rule([.match(.payload(.ipSaddr), .neq, .datum(.prefix4(ip4("10.0.0.0"), 8))), .verdict(.accept)]),
        Rule([.match(.payload(.ipSaddr), .eq, .datum(.prefix4(0, 0))), .verdict(.accept)]),
        Rule([.match(.payload(.ipSaddr), .eq, .datum(.ipv4(ip4("10.1.2.3")))), .match(.payload(.ipDaddr), .eq, .datum(.ipv4(ip4("10.4.5.6")))),
              .match(.payload(.thDport), .eq, .datum(.port(80))), .verdict(.accept)]),
        Rule([.match(.payload(.thSport), .eq, .datum(.port(1024))), .match(.payload(.thDport), .eq, .datum(.port(80))), .verdict(.accept)]),
        Rule([.lookup(affKey, set: "aff", negated: false), .dnatMap(.ip, key: affKey, map: "aff")]),
        Rule([.dnatMap(.ip, key: .concat([.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport), .numgenRandom(mod: 3)]), map: "slots")]),
        Rule([.dnatMap(.ip, key: .concat([.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport),
                                          .jhash(.payload(.ipSaddr), mod: 4, seed: 0x736c6963)]), map: "hslots")]),
        Rule([.dnatMap(.ip, key: .concat([.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport),
                                          .jhash(.concat([.payload(.ipSaddr), .payload(.thSport)]), mod: 4, seed: 7)]), map: "hslots")]),
        Rule([.dnatMap(.ip, key: .concat([.meta(.l4proto), .payload(.thDport),
                                          .jhash(.concat([.payload(.ipSaddr), .payload(.thSport)]), mod: 251, seed: 0x736c6963)]), map: "nphslots")]),
        Rule([.update(set: "aff", key: affKey, timeoutSeconds: 10800, data: .concat([.payload(.ipDaddr), .payload(.thDport)]))]),
        Rule([.update(set: "affs", key: .payload(.ipSaddr), timeoutSeconds: 10800, data: nil)]),
        Rule([.lookup(.payload(.ipSaddr), set: "lbsrc", negated: false), .verdict(.accept)], comment: "lb source ranges"),
        Rule([.lookup(.meta(.mark), set: "mk", negated: true), .verdict(.accept)]),
        Rule([.match(.meta(.iifname), .eq, .interfaceName("eth0")), .verdict(.accept)]),
        Rule([.lookup(.concat([.payload(.ipDaddr), .meta(.l4proto), .payload(.thDport), .payload(.ipSaddr)]), set: "fw", negated: true), .verdict(.drop)]),
        Rule([.lookup(.concat([.meta(.mark), .payload(.ipSaddr)]), set: "mkfw", negated: false), .verdict(.accept)]),
        Rule([.match(.meta(.iifname), .neq, .interfaceName("veth*")), .verdict(.accept)]),
    ]
    let chains: [Chain] = [
        Chain(name: "pre", base: BaseChainSpec(type: .nat, hook: .prerouting, priority: -100), comment: "pre chain",
              rules: [Rule([.verdict(.jump("svc"))], comment: "rule c")]),
        Chain(name: "svc", rules: svc),
        Chain(name: "marks"),
        Chain(name: "post", base: BaseChainSpec(type: .nat, hook: .postrouting, priority: 100),
              rules: [Rule([.masquerade(fullyRandom: true)]), Rule([.masquerade(fullyRandom: false)])]),
        Chain(name: "fil", base: BaseChainSpec(type: .filter, hook: .forward, priority: 0), rules: [Rule([.reject])]),
    ]
    return Table(family: .ip, name: "sluice", comment: "sluice test", sets: sets, chains: chains, elements: elements)
}

/// The same table written by hand as an nft script.
let everyCaseScript = """
table ip sluice {
  comment "sluice test"
  set cluster-ips { typeof ip daddr; comment "cips"; elements = { 10.96.0.1, 10.96.0.10 } }
  set lbsrc { typeof ip saddr; flags interval; elements = { 10.0.0.0/8, 192.168.1.0/25, 1.2.3.4, 11.96.0.0/16, 11.97.0.0/16, 255.255.255.0/24 } }
  set ports { typeof ip daddr . meta l4proto . th dport; elements = { 10.96.0.1 . tcp . 443 } }
  set fw { typeof ip daddr . meta l4proto . th dport . ip saddr; flags interval; elements = { 10.96.0.1 . tcp . 443 . 10.0.0.0/8, 10.96.0.1 . udp . 53 . 1.2.3.4 } }
  map slots { typeof ip daddr . meta l4proto . th dport . numgen random mod 3 : ip daddr . th dport; elements = { 10.96.0.1 . tcp . 443 . 1 : 10.244.0.5 . 6443, 10.96.0.1 . tcp . 443 . 0 : 10.244.0.6 . 6443 } }
  map aff { typeof ip saddr . ip daddr . meta l4proto . th dport : ip daddr . th dport; flags dynamic,timeout; timeout 10800s; size 65535; }
  set affs { typeof ip saddr; flags dynamic,timeout; timeout 10800s; size 65535; }
  map np { typeof meta l4proto . th dport : ip daddr; elements = { tcp . 30080 : 10.96.0.1 } }
  map ng { typeof numgen random mod 2 : meta mark; elements = { 1 : 0x10 } }
  map hslots { typeof ip daddr . meta l4proto . th dport . symhash mod 4 : ip daddr . th dport; elements = { 10.96.0.1 . tcp . 443 . 3 : 10.244.0.7 . 6443 } }
  map nphslots { typeof meta l4proto . th dport . symhash mod 251 : ip daddr . th dport; elements = { tcp . 30080 . 250 : 10.244.0.8 . 80 } }
  set mk { typeof meta mark; elements = { 0x4000 } }
  set mkfw { typeof meta mark . ip saddr; flags interval; elements = { 0x10 . 10.0.0.0/8, 0x20 . 10.1.1.1 } }
  chain pre { type nat hook prerouting priority -100; policy accept; comment "pre chain"; jump svc comment "rule c"; }
  chain svc {
    ip daddr . meta l4proto . th dport @ports jump marks
    ip daddr . meta l4proto . th dport != @ports return
    ct state new ip saddr 10.0.0.0/8 accept
    ct state != established drop
    ct status dnat goto marks
    ct original ip daddr 10.1.2.3 accept
    meta l4proto tcp ct original proto-dst 80 accept
    fib saddr type local accept
    fib daddr type != local accept
    meta mark and 0x4000 == 0 return
    meta mark and 0x4000 != 0x4000 return
    meta mark 0x10 accept
    meta mark set meta mark or 0x4000
    meta mark set meta mark xor 0x4000
    ip saddr != 10.0.0.1 reject
    ip saddr 203.0.113.0/25 accept
    ip saddr != 10.0.0.0/8 accept
    ip saddr 0.0.0.0/0 accept
    ip saddr 10.1.2.3 ip daddr 10.4.5.6 th dport 80 accept
    th sport 1024 th dport 80 accept
    ip saddr . ip daddr . meta l4proto . th dport @aff dnat ip to ip saddr . ip daddr . meta l4proto . th dport map @aff
    dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @slots
    dnat ip to ip daddr . meta l4proto . th dport . jhash ip saddr mod 4 seed 0x736c6963 map @hslots
    dnat ip to ip daddr . meta l4proto . th dport . jhash ip saddr . th sport mod 4 seed 0x7 map @hslots
    dnat ip to meta l4proto . th dport . jhash ip saddr . th sport mod 251 seed 0x736c6963 map @nphslots
    update @aff { ip saddr . ip daddr . meta l4proto . th dport timeout 10800s : ip daddr . th dport }
    update @affs { ip saddr timeout 10800s }
    ip saddr @lbsrc accept comment "lb source ranges"
    meta mark != @mk accept
    iifname "eth0" accept
    ip daddr . meta l4proto . th dport . ip saddr != @fw drop
    meta mark . ip saddr @mkfw accept
    iifname != "veth*" accept
  }
  chain marks { }
  chain post { type nat hook postrouting priority 100; policy accept; masquerade fully-random; masquerade; }
  chain fil { type filter hook forward priority 0; policy accept; reject; }
}
"""

/// An IPv6 table: ip6 payloads, ct original ip6 daddr, ip6 prefixes (aligned and not),
/// `dnat ip6`, ip6 interval sets, ICMPv6 reject.
func ip6Table() -> Table {
    let key: Expr = .concat([.payload(.ip6Daddr), .meta(.l4proto), .payload(.thDport), .numgenRandom(mod: 2)])
    return Table(family: .ip6, name: "sluice6", sets: [
        SetDecl(name: "slots6", key: key.components, data: [.payload(.ip6Daddr), .payload(.thDport)]),
        SetDecl(name: "src6", key: [.payload(.ip6Saddr)], flags: .interval),
        SetDecl(name: "hslots6", key: [.payload(.ip6Daddr), .meta(.l4proto), .payload(.thDport), .symhash(mod: 251)],
                data: [.payload(.ip6Daddr), .payload(.thDport)]),
        SetDecl(name: "nphslots6", key: [.meta(.l4proto), .payload(.thDport), .symhash(mod: 5)],
                data: [.payload(.ip6Daddr), .payload(.thDport)]),
        SetDecl(name: "fw6", key: [.payload(.ip6Daddr), .payload(.ip6Saddr)], flags: .interval),
    ], chains: [
        Chain(name: "c", base: BaseChainSpec(type: .nat, hook: .prerouting, priority: -100), rules: [
            Rule([.match(.payload(.ip6Saddr), .eq, .datum(.prefix6(fd00, 0, 64))), .verdict(.accept)]),
            Rule([.match(.payload(.ip6Saddr), .neq, .datum(.prefix6(fd00, 0, 63))), .verdict(.accept)]),
            Rule([.match(.payload(.ip6Daddr), .eq, .datum(ip6(fd00, 1))), .match(.ct(.originalDaddr(.ip6)), .eq, .datum(ip6(fd00, 2))), .verdict(.accept)]),
            Rule([.dnatMap(.ip6, key: key, map: "slots6")]),
            Rule([.dnatMap(.ip6, key: .concat([.payload(.ip6Daddr), .meta(.l4proto), .payload(.thDport),
                                               .jhash(.concat([.payload(.ip6Saddr), .payload(.thSport)]), mod: 251, seed: 0x736c6963)]),
                           map: "hslots6")]),
            Rule([.dnatMap(.ip6, key: .concat([.payload(.ip6Daddr), .meta(.l4proto), .payload(.thDport),
                                               .jhash(.payload(.ip6Saddr), mod: 251, seed: 0x736c6963)]), map: "hslots6")]),
            Rule([.dnatMap(.ip6, key: .concat([.meta(.l4proto), .payload(.thDport),
                                               .jhash(.concat([.payload(.ip6Saddr), .payload(.thSport)]), mod: 5, seed: 0x736c6963)]),
                           map: "nphslots6")]),
            Rule([.match(.payload(.thDport), .neq, .datum(.port(80))), .verdict(.accept)]),
            Rule([.match(.meta(.l4proto), .eq, .datum(.udp)), .match(.payload(.thDport), .eq, .datum(.port(53))), .verdict(.accept)]),
            Rule([.lookup(.payload(.ip6Saddr), set: "src6", negated: false), .verdict(.accept)]),
            Rule([.lookup(.concat([.payload(.ip6Daddr), .payload(.ip6Saddr)]), set: "fw6", negated: true), .verdict(.drop)]),
        ]),
        Chain(name: "f", base: BaseChainSpec(type: .filter, hook: .input, priority: 0), rules: [Rule([.reject])]),
    ], elements: [
        "slots6": [[ip6(fd00, 1), .tcp, .port(80), .integer(0)]: [ip6(fd00 | 0x1_0000, 5), .port(8080)]],
        "src6": [[.prefix6(fd00, 0, 64)]: [], [ip6(0, 1)]: []],
        "hslots6": [[ip6(fd00, 1), .tcp, .port(443), .integer(17)]: [ip6(fd00 | 0x1_0000, 7), .port(8443)]],
        "nphslots6": [[.udp, .port(30053), .integer(4)]: [ip6(fd00 | 0x1_0000, 8), .port(53)]],
        "fw6": [[ip6(fd00, 1), .prefix6(fd00, 0, 64)]: []],
    ])
}

let ip6Script = """
table ip6 sluice6 {
  map slots6 { typeof ip6 daddr . meta l4proto . th dport . numgen random mod 2 : ip6 daddr . th dport; elements = { fd00::1 . tcp . 80 . 0 : fd00:0:1::5 . 8080 } }
  set src6 { typeof ip6 saddr; flags interval; elements = { fd00::/64, ::1 } }
  map hslots6 { typeof ip6 daddr . meta l4proto . th dport . symhash mod 251 : ip6 daddr . th dport; elements = { fd00::1 . tcp . 443 . 17 : fd00:0:1::7 . 8443 } }
  map nphslots6 { typeof meta l4proto . th dport . symhash mod 5 : ip6 daddr . th dport; elements = { udp . 30053 . 4 : fd00:0:1::8 . 53 } }
  set fw6 { typeof ip6 daddr . ip6 saddr; flags interval; elements = { fd00::1 . fd00::/64 } }
  chain c {
    type nat hook prerouting priority -100; policy accept;
    ip6 saddr fd00::/64 accept
    ip6 saddr != fd00::/63 accept
    ip6 daddr fd00::1 ct original ip6 daddr fd00::2 accept
    dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 map @slots6
    dnat ip6 to ip6 daddr . meta l4proto . th dport . jhash ip6 saddr . th sport mod 251 seed 0x736c6963 map @hslots6
    dnat ip6 to ip6 daddr . meta l4proto . th dport . jhash ip6 saddr mod 251 seed 0x736c6963 map @hslots6
    dnat ip6 to meta l4proto . th dport . jhash ip6 saddr . th sport mod 5 seed 0x736c6963 map @nphslots6
    th dport != 80 accept
    meta l4proto udp th dport 53 accept
    ip6 saddr @src6 accept
    ip6 daddr . ip6 saddr != @fw6 drop
  }
  chain f { type filter hook input priority 0; policy accept; reject; }
}
"""

/// Lists a table in a namespace. With `debug`, nft prints the kernel's expressions and
/// elements (`--debug=netlink`); hash-set elements come in hash order, so each run of
/// element lines is sorted.
func listTable(_ ns: NetworkNamespace, _ family: Family, _ name: String, debug: Bool = false) throws -> String {
    let text = try ns.runChecked(["nft"] + (debug ? ["--debug=netlink"] : []) + ["list", "table", family.rawValue, name]).stdout
    guard debug else { return text }
    var out: [Substring] = [], run: [Substring] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("\telement") { run.append(line); continue }
        out += run.sorted()
        run = []
        out.append(line)
    }
    out += run.sorted()
    return out.joined(separator: "\n")
}
