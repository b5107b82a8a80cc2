#!/usr/bin/env bash
# Installs the system packages Sluice needs to build and test (Debian/Ubuntu, as root).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  libnftnl-dev libmnl-dev pkg-config \
  nftables iptables iproute2 conntrack \
  python3 procps >/dev/null
echo "install-deps.sh: nft $(nft --version | awk '{print $2}'), iptables $(iptables --version | awk '{print $2}'), libnftnl $(pkg-config --modversion libnftnl)"
