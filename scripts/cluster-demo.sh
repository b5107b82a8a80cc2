#!/usr/bin/env bash
# A small Kubernetes cluster in network namespaces, end to end (issue 12, item 8). Builds
# Sluice and runs the cluster test (Tests/SluiceDaemonTests/ClusterTests.swift), which builds:
#
#   external client ── router ══ lan bridge ══╤══ control plane: the fake API server
#   203.0.113.10                              ├── node-1 (sluice run) ── its pods 10.244.1.0/24
#                                             ├── node-2 (sluice run) ── its pods 10.244.2.0/24
#                                             └── node-3 (sluice run) ── its pods 10.244.3.0/24
#
# three node namespaces, each running its own `sluice run` child process against one API
# server (the in-process FakeAPIServer, listening inside the control-plane namespace), pods
# (python servers) behind every node routed between the nodes, and an external client behind
# a router. It checks with real connections from the client:
#   1. a NodePort (externalTrafficPolicy Cluster) on any node reaches the pods on the other
#      nodes, the client masqueraded;
#   2. with externalTrafficPolicy Local only the nodes with a local pod answer (client address
#      kept), and the healthCheckNodePort says so: 200/503 with kube-proxy's JSON body;
#   3. a rolling replacement of a deployment's pods (starting, ready; old ones terminating and
#      serving, then not serving, then gone) under continuous traffic loses no new connection;
#   4. tainting a node ToBeDeletedByClusterAutoscaler turns its /healthz to 503.
#
#   scripts/cluster-demo.sh            # build, run, report
#   scripts/cluster-demo.sh --keep     # also keep the three daemons' logs and print where
#
# Run as root (it creates and deletes its own namespaces, named sl-cl-*; it never touches the
# root namespace's interfaces, routes or firewall). Needs ip, nft and python3. Takes about a
# minute after the build; the namespaces are gone afterwards, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "cluster-demo.sh: run as root (the cluster is built from network namespaces)" >&2; exit 1; }
for tool in ip nft python3 swift; do
  command -v "$tool" >/dev/null || { echo "cluster-demo.sh: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }
done
if [ "${1:-}" = "--keep" ]; then export SLUICE_CLUSTER_KEEP_LOGS=1; fi

swift build --build-tests
swift test --skip-build --no-parallel --filter ClusterTests
