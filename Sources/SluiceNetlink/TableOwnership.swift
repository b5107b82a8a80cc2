import Glibc
import SluiceIR

/// Whether an applier's socket owns the tables it creates (`NFT_TABLE_F_OWNER`, Linux 5.12)
/// and keeps them when it exits (`NFT_TABLE_F_PERSIST`, Linux 6.9).
///
/// The kernel refuses every write to an owned table that does not come from its owner's
/// netlink socket (`EPERM`), and `nft flush ruleset` passes it by: a firewall reload cannot
/// take the services down. When the owner's socket closes, a persistent table stays, as an
/// orphan that the next owner claims (a restarted daemon, `adopt`). Without both flags
/// (older kernels) nothing is owned: the daemon watches commits and repairs instead.
public enum TableOwnership: Sendable, Equatable {
    /// Tables are created without flags.
    case none
    /// Tables are created owned and persistent; existing orphans are claimed on `adopt`.
    case owner

    /// `NFT_TABLE_F_OWNER | NFT_TABLE_F_PERSIST`.
    public static let ownerFlags: UInt32 = 0x2 | 0x4

    var flags: UInt32 { self == .owner ? Self.ownerFlags : 0 }
    var isOwner: Bool { self == .owner }
}

extension NftablesApplier {
    /// Owns the tables from now on if the kernel has both flags: probes with a table added
    /// and deleted in one batch (nothing stays), then creates and adopts tables owned.
    /// Returns whether it owns them; false leaves the applier as it was.
    @discardableResult
    public func takeOwnership() throws -> Bool {
        if ownership.isOwner { return true }
        let probe = "sluice-ownership-probe"
        do {
            _ = try socket.commit([.addTable(.ip, probe, comment: nil), .deleteTable(.ip, probe)], tableFlags: TableOwnership.ownerFlags)
        } catch let e as NetlinkError where e.kind == .kernel && (e.errno == EOPNOTSUPP || e.errno == EINVAL) {
            return false
        }
        if expectedGeneration != nil { expectedGeneration = try socket.currentGeneration() }
        ownership = .owner
        return true
    }

    /// Claims tables that exist (an orphan left by a previous owner). Returns whether a
    /// claim was sent. A table created without the persist flag cannot be claimed (the
    /// kernel does not add it later): ownership is then given up, with the reason in
    /// `ownershipLost`. A table another live process owns is refused (`isOwnedElsewhere`).
    func claim(_ tables: [Table]) throws -> Bool {
        var sent = false
        for t in tables {
            do {
                _ = try socket.commit([.addTable(t.family, t.name, comment: t.comment)], tableFlags: ownership.flags)
                sent = true
            } catch let e as NetlinkError where e.kind == .kernel && e.errno == EOPNOTSUPP {
                ownership = .none
                ownershipLost = "table \(t.family) \(t.name) exists without the persist flag (made by an older Sluice or "
                    + "`sluice apply`); it stays unowned until it is recreated (`sluice cleanup` while the daemon is stopped)"
                return sent
            }
        }
        return sent
    }
}

extension NetlinkError {
    /// The kernel refused a write to a table another process's socket owns.
    public var isOwnedElsewhere: Bool { kind == .kernel && errno == EPERM }
}
