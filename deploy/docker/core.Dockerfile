# syntax=docker/dockerfile:1
# tgcdn-core: the release binary on distroless/cc (glibc: the core's MTProto crypto and
# sled allocate a lot, and glibc's allocator is much faster than musl's), non-root, the sled
# database in the volume /var/lib/tgcdn.
#
#   docker build -f deploy/docker/core.Dockerfile -t tgcdn-core .     # from the repository root
#
# Configure with TGCDN_* variables (`docker run --rm tgcdn-core --help`); secrets through a
# TOML file named by TGCDN_CONFIG (see deploy/compose.yaml).
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tgcdn-core --bin tgcdn-core \
    && cp target/release/tgcdn-core /tgcdn-core \
    && mkdir -p /state/var/lib/tgcdn

FROM busybox:1.37-musl AS probe

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /tgcdn-core /usr/local/bin/tgcdn-core
COPY --from=probe /bin/busybox /usr/local/bin/wget
# The volume's mount point belongs to the runtime user, so a fresh named volume is writable.
COPY --from=build --chown=65532:65532 /state/var/lib/tgcdn /var/lib/tgcdn
# Numeric, so that Kubernetes runAsNonRoot can verify it (distroless: 65532 = nonroot).
USER 65532:65532
ENV TGCDN_DATA_DIR=/var/lib/tgcdn \
    TGCDN_QUIC_LISTEN=0.0.0.0:4433
VOLUME ["/var/lib/tgcdn"]
EXPOSE 4433/udp
# The admin listener (loopback, 9180 by default) is bound once every bot was checked.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9180/metrics"]
ENTRYPOINT ["/usr/local/bin/tgcdn-core"]
CMD ["run"]
