#!/usr/bin/env bash
# Installs what the test suites need that npm does not bring. Idempotent: tools already present are reused.
#   - Debian packages: git servers and clients (git daemon, sshd, nginx + fcgiwrap for git http-backend),
#     Prometheus and promtool, iproute2 (network namespaces, tc), util-linux (unshare).
#   - A pinned standalone kustomize (kubectl's built-in kustomize cannot run exec functions), built with the
#     Go module proxy into .tools/bin.
#   - A pinned helm v3 (for the `helm template --post-renderer` tests), built the same way into .tools/bin.
#   - The test cluster (scripts/test-cluster.sh, test/e2e/cluster/): podman and its helpers, containerd, runc, the
#     CNI plugins, etcd and debootstrap from Debian; podman's settings for this machine kind (a containers.conf
#     drop-in); kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl
#     (scripts/cluster/k8s/go.mod), CoreDNS (scripts/cluster/coredns/go.mod) and kube-router (the cluster's
#     NetworkPolicy enforcer: its firewall only, with ipset from Debian) built with the Go module proxy into
#     .tools/cluster/bin (~10 min cold on 2 cores); the base images, built without a registry
#     (scripts/cluster/base-images.sh).
# kpt and kubectl are expected on PATH (preinstalled on the development machines).
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE_VERSION=v5.5.0
HELM_VERSION=v3.19.5
TOOLS_BIN="$PWD/.tools/bin"
mkdir -p "$TOOLS_BIN"

log() { printf '[install-test-tools] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1
  fi
}

# command -> Debian package
declare -A APT_TOOLS=(
  [sshd]=openssh-server
  [ssh]=openssh-client
  [nginx]=nginx
  [fcgiwrap]=fcgiwrap
  [prometheus]=prometheus
  [promtool]=prometheus
  [ip]=iproute2
  [tc]=iproute2
  [unshare]=util-linux
  [flock]=util-linux
  [setpriv]=util-linux
  [dash]=dash
  # the clone helper runs in minimal images: the tests run it under busybox sh (and busybox wget)
  [busybox]=busybox
  [nsenter]=util-linux
  [curl]=curl
  [ssh-keygen]=openssh-client
  # htpasswd hashes and the TLS certificate of the smart HTTP test server
  [openssl]=openssl
  # the full-disk test mounts a small tmpfs
  [mount]=mount
  [umount]=mount
  [git]=git
  # the test cluster and its images
  [podman]=podman
  [buildah]=buildah
  [runc]=runc
  [conmon]=conmon
  [catatonit]=catatonit
  [fuse-overlayfs]=fuse-overlayfs
  [newuidmap]=uidmap
  [slirp4netns]=slirp4netns
  [iptables]=iptables
  # kube-router's NetworkPolicy firewall keeps the peers of each policy in ipsets
  [ipset]=ipset
  [containerd]=containerd
  [ctr]=containerd
  [etcd]=etcd-server
  [debootstrap]=debootstrap
  [nsenter]=util-linux
  [curl]=curl
)

have() { PATH="$TOOLS_BIN:/usr/sbin:/sbin:$PATH" command -v "$1" >/dev/null 2>&1; }

missing_packages=()
for tool in "${!APT_TOOLS[@]}"; do
  have "$tool" || missing_packages+=("${APT_TOOLS[$tool]}")
done
# git http-backend ships with git but lives outside PATH
[ -x /usr/lib/git-core/git-http-backend ] || missing_packages+=(git)
# nss_wrapper (a library, no command): lets ssh run under a UID without a passwd entry (agent tests, image)
compgen -G '/usr/lib/*/libnss_wrapper.so' >/dev/null || compgen -G '/usr/lib*/libnss_wrapper.so' >/dev/null || missing_packages+=(libnss-wrapper)
# GNU time (the hostile-input tests measure each run's peak memory); `command -v time` finds the shell keyword
[ -x /usr/bin/time ] || missing_packages+=(time)
# podman's network stack and the cluster's CNI plugins live outside PATH too
[ -x /usr/lib/podman/netavark ] || missing_packages+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || missing_packages+=(aardvark-dns)
[ -x /usr/lib/cni/bridge ] || missing_packages+=(containernetworking-plugins)
# PyYAML (a Python module, no command): the wire-layer property tests read the function's output with it too
python3 -c 'import yaml' >/dev/null 2>&1 || missing_packages+=(python3-yaml)

if [ ${#missing_packages[@]} -gt 0 ]; then
  mapfile -t unique < <(printf '%s\n' "${missing_packages[@]}" | sort -u)
  log "installing Debian packages: ${unique[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  # The packages' own services are not wanted: the tests start their own instances on 127.0.0.1.
  printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
  as_root chmod +x /usr/sbin/policy-rc.d
  as_root apt-get install -y -qq --no-install-recommends "${unique[@]}" >/dev/null
  as_root rm -f /usr/sbin/policy-rc.d
fi

# Whether a Go binary was built from MODULE at VERSION, as the main module or a dependency (go-installed
# binaries print "(devel)" as their version, so ask the build info instead).
built_from() { # BINARY MODULE VERSION
  [ -x "$1" ] && go version -m "$1" 2>/dev/null | grep -Eq "^[[:space:]]+(mod|dep)[[:space:]]+$2[[:space:]]+$3([[:space:]]|$)"
}

if ! built_from "$TOOLS_BIN/kustomize" sigs.k8s.io/kustomize/kustomize/v5 "${KUSTOMIZE_VERSION}"; then
  log "building kustomize ${KUSTOMIZE_VERSION} with the Go module proxy"
  GOBIN="$TOOLS_BIN" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}"
fi

if ! built_from "$TOOLS_BIN/helm" helm.sh/helm/v3 "${HELM_VERSION}"; then
  log "building helm ${HELM_VERSION} with the Go module proxy"
  # helm's version string comes from ldflags; without them `helm version` says only "v3.19".
  GOBIN="$TOOLS_BIN" GOFLAGS=-mod=mod CGO_ENABLED=0 go install \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
fi

# ---- the test cluster (scripts/test-cluster.sh)
. scripts/cluster/versions.sh

# podman as root on this machine kind: crun refuses the cgroup v1 hybrid layout, root lacks CAP_SYS_RESOURCE
# (so the default ulimits cannot be raised), and there is no systemd for cgroups or the event log.
podman_conf=/etc/containers/containers.conf.d/50-git-cache-tests.conf
if [ ! -f "$podman_conf" ]; then
  log "writing $podman_conf"
  as_root mkdir -p "$(dirname "$podman_conf")"
  as_root tee "$podman_conf" >/dev/null <<'EOF'
# Written by git-cache's scripts/install-test-tools.sh: podman as root on the test machines (cgroup v1 hybrid,
# no systemd, root without CAP_SYS_RESOURCE).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
fi

mkdir -p "$TEST_CLUSTER_BIN"
k8s_commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
k8s_missing=()
for command in "${k8s_commands[@]}"; do
  built_from "$TEST_CLUSTER_BIN/$command" k8s.io/kubernetes "$KUBERNETES_VERSION" || k8s_missing+=("k8s.io/kubernetes/cmd/$command")
done
if [ ${#k8s_missing[@]} -gt 0 ]; then
  log "building Kubernetes $KUBERNETES_VERSION (${k8s_missing[*]##*/}) with the Go module proxy (~10 min cold)"
  minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  (cd scripts/cluster/k8s && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$TEST_CLUSTER_BIN/" "${k8s_missing[@]}")
fi
if ! built_from "$TEST_CLUSTER_BIN/coredns" github.com/coredns/coredns "$COREDNS_VERSION"; then
  log "building CoreDNS $COREDNS_VERSION with the Go module proxy"
  (cd scripts/cluster/coredns && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$TEST_CLUSTER_BIN/coredns" .)
fi
if ! built_from "$TEST_CLUSTER_BIN/kube-router" github.com/cloudnativelabs/kube-router/v2 "$KUBE_ROUTER_VERSION"; then
  log "building kube-router $KUBE_ROUTER_VERSION with the Go module proxy"
  # No replace directives in its go.mod, so `go install module@version` builds exactly that release.
  GOBIN="$TEST_CLUSTER_BIN" GOFLAGS=-mod=mod CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
fi
as_root bash scripts/cluster/base-images.sh

for tool in kpt kubectl; do
  have "$tool" || log "warning: $tool is not on PATH; the suites that need it will be skipped (or fail under CI=true)"
done
log "done: $(ls "$TOOLS_BIN" | tr '\n' ' ')"
