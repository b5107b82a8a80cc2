import CNftnl

// Owners of libnftnl objects. Each final class frees its object in `deinit`; objects whose
// ownership moves into a parent (expressions into rules, elements into sets) are never
// wrapped on their own.

/// Attribute id conversion for libnftnl setters (anonymous enums import as `Int`).
@inline(__always) func A(_ v: Int) -> UInt16 { UInt16(v) }
/// Attribute id conversion for named C enums (imported as structs with a `UInt32` raw value).
@inline(__always) func A<T: RawRepresentable>(_ v: T) -> UInt16 where T.RawValue == UInt32 { UInt16(v.rawValue) }

/// Sets a binary attribute from a byte array.
@inline(__always)
func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawPointer, UInt32) -> R) -> R {
    bytes.withUnsafeBytes { body($0.baseAddress!, UInt32($0.count)) }
}

/// `struct nftnl_table`: one nf_tables table (NFT_MSG_NEWTABLE / DELTABLE).
final class NftnlTable {
    let raw: OpaquePointer
    init() throws { raw = try cAlloc("nftnl_table_alloc") { nftnl_table_alloc() } }
    deinit { nftnl_table_free(raw) }
}

/// `struct nftnl_chain`: one chain (NFT_MSG_NEWCHAIN / DELCHAIN).
final class NftnlChain {
    let raw: OpaquePointer
    init() throws { raw = try cAlloc("nftnl_chain_alloc") { nftnl_chain_alloc() } }
    deinit { nftnl_chain_free(raw) }
}

/// `struct nftnl_rule`: one rule with its expressions (NFT_MSG_NEWRULE / DELRULE).
final class NftnlRule {
    let raw: OpaquePointer
    init() throws { raw = try cAlloc("nftnl_rule_alloc") { nftnl_rule_alloc() } }
    deinit { nftnl_rule_free(raw) }

    /// Allocates expression `name` (e.g. `payload`), lets `configure` set its attributes,
    /// and hands it to the rule, which owns it from then on.
    func add(_ name: String, _ configure: (OpaquePointer) -> Void) throws {
        let e = try cAlloc("nftnl_expr_alloc(\(name))") { nftnl_expr_alloc(name) }
        configure(e)
        nftnl_rule_add_expr(raw, e)
    }
}

/// `struct nftnl_set`: a named set or map (NFT_MSG_NEWSET), also the carrier of element
/// lists (NFT_MSG_NEWSETELEM / DELSETELEM).
final class NftnlSet {
    let raw: OpaquePointer
    init() throws { raw = try cAlloc("nftnl_set_alloc") { nftnl_set_alloc() } }
    deinit { nftnl_set_free(raw) }

    /// Adds one element (`struct nftnl_set_elem`); the set owns it.
    func addElement(key: [UInt8], keyEnd: [UInt8]? = nil, data: [UInt8]? = nil, flags: UInt32 = 0,
                    userdata: [UInt8]? = nil) throws {
        let e = try cAlloc("nftnl_set_elem_alloc") { nftnl_set_elem_alloc() }
        withBytes(key) { _ = nftnl_set_elem_set(e, A(NFTNL_SET_ELEM_KEY), $0, $1) }
        if let keyEnd { withBytes(keyEnd) { _ = nftnl_set_elem_set(e, A(NFTNL_SET_ELEM_KEY_END), $0, $1) } }
        if let data { withBytes(data) { _ = nftnl_set_elem_set(e, A(NFTNL_SET_ELEM_DATA), $0, $1) } }
        if flags != 0 { nftnl_set_elem_set_u32(e, A(NFTNL_SET_ELEM_FLAGS), flags) }
        if let userdata { withBytes(userdata) { _ = nftnl_set_elem_set(e, A(NFTNL_SET_ELEM_USERDATA), $0, $1) } }
        nftnl_set_elem_add(raw, e)
    }

    /// `counter` in the declaration: the set's one stateful expression (NFTA_SET_EXPR), as
    /// nft 1.0.6 sends a single set statement. The set owns it.
    func addCounterExpression() throws {
        let e = try cAlloc("nftnl_expr_alloc(counter)") { nftnl_expr_alloc("counter") }
        nftnl_set_set_data(raw, A(NFTNL_SET_EXPR), UnsafeRawPointer(e), 0)
    }
}

/// An owned `struct nftnl_set_elems_iter`.
final class NftnlElemIter {
    let raw: OpaquePointer
    init(_ set: NftnlSet) throws {
        raw = try cAlloc("nftnl_set_elems_iter_create") { nftnl_set_elems_iter_create(set.raw) }
    }
    deinit { nftnl_set_elems_iter_destroy(raw) }
    var isEmpty: Bool { nftnl_set_elems_iter_cur(raw) == nil }
}
