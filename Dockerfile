# The Clavis image the Helm chart runs: one binary, every service (`clavis serve --services <name>` picks one).
#   docker build -t clavis:0.1.0 .
# Built where Docker and a registry are reachable; CI here has neither and checks only that this file agrees with the
# workspace (tests/integration/packaging_snippets.rs). See docs/operations.md, "The container image".
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin clavis \
 && install -D -m 0755 target/release/clavis /out/clavis

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 clavis \
 && useradd --uid 10001 --gid clavis --home-dir /data --no-create-home clavis \
 && install -d -o clavis -g clavis /data
COPY --from=build /out/clavis /usr/local/bin/clavis
USER 10001:10001
WORKDIR /data
# Listen on every interface inside the container; the chart and `docker run -p` choose what reaches it.
ENV CLAVIS_LISTEN=0.0.0.0:8080 \
    CLAVIS_DATA_DIR=/data \
    CLAVIS_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/clavis"]
CMD ["serve"]
