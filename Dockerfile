# One small non-root image with both binaries: `stampede` (the runner: agent, run, wait, report,
# demo-server — the entrypoint) and `stampede-operator` (the chart runs it as the command).
#   docker build -t ghcr.io/stampede-dev/stampede:0.1.0 .
# CI runs the build stage's cargo command as a plain command (.ci/run, "container build stage").

FROM rust:1.95-bookworm AS build
# runner/build.rs installs the HTML report's charting library (runner/ui) with npm.
RUN apt-get update && apt-get install -y --no-install-recommends npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p stampede-runner --bin stampede -p stampede-operator --bin stampede-operator

# glibc and CA certificates, no shell, uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/stampede /usr/local/bin/stampede
COPY --from=build /src/target/release/stampede-operator /usr/local/bin/stampede-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/stampede"]
