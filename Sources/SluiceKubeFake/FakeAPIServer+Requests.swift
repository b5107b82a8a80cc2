import Foundation
import NIOCore
import NIOHTTP1

extension FakeAPIServer {
    func connectionOpened(_ channel: Channel) {
        state.withLockedValue { $0.channels[ObjectIdentifier(channel)] = channel }
    }

    func connectionClosed(_ channel: Channel) {
        state.withLockedValue { s in
            s.channels[ObjectIdentifier(channel)] = nil
            for (id, w) in s.watchers where w.channel === channel { s.watchers[id] = nil }
        }
    }

    /// A parsed request target.
    struct Route {
        var resource: FakeResource
        var namespace: String?
        var name: String?
    }

    static func parseQuery(_ raw: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = unescape(String(parts[0]))
            let v = parts.count > 1 ? unescape(String(parts[1])) : ""
            out[k] = v
        }
        return out
    }

    static func unescape(_ s: String) -> String {
        (s.replacingOccurrences(of: "+", with: " ")).removingPercentEncoding ?? s
    }

    func route(_ path: String, serveServiceCIDRs: Bool) -> Route? {
        let segments = path.split(separator: "/").map(String.init)
        for r in FakeResource.all {
            if r == .serviceCIDRs && !serveServiceCIDRs { continue }
            let prefix = r.prefix.split(separator: "/").map(String.init)
            guard segments.count > prefix.count, Array(segments[0..<prefix.count]) == prefix else { continue }
            var rest = Array(segments[prefix.count...])
            var namespace: String? = nil
            if r.namespaced, rest.count >= 3, rest[0] == "namespaces" {
                namespace = rest[1]
                rest.removeFirst(2)
            }
            guard rest.first == r.plural else { continue }
            if rest.count == 1 { return Route(resource: r, namespace: namespace, name: nil) }
            if rest.count == 2 { return Route(resource: r, namespace: namespace, name: rest[1]) }
        }
        return nil
    }

    static func status(_ code: Int, reason: String, message: String, details: JSONValue? = nil,
                       metadata: JSONValue = .object([:])) -> String {
        var o: [String: JSONValue] = [
            "kind": .string("Status"), "apiVersion": .string("v1"), "metadata": metadata,
            "status": .string("Failure"), "message": .string(message), "reason": .string(reason), "code": .int(Int64(code)),
        ]
        if let details { o["details"] = details }
        return JSONValue.object(o).rendered()
    }

    func handle(_ head: HTTPRequestHead, clientCertificate: Bool, responder: Responder) {
        let uri = head.uri
        let (path, rawQuery): (String, String) = {
            if let q = uri.firstIndex(of: "?") { return (String(uri[..<q]), String(uri[uri.index(after: q)...])) }
            return (uri, "")
        }()
        let query = Self.parseQuery(rawQuery)
        let keepAlive = head.isKeepAlive
        let now = ContinuousClock.now
        let serveCIDRs = state.withLockedValue { $0.serveServiceCIDRs }
        let route = self.route(path, serveServiceCIDRs: serveCIDRs)
        var record = RecordedRequest(method: head.method.rawValue, path: path, query: query, rawQuery: rawQuery,
                                     userAgent: head.headers.first(name: "User-Agent"),
                                     accept: head.headers.first(name: "Accept"),
                                     authorization: head.headers.first(name: "Authorization"),
                                     clientCertificate: clientCertificate, time: now, status: 0,
                                     isSingleObjectGet: head.method == .GET && route?.name != nil)

        func finish(_ status: Int, _ body: String, headers: [(String, String)] = [], contentType: String = "application/json") {
            record.status = status
            let r = record
            state.withLockedValue { $0.requests.append(r) }
            responder.respond(status: status, body: body, contentType: contentType, extraHeaders: headers, keepAlive: keepAlive)
        }

        // Authentication.
        let (requireAuth, tokens) = state.withLockedValue { ($0.requireAuthentication, $0.acceptedTokens) }
        if requireAuth && !clientCertificate {
            if let auth = record.authorization {
                let token = auth.hasPrefix("Bearer ") ? String(auth.dropFirst(7)) : ""
                if !tokens.contains(token) {
                    finish(401, Self.status(401, reason: "Unauthorized", message: "Unauthorized"))
                    return
                }
            } else {
                let what = route?.resource.plural ?? "path"
                finish(403, Self.status(403, reason: "Forbidden",
                                        message: "\(what) is forbidden: User \"system:anonymous\" cannot list resource \"\(what)\" in API group \"\" at the cluster scope",
                                        details: .object(["kind": .string(what)])))
                return
            }
        }

        // Injected failures.
        let injected: Failure? = state.withLockedValue { s in
            guard let i = s.failures.firstIndex(where: { f in f.pathContains.map { path.contains($0) } ?? true }) else { return nil }
            let f = s.failures[i]
            s.failures[i].remaining -= 1
            if s.failures[i].remaining <= 0 { s.failures.remove(at: i) }
            return f
        }
        if let f = injected {
            var headers: [(String, String)] = []
            if let ra = f.retryAfterSeconds { headers.append(("Retry-After", String(ra))) }
            let details: JSONValue? = f.retryAfterSeconds.map { .object(["retryAfterSeconds": .int(Int64($0))]) }
            switch f.code {
            case 429:
                finish(429, Self.status(429, reason: "TooManyRequests", message: "Too many requests, please try again later.", details: details), headers: headers)
            case 504:
                // The watch cache's answer to a list from an RV it has not reached.
                var d: [String: JSONValue] = ["causes": .array([.object(["reason": .string("ResourceVersionTooLarge"), "message": .string("Too large resource version")])])]
                if let ra = f.retryAfterSeconds { d["retryAfterSeconds"] = .int(Int64(ra)) }
                let current = state.withLockedValue { $0.rv }
                finish(504, Self.status(504, reason: "Timeout", message: "Timeout: Too large resource version: \(current + 1000), current: \(current)",
                                        details: .object(d)), headers: headers)
            case 503:
                finish(503, Self.status(503, reason: "ServiceUnavailable", message: "the server is currently unable to handle the request", details: details), headers: headers)
            case 401:
                finish(401, Self.status(401, reason: "Unauthorized", message: "Unauthorized"))
            default:
                finish(f.code, Self.status(f.code, reason: "InternalError", message: "Internal error occurred: injected failure",
                                           details: .object(["causes": .array([.object(["message": .string("injected failure")])])])), headers: headers)
            }
            return
        }

        switch path {
        case "/healthz", "/livez", "/readyz":
            finish(200, "ok", contentType: "text/plain; charset=utf-8")
            return
        case "/version":
            finish(200, #"{"major":"1","minor":"33","gitVersion":"v1.33.0-sluice-fake","platform":"linux/amd64"}"#)
            return
        default:
            if let body = discovery(path, serveServiceCIDRs: serveCIDRs) {
                finish(200, body)
                return
            }
        }

        guard let route else {
            finish(404, Self.status(404, reason: "NotFound", message: "the server could not find the requested resource",
                                    details: .object([:])))
            return
        }
        guard head.method == .GET else {
            finish(405, Self.status(405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource"))
            return
        }
        let r = route.resource
        if let name = route.name {
            if configuration.forbidSingleObjectGets {
                let scope = route.namespace.map { "in the namespace \"\($0)\"" } ?? "at the cluster scope"
                let group = r.apiVersion.contains("/") ? String(r.apiVersion.split(separator: "/")[0]) : ""
                finish(403, Self.status(403, reason: "Forbidden",
                                        message: "\(r.plural) \"\(name)\" is forbidden: User \"system:kube-proxy\" cannot get resource \"\(r.plural)\" in API group \"\(group)\" \(scope)",
                                        details: .object(["name": .string(name), "kind": .string(r.plural)])))
                return
            }
            let key = Self.key(r, namespace: route.namespace, name: name)
            if let o = state.withLockedValue({ $0.objects[r.plural]?[key] }) {
                finish(200, Self.withTypeMeta(o, r).rendered())
            } else {
                finish(404, Self.status(404, reason: "NotFound", message: "\(r.plural) \"\(name)\" not found",
                                        details: .object(["name": .string(name), "kind": .string(r.plural)])))
            }
            return
        }

        // Selectors.
        let label: LabelSelector?
        let field: FieldSelector?
        do {
            label = try query["labelSelector"].flatMap { $0.isEmpty ? nil : try LabelSelector(parsing: $0) }
            field = try query["fieldSelector"].flatMap { $0.isEmpty ? nil : try FieldSelector(parsing: $0) }
        } catch {
            finish(400, Self.status(400, reason: "BadRequest", message: "\(error)"))
            return
        }

        if query["watch"] == "true" || query["watch"] == "1" {
            if let refusal = watchListRefusal(query) {
                finish(422, Self.status(422, reason: "Invalid", message: refusal,
                                        details: .object(["kind": .string("ListOptions"), "group": .string("meta.k8s.io")])))
                return
            }
            if !configuration.watchList && (query["sendInitialEvents"] != nil || query["resourceVersionMatch"] != nil) {
                finish(422, Self.status(422, reason: "Invalid",
                                        message: "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch, sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled]",
                                        details: .object(["kind": .string("ListOptions"), "group": .string("meta.k8s.io")])))
                return
            }
            record.status = 200
            let rec = record
            state.withLockedValue { $0.requests.append(rec) }
            startWatch(route: route, label: label, field: field, query: query, responder: responder)
            return
        }

        let (code, body, headers) = list(route: route, label: label, field: field, query: query)
        finish(code, body, headers: headers)
    }

    // MARK: - Discovery (legacy, unaggregated: enough for kubectl)

    func discovery(_ path: String, serveServiceCIDRs: Bool) -> String? {
        let served = FakeResource.all.filter { $0 != .serviceCIDRs || serveServiceCIDRs }
        let groups = Array(Set(served.compactMap { $0.apiVersion.contains("/") ? $0.apiVersion : nil })).sorted()
        switch path {
        case "/api":
            return JSONValue.object([
                "kind": .string("APIVersions"), "versions": .array([.string("v1")]),
                "serverAddressByClientCIDRs": .array([.object(["clientCIDR": .string("0.0.0.0/0"), "serverAddress": .string("127.0.0.1:\(port)")])]),
            ]).rendered()
        case "/apis":
            return JSONValue.object([
                "kind": .string("APIGroupList"), "apiVersion": .string("v1"),
                "groups": .array(groups.map { gv in
                    let parts = gv.split(separator: "/").map(String.init)
                    let version = JSONValue.object(["groupVersion": .string(gv), "version": .string(parts[1])])
                    return .object(["name": .string(parts[0]), "versions": .array([version]), "preferredVersion": version])
                }),
            ]).rendered()
        default:
            let gv: String
            if path == "/api/v1" { gv = "v1" } else if path.hasPrefix("/apis/") { gv = String(path.dropFirst(6)) } else { return nil }
            let resources = served.filter { $0.apiVersion == gv }
            guard !resources.isEmpty else { return nil }
            return JSONValue.object([
                "kind": .string("APIResourceList"), "apiVersion": .string("v1"), "groupVersion": .string(gv),
                "resources": .array(resources.map { r in
                    .object(["name": .string(r.plural), "singularName": .string(r.kind.lowercased()), "namespaced": .bool(r.namespaced),
                             "kind": .string(r.kind), "verbs": .array(["get", "list", "watch"].map { .string($0) })])
                }),
            ]).rendered()
        }
    }

    // MARK: - List

    struct ContinueToken: Codable {
        var v: String
        var rv: Int
        var start: String
        var epoch: Int?
    }

    func makeContinue(rv: Int, after key: String, epoch: Int) -> String {
        let t = ContinueToken(v: "meta.k8s.io/v1", rv: rv, start: key + "\u{0}", epoch: epoch)
        return (try? JSONEncoder().encode(t).base64EncodedString()) ?? ""
    }

    /// The objects of `resource` as they were at `rv` (nil if compacted away).
    func objectsAt(_ s: State, _ resource: FakeResource, rv: Int) -> [String: JSONValue]? {
        guard rv >= s.compactedRV, rv <= s.rv else { return nil }
        var objs = s.objects[resource.plural] ?? [:]
        for e in s.history.reversed() where e.rv > rv {
            guard e.resource == resource else { continue }
            switch e.type {
            case .added: objs[e.key] = nil
            case .modified, .deleted: objs[e.key] = e.old
            }
        }
        return objs
    }

    /// The keys of `snapshot` (the objects of `r` at `rv`) in order. A snapshot at one RV is
    /// fixed, so its sorted keys are kept: the pages of a list and the watch-lists at that RV
    /// reuse them instead of sorting every object again.
    static func sortedKeys(_ s: inout State, _ r: FakeResource, _ snapshot: [String: JSONValue], rv: Int) -> [String] {
        if let cached = s.sortedKeys[r.plural], cached.rv == rv, cached.keys.count == snapshot.count { return cached.keys }
        let keys = snapshot.keys.sorted()
        s.sortedKeys[r.plural] = (rv, keys)
        return keys
    }

    func list(route: Route, label: LabelSelector?, field: FieldSelector?, query: [String: String]) -> (Int, String, [(String, String)]) {
        let r = route.resource
        let limit = query["limit"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
        let rvParam = query["resourceVersion"] ?? ""
        let rvMatch = query["resourceVersionMatch"] ?? ""
        return state.withLockedValue { s -> (Int, String, [(String, String)]) in
            var snapshot: [String: JSONValue]
            var listRV: Int
            var startAfter: String? = nil
            var effectiveLimit = limit
            if let token = query["continue"], !token.isEmpty {
                guard let data = Data(base64Encoded: token),
                      let t = try? JSONDecoder().decode(ContinueToken.self, from: data) else {
                    return (400, Self.status(400, reason: "BadRequest", message: "continue key is not valid: illegal base64 data"), [])
                }
                let forced = s.continueFailures > 0
                if forced { s.continueFailures -= 1 }
                guard !forced, (t.epoch ?? 0) >= s.continueEpoch, let snap = objectsAt(s, r, rv: t.rv) else {
                    let fresh = makeContinue(rv: s.rv, after: String(t.start.dropLast()), epoch: s.continueEpoch)
                    return (410, Self.status(410, reason: "Expired",
                                             message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                                             metadata: .object(["continue": .string(fresh)])), [])
                }
                snapshot = snap
                listRV = t.rv
                startAfter = String(t.start.dropLast())
            } else if rvParam.isEmpty {
                // Consistent read ("etcd").
                snapshot = s.objects[r.plural] ?? [:]
                listRV = s.rv
            } else if rvParam == "0" {
                // Any version: the watch cache (which ignores limit in 1.20).
                snapshot = s.objects[r.plural] ?? [:]
                listRV = s.rv
                if !configuration.paginateAtResourceVersionZero { effectiveLimit = nil }
            } else {
                guard let n = Int(rvParam) else {
                    return (400, Self.status(400, reason: "BadRequest", message: "invalid resource version \"\(rvParam)\""), [])
                }
                if rvMatch == "Exact" || (limit != nil && rvMatch != "NotOlderThan") {
                    // etcd at exactly revision n.
                    if n > s.rv {
                        return (500, Self.status(500, reason: "InternalError", message: "etcdserver: mvcc: required revision is a future revision",
                                                 details: .object(["causes": .array([.object(["message": .string("etcdserver: mvcc: required revision is a future revision")])])])), [])
                    }
                    guard let snap = objectsAt(s, r, rv: n) else {
                        return (410, Self.status(410, reason: "Expired", message: "The resourceVersion for the provided list is too old."), [])
                    }
                    snapshot = snap
                    listRV = n
                } else {
                    // Watch cache, "not older than n".
                    if n > s.rv {
                        return (504, Self.status(504, reason: "Timeout", message: "Timeout: Too large resource version: \(n), current: \(s.rv)",
                                                 details: .object(["causes": .array([.object(["reason": .string("ResourceVersionTooLarge"), "message": .string("Too large resource version")])]),
                                                                   "retryAfterSeconds": .int(1)])),
                                [("Retry-After", "1")])
                    }
                    snapshot = s.objects[r.plural] ?? [:]
                    listRV = s.rv
                }
            }
            let sorted = Self.sortedKeys(&s, r, snapshot, rv: listRV)
            func matches(_ k: String) -> Bool {
                let o = snapshot[k]!
                if let ns = route.namespace, o.namespace != ns { return false }
                if let label, !label.matches(o.labels) { return false }
                if let field, !field.matches(name: o.name, namespace: o.namespace) { return false }
                return true
            }
            // First key after the continue token's (binary search), then matches up to the limit.
            var lo = 0, hi = sorted.count
            if let start = startAfter {
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if sorted[mid] <= start { lo = mid + 1 } else { hi = mid }
                }
            }
            var keys: [String] = []
            var i = lo
            while i < sorted.count, keys.count < (effectiveLimit ?? Int.max) {
                if matches(sorted[i]) { keys.append(sorted[i]) }
                i += 1
            }
            var meta: [String: JSONValue] = ["resourceVersion": .string(String(listRV))]
            if effectiveLimit != nil, let more = sorted[i...].firstIndex(where: matches) {
                meta["continue"] = .string(makeContinue(rv: listRV, after: keys.last!, epoch: s.continueEpoch))
                if label == nil && field == nil && route.namespace == nil { meta["remainingItemCount"] = .int(Int64(sorted.count - more)) }
                else if label == nil && field == nil { meta["remainingItemCount"] = .int(Int64(sorted[more...].filter(matches).count)) }
            }
            let items = keys.map { snapshot[$0]! }
            let body = JSONValue.object(["kind": .string(r.listKind), "apiVersion": .string(r.apiVersion),
                                         "metadata": .object(meta), "items": .array(items)])
            return (200, body.rendered(), [])
        }
    }

    // MARK: - Watch

    /// kube-apiserver's validation of a watch-list request (with the WatchList gate on).
    func watchListRefusal(_ query: [String: String]) -> String? {
        guard configuration.watchList, query["sendInitialEvents"] == "true" else { return nil }
        if query["resourceVersionMatch"] != "NotOlderThan" {
            return "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
        }
        if query["allowWatchBookmarks"] != "true" {
            return "ListOptions.meta.k8s.io \"\" is invalid: allowWatchBookmarks: Forbidden: sendInitialEvents requires allowWatchBookmarks=true"
        }
        return nil
    }

    func startWatch(route: Route, label: LabelSelector?, field: FieldSelector?, query: [String: String], responder: Responder) {
        let channel = responder.channel
        let rvParam = query["resourceVersion"] ?? ""
        let allowBookmarks = query["allowWatchBookmarks"] == "true"
        let timeout = query["timeoutSeconds"].flatMap { Int($0) }
        responder.startChunked()
        if configuration.watchList && query["sendInitialEvents"] == "true" {
            return startWatchList(route: route, label: label, field: field, channel: channel, timeout: timeout)
        }
        // Writes happen outside the lock: a write can close the channel synchronously, and
        // closing takes the lock.
        let tooOld: String? = state.withLockedValue { s -> String? in
            let r = route.resource
            let id = s.nextID
            s.nextID += 1
            var lines: [String] = []
            let minRV: Int
            if rvParam.isEmpty || rvParam == "0" {
                minRV = s.rv
            } else if let n = Int(rvParam) {
                if n < s.compactedRV {
                    return Self.eventLine(type: "ERROR", object: .parsed(Self.status(
                        410, reason: "Expired", message: "too old resource version: \(n) (\(s.compactedRV + 1))")))
                }
                minRV = n
            } else {
                minRV = s.rv
            }
            let w = WatchStream(id: id, resource: r, labelSelector: label, fieldSelector: field, namespace: route.namespace,
                                allowBookmarks: allowBookmarks, minRV: minRV, channel: channel,
                                onFinish: { [weak self] in self?.state.withLockedValue { _ = $0.watchers.removeValue(forKey: id) } })
            if rvParam.isEmpty || rvParam == "0" {
                // "Get state and start at most recent": synthetic ADDED for every object.
                let objs = s.objects[r.plural] ?? [:]
                for k in objs.keys.sorted() where w.matches(objs[k]!) {
                    lines.append(Self.eventLine(type: "ADDED", object: Self.withTypeMeta(objs[k]!, r)))
                }
            } else {
                for e in s.history where e.resource == r {
                    if let line = Self.eventLine(for: e, watcher: w) { lines.append(line) }
                }
            }
            if s.stallNewWatches {
                w.stall()
                return nil
            }
            s.watchers[id] = w
            deliver(&s, w, lines)
            if let t = timeout, t > 0 {
                channel.eventLoop.scheduleTask(in: .seconds(Int64(t))) { [weak self] in
                    self?.timeoutWatch(id)
                }
            }
            return nil
        }
        if let line = tooOld {
            channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: line))), promise: nil)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
        }
    }

    /// A watch-list: every current object as ADDED, in key order, rendered and written off
    /// the lock in chunks as they are cut (the client decodes the first while the rest is
    /// cut), then the `k8s.io/initial-events-end` bookmark, then the live events that
    /// happened meanwhile, then the watch as usual. The list is the state at the current RV
    /// (`resourceVersionMatch=NotOlderThan` of any RV up to it).
    func startWatchList(route: Route, label: LabelSelector?, field: FieldSelector?, channel: Channel, timeout: Int?) {
        let r = route.resource
        let start: (WatchStream, [String], [String: JSONValue], [String: String], Int, (events: Int, thenUnavailable: Bool)?)? = state.withLockedValue { s in
            let id = s.nextID
            s.nextID += 1
            let w = WatchStream(id: id, resource: r, labelSelector: label, fieldSelector: field, namespace: route.namespace,
                                allowBookmarks: true, minRV: s.rv, channel: channel,
                                onFinish: { [weak self] in self?.state.withLockedValue { _ = $0.watchers.removeValue(forKey: id) } })
            if s.stallNewWatches {
                w.stall()
                return nil
            }
            w.held = []
            s.watchers[id] = w
            let objects = s.objects[r.plural] ?? [:]
            let keys = Self.sortedKeys(&s, r, objects, rv: s.rv)
            if let t = timeout, t > 0 {
                channel.eventLoop.scheduleTask(in: .seconds(Int64(t))) { [weak self] in self?.timeoutWatch(id) }
            }
            var cutAfter: (events: Int, thenUnavailable: Bool)? = nil
            if let cut = s.cutWatchListsAfter {
                cutAfter = (cut.events, cut.thenUnavailable)
                s.cutWatchListsAfter = cut.remaining > 1 ? (cut.events, cut.remaining - 1, cut.thenUnavailable) : nil
            }
            return (w, keys, objects, s.rendered[r.plural] ?? [:], s.rv, cutAfter)
        }
        guard let (w, keys, objects, rendered, rv, cutAfter) = start else { return }
        DispatchQueue.global().async {
            var chunk = ""
            var inChunk = 0
            var sent = 0
            for key in keys {
                let o = objects[key]!
                guard w.matches(o) else { continue }
                if let cut = cutAfter, sent == cut.events {
                    // Fault injection: the connection drops in the middle of the list.
                    self.state.withLockedValue { s in
                        _ = s.watchers.removeValue(forKey: w.id)
                        if cut.thenUnavailable { s.failures.append(Failure(remaining: Int.max, code: 503, retryAfterSeconds: nil, pathContains: nil)) }
                    }
                    w.enqueue([.data(ByteBuffer(string: chunk), pause: .zero), .drop(partial: nil)])
                    return
                }
                sent += 1
                chunk += "{\"type\":\"ADDED\",\"object\":"
                chunk += rendered[key] ?? Self.withTypeMeta(o, r).rendered()
                chunk += "}\n"
                inChunk += 1
                if inChunk == 500 {
                    w.enqueue([.data(ByteBuffer(string: chunk), pause: .zero)])
                    chunk = ""
                    inChunk = 0
                }
            }
            if !chunk.isEmpty { w.enqueue([.data(ByteBuffer(string: chunk), pause: .zero)]) }
            self.state.withLockedValue { s in
                let live = w.held ?? []
                w.held = nil
                self.deliver(&s, w, [self.bookmarkLine(r, rv: rv, initialEventsEnd: true)] + live)
                if w.endAfterHeld { w.enqueue([.end]) }
            }
        }
    }

    func timeoutWatch(_ id: Int) {
        state.withLockedValue { s in
            if let w = s.watchers[id], w.held != nil {
                // Still sending its list: end it after the list and the events held meanwhile.
                s.watchers[id] = nil
                w.endAfterHeld = true
                return
            }
            guard let w = s.watchers.removeValue(forKey: id) else { return }
            if w.allowBookmarks && configuration.bookmarkBeforeTimeout {
                deliver(&s, w, [bookmarkLine(w.resource, rv: s.rv)])
            }
            w.enqueue([.end])
        }
    }
}

extension JSONValue {
    static func parsed(_ text: String) -> JSONValue {
        (try? JSONValue.parse(text)) ?? .null
    }
}
