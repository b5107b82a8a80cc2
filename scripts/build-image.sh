#!/usr/bin/env bash
# Builds Sluice's container image with buildah, FROM scratch (no base image is pulled):
#   /usr/local/bin/sluice              release build, --static-swift-stdlib, debug info stripped
#   the shared libraries ldd lists     glibc, libnftnl, libmnl, …, and the dynamic loader
#   /etc/ssl/certs/ca-certificates.crt CA certificates (kubeconfigs naming a CA-signed server)
# and nothing else: no shell, no nft. Writes an OCI archive (one gzip layer) tagged
# sluice:<version>, where <version> is what `sluice --version` prints, and prints the
# archive's path on stdout as its only line (everything else goes to stderr).
#
#   scripts/build-image.sh            # → .build-image/sluice-<version>.oci.tar
#   podman load -i .build-image/sluice-<version>.oci.tar
#   ctr -n k8s.io images import .build-image/sluice-<version>.oci.tar
#
# The archive names the image by its full reference, docker.io/library/sluice:<version>,
# which is what Kubernetes (and podman, and containerd) resolve `sluice:<version>` to, so a
# loaded image is found under the name deploy/daemonset.yaml uses.
#
# SLUICE_IMAGE_SCRATCH (default .build-image) is the SwiftPM scratch path, where the archive
# and buildah's private vfs storage go too. Needs root (buildah's storage) and buildah.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "build-image.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root (buildah's storage needs it)"
for tool in buildah ldd objcopy swift; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh installs buildah)"
done

scratch=${SLUICE_IMAGE_SCRATCH:-.build-image}
echo "build-image.sh: swift build -c release --static-swift-stdlib --scratch-path $scratch" >&2
swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product sluice >&2
bin="$scratch/release/sluice"
version=$("$bin" --version)
[ -n "$version" ] || fail "$bin --version printed nothing"
tag="sluice:$version"
archive="$scratch/sluice-$version.oci.tar"

# A private store, so the build touches neither the machine's containers nor anyone else's.
# vfs needs no overlay or fuse support from the kernel; FROM scratch keeps its copies small.
storage="$scratch/containers"
bah() { buildah --root "$storage/root" --runroot "$storage/run" --storage-driver vfs "$@"; }

ctr=$(bah from --quiet scratch)
trap 'bah rm "$ctr" >/dev/null 2>&1 || true' EXIT
root=$(bah mount "$ctr")

# Debug info stripped (173 → 111 MB); the symbol table stays, for the backtraces Swift prints.
install -d "$root/usr/local/bin"
objcopy --strip-debug "$bin" "$root/usr/local/bin/sluice"
chmod 0755 "$root/usr/local/bin/sluice"

# ldd's lines are "name => /path (addr)", "/path (addr)" (the loader) or "name (addr)" (the
# vDSO, which has no file). Each library goes in at the path ldd found it, as a regular file.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[ -n "$libs" ] || fail "ldd listed no shared libraries for $bin"
grep -q 'libnftnl' <<<"$libs" || fail "ldd does not list libnftnl for $bin: $libs"
for lib in $libs; do
  install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
done
install -D -m 0644 "$(readlink -f /etc/ssl/certs/ca-certificates.crt)" "$root/etc/ssl/certs/ca-certificates.crt"
bah umount "$ctr" >/dev/null

bah config \
  --entrypoint '["/usr/local/bin/sluice"]' --cmd run --workingdir / \
  --label org.opencontainers.image.title=sluice \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="Kubernetes service proxy on nftables" \
  "$ctr"
rm -f "$archive"
bah commit --quiet --rm --disable-compression=false "$ctr" "oci-archive:$archive:docker.io/library/$tag" >/dev/null
trap - EXIT
echo "build-image.sh: $tag → $archive ($(du -h "$archive" | cut -f1); $(wc -l <<<"$libs") shared libraries: $(echo $libs))" >&2
echo "$archive"
