# syntax=docker/dockerfile:1
# The brewq image: the one `brewq` binary on a slim Debian, run as a non-root user.
# Build: docker build -t brewq:latest .     Run: docker run --rm brewq:latest --help
# deploy/compose.yaml runs a whole cluster from it; DEPLOY.md explains (not built in CI).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds; the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p brewq \
    && install -m 0755 target/release/brewq /usr/local/bin/brewq

FROM debian:bookworm-slim
# A fixed uid, so that files it writes in a volume (`brewq security init`) keep one owner.
# /etc/brewq belongs to it: a new volume mounted there starts with that owner.
RUN groupadd --system --gid 10001 brewq \
    && useradd --system --uid 10001 --gid brewq --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin brewq \
    && install -d -o brewq -g brewq -m 0700 /etc/brewq
COPY --from=build /usr/local/bin/brewq /usr/local/bin/brewq
USER brewq:brewq
ENTRYPOINT ["/usr/local/bin/brewq"]
CMD ["--help"]
