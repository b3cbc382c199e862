# Multi-stage build: a static-ish release binary on a small non-root runtime image.
# Build:  docker build -t keptn-native .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY assets ./assets
RUN cargo build --release --locked --bin keptn-native \
 && strip target/release/keptn-native

# distroless/cc has glibc and CA certificates, no shell, and runs as nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/keptn-native /usr/local/bin/keptn-native
USER 65532:65532
ENV LISTEN_ADDR=0.0.0.0:8080 \
    DATA_DIR=/var/lib/keptn-native \
    LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/var/lib/keptn-native"]
ENTRYPOINT ["/usr/local/bin/keptn-native"]
CMD ["serve"]
