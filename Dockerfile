# syntax=docker/dockerfile:1
#
# A conventional multi-stage build of clustergraph's container image, for
# those who build with Docker, BuildKit or Buildah:
#
#   docker build -t clustergraph \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse HEAD)" .
#
# The tested path is `make image` (tools/image/build.sh): it needs no Docker
# engine, builds the same commit to the same digest, and `make test`
# inspects what it builds (tools/image/image_test.go). This file builds the
# same shape: a static, stripped binary with version and commit stamped, the
# GraphiQL bundle embedded, Debian's CA bundle, user 65532, the same
# environment, working directory, port, labels and entrypoint, no shell. The
# image test checks that this file's final stage states the same config as
# the image `make image` builds; the build itself is not run here.

ARG GO_VERSION=1.26.8

# The GraphiQL bundle, exactly as `make graphiql` fetches it from npm.
FROM node:20-bookworm AS graphiql
WORKDIR /src/graphiql
COPY graphiql/build.sh graphiql/package.json graphiql/package-lock.json ./
COPY graphiql/dist/PLACEHOLDER.txt dist/
RUN ./build.sh

# The server, built as tools/image/build.sh builds it, and the files around it.
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=graphiql /src/graphiql/dist/ graphiql/dist/
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/usr/local/bin/clustergraph . \
 && mkdir -p /out/etc/ssl/certs /out/tmp /out/var/lib/clustergraph \
      /out/usr/share/doc/clustergraph /out/usr/share/doc/ca-certificates \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && cp /usr/share/doc/ca-certificates/copyright /out/usr/share/doc/ca-certificates/ \
 && cp LICENSE /out/usr/share/doc/clustergraph/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/clustergraph:/sbin/nologin\n' >/out/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' >/out/etc/group \
 && chmod 1777 /out/tmp \
 && chown 65532:65532 /out/var/lib/clustergraph && chmod 750 /out/var/lib/clustergraph

# COPY --from keeps the owners set above (the data dir is 65532's).
FROM scratch
ARG VERSION=dev
ARG COMMIT=unknown
COPY --from=build /out/ /
USER 65532:65532
ENV CLUSTERGRAPH_LISTEN=0.0.0.0:8080 CLUSTERGRAPH_DATA_DIR=/var/lib/clustergraph
WORKDIR /var/lib/clustergraph
EXPOSE 8080/tcp
LABEL org.opencontainers.image.title="clustergraph" \
      org.opencontainers.image.description="GraphQL server in front of Kubernetes clusters" \
      org.opencontainers.image.source="https://github.com/clustergraph/clustergraph" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/local/bin/clustergraph"]
