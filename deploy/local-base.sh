#!/usr/bin/env bash
# Builds a local stand-in for node:24-slim where no container registry is reachable: Debian bookworm (debootstrap,
# minbase) with the Node 24 binary of the npm package `node@24` at /usr/local/bin/node and npm 11 beside it, the
# layout of the official image. Imported into podman as localhost/hop-base:bookworm-node24 (override with
# HOP_BASE_IMAGE). Idempotent: an image already there is kept; the rootfs tarball is cached too.
#
# It also writes the podman configuration this machine needs (runc instead of crun, ulimits the VM accepts, storage
# under the cache) and prints the two variables that select it:
#   eval "$(deploy/local-base.sh)"        # then: podman build --build-arg BASE=localhost/hop-base:bookworm-node24 ...
# Needs root and: apt-get install -y podman buildah debootstrap fuse-overlayfs uidmap runc
set -euo pipefail

cache="${HOP_PODMAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hop-podman}"
image="${HOP_BASE_IMAGE:-localhost/hop-base:bookworm-node24}"
mkdir -p "$cache"

for bin in podman debootstrap npm; do
  command -v "$bin" >/dev/null 2>&1 || {
    echo "local-base: $bin is missing: apt-get install -y podman buildah debootstrap fuse-overlayfs uidmap runc" >&2
    exit 1
  }
done

# crun fails on this VM's cgroups and podman's default ulimits are refused; storage stays under the cache so the
# base survives between runs and nothing touches /var/lib/containers.
cat >"$cache/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
cat >"$cache/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$cache/storage"
runroot = "$cache/run"
EOF
export CONTAINERS_CONF="$cache/containers.conf" CONTAINERS_STORAGE_CONF="$cache/storage.conf"
echo "export CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"

if podman image exists "$image"; then
  echo "local-base: $image is already built" >&2
  exit 0
fi

# The Debian mirror apt already uses (deb822 or one-line sources), deb.debian.org otherwise.
mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
[ -n "$mirror" ] || mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

tarball="$cache/bookworm-node24.tar"
if [ ! -s "$tarball" ]; then
  work=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "local-base: debootstrap bookworm from $mirror" >&2
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
  }
  echo "local-base: node@24 and npm@11 from the npm registry" >&2
  npm install --prefix "$work/npm" --no-save --no-audit --no-fund node@24 npm@11 >/dev/null
  install -m 0755 "$work/npm/node_modules/node/bin/node" "$work/rootfs/usr/local/bin/node"
  mkdir -p "$work/rootfs/usr/local/lib/node_modules"
  cp -a "$work/npm/node_modules/npm" "$work/rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
  # What the official slim image leaves out too: apt lists and caches, documentation.
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/usr/share/doc/"* \
    "$work/rootfs/usr/share/man/"* "$work/rootfs/usr/share/locale/"*
  tar -C "$work/rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

podman import --change 'CMD ["node"]' --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin' \
  "$tarball" "$image" >/dev/null
echo "local-base: built $image" >&2
