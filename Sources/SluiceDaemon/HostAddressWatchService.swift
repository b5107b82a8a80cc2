import Foundation
import Logging
import ServiceLifecycle
import SluiceModel
import SluiceNetlink

/// Follows the interface addresses of the daemon's namespace, which CIDR entries of
/// `--nodeport-addresses` select from (kube-proxy's NodePort addresses): subscribes to
/// rtnetlink address notifications (`AddressMonitor`), reads the whole set after each change
/// and hands it to the sync loop, which updates the `nodeport-ips` set (O(change)). A
/// reader thread waits on the socket; the service stops at graceful shutdown or cancellation.
struct HostAddressWatchService: ServiceLifecycle.Service {
    let loop: SyncLoop
    let netns: String?
    let logger: Logger

    func run() async {
        let monitor: AddressMonitor
        do {
            monitor = try AddressMonitor(namespace: netns)
        } catch {
            logger.warning("cannot follow the host's addresses; NodePort addresses stay as first read", metadata: ["error": "\(error)"])
            return
        }
        await ReaderThread.run(name: "sluice-address-watch") { [loop, logger] stopped, _ in
            Self.follow(monitor, loop: loop, logger: logger, stopped: stopped)
        }
    }

    /// The reader thread: one read now (the subscription is in place, so no change is
    /// missed), then one after each change, until `stopped`.
    static func follow(_ monitor: AddressMonitor, loop: SyncLoop, logger: Logger, stopped: () -> Bool) {
        var changed = true
        while !stopped() {
            do {
                if changed { loop.receiveHostAddresses(hostIPAddresses(try monitor.addresses())) }
                changed = try monitor.waitForChange(timeout: 0.5)
            } catch {
                logger.warning("reading the host's addresses failed; retrying", metadata: ["error": "\(error)"])
                changed = true
                Thread.sleep(forTimeInterval: 1)
            }
        }
    }
}

/// The addresses that accept traffic (not tentative, DAD not failed), as IPs, sorted and
/// without duplicates (one address on two interfaces counts once). Loopback is kept: the
/// node context leaves it out.
public func hostIPAddresses(_ addresses: [InterfaceAddress]) -> [IPAddress] {
    Array(Set(addresses.lazy.filter(\.isUsable).compactMap { IPAddress($0.address) })).sorted()
}
