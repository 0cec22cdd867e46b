# syntax=docker/dockerfile:1
# cutover's container image: built with the locked dependencies, run as a
# non-root user on a distroless base (glibc and CA certificates, no shell).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Dependencies get a layer of their own: it is rebuilt only when the
# manifest or the lock file changes, not on every source change.
COPY Cargo.toml Cargo.lock ./
COPY crates/cutover-core/Cargo.toml crates/cutover-core/
COPY crates/cutover-controller/Cargo.toml crates/cutover-controller/
COPY crates/cutover-checks/Cargo.toml crates/cutover-checks/
COPY crates/cutover-sim/Cargo.toml crates/cutover-sim/
COPY crates/cutover-demo/Cargo.toml crates/cutover-demo/
COPY crates/cutover-bench/Cargo.toml crates/cutover-bench/
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for c in crates/*/; do mkdir "$c/src" && touch "$c/src/lib.rs"; done \
    && cargo build --release --locked -p cutover \
    && rm -rf src crates/*/src
COPY crates ./crates
COPY src ./src
COPY config ./config
# The stubs' build is newer than the sources copied in: make cargo rebuild them.
RUN touch src/main.rs src/lib.rs crates/*/src/lib.rs \
    && cargo build --release --locked -p cutover \
    && install -m 0755 target/release/cutover /usr/local/bin/cutover

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /usr/local/bin/cutover /usr/local/bin/cutover
COPY config/cutover.example.toml /etc/cutover/cutover.example.toml
# 65532 is distroless's "nonroot" user.
USER 65532:65532
# Configuration comes from CUTOVER_* variables; credentials from the task role.
ENV CUTOVER_LISTEN=0.0.0.0:8080 \
    CUTOVER_LOG_FORMAT=json
EXPOSE 8080
# No curl in the image: cutover probes itself. The start period covers the
# first listing of the table.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/cutover", "probe", "--timeout", "3s", "http://127.0.0.1:8080/healthz"]
# SIGTERM starts a graceful stop: passes in flight finish and the shard
# leases are handed back, so give it time (ECS stopTimeout).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/cutover"]
CMD ["run"]
