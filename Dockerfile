# syntax=docker/dockerfile:1
# Two images from one build:
#   docker build --target agent    -t ghcr.io/git-cache/git-cache:v0.1.0 .      (the injected cache container)
#   docker build --target function -t ghcr.io/git-cache/inject-git-cache:v0.1.0 .  (the KRM function, plus its
#     single executable at /usr/local/bin/inject-git-cache-linux-x64 for Argo CD; build for linux/amd64)
# Pinned base (bump deliberately); no credentials are baked in: they arrive as Secret volumes at run time.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY src src
RUN node scripts/build.mjs

# The function as a Node single executable (scripts/build-sea.mjs), for Argo CD repo-servers without Node: their
# init containers copy it from the function image's /usr/local/bin/inject-git-cache-linux-x64. A stage of its
# own after the build, so the agent target (BuildKit builds only the stages a target needs) does not pay for it.
# binutils: strip the node binary before the blob goes in (about 12 MiB less). linux-x64 only: the SEA is this
# image's own node binary, and build-sea.mjs refuses any other platform.
FROM build AS sea
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/build-sea.mjs scripts/build-sea.mjs
RUN node scripts/build-sea.mjs

FROM ${NODE_IMAGE} AS agent
# git + openssh-client: the mirrors; libnss-wrapper: lets ssh run under an arbitrary UID without a passwd
# entry (OpenShift-style); tini: reaps orphaned ssh/git grandchildren and forwards SIGTERM; util-linux
# (flock) is in the base image already.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client libnss-wrapper tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \
 && command -v flock >/dev/null
COPY --from=build /src/dist/git-cache.mjs /opt/git-cache/dist/git-cache.mjs
COPY docker/agent-entrypoint.sh /opt/git-cache/docker/agent-entrypoint.sh
COPY docker/git-cache /usr/local/bin/git-cache
ENV HOME=/tmp \
    GIT_CACHE_DIR=/git-cache \
    NODE_ENV=production
# Runs as AGENT_UID (src/shared/names.ts); works with a read-only root filesystem (writes: cache dir, /tmp).
USER 65532:65532
EXPOSE 9901
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/git-cache/docker/agent-entrypoint.sh"]
CMD ["serve"]

FROM ${NODE_IMAGE} AS function
COPY --from=build /src/function/inject-git-cache /usr/local/bin/inject-git-cache
COPY --from=sea /src/dist/inject-git-cache-linux-x64 /usr/local/bin/inject-git-cache-linux-x64
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/inject-git-cache"]
