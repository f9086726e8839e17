# syntax=docker/dockerfile:1
# Two images from one build:
#   docker build --target agent    -t ghcr.io/git-cache/git-cache:v0.1.0 .      (the injected cache container)
#   docker build --target function -t ghcr.io/git-cache/inject-git-cache:v0.1.0 .  (the KRM function, plus its
#     single executable at /usr/local/bin/inject-git-cache-linux-x64 for Argo CD; build for linux/amd64)
# Pinned bases (bump deliberately; the tests build them without a registry: scripts/cluster/base-images.sh); no
# credentials are baked in: they arrive as Secret volumes at run time. Behind a TLS-intercepting proxy, give the
# build its CA bundle as a build secret, which is mounted for the npm step only and stored in no layer:
#   podman build --secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt ...
ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${NODE_IMAGE} AS build
# binutils: strip the node binary the images ship (about 12 MiB less) and the SEA's.
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# npm can print "Exit handler never called!" and still exit 0 with a half-written node_modules: `npm ls` fails
# the step then, instead of a later one failing on a missing module.
RUN --mount=type=secret,id=ca-certificates,required=false \
    NODE_EXTRA_CA_CERTS=/run/secrets/ca-certificates npm ci --ignore-scripts --no-audit --no-fund \
 && npm ls --all >/dev/null
RUN strip -o /usr/local/bin/node-stripped /usr/local/bin/node && /usr/local/bin/node-stripped --version
COPY tsconfig.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY src src
RUN node scripts/build.mjs

# The function as a Node single executable (scripts/build-sea.mjs), for Argo CD repo-servers without Node: their
# init containers copy it from the function image's /usr/local/bin/inject-git-cache-linux-x64. A stage of its
# own after the build, so the agent target (BuildKit builds only the stages a target needs) does not pay for it.
# The build stage's binutils strip the node binary before the blob goes in. linux-x64 only: the SEA is this
# image's own node binary, and build-sea.mjs refuses any other platform.
FROM build AS sea
COPY scripts/build-sea.mjs scripts/build-sea.mjs
RUN node scripts/build-sea.mjs

# The agent needs node alone (no npm): Debian plus the build stage's stripped node, at most 200 MB in all.
FROM ${DEBIAN_IMAGE} AS agent
# git + openssh-client: the mirrors; libnss-wrapper: lets ssh run under an arbitrary UID without a passwd
# entry (OpenShift-style); tini: reaps orphaned ssh/git grandchildren and forwards SIGTERM; util-linux
# (flock) is in the base image already. Debian's git depends on perl (about 50 MB) for its perl scripts only
# (send-email, svn, cvs*, which the agent never runs): perl and those scripts are removed, and so are the
# programs the agent never runs (git-shell, scalar, imap-send, http-push) and openssl (ca-certificates'
# install-time tool; the bundle stays). Debian ships git twice (/usr/bin and git-core): one hard link instead.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client libnss-wrapper tini ca-certificates \
 && dpkg --purge --force-depends perl libperl5.36 perl-modules-5.36 liberror-perl git-man openssl \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/log/* /usr/share/perl5/Git* /usr/share/gitweb \
      /usr/bin/git-shell /usr/bin/scalar /usr/lib/git-core/git-shell /usr/lib/git-core/scalar \
      /usr/lib/git-core/git-imap-send /usr/lib/git-core/git-http-push /usr/bin/tini-static \
 && for script in /usr/lib/git-core/* /usr/bin/git-*; do \
      if head -c 64 "$script" | grep -q '^#!.*perl'; then rm -f "$script"; fi; \
    done \
 && ln -f /usr/bin/git /usr/lib/git-core/git \
 && command -v flock >/dev/null && git --version && ssh -V && test -e /usr/lib/x86_64-linux-gnu/libnss_wrapper.so
COPY --from=build /usr/local/bin/node-stripped /usr/local/bin/node
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

FROM ${DEBIAN_IMAGE} AS function
COPY --from=build /usr/local/bin/node-stripped /usr/local/bin/node
COPY --from=build /src/function/inject-git-cache /usr/local/bin/inject-git-cache
COPY --from=sea /src/dist/inject-git-cache-linux-x64 /usr/local/bin/inject-git-cache-linux-x64
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/inject-git-cache"]
