#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine for the test suites (test/e2e/cluster/), and nothing else:
#
#   scripts/test-cluster.sh up       build the project images from this worktree (podman, rebuilt only when
#                                    their inputs changed), start etcd, kube-apiserver, kube-controller-manager,
#                                    kube-scheduler, containerd, kubelet, kube-proxy, CoreDNS and kube-router
#                                    (NetworkPolicies), load the images into containerd, wait for a Ready node,
#                                    write .tools/cluster/kubeconfig
#   scripts/test-cluster.sh down     stop everything and leave nothing behind: processes, containers, mounts,
#                                    network namespaces, the bridge, iptables rules, ipsets, cgroups; restores
#                                    the sysctls the kubelet and the cluster network change
#   scripts/test-cluster.sh status   exit 0 when the cluster is up (and say whose it is)
#   scripts/test-cluster.sh images   only (re)build the project images
#
# Both are idempotent and safe after a crash (`up` on a half-started cluster first takes it down). The binaries,
# base images and podman configuration come from scripts/install-test-tools.sh (pinned in scripts/cluster/).
#
# One cluster per machine: its ports, bridge, containerd and state directory are machine-wide. `up` and `down`
# take the machine-wide lock $LOCK_FILE themselves unless GIT_CACHE_TEST_CLUSTER_LOCK_HELD=1 says the caller
# holds it (npm test holds it for the whole run: scripts/test.mjs). A cluster left up by another worktree is
# replaced by `up`, so the images always come from the worktree that holds the lock.
#
# Network (all on this machine): pods on the bridge $BRIDGE, $POD_CIDR, no default route; the host is
# $HOST_IP on that bridge: the API server (:6443), the kubelet, CoreDNS (:53, cluster.local only, nothing is
# forwarded) and any upstream git server a test starts there. Services: $SERVICE_CIDR (kube-proxy, iptables
# mode). In every pod, processes whose UID is in $NO_UPSTREAM_UIDS get "network unreachable" for every
# connection to $HOST_IP except DNS (a rule in the pod's network namespace, made by the CNI plugin
# scripts/cluster/no-upstream-cni before any container starts): app containers run as such a UID have no route
# to the upstream servers, while the cache container (UID 65532) has one.
#
# NetworkPolicies are enforced: kube-router runs on the host with only its firewall (--run-firewall; no routing,
# no service proxy), which puts each local pod's ingress and egress through iptables chains (KUBE-ROUTER-*,
# KUBE-POD-FW-*, KUBE-NWPLCY-*) matching the policies' peers kept in ipsets (KUBE-SRC-*, KUBE-DST-*). Pods on
# the bridge talk to each other without routing, so bridged traffic must traverse iptables
# (net.bridge.bridge-nf-call-iptables=1, from br_netfilter; kube-router's rules match it with -m physdev).
# A new pod's address reaches the ipsets a moment after the pod starts (kube-router reacts to the pod update
# with a full sync): a client that connects in its first second may be refused by a policy that admits it.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO_ROOT/scripts/cluster/versions.sh"

STATE=/var/lib/git-cache-test-cluster
LOCK_FILE=/run/lock/git-cache-test-cluster.lock
KUBECONFIG_OUT="$TEST_CLUSTER_TOOLS/kubeconfig"
BRIDGE=gc-test0
HOST_IP=10.244.77.1
POD_CIDR=10.244.77.0/24
SERVICE_CIDR=10.97.0.0/24
KUBERNETES_SERVICE_IP=10.97.0.1
NO_UPSTREAM_UIDS=20000-29999
NODE_NAME=git-cache-test-node
ETCD_PORT=23790
API_PORT=6443
AGENT_IMAGE=localhost/git-cache:test
FUNCTION_IMAGE=localhost/inject-git-cache:test
IPTABLES_COMMENT=git-cache-test-cluster
# Host sysctls the kubelet (kernel.*, vm.*) and the pod network (ip_forward) set; `down` restores them.
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns kube-router)
# kube-router's ipsets (KUBE-SRC-/KUBE-DST- per policy peer, TMP- while it swaps one in).
KUBE_ROUTER_IPSETS='^(KUBE-SRC-|KUBE-DST-|TMP-)[A-Z2-7]{16}$'

log() { printf '[test-cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

with_lock() {
  if [ "${GIT_CACHE_TEST_CLUSTER_LOCK_HELD:-}" = 1 ]; then "$@"; return; fi
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>"$LOCK_FILE"
  if ! flock -n 9; then
    log "waiting for the test cluster lock ($LOCK_FILE) held by another run"
    flock 9
  fi
  "$@"
}

ctr_() { ctr --address "$STATE/containerd.sock" --namespace k8s.io "$@"; }
kubectl_() { "$TEST_CLUSTER_BIN/kubectl" --kubeconfig "$STATE/pki/admin.kubeconfig" "$@"; }

# ---------------------------------------------------------------------------------------------------- images

# The files the Dockerfile copies (the same list as .dockerignore's allowlist), hashed with the base images.
images_inputs_hash() {
  (cd "$REPO_ROOT" &&
    { git ls-files -co --exclude-standard -- Dockerfile .dockerignore package.json package-lock.json tsconfig.json \
        scripts/build.mjs scripts/build-sea.mjs src docker | LC_ALL=C sort | while read -r f; do
        [ -f "$f" ] && printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)"
      done
      podman image inspect --format '{{.Id}}' "$NODE_BASE_IMAGE" "$DEBIAN_BASE_IMAGE"
    } | sha256sum | cut -c1-32)
}

build_images() {
  for image in "$DEBIAN_BASE_IMAGE" "$NODE_BASE_IMAGE" "$PAUSE_IMAGE"; do
    podman image exists "$image" || die "base image $image is missing: run bash scripts/install-test-tools.sh"
  done
  local hash target image stamp
  hash=$(images_inputs_hash)
  for target in agent function; do
    image=$AGENT_IMAGE
    [ "$target" = function ] && image=$FUNCTION_IMAGE
    # "<inputs hash> <image id>" of the last build (a label would not do: buildah skips it on a fully cached build).
    stamp="$TEST_CLUSTER_TOOLS/image-$target.inputs"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$hash $(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null)" ]; then
      continue
    fi
    log "building $image (Dockerfile target $target)"
    local build_log="$TEST_CLUSTER_TOOLS/build-$target.log"
    mkdir -p "$TEST_CLUSTER_TOOLS"
    if ! podman build --target "$target" --build-arg "NODE_IMAGE=$NODE_BASE_IMAGE" --build-arg "DEBIAN_IMAGE=$DEBIAN_BASE_IMAGE" \
      --secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt -t "$image" "$REPO_ROOT" >"$build_log" 2>&1; then
      tail -30 "$build_log" >&2
      die "podman build --target $target failed (log: $build_log)"
    fi
    echo "$hash $(podman image inspect --format '{{.Id}}' "$image")" >"$stamp"
  done
  # Dangling layers of previous test builds.
  podman image prune -f >/dev/null 2>&1 || true
}

load_images() {
  local image id
  for image in "$PAUSE_IMAGE" "$AGENT_IMAGE" "$FUNCTION_IMAGE"; do
    id=$(podman image inspect --format '{{.Id}}' "$image")
    [ "$(cat "$STATE/images/${image//\//_}" 2>/dev/null)" = "$id" ] && continue
    podman save "$image" | ctr_ images import --no-unpack - >/dev/null || die "could not load $image into containerd"
    mkdir -p "$STATE/images"
    echo "$id" >"$STATE/images/${image//\//_}"
  done
}

# ------------------------------------------------------------------------------------------------- processes

start() { # NAME COMMAND...: a daemon in its own session, logging to $STATE/logs/NAME.log
  local name=$1
  shift
  setsid "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1 9>&- &
  echo $! >"$STATE/pids/$name"
}

running() { local pid; pid=$(cat "$STATE/pids/$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }

wait_for() { # SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out waiting for $what; last log lines:"
      tail -n 20 "$STATE"/logs/*.log >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

stop_pid() { # PID: TERM, then KILL after 10 s
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------------------------------------------------ PKI

pki() {
  local dir="$STATE/pki"
  mkdir -p "$dir"
  cd "$dir"
  key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }
  cert() { # NAME SUBJECT [SANS]
    key "$1"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n%s' \
      "${3:+subjectAltName=$3}" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  }
  key ca
  openssl req -x509 -new -key ca.key -subj /CN=git-cache-test-ca -days 30 -out ca.crt 2>/dev/null
  cert apiserver /CN=kube-apiserver \
    "IP:$HOST_IP,IP:127.0.0.1,IP:$KUBERNETES_SERVICE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin /O=system:masters/CN=git-cache-test-admin
  cert node "/O=system:nodes/CN=system:node:$NODE_NAME"
  key sa
  openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
  kubeconfig() { # NAME CERT
    cat >"$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: git-cache-test
  cluster:
    server: https://$HOST_IP:$API_PORT
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$2.crt")
    client-key-data: $(base64 -w0 "$2.key")
contexts:
- name: git-cache-test
  context: {cluster: git-cache-test, user: $2}
current-context: git-cache-test
EOF
  }
  kubeconfig admin admin
  kubeconfig kubelet node
  cd - >/dev/null
}

# ------------------------------------------------------------------------------------------------------- up

# The cgroup every pod goes under: inside the memory cgroup this runs in (so whatever accounts for or ends this
# run's processes also covers the pods), or at the top when there is none.
cgroup_root() {
  local parent
  parent=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
  [ "$parent" = / ] && parent=
  echo "$parent/git-cache-test-cluster"
}

make_cgroups() {
  local root=$1 controller
  : >"$STATE/cgroups"
  for controller in /sys/fs/cgroup/*/; do
    [ -e "$controller/cgroup.procs" ] || continue
    # Record every directory this creates, so `down` removes exactly those.
    local path="" part
    for part in ${root//\// }; do
      path="$path/$part"
      if [ ! -d "$controller$path" ]; then mkdir "$controller$path" && echo "$controller$path" >>"$STATE/cgroups"; fi
    done
  done
}

save_sysctls() {
  # Kept across a crashed run: the values from before the first `up` are the ones to restore.
  [ -f "$STATE/../git-cache-test-cluster.sysctls" ] && return
  local name
  for name in "${SYSCTLS[@]}"; do
    printf '%s=%s\n' "$name" "$(sysctl -n "$name" 2>/dev/null || echo '')"
  done >"$STATE/../git-cache-test-cluster.sysctls"
}

write_configs() {
  local cgroup_root=$1
  mkdir -p "$STATE/cni/net.d" "$STATE/cni/bin"
  cp /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback "$STATE/cni/bin/"
  sed "s|@NODE@|$(command -v node)|" "$REPO_ROOT/scripts/cluster/no-upstream-cni" >"$STATE/cni/bin/git-cache-no-upstream"
  chmod +x "$STATE/cni/bin/git-cache-no-upstream"
  cat >"$STATE/cni/net.d/10-git-cache-test.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "git-cache-test",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$STATE/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$HOST_IP" }]],
        "routes": [{ "dst": "$SERVICE_CIDR" }]
      }
    },
    { "type": "git-cache-no-upstream", "hostIP": "$HOST_IP", "uids": "$NO_UPSTREAM_UIDS" }
  ]
}
EOF
  cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd"
state = "$STATE/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri.cri_tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$STATE/containerd.sock"
[ttrpc]
  address = "$STATE/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without it, sandboxes fail with "can't get final child's PID from pipe" (root without CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$STATE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$STATE/cni/bin"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF
  : >"$STATE/resolv.conf"
  cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: $cgroup_root
containerRuntimeEndpoint: unix://$STATE/containerd.sock
clusterDNS: [$HOST_IP]
clusterDomain: cluster.local
resolvConf: $STATE/resolv.conf
failSwapOn: false
# Never evict or garbage-collect on this shared machine's disk: the images are imported, not pulled.
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 60
fileCheckFrequency: 1s
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
EOF
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/pki/admin.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: $HOST_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$HOST_IP/32]
# Leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, syncPeriod: 5s, minSyncPeriod: 0s}
EOF
  cat >"$STATE/Corefile" <<EOF
cluster.local:53 {
  bind $HOST_IP
  errors
  ready 127.0.0.1:8181
  kubernetes cluster.local {
    kubeconfig $STATE/pki/admin.kubeconfig
  }
}
.:53 {
  bind $HOST_IP
  template ANY ANY {
    rcode NXDOMAIN
  }
}
EOF
}

network_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$HOST_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  sysctl -qw net.ipv4.ip_forward=1
  # Bridged pod-to-pod traffic through iptables, where the NetworkPolicy firewall sees it.
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
    die "/proc/sys/net/bridge/bridge-nf-call-iptables is missing: the kernel module br_netfilter is not loaded, so NetworkPolicies could not be enforced on bridged pod traffic"
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  # Pod traffic never leaves the bridge for another interface (the machine's only network is the registries').
  iptables -w -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "$IPTABLES_COMMENT" -j DROP 2>/dev/null ||
    iptables -w -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "$IPTABLES_COMMENT" -j DROP
  iptables -w -C FORWARD -o "$BRIDGE" -m comment --comment "$IPTABLES_COMMENT" -j ACCEPT 2>/dev/null ||
    iptables -w -I FORWARD 2 -o "$BRIDGE" -m comment --comment "$IPTABLES_COMMENT" -j ACCEPT
}

cluster_up() {
  local bin=$TEST_CLUSTER_BIN name
  for name in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns kube-router; do
    [ -x "$bin/$name" ] || die "$bin/$name is missing: run bash scripts/install-test-tools.sh"
  done
  for name in etcd containerd runc iptables ipset podman openssl curl nsenter; do
    command -v "$name" >/dev/null || die "$name is missing: run bash scripts/install-test-tools.sh"
  done

  if [ -f "$STATE/owner" ]; then
    if [ "$(cat "$STATE/owner")" = "$REPO_ROOT" ] && all_running; then
      build_images
      load_images
      write_kubeconfig
      log "up (already): kubeconfig $KUBECONFIG_OUT"
      return
    fi
    log "replacing the cluster of $(cat "$STATE/owner")"
  fi
  cluster_down
  build_images

  local started=$SECONDS cgroups
  mkdir -p "$STATE/logs" "$STATE/pids"
  echo "$REPO_ROOT" >"$STATE/owner"
  save_sysctls
  pki
  cgroups=$(cgroup_root)
  make_cgroups "$cgroups"
  write_configs "$cgroups"
  network_up

  start etcd etcd --name git-cache-test --data-dir "$STATE/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls http://127.0.0.1:23800 \
    --initial-advertise-peer-urls http://127.0.0.1:23800 --initial-cluster git-cache-test=http://127.0.0.1:23800 \
    --listen-metrics-urls "" --log-level warn
  start containerd containerd --config "$STATE/containerd.toml"
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port "$API_PORT" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
    --client-ca-file "$STATE/pki/ca.crt" --tls-cert-file "$STATE/pki/apiserver.crt" --tls-private-key-file "$STATE/pki/apiserver.key" \
    --kubelet-client-certificate "$STATE/pki/admin.crt" --kubelet-client-key "$STATE/pki/admin.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$STATE/pki/sa.pub" --service-account-signing-key-file "$STATE/pki/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --profiling=false
  wait_for 120 "kube-apiserver" kubectl_ get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$STATE/pki/admin.kubeconfig" \
    --leader-elect=false --secure-port 0 --service-account-private-key-file "$STATE/pki/sa.key" \
    --root-ca-file "$STATE/pki/ca.crt" --use-service-account-credentials=false --cluster-name git-cache-test \
    --controllers '*,-bootstrapsigner,-tokencleaner,-csrsigning,-nodeipam,-cloud-node-lifecycle' --profiling=false
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$STATE/pki/admin.kubeconfig" --leader-elect=false \
    --secure-port 0 --profiling=false
  wait_for 60 "containerd" ctr_ version
  start kubelet "$bin/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/pki/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet-pki" --hostname-override "$NODE_NAME" --node-ip "$HOST_IP"
  start kube-proxy "$bin/kube-proxy" --config "$STATE/kube-proxy.yaml"
  start coredns "$bin/coredns" -conf "$STATE/Corefile"
  load_images
  wait_for 120 "a Ready node" sh -c "'$TEST_CLUSTER_BIN/kubectl' --kubeconfig '$STATE/pki/admin.kubeconfig' get node '$NODE_NAME' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
  # The NetworkPolicy enforcer: firewall only (the bridge CNI routes, kube-proxy serves Services);
  # it reads its Node object at start, so after the kubelet registered it.
  start kube-router "$bin/kube-router" --kubeconfig "$STATE/pki/admin.kubeconfig" --hostname-override "$NODE_NAME" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --service-cluster-ip-range "$SERVICE_CIDR" --health-port 0 --metrics-port 0 --iptables-sync-period 1m
  wait_for 60 "the default ServiceAccount" kubectl_ -n default get serviceaccount default
  wait_for 30 "CoreDNS" curl -fs http://127.0.0.1:8181/ready
  # kube-router's first full sync made its default chain and the FORWARD jump: policies are enforced from here.
  wait_for 60 "kube-router's NetworkPolicy firewall" sh -c "iptables -w -S KUBE-NWPLCY-DEFAULT && iptables -w -S FORWARD | grep -q -- '-j KUBE-ROUTER-FORWARD'"
  write_kubeconfig
  log "up in $((SECONDS - started)) s: kubeconfig $KUBECONFIG_OUT"
}

write_kubeconfig() {
  mkdir -p "$TEST_CLUSTER_TOOLS"
  cp "$STATE/pki/admin.kubeconfig" "$KUBECONFIG_OUT"
}

all_running() {
  local name
  for name in "${COMPONENTS[@]}"; do running "$name" || return 1; done
  kubectl_ get --raw /readyz >/dev/null 2>&1
}

# ----------------------------------------------------------------------------------------------------- down

cluster_down() {
  mkdir -p "$STATE"
  local pid name
  # Containers first, while containerd still runs: the kubelet would restart them, so it goes first.
  for name in kubelet kube-proxy kube-router; do
    pid=$(cat "$STATE/pids/$name" 2>/dev/null) && stop_pid "$pid"
  done
  if running containerd; then
    local task
    for task in $(ctr_ tasks list -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true; done
    sleep 0.5
    for task in $(ctr_ tasks list -q 2>/dev/null); do ctr_ tasks delete -f "$task" >/dev/null 2>&1 || true; done
  fi
  for name in coredns kube-scheduler kube-controller-manager kube-apiserver containerd etcd; do
    pid=$(cat "$STATE/pids/$name" 2>/dev/null) && stop_pid "$pid"
  done
  # Whatever a crashed run left: shims of our containerd and the processes of its containers.
  for pid in $(pgrep -f -- "-address $STATE/containerd.sock" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  if [ -f "$STATE/cgroups" ]; then
    local dir
    while read -r dir; do
      [ -d "$dir" ] || continue
      find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    done <"$STATE/cgroups"
  fi
  # Mounts under the state directory (container rootfs, pod volumes, secrets), deepest first.
  local mount
  for _ in 1 2 3; do
    mapfile -t mounts < <(awk -v s="$STATE" '$5 == s || index($5, s "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [ ${#mounts[@]} -eq 0 ] && break
    for mount in "${mounts[@]}"; do umount -l "$mount" 2>/dev/null || true; done
  done
  # Pod network namespaces (containerd's CRI names them cni-<uuid>).
  local ns
  for ns in /run/netns/cni-*; do
    [ -e "$ns" ] || continue
    umount -l "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  # The network: the bridge, pod veths, our FORWARD rules, kube-proxy's and the CNI plugins' chains.
  ip link del "$BRIDGE" 2>/dev/null || true
  while iptables -w -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "$IPTABLES_COMMENT" -j DROP 2>/dev/null; do :; done
  while iptables -w -D FORWARD -o "$BRIDGE" -m comment --comment "$IPTABLES_COMMENT" -j ACCEPT 2>/dev/null; do :; done
  [ -x "$TEST_CLUSTER_BIN/kube-proxy" ] && "$TEST_CLUSTER_BIN/kube-proxy" --cleanup --v=0 >/dev/null 2>&1 || true
  remove_chains
  remove_ipsets
  # cgroups, deepest first (kubelet's kubepods tree under the root this run made).
  if [ -f "$STATE/cgroups" ]; then
    local dir
    while read -r dir; do
      [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done < <(sort -r "$STATE/cgroups")
  fi
  restore_sysctls
  rm -rf "$STATE"
  # containerd's shims put their sockets under /run/containerd/s whatever the state directory; no other
  # containerd runs on these machines, so the directory goes when it is empty.
  rmdir /run/containerd/s /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null || true
  rm -f "$KUBECONFIG_OUT"
}

# kube-proxy's, kube-router's (KUBE-*) and the kubelet's chains in every table, rules that jump to them first.
remove_chains() {
  local table chain rule
  for table in filter nat mangle raw; do
    # One iptables-restore per rule: it parses the quoted comments (`--comment "kube-router netpol - ..."`) that
    # word splitting would break, and one rule gone meanwhile does not keep the others.
    iptables-save -t "$table" 2>/dev/null | { grep -E '^-A .* -j (KUBE-|CNI-)' || true; } | while IFS= read -r rule; do
      printf '*%s\n-D%s\nCOMMIT\n' "$table" "${rule#-A}" | iptables-restore -w --noflush 2>/dev/null || true
    done
    for chain in $(iptables -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}'); do
      iptables -w -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}'); do
      iptables -w -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

# kube-router's ipsets, once no rule refers to them (remove_chains ran).
remove_ipsets() {
  command -v ipset >/dev/null || return 0
  local set
  for set in $(ipset list -n 2>/dev/null | grep -E "$KUBE_ROUTER_IPSETS" || true); do
    ipset destroy "$set" 2>/dev/null || true
  done
}

restore_sysctls() {
  local saved="$STATE/../git-cache-test-cluster.sysctls" line
  [ -f "$saved" ] || return 0
  while IFS= read -r line; do
    [ -n "${line#*=}" ] && sysctl -qw "$line" 2>/dev/null || true
  done <"$saved"
  rm -f "$saved"
}

status() {
  if [ -f "$STATE/owner" ] && all_running; then
    echo "up: owner $(cat "$STATE/owner"), kubeconfig $STATE/pki/admin.kubeconfig"
  else
    echo down
    return 1
  fi
}

[ "$(id -u)" = 0 ] || die "the test cluster needs root"
case "${1:-}" in
  up) with_lock cluster_up ;;
  down) with_lock cluster_down; log down ;;
  status) status ;;
  images) with_lock build_images ;;
  *) echo "usage: $0 up|down|status|images" >&2; exit 2 ;;
esac
