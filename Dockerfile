# syntax=docker/dockerfile:1.7
# keptn-native: a release binary on distroless, non-root (65532), two variants:
#   docker build -t keptn-native:0.1.0 .                                  (default target: runtime)
#   docker build --target runtime-helm -t keptn-native:0.1.0-helm .       (with helm 3.17.2)
# Build arguments VERSION, REVISION and CREATED fill the OCI labels.
# BuildKit keeps the cargo registry and target directory in cache mounts: after the first build
# only this crate is recompiled on a source change (dependencies are not).
#
# Base images are pinned by digest (multi-arch index digests, as published for these tags in
# public build logs and Dockerfiles; they could not be pulled or verified where this file was
# written). Refresh with: docker buildx imagetools inspect <image:tag>
ARG RUST_IMAGE=rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY assets ./assets
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin keptn-native \
 && install -D -m 0755 target/release/keptn-native /out/keptn-native \
 && strip /out/keptn-native
# The data directory, owned by the runtime user: a volume created from it (docker run, or a
# Kubernetes emptyDir/PVC with fsGroup) is writable without root.
RUN install -d -o 65532 -g 65532 -m 0750 /out/data

# helm for the helm deployment backend, checked against its published SHA-256.
FROM ${RUST_IMAGE} AS helm
ARG TARGETARCH=amd64
ARG HELM_VERSION=3.17.2
# get.helm.sh/helm-v3.17.2-linux-amd64.tar.gz; pass HELM_SHA256 for another architecture.
ARG HELM_SHA256=90c28792a1eb5fb0b50028e39ebf826531ebfcf73f599050dbd79bab2f277241
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN curl -fsSL -o /tmp/helm.tgz "https://get.helm.sh/helm-v${HELM_VERSION}-linux-${TARGETARCH}.tar.gz" \
 && echo "${HELM_SHA256}  /tmp/helm.tgz" | sha256sum -c - \
 && tar -xzf /tmp/helm.tgz -C /tmp \
 && install -D -m 0755 "/tmp/linux-${TARGETARCH}/helm" /out/helm \
 && rm -rf /tmp/helm.tgz "/tmp/linux-${TARGETARCH}"

# distroless/cc: glibc, CA certificates and a world-writable /tmp; no shell, no package manager.
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="keptn-native" \
      org.opencontainers.image.description="Keptn v1 tasks (approval, deployment, test, evaluation) run natively" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/keptn-native/keptn-native" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /out/keptn-native /usr/local/bin/keptn-native
COPY --from=build --chown=65532:65532 /out/data /var/lib/keptn-native
USER 65532:65532
ENV LISTEN_ADDR=0.0.0.0:8080 \
    DATA_DIR=/var/lib/keptn-native \
    TMPDIR=/tmp \
    LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/var/lib/keptn-native"]
ENTRYPOINT ["/usr/local/bin/keptn-native"]
CMD ["serve"]

# The -helm variant: helm on PATH, its caches under the writable /tmp (the root is read-only
# in the chart).
FROM runtime AS runtime-helm
COPY --from=helm /out/helm /usr/local/bin/helm
ENV HELM_CACHE_HOME=/tmp/helm/cache \
    HELM_CONFIG_HOME=/tmp/helm/config \
    HELM_DATA_HOME=/tmp/helm/data \
    KEPTN_NATIVE_HELM_BIN=/usr/local/bin/helm

# Default target: the plain image.
FROM runtime
