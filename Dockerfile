# syntax=docker/dockerfile:1
# One image with machineflow's three binaries, used by deploy/: the worker
# and the controller Deployments run /usr/local/bin/worker and
# /usr/local/bin/controller; `docker run IMAGE starter ...` runs the CLI.
#
#   docker build -t ghcr.io/machineflow/machineflow:v0.1.0 .

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
# Static binaries (no cgo), so the final image needs no libc.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/worker ./cmd/controller ./cmd/starter

# No shell, no package manager; uid/gid 65532, as deploy/ runs it.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
CMD ["worker"]
