import Foundation
import SluiceKube
import SluiceKubeFake
import SluiceModel
import Testing

let kubeProxySelectorQuery = "labelSelector=%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name"

@Suite("Reflector against the fake API server", .timeLimit(.minutes(3)))
struct ReflectorTests {
    @Test("initial paged list: RV 0, limit, continue, exact query strings, then a watch from the list RV")
    func initialPagedList() async throws {
        try await withFake({ $0.paginateAtResourceVersionZero = true }) { server in
            for i in 0..<7 { try server.create(service("svc-\(i)", clusterIP: "10.96.0.\(10 + i)")) }
            try server.create(service("headless", labels: [WellKnownKeys.headless: ""]))
            try server.create(service("other-proxy", labels: [WellKnownKeys.serviceProxyName: "lightpath"]))
            let listRV = server.resourceVersion
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: testOptions(pageSize: 3))
            try await h.waitSynced()
            try await h.waitConverged(with: server)
            try await eventually { server.openWatchCount() == 1 }

            guard case .synced(let first)? = h.eventLog.first else { Issue.record("first event is not .synced"); return }
            #expect(first.map(\.metadata.name) == (0..<7).map { "svc-\($0)" })
            #expect(first.allSatisfy { $0.kind == "Service" && $0.apiVersion == "v1" })

            let reqs = server.requests
            #expect(reqs.count == 4)
            #expect(reqs[0].rawQuery == "\(kubeProxySelectorQuery)&limit=3&resourceVersion=0")
            #expect(reqs[1].rawQuery.hasPrefix("continue="))
            #expect(reqs[1].rawQuery.hasSuffix("&\(kubeProxySelectorQuery)&limit=3"))
            #expect(reqs[2].query["continue"] != nil && reqs[2].query["resourceVersion"] == nil)
            #expect(reqs[0...2].allSatisfy { $0.path == "/api/v1/services" && $0.status == 200 })
            let watch = reqs[3]
            #expect(watch.isWatch)
            #expect(watch.rawQuery == "allowWatchBookmarks=true&\(kubeProxySelectorQuery)&resourceVersion=\(listRV)&timeoutSeconds=60&watch=true")
            #expect(reqs.allSatisfy { $0.userAgent == "sluice/0.1 (linux/amd64)" && $0.accept == "application/json" })
            #expect(h.reflector.statistics.listPages == 3)

            // Changes after the sync arrive as deltas.
            try server.update(service("svc-1", port: 81))
            try server.delete(Service.self, name: "svc-2")
            try server.create(service("svc-new"))
            try await h.waitConverged(with: server)
            let tail = h.eventLog.dropFirst()
            #expect(tail.count == 3)
            if case .updated(let old, let new)? = tail.first {
                #expect(old.spec.ports?.first?.port == 80 && new.spec.ports?.first?.port == 81)
            } else { Issue.record("expected .updated, got \(String(describing: tail.first))") }
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("the 1.20 watch cache ignores limit for RV 0: one page")
    func resourceVersionZeroIsOnePage() async throws {
        try await withFake { server in
            for i in 0..<5 { try server.create(service("svc-\(i)")) }
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: testOptions(pageSize: 2))
            try await h.waitConverged(with: server)
            #expect(h.reflector.statistics.listPages == 1)
            await h.stop()
            try await client.shutdown()
        }
    }

    @Test("chunked watch: an event split across chunks, several events in one chunk")
    func splitAndPackedEvents() async throws {
        try await withFake { server in
            try server.create(service("a"))
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services())
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }

            server.setWatchFraming(.split(parts: 4, pause: .milliseconds(15)))
            for i in 0..<4 { try server.update(service("a", port: 100 + i)) }
            try server.create(service("b"))
            try await h.waitConverged(with: server)

            server.setWatchFraming(.packed)
            server.batch {
                for i in 0..<5 { _ = try? server.update(service("b", port: 200 + i)) }
                _ = try? server.delete(Service.self, name: "a")
                _ = try? server.create(service("c"))
            }
            try await h.waitConverged(with: server)
            #expect(h.reflector.statistics.watchesOpened == 1)
            #expect(h.reflector.statistics.relists == 0)
            #expect(h.reflector.statistics.watchEvents == 12)
            expectNoDuplicateDeliveries(h.eventLog)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("bookmarks advance the RV so a re-watch after compaction needs no relist")
    func bookmarksAdvanceResourceVersion() async throws {
        try await withFake { server in
            try server.create(service("a"))
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services())
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }
            // Writes to another kind move the global RV; the Service watch sees none of them.
            for i in 0..<10 { try server.create(slice("s\(i)", service: "a")) }
            server.sendBookmarks()
            try await eventually { h.reflector.lastSyncResourceVersion == server.resourceVersion }
            #expect(h.reflector.statistics.bookmarks == 1)
            server.compact()
            server.dropWatchConnections(partialEvent: false)
            try server.update(service("a", port: 99))
            try await h.waitConverged(with: server)
            #expect(h.reflector.statistics.relists == 0)
            #expect(server.requests.filter { !$0.isWatch }.count == 1)
            // The second watch started at the bookmark's RV.
            let watches = server.requests.filter(\.isWatch)
            #expect(watches.count >= 2)
            #expect(watches.last?.query["resourceVersion"].flatMap { Int($0) }.map { $0 >= 111 } == true)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("410: ERROR event on watch, then 410 on the list with the last RV, then a list with RV \"\"; vanished objects are deleted")
    func expiredResourceVersionRelists() async throws {
        try await withFake { server in
            for n in ["a", "b", "c"] { try server.create(service(n)) }
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: testOptions(watchTimeout: 1...1, grace: .milliseconds(300)))
            try await h.waitSynced()
            let syncedRV = try #require(h.reflector.lastSyncResourceVersion)
            try await eventually { server.openWatchCount() == 1 }

            try changeBehindStalledWatch(server)
            try await h.waitConverged(with: server)

            let reqs = server.requests
            // A watch from the old RV got 200 + ERROR 410 …
            #expect(reqs.contains { $0.isWatch && $0.query["resourceVersion"] == syncedRV && $0.status == 200 })
            // … the relist with that RV (limit → etcd, exact) got HTTP 410 …
            let relists = reqs.filter { !$0.isWatch }.dropFirst()
            #expect(relists.first?.query["resourceVersion"] == syncedRV)
            #expect(relists.first?.status == 410)
            // … and the list with RV "" (no resourceVersion parameter) succeeded.
            #expect(relists.dropFirst().first?.query["resourceVersion"] == nil)
            #expect(relists.dropFirst().first?.status == 200)
            #expect(h.reflector.statistics.relists == 1)

            let tail = h.eventLog.dropFirst()
            #expect(tail.contains { if case .deleted(let o) = $0 { o.metadata.name == "b" } else { false } })
            #expect(tail.contains { if case .added(let o) = $0 { o.metadata.name == "d" } else { false } })
            #expect(tail.contains { if case .updated(_, let o) = $0 { o.metadata.name == "a" } else { false } })
            #expect(tail.count == 3)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("a relist with the last RV that is still in history is served at that RV (no RV \"\" needed)")
    func relistWithLastResourceVersion() async throws {
        try await withFake { server in
            for n in ["a", "b"] { try server.create(service(n)) }
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: testOptions(pageSize: 1))
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }
            try server.update(service("a", port: 1))
            try await h.waitConverged(with: server)
            let lastRV = try #require(h.reflector.lastSyncResourceVersion)
            // A watch that fails with a 500 makes client-go relist (after backoff) with the last RV.
            server.failNextRequests(1, code: 500, retryAfterSeconds: nil, pathContains: "services")
            server.dropWatchConnections(partialEvent: false)
            try await eventually { h.reflector.statistics.relists == 1 }
            try server.delete(Service.self, name: "b")
            try await h.waitConverged(with: server)
            let lists = server.requests.filter { !$0.isWatch && $0.status == 200 }
            let relist = try #require(lists.dropFirst(1).first)
            #expect(relist.query["resourceVersion"] == lastRV)
            #expect(relist.query["limit"] == "1")
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("connection dropped mid-stream: resume from the last RV, nothing lost, nothing twice")
    func droppedConnectionResumes() async throws {
        try await withFake { server in
            for n in ["a", "b", "c"] { try server.create(service(n)) }
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services())
            try await h.waitSynced()
            for round in 0..<5 {
                try await eventually { server.openWatchCount() == 1 }
                for i in 0..<4 { try server.update(service(["a", "b", "c"][i % 3], port: 1000 + round * 10 + i)) }
                let rv = server.resourceVersion
                try await eventually { h.reflector.lastSyncResourceVersion == rv }
                server.dropWatchConnections(partialEvent: true)
                // Written while no watch is open: must come from history on the re-watch.
                try server.update(service("c", port: 2000 + round))
            }
            try await h.waitConverged(with: server)
            let stats = h.reflector.statistics
            #expect(stats.relists == 0)
            #expect(stats.watchesOpened == 6)
            expectNoDuplicateDeliveries(h.eventLog)
            // Every re-watch resumed exactly where the previous one stopped.
            let watches = server.requests.filter(\.isWatch)
            #expect(Set(watches.compactMap { $0.query["resourceVersion"] }).count == watches.count)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("stalled watch: the client gives up at timeoutSeconds (+grace) and re-watches")
    func stalledWatchTimesOut() async throws {
        try await withFake { server in
            try server.create(service("a"))
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: testOptions(watchTimeout: 1...1, grace: .milliseconds(300)))
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }
            server.stallWatches()
            try server.update(service("a", port: 5))
            try server.create(service("b"))
            // The server never closes a stalled watch: converging at all proves the client deadline
            // (1 s + 0.3 s here). How long it took is the machine's speed; the timeout is a safety net.
            try await h.waitConverged(with: server, timeout: .seconds(60))
            #expect(h.reflector.statistics.relists == 0)
            #expect(h.reflector.statistics.watchesOpened >= 2)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("stalled watch after periodic bookmarks: re-watched once silent for watchProgressTimeout, long before its deadline")
    func stalledWatchNoticedByProgressTimeout() async throws {
        try await withFake { server in
            try server.create(service("a"))
            let client = try makeClient(server)
            var options = testOptions(watchTimeout: 600...600)
            options.watchProgressTimeout = .milliseconds(500)
            let h = Harness(client: client, resource: .services(), options: options)
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }
            // A bookmark in the middle of the watch: the server sends them between events.
            server.sendBookmarks()
            try await eventually { h.reflector.statistics.periodicBookmarks }
            server.stallWatches()
            try server.update(service("a", port: 5))
            // The stalled watch's deadline is 605 s away: converging within the wait proves
            // the progress timeout re-watched.
            try await h.waitConverged(with: server, timeout: .seconds(120))
            #expect(h.reflector.statistics.watchStalls >= 1)
            #expect(h.reflector.statistics.relists == 0)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("a watch whose reader waits for its consumer (pacing) is not given up as silent, while a silent one beside it is")
    func waitingForTheConsumerIsNoSilence() async throws {
        try await withFake { server in
            try server.create(service("a"))
            try server.create(slice("x", service: "a"))
            let client = try makeClient(server)
            var options = testOptions(watchTimeout: 600...600)
            options.watchProgressTimeout = .milliseconds(300)
            let gate = PaceGate()
            var paced = options
            paced.pacing = { await gate.pace() }
            let held = Harness(client: client, resource: .services(), options: paced)
            let control = Harness(client: client, resource: .endpointSlices(), options: options)
            try await held.waitSynced()
            try await control.waitSynced()
            try await eventually { server.openWatchCount() == 2 }
            server.sendBookmarks()
            try await eventually { held.reflector.statistics.periodicBookmarks && control.reflector.statistics.periodicBookmarks }

            // The Services reader is held at its next buffer; then every watch goes silent.
            gate.holdOnce { true }
            try server.update(service("a", port: 5))
            try await eventually(.seconds(20), "the reader waits for its consumer") { gate.holding }
            server.stallWatches(newWatchesToo: true)
            // The control watch is given up twice meanwhile: the held one was silent longer.
            try await eventually(.seconds(60), "the control watch given up twice") { control.reflector.statistics.watchStalls >= 2 }
            #expect(held.reflector.statistics.watchStalls == 0)

            gate.release()
            server.stopStalling()
            try await held.waitConverged(with: server, timeout: .seconds(120))
            try await control.waitConverged(with: server, timeout: .seconds(120))
            await held.stop()
            await control.stop()
            try await client.shutdown()
        }
    }

    @Test("no periodic bookmarks seen: a silent watch is not given up before its deadline (servers that bookmark only at the timeout)")
    func progressTimeoutUnarmedWithoutPeriodicBookmarks() async throws {
        try await withFake { server in
            try server.create(service("a"))
            let client = try makeClient(server)
            var options = testOptions(watchTimeout: 600...600)
            options.watchProgressTimeout = .milliseconds(200)
            let h = Harness(client: client, resource: .services(), options: options)
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }
            // The watchdog has seen the watch silent past the progress timeout three times over.
            try await eventually(.seconds(60)) { h.reflector.statistics.silencesTolerated >= 3 }
            #expect(h.reflector.statistics.watchStalls == 0)
            #expect(!h.reflector.statistics.periodicBookmarks)
            #expect(h.reflector.statistics.watchesOpened == 1)
            await h.stop()
            try await client.shutdown()
        }
    }

    @Test("watch closed at timeoutSeconds with a bookmark: immediate re-watch from the bookmark RV")
    func normalTimeoutRewatches() async throws {
        try await withFake { server in
            try server.create(service("a"))
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: testOptions(watchTimeout: 1...1))
            try await h.waitSynced()
            try server.create(slice("x", service: "a"))   // moves the RV; only the bookmark tells the Service watch
            try await eventually { server.requests.filter(\.isWatch).count >= 2 }
            let watches = server.requests.filter(\.isWatch)
            #expect(watches[1].query["resourceVersion"] == server.resourceVersion)
            #expect(h.reflector.statistics.bookmarks >= 1)
            #expect(h.reflector.statistics.relists == 0)
            try server.update(service("a", port: 7))
            try await h.waitConverged(with: server)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("429 with Retry-After is honoured on list and on watch")
    func retryAfterHonoured() async throws {
        try await withFake { server in
            try server.create(service("a"))
            server.failNextRequests(1, code: 429, retryAfterSeconds: 1, pathContains: "/services")
            let client = try makeClient(server)
            var options = testOptions()
            options.minWatchDuration = .zero   // the dropped watch below is not a "very short watch" → re-watch, no relist
            let h = Harness(client: client, resource: .services(), options: options)
            try await h.waitSynced()
            var reqs = server.requests
            #expect(reqs[0].status == 429 && reqs[1].status == 200)
            let listWait = reqs[1].time - reqs[0].time
            #expect(listWait >= .seconds(1) && listWait < .seconds(15), "waited \(listWait)")

            try await eventually { server.openWatchCount() == 1 }
            server.failNextRequests(1, code: 429, retryAfterSeconds: 1, pathContains: "/services")
            server.dropWatchConnections(partialEvent: false)
            try server.update(service("a", port: 3))
            try await h.waitConverged(with: server)
            reqs = server.requests
            let i = try #require(reqs.firstIndex { $0.status == 429 && $0.isWatch }, "\(reqs)")
            let next = reqs[(i + 1)...].first { $0.path == "/api/v1/services" }
            let watchWait = try #require(next).time - reqs[i].time
            #expect(watchWait >= .seconds(1) && watchWait < .seconds(15), "waited \(watchWait)")
            #expect(h.reflector.statistics.relists == 0)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("504 too large RV on list: wait Retry-After, then relist with RV \"\"")
    func tooLargeResourceVersion() async throws {
        try await withFake { server in
            try server.create(service("a"))
            let client = try makeClient(server)
            // A list without limit from an RV the server has not reached (cache path) → 504.
            do {
                let _: KubeAPIClient.ListPage<Service> = try await client.listPage(.services(), resourceVersion: "999999", limit: nil, continueToken: nil)
                Issue.record("expected 504")
            } catch let e as KubeAPIError {
                #expect(e.httpCode == 504)
                #expect(e.isTooLargeResourceVersion)
                #expect(e.retryAfter == .seconds(1))
            }
            // With limit (etcd path) → 500 future revision.
            do {
                let _: KubeAPIClient.ListPage<Service> = try await client.listPage(.services(), resourceVersion: "999999", limit: 500, continueToken: nil)
                Issue.record("expected 500")
            } catch let e as KubeAPIError {
                #expect(e.httpCode == 500)
            }
            try await client.shutdown()
        }
    }

    @Test("504 too large RV in the reflector: wait retryAfterSeconds, then list with RV \"\"")
    func tooLargeResourceVersionRelist() async throws {
        try await withFake { server in
            try server.create(service("a"))
            server.failNextRequests(1, code: 504, retryAfterSeconds: 1, pathContains: "/services")
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services())
            try await h.waitConverged(with: server)
            let lists = server.requests.filter { !$0.isWatch }
            #expect(lists.map(\.status) == [504, 200])
            #expect(lists[0].query["resourceVersion"] == "0")
            #expect(lists[1].query["resourceVersion"] == nil)
            let waited = lists[1].time - lists[0].time
            #expect(waited >= .seconds(1) && waited < .seconds(15), "waited \(waited)")
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("expired continue token: the pager restarts the list without continue, RV \"\"")
    func expiredContinueRestartsList() async throws {
        try await withFake({ $0.paginateAtResourceVersionZero = true }) { server in
            for i in 0..<5 { try server.create(service("svc-\(i)")) }
            server.expireNextContinueTokens(1)
            let client = try makeClient(server)
            let h = Harness(client: client, resource: .services(), options: testOptions(pageSize: 2))
            try await h.waitConverged(with: server)
            let lists = server.requests.filter { !$0.isWatch }
            #expect(lists.map(\.status) == [200, 410, 200, 200, 200])
            #expect(lists[0].query["resourceVersion"] == "0")
            #expect(lists[2].query["resourceVersion"] == nil && lists[2].query["continue"] == nil)
            if case .synced(let all)? = h.eventLog.first { #expect(all.count == 5) } else { Issue.record("no .synced") }
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("label-selector transitions: gaining service.kubernetes.io/headless deletes, losing it adds")
    func selectorTransitions() async throws {
        try await withFake { server in
            try server.create(slice("web-abc12", service: "web"))
            try server.create(slice("web-def34", service: "web"))
            try server.create(service("web"))
            let client = try makeClient(server)
            let slices = Harness(client: client, resource: .endpointSlices())
            let services = Harness(client: client, resource: .services())
            try await slices.waitSynced()
            try await services.waitSynced()
            try await eventually { server.openWatchCount() == 2 }

            try server.setLabels(EndpointSlice.self, name: "web-abc12", [WellKnownKeys.headless: ""])
            try server.setLabels(Service.self, name: "web", [WellKnownKeys.serviceProxyName: "other"])
            try await slices.waitConverged(with: server)
            try await services.waitConverged(with: server)
            #expect(slices.reflector.snapshot().keys.map(\.name) == ["web-def34"])
            #expect(services.reflector.snapshot().isEmpty)

            try server.setLabels(EndpointSlice.self, name: "web-abc12", [WellKnownKeys.headless: nil])
            try server.setLabels(Service.self, name: "web", [WellKnownKeys.serviceProxyName: nil])
            try await slices.waitConverged(with: server)
            try await services.waitConverged(with: server)

            let sliceTail = Array(slices.eventLog.dropFirst())
            #expect(sliceTail.count == 2)
            if case .deleted(let o)? = sliceTail.first { #expect(o.metadata.name == "web-abc12") } else { Issue.record("expected .deleted") }
            if case .added(let o)? = sliceTail.last { #expect(o.metadata.name == "web-abc12") } else { Issue.record("expected .added") }
            #expect(services.eventLog.count == 3)
            #expect(slices.reflector.statistics.relists == 0)
            await slices.stop()
            await services.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("--service-proxy-name: only Services and slices labelled with that name (headless still excluded)")
    func serviceProxyName() async throws {
        try await withFake { server in
            let mine = [WellKnownKeys.serviceProxyName: "lightpath"]
            try server.create(service("mine", labels: mine))
            try server.create(service("default-proxy"))
            try server.create(service("other", labels: [WellKnownKeys.serviceProxyName: "edgemesh"]))
            try server.create(slice("mine-1", service: "mine", labels: mine))
            try server.create(slice("mine-headless", service: "mine", labels: mine.merging([WellKnownKeys.headless: ""]) { a, _ in a }))
            try server.create(slice("default-1", service: "default-proxy"))
            let client = try makeClient(server)
            let services = Harness(client: client, resource: .services(serviceProxyName: "lightpath"))
            let slices = Harness(client: client, resource: .endpointSlices(serviceProxyName: "lightpath"))
            try await services.waitConverged(with: server)
            try await slices.waitConverged(with: server)
            #expect(services.reflector.snapshot().keys.map(\.name) == ["mine"])
            #expect(slices.reflector.snapshot().keys.map(\.name) == ["mine-1"])
            let q = "labelSelector=%21service.kubernetes.io%2Fheadless%2Cservice.kubernetes.io%2Fservice-proxy-name%3Dlightpath"
            #expect(server.requests.allSatisfy { $0.rawQuery.contains(q) })
            #expect(server.requests.contains { $0.path == "/apis/discovery.k8s.io/v1/endpointslices" })
            // Opting in later shows up as an ADDED.
            try server.setLabels(Service.self, name: "default-proxy", mine.mapValues { Optional($0) })
            try await services.waitConverged(with: server)
            #expect(services.reflector.snapshot().count == 2)
            await services.stop()
            await slices.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("own Node by fieldSelector; ServiceCIDRs tolerate 404 and are picked up once served")
    func nodeAndServiceCIDRs() async throws {
        try await withFake({ $0.serveServiceCIDRs = false }) { server in
            try server.create(Node(metadata: ObjectMeta(name: "node-a", labels: [WellKnownKeys.topologyZone: "z1"]),
                                   spec: Node.Spec(podCIDRs: ["10.244.0.0/24"])))
            try server.create(Node(metadata: ObjectMeta(name: "node-b")))
            let client = try makeClient(server)
            let node = Harness(client: client, resource: .node(named: "node-a"))
            let cidrs = Harness(client: client, resource: .serviceCIDRs(), options: testOptions())
            try await node.waitConverged(with: server)
            #expect(node.reflector.snapshot().keys.map(\.name) == ["node-a"])
            #expect(server.requests.contains { $0.rawQuery == "fieldSelector=metadata.name%3Dnode-a&limit=500&resourceVersion=0" })
            try await cidrs.waitSynced()
            #expect(cidrs.reflector.snapshot().isEmpty)
            #expect(server.requests.contains { $0.path == "/apis/networking.k8s.io/v1/servicecidrs" && $0.status == 404 })

            server.setServesServiceCIDRs(true)
            try server.create(ServiceCIDR(metadata: ObjectMeta(name: "kubernetes"), cidrs: ["10.96.0.0/16"]))
            try await cidrs.waitConverged(with: server)
            #expect(cidrs.reflector.snapshot().count == 1)
            try server.update(Node(metadata: ObjectMeta(name: "node-a", labels: [WellKnownKeys.topologyZone: "z2"])))
            try server.update(Node(metadata: ObjectMeta(name: "node-b", labels: ["x": "y"])))
            try await node.waitConverged(with: server)
            #expect(node.reflector.snapshot().values.first?.zone == "z2")
            await node.stop()
            await cidrs.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("lenient decoding of unknown fields, managedFields and \"endpoints\": null")
    func lenientContent() async throws {
        try await withFake { server in
            try server.applyJSON(.endpointSlices, #"{"metadata":{"name":"empty","namespace":"default","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","endpoints":null,"ports":null,"futureField":{"x":[1,2.5,true]}}"#)
            try server.applyJSON(.services, #"{"metadata":{"name":"web","namespace":"default"},"spec":{"type":"LoadBalancer","clusterIP":"10.96.1.1","trafficDistribution":"PreferClose","ports":[{"port":80}]},"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.1","ipMode":"Proxy"}]}}}"#)
            let client = try makeClient(server)
            let slices = Harness(client: client, resource: .endpointSlices())
            let services = Harness(client: client, resource: .services())
            try await slices.waitConverged(with: server)
            try await services.waitConverged(with: server)
            #expect(slices.reflector.snapshot().values.first?.endpoints == nil)
            #expect(services.reflector.snapshot().values.first?.status.loadBalancer?.ingress?.first?.ipMode == "Proxy")
            await slices.stop()
            await services.stop()
            try await client.shutdown()
        }
    }

    @Test("token rotation: a 401 makes the client re-read the token file")
    func tokenRotationOn401() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-token-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tokenFile = dir.appendingPathComponent("token").path
        try "token-one\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        try await withFake({ $0.requireAuthentication = true; $0.acceptedTokens = ["token-one"] }) { server in
            let source = TokenSource(.file(tokenFile), recheckInterval: .seconds(3600))
            let client = try makeClient(server, tokenSource: source)
            var options = testOptions()
            options.minWatchDuration = .zero   // the watch dropped below is not a "very short watch" → re-watch, no relist
            let h = Harness(client: client, resource: .services(), options: options)
            try server.create(service("a"))
            try await h.waitConverged(with: server)
            try await eventually { server.openWatchCount() == 1 }

            try "token-two\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            server.setAcceptedTokens(["token-two"])
            server.dropWatchConnections(partialEvent: false)
            try server.update(service("a", port: 2))
            try await h.waitConverged(with: server)
            let reqs = server.requests
            let i = try #require(reqs.firstIndex { $0.status == 401 })
            #expect(reqs[i].authorization == "Bearer token-one")
            #expect(reqs[i + 1].authorization == "Bearer token-two" && reqs[i + 1].status == 200)
            // "At once": the very next request carries the new token (the file's recheck interval
            // is an hour). How many milliseconds that took is the machine's speed, not asserted.
            #expect(h.reflector.statistics.relists == 0)
            await h.stop()
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }

    @Test("unauthenticated: 403 as system:anonymous; a wrong token: 401 Status")
    func authenticationFailures() async throws {
        try await withFake({ $0.requireAuthentication = true; $0.acceptedTokens = ["good"] }) { server in
            let anon = try makeClient(server)
            do {
                let _: KubeAPIClient.ListPage<Service> = try await anon.listPage(.services(), resourceVersion: "0", limit: 500, continueToken: nil)
                Issue.record("expected 403")
            } catch let e as KubeAPIError {
                #expect(e.httpCode == 403)
                #expect(e.apiStatus?.message?.contains("system:anonymous") == true)
            }
            let bad = try makeClient(server, tokenSource: TokenSource(.fixed("bad")))
            do {
                let _: KubeAPIClient.ListPage<Service> = try await bad.listPage(.services(), resourceVersion: "0", limit: 500, continueToken: nil)
                Issue.record("expected 401")
            } catch let e as KubeAPIError {
                #expect(e.httpCode == 401)
                #expect(e.apiStatus?.reason == "Unauthorized" && e.apiStatus?.code == 401 && e.apiStatus?.kind == "Status")
            }
            try await anon.shutdown()
            try await bad.shutdown()
        }
    }
}

@Suite("ProxyReflectors", .timeLimit(.minutes(3)))
struct ProxyReflectorsTests {
    @Test("the four reflectors sync on one client; cancelling run() finishes every event stream")
    func allFour() async throws {
        try await withFake { server in
            try server.create(service("web"))
            try server.create(slice("web-1", service: "web"))
            try server.create(Node(metadata: ObjectMeta(name: "node-a")))
            try server.create(ServiceCIDR(metadata: ObjectMeta(name: "kubernetes"), cidrs: ["10.96.0.0/16"]))
            let client = try makeClient(server)
            let reflectors = ProxyReflectors(client: client, nodeName: "node-a", options: testOptions())
            let run = Task { await reflectors.run() }
            let drain = Task {
                var n = 0
                for await _ in reflectors.services.events { n += 1 }
                return n
            }
            try await eventually { reflectors.hasSynced && server.openWatchCount() == 4 }
            #expect(reflectors.endpointSlices.snapshot().count == 1)
            #expect(reflectors.node.snapshot().count == 1)
            #expect(reflectors.serviceCIDRs?.snapshot().count == 1)
            run.cancel()
            await run.value
            #expect(await drain.value == 1)
            try await client.shutdown()
            expectNoSingleObjectGets(server)
        }
    }
}

extension ReflectorTests {

    @Test("without cached content: the cache keeps identities and resourceVersions only, events carry whole objects, a relist emits only real changes")
    func contentFreeCache() async throws {
        try await withFake { server in
            for n in ["a", "b", "c"] { try server.create(service(n)) }
            let client = try makeClient(server)
            var options = testOptions(watchTimeout: 1...1, grace: .milliseconds(300))
            options.cachesContent = false
            let h = Harness(client: client, resource: .services(), options: options)
            try await h.waitSynced()
            try await eventually { server.openWatchCount() == 1 }
            try changeBehindStalledWatch(server)
            try await eventually(.seconds(20), "events rebuild the server's objects") {
                let expected = try server.objects(Service.self, labelSelector: nil, fieldSelector: nil)
                let rebuilt = h.consumerState.withLockedValue { $0 }.sorted { $0.key < $1.key }.map(\.value)
                return rebuilt == expected
            }
            let cache = h.reflector.snapshot()
            #expect(Set(cache.keys.map(\.name)) == ["a", "c", "d"])
            #expect(cache.values.allSatisfy { $0.spec.ports == nil && $0.resourceVersion != nil }, "content-free cache")
            // The relist after 410 emitted exactly the three changes (c is unchanged: same resourceVersion).
            let tail = h.eventLog.dropFirst()
            #expect(tail.count == 3, "\(tail)")
            #expect(tail.contains { if case .updated(_, let o) = $0 { o.metadata.name == "a" && o.spec.ports?.first?.port == 8443 } else { false } })
            await h.stop()
            try await client.shutdown()
        }
    }
}
