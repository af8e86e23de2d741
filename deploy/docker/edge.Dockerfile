# syntax=docker/dockerfile:1
# tgcdn-edge: a static (musl) binary on distroless/static, running as a non-root user; the
# image is about 2 MB of base, the stripped binary and a 1 MB static busybox used only as the
# health check's HTTP client (the edge has no probe subcommand yet and the base has no curl).
#
#   docker build -f deploy/docker/edge.Dockerfile -t tgcdn-edge .     # from the repository root
#
# Configure with TGCDN_* variables (`docker run --rm tgcdn-edge --help`); secrets through a
# TOML file named by TGCDN_CONFIG (see deploy/compose.yaml).
ARG RUST_VERSION=1.95
ARG ALPINE_VERSION=3.22

FROM rust:${RUST_VERSION}-alpine${ALPINE_VERSION} AS build
# ring compiles C and assembly; musl-dev brings the headers and the static libc.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# No debug line tables and no symbols in the image: the binary shrinks from ~30 to ~10 MB.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tgcdn-edge --bin tgcdn-edge \
    && cp target/release/tgcdn-edge /tgcdn-edge

# busybox's musl build is one static binary; invoked as `wget` it is a small HTTP client.
FROM busybox:1.37-musl AS probe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /tgcdn-edge /usr/local/bin/tgcdn-edge
COPY --from=probe /bin/busybox /usr/local/bin/wget
# Numeric, so that Kubernetes runAsNonRoot can verify it (distroless: 65532 = nonroot).
USER 65532:65532
ENV TGCDN_LISTEN=0.0.0.0:8080
EXPOSE 8080
# /readyz answers 200 once the edge holds a connection to the core, 503 before. The check
# assumes TGCDN_LISTEN's port 8080 and plain HTTP: an edge listening elsewhere or with TLS
# overrides it (deploy/compose.tls.yaml does).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/tgcdn-edge"]
