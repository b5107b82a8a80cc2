// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
    ],
    targets: [
        // Kubernetes vocabulary: API objects, node options, validation, endpoint selection.
        .target(name: "SluiceModel", dependencies: [.product(name: "Yams", package: "Yams")]),
        // nftables vocabulary: tables, chains, sets, maps, elements, rules; diff and transactions.
        .target(name: "SluiceIR"),
        // Pure compiler: ProxyPlan (model) -> Ruleset (IR).
        .target(name: "SluiceCompiler", dependencies: ["SluiceModel", "SluiceIR"]),
        // Review outputs: nft scripts and iptables-restore scripts.
        .target(name: "SluiceEmit", dependencies: [
            "SluiceModel", "SluiceIR",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The one C target: libnftnl + libmnl plus a small shim.
        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl", providers: [.apt(["libnftnl-dev", "libmnl-dev"])]),
        // Netlink datapath: lowers the IR to libnftnl and talks to the kernel.
        .target(name: "SluiceNetlink", dependencies: ["CNftnl", "SluiceIR"]),
        // Test helpers: network namespaces, nft/iptables subprocesses.
        .target(name: "SluiceTestSupport", dependencies: ["SluiceIR", "SluiceModel"]),
        // Kubernetes API client: list+watch reflectors (client-go semantics), in-cluster and kubeconfig auth.
        .target(name: "SluiceKube", dependencies: [
            "SluiceModel",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
        ]),
        // In-process fake kube-apiserver on loopback (SwiftNIO HTTP/1.1 + TLS) with fault injection.
        .target(name: "SluiceKubeFake", dependencies: [
            "SluiceModel", "SluiceNetlink",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // Benchmark harness (`sluice bench`): scenarios, kube-proxy-style baselines, reports.
        .target(name: "SluiceBench", dependencies: ["SluiceModel", "SluiceIR", "SluiceCompiler", "SluiceEmit", "SluiceNetlink", "SluiceKubeFake", "SluiceTestSupport"]),
        // The node daemon (`sluice run`): sources, sync loop, health, metrics, lifecycle.
        .target(name: "SluiceDaemon", dependencies: [
            "SluiceModel", "SluiceIR", "SluiceCompiler", "SluiceNetlink", "SluiceKube",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .executableTarget(name: "sluice", dependencies: [
            "SluiceModel", "SluiceIR", "SluiceCompiler", "SluiceEmit", "SluiceNetlink", "SluiceBench", "SluiceDaemon", "SluiceKube",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // libFuzzer targets (scripts/fuzz.sh builds them with --sanitize fuzzer -DFUZZING).
        .executableTarget(name: "sluice-fuzz", dependencies: ["SluiceModel", "SluiceIR", "SluiceNetlink", "SluiceKube"], path: "Sources/SluiceFuzz"),
        .testTarget(name: "SluiceModelTests", dependencies: ["SluiceModel"]),
        .testTarget(name: "SluiceKubeTests", dependencies: [
            "SluiceKube", "SluiceKubeFake", "SluiceModel", "SluiceTestSupport",
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .testTarget(name: "SluiceCompilerTests", dependencies: ["SluiceModel", "SluiceIR", "SluiceCompiler", "SluiceEmit", "SluiceTestSupport"], resources: []),
        .testTarget(name: "SluiceEmitTests", dependencies: ["SluiceModel", "SluiceIR", "SluiceCompiler", "SluiceEmit", "SluiceTestSupport"]),
        .testTarget(name: "SluiceDaemonTests", dependencies: [
            "SluiceModel", "SluiceIR", "SluiceCompiler", "SluiceNetlink", "SluiceDaemon", "SluiceTestSupport",
            "SluiceKube", "SluiceKubeFake",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .testTarget(name: "SluiceDatapathTests", dependencies: ["SluiceModel", "SluiceIR", "SluiceCompiler", "SluiceEmit", "SluiceNetlink", "SluiceTestSupport"], exclude: ["README.md"]),
        .testTarget(name: "SluiceCLITests", dependencies: ["SluiceTestSupport", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "SluiceBenchTests", dependencies: ["SluiceBench"]),
        .testTarget(name: "SluiceNetlinkTests", dependencies: ["SluiceModel", "SluiceIR", "SluiceCompiler", "SluiceEmit", "SluiceNetlink", "SluiceTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
