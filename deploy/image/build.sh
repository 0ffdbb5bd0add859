#!/usr/bin/env bash
# Builds the phi3-server container image with no container registry:
#  1. a minimal Debian 12 root filesystem from the Debian mirror apt already
#     uses on this host (debootstrap), cached as a tarball outside the
#     repository and imported as localhost/phi3serve-base:bookworm;
#  2. deploy/Dockerfile on top of it with podman (build stage, then a
#     runtime stage of only the binaries and their shared libraries).
# Needs root, the Debian packages podman, runc and debootstrap, and the Debian
# mirror (17 minutes the first time on 2 busy vCPUs; later builds reuse the
# base image, the apt layer and the compiler cache).
#
#   deploy/image/build.sh [--tag NAME]      default localhost/phi3serve:latest
# Environment: PHI3_IMAGE_CACHE (default /var/cache/phi3serve-image),
# PHI3_DEBIAN_MIRROR (default: the first Debian URI in /etc/apt/sources.list*).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/deploy/image/podman.sh"
source "$root/deploy/image/source-digest.sh"
tag=localhost/phi3serve:latest
while (($#)); do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --tag=*) tag=${1#--tag=}; shift ;;
    *) echo "build.sh: unknown argument $1 (usage: build.sh [--tag NAME])" >&2; exit 2 ;;
  esac
done
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null ||
    { echo "build.sh: needs $tool: apt-get install podman runc debootstrap" >&2; exit 1; }
done
base=localhost/phi3serve-base:bookworm
cache=${PHI3_IMAGE_CACHE:-/var/cache/phi3serve-image}
rootfs_tar=$cache/debian-bookworm-minbase.tar

# The Debian (not -security) mirror apt uses here, from one-line or deb822 sources.
debian_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
          2>/dev/null | sed -n -e 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) bookworm .*/\2/p' \
          -e 's/^URIs: *\([^ ]*\).*/\1/p' | grep -v -e security -e '^$' | grep '/debian/\{0,1\}$' |
          head -n 1)
  echo "${uri:-http://deb.debian.org/debian}"
}

if ! podman_cmd image exists "$base"; then
  if [[ ! -f $rootfs_tar ]]; then
    mirror=${PHI3_DEBIAN_MIRROR:-$(debian_mirror)}
    echo "build.sh: debootstrap Debian 12 (minbase) from $mirror into $cache"
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror"
    cat > "$work/rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian*}/debian-security bookworm-security main
SOURCES
    printf 'APT::Install-Recommends "false";\n' > "$work/rootfs/etc/apt/apt.conf.d/99norecommends"
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" --numeric-owner -cf "$rootfs_tar.tmp" .
    mv "$rootfs_tar.tmp" "$rootfs_tar"
    rm -rf "$work"
    trap - EXIT
  fi
  echo "build.sh: importing $rootfs_tar as $base"
  podman_cmd import --change 'CMD ["/bin/bash"]' "$rootfs_tar" "$base"
fi

revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
version=$(git -C "$root" describe --always --dirty 2>/dev/null || echo dev)
echo "build.sh: building $tag (revision $revision)"
# Host network for the build stage's apt-get: no bridge or NAT needed.
# Labels given here, not as build arguments: podman reuses cached layers
# whatever the arguments' values, and would keep an old revision.
podman_cmd build --network host -f "$root/deploy/Dockerfile" --build-arg "BASE=$base" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.version=$version" \
  --label "io.phi3serve.source-digest=$(source_digest "$root")" -t "$tag" "$root"
podman_cmd image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$tag"
