#!/usr/bin/env bash
# CI check of the container image (run by .ci/run and README's test command; root only, never
# skipped). Builds the image with scripts/build-image.sh, loads the OCI archive into a private
# buildah store, mounts a container's root filesystem and, in a network namespace of its own
# and a private mount namespace with /proc mounted in that root (as a container runtime
# would: Swift reads its arguments from /proc/self/cmdline), runs the image's own binary
# chrooted into it: `sluice apply` on the demo manifests (copied into the root), again (no
# change), `sluice --version`, `sluice cleanup`, and `sluice --generate-completion-script`
# for each shell, which must equal the completion script installed in the image. The table is checked from outside the chroot
# with the host's nft, in the same namespace. The root namespace's firewall, routes and
# interfaces are never touched. `podman run` cannot start containers in this sandbox (crun:
# setrlimit EPERM), hence chroot.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-image.sh: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (buildah, network namespaces, chroot); it is never skipped"
for tool in buildah ip nft unshare chroot kubectl tar python3; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh installs it)"
done

started=$(date +%s)
archive=$(./scripts/build-image.sh)
[ -f "$archive" ] || fail "build-image.sh printed '$archive', which is not a file"
built=$(date +%s)

# The archive names one image; its reference carries the tag.
ref=$(tar -xOf "$archive" index.json | python3 -c '
import json, sys
m = json.load(sys.stdin)["manifests"]
assert len(m) == 1, f"{len(m)} manifests"
print(m[0]["annotations"]["org.opencontainers.image.ref.name"])')
case "$ref" in
  docker.io/library/sluice:?*) version=${ref#docker.io/library/sluice:} ;;
  *) fail "archive's image is named '$ref', not docker.io/library/sluice:<version>" ;;
esac
echo "test-image.sh: $archive holds $ref"

work=$(mktemp -d "${SLUICE_IMAGE_SCRATCH:-.build-image}/test-image.XXXXXX")
work=$(cd "$work" && pwd)
ns="sl-image-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
bah() { buildah --root "$work/root" --runroot "$work/run" --storage-driver vfs "$@"; }
ctr=""
netns_created=""
cleanup() {
  set +e
  [ -n "$netns_created" ] && ip netns del "$ns"
  if [ -n "$ctr" ]; then
    bah umount "$ctr" >/dev/null
    bah rm "$ctr" >/dev/null
  fi
  bah rmi --all --force >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# Load it as `podman load` would, and find it by the name the DaemonSet uses.
bah pull --quiet "oci-archive:$archive" >/dev/null
ctr=$(bah from --quiet --pull=never "sluice:$version")
root=$(bah mount "$ctr")

entrypoint=$(bah inspect --type container --format '{{.OCIv1.Config.Entrypoint}}' "$ctr")
[ "$entrypoint" = '[/usr/local/bin/sluice]' ] || fail "entrypoint is $entrypoint"

# The image holds the binary, shared libraries (and the loader), the CA bundle and the
# completion scripts: nothing else.
declare -A completions=(
  [bash]=/usr/share/bash-completion/completions/sluice
  [zsh]=/usr/share/zsh/vendor-completions/_sluice
  [fish]=/usr/share/fish/vendor_completions.d/sluice.fish
)
files=$(cd "$root" && find . ! -type d | sed 's|^\./|/|' | sort)
echo "test-image.sh: image files:"
sed 's/^/  /' <<<"$files"
others=$(grep -vxE '/usr/local/bin/sluice|/etc/ssl/certs/ca-certificates\.crt|/(usr/)?lib(64|/x86_64-linux-gnu|/aarch64-linux-gnu)?/[^/]+\.so(\.[0-9]+)*|/usr/share/bash-completion/completions/sluice|/usr/share/zsh/vendor-completions/_sluice|/usr/share/fish/vendor_completions\.d/sluice\.fish' <<<"$files" || true)
[ -z "$others" ] || fail "unexpected files in the image: $others"
for name in sh bash dash busybox nft; do
  [ -z "$(find "$root" -name "$name")" ] || fail "the image contains $name"
done
for shell in bash zsh fish; do
  script="$root${completions[$shell]}"
  [ -s "$script" ] || fail "the image has no (or an empty) $shell completion script at ${completions[$shell]}"
  for word in compile apply explain cleanup run; do
    grep -qw -- "$word" "$script" || fail "the $shell completion script never names '$word'"
  done
done

# What a container runtime provides: a /proc mount point. The demo manifests go in beside.
mkdir -p "$root/proc"
cp -r Rulesets/demo "$root/demo"

ip netns add "$ns"
netns_created=1
ip -n "$ns" link set lo up
# The image's environment, as a runtime sets it: jemalloc preloaded (build-image.sh).
mapfile -t image_env < <(bah inspect --type container --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$ctr" | sed '/^$/d')
preload=$(printf '%s\n' "${image_env[@]}" | sed -n 's/^LD_PRELOAD=//p')
[ -n "$preload" ] || fail "the image's environment sets no LD_PRELOAD: ${image_env[*]}"
[ -f "$root$preload" ] || fail "the image preloads $preload, which it does not hold"
malloc_conf=narenas:1,background_thread:true
grep -qx "MALLOC_CONF=$malloc_conf" < <(printf '%s\n' "${image_env[@]}") || fail "the image's environment lacks MALLOC_CONF=$malloc_conf: ${image_env[*]}"

# The image's binary, chrooted into its root, in the namespace, with a private /proc mount
# and the image's environment.
in_image() {
  env "${image_env[@]}" ip netns exec "$ns" unshare --mount --propagation private --mount-proc="$root/proc" \
    chroot "$root" /usr/local/bin/sluice "$@"
}
demo=(--source /demo --config /demo/kube-proxy-config.yaml)

out=$(in_image apply "${demo[@]}") || fail "sluice apply in the image failed: $out"
echo "test-image.sh: sluice apply → $out"
[[ "$out" == applied\ * ]] || fail "sluice apply printed '$out'"

listed=$(ip netns exec "$ns" nft list table ip sluice) || fail "no table ip sluice after apply"
for want in '10.96.0.20 . tcp . 8080' '10.96.0.20 . tcp . 8080 . 0 : 10.244.1.20 . 8080' \
            '10.96.0.20 . tcp . 8080 . 2 : 10.244.3.22 . 8080'; do
  grep -qF "$want" <<<"$listed" || fail "table ip sluice lacks '$want':
$listed"
done

out=$(in_image apply "${demo[@]}") || fail "second sluice apply in the image failed: $out"
[ "$out" = "no change: nothing sent" ] || fail "second sluice apply printed '$out'"

for shell in bash zsh fish; do
  in_image --generate-completion-script "$shell" >"$work/completion.$shell" \
    || fail "sluice --generate-completion-script $shell in the image failed"
  cmp -s "$work/completion.$shell" "$root${completions[$shell]}" \
    || fail "${completions[$shell]} in the image is not what the image's sluice generates for $shell"
done
echo "test-image.sh: completion scripts: $(for s in bash zsh fish; do printf '%s ' "${completions[$s]}"; done)"

printed=$(in_image --version) || fail "sluice --version in the image failed"
[ "$printed" = "$version" ] || fail "sluice --version prints '$printed' in an image tagged sluice:$version"

# jemalloc is the allocator the image's sluice runs on, with one arena and a background
# thread that returns freed pages: its statistics, printed at exit on request, say so.
stats=$(image_env+=(MALLOC_CONF=$malloc_conf,stats_print:true); in_image --version 2>&1 >/dev/null) \
  || fail "sluice --version with jemalloc statistics failed"
grep -q 'Begin jemalloc statistics' <<<"$stats" || fail "sluice in the image does not run on jemalloc: $(head -c 300 <<<"$stats")"
grep -qE 'opt\.narenas: 1$' <<<"$stats" || fail "jemalloc in the image does not run with one arena: $(grep narenas <<<"$stats")"
grep -qE 'opt\.background_thread: true' <<<"$stats" \
  || fail "jemalloc in the image runs without its background thread: $(grep background_thread <<<"$stats")"
echo "test-image.sh: sluice runs on jemalloc ($preload, MALLOC_CONF=$malloc_conf)"

out=$(in_image cleanup) || fail "sluice cleanup in the image failed: $out"
if ip netns exec "$ns" nft list table ip sluice >/dev/null 2>&1; then
  fail "table ip sluice still there after sluice cleanup"
fi

# deploy/ runs exactly this tag.
deployed=$(kubectl kustomize deploy/ | sed -n 's/^ *image: *//p')
[ "$deployed" = "sluice:$version" ] || fail "kubectl kustomize deploy/ uses image '$deployed', the build tags sluice:$version"

finished=$(date +%s)
echo "test-image.sh: PASS: sluice:$version ($(du -h "$archive" | cut -f1)) programs a namespace from its own root; build $((built - started)) s, check $((finished - built)) s"
echo "test-image: 1 passed, 0 failed"
