# syntax=docker/dockerfile:1
#
# dmvae-serve: HTTP on 8080, gRPC on 50051, models baked in from models/.
#
#   docker build -t dmvae-serve .                      # CPU image (default target)
#   docker build -t dmvae-serve:gpu --target gpu .     # CUDA 12 image; run with --gpus all
#   docker run --rm -p 8080:8080 -p 50051:50051 dmvae-serve
#
# The repository's .npmrc says onnxruntime-node-install=skip (CPU binaries ship inside the npm
# package). The GPU build overrides it with cuda12, which makes onnxruntime-node's install
# script fetch the CUDA execution provider from NuGet: that build needs network access.
# Not built in CI here (no docker engine on the build machine); see README.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: compile TypeScript, keep production dependencies only ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM build AS build-gpu
# Same tree, plus the CUDA provider libraries next to onnxruntime_binding.node: the env var
# overrides the .npmrc "skip" (the effect of onnxruntime-node-install=cuda12 in .npmrc).
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install

# ---- cpu: the default image ----
FROM ${NODE_IMAGE} AS cpu
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 GRPC_PORT=50051 MODELS_DIR=/app/models
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json openapi.yaml ./
COPY proto ./proto
COPY models ./models
USER node
EXPOSE 8080 50051
# Liveness only; orchestrators should use GET /readyz (or grpc.health.v1) for readiness.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node as PID 1 gets SIGTERM directly; main.ts drains requests and exits.
CMD ["node", "dist/main.js"]

# ---- gpu: CUDA 12 runtime + cuDNN 9 from NVIDIA's Debian 12 repository ----
FROM ${NODE_IMAGE} AS gpu
# CUDA 12.x and cuDNN 9: what the onnxruntime-node 1.30 CUDA provider is built against.
ARG CUDA_PKG=12-6
ARG CUDA_DIR=12.6
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSLo /tmp/cuda-keyring.deb \
      https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb \
 && dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      cuda-cudart-${CUDA_PKG} libcublas-${CUDA_PKG} libcufft-${CUDA_PKG} \
      libcurand-${CUDA_PKG} libcudnn9-cuda-12 \
 && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 GRPC_PORT=50051 MODELS_DIR=/app/models \
    EXECUTION_PROVIDERS=cuda:0,cpu PROVIDER_FALLBACK=true \
    LD_LIBRARY_PATH=/usr/local/cuda-${CUDA_DIR}/targets/x86_64-linux/lib \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /app
COPY --from=build-gpu /app/node_modules ./node_modules
COPY --from=build-gpu /app/dist ./dist
COPY package.json openapi.yaml ./
COPY proto ./proto
COPY models ./models
USER node
EXPOSE 8080 50051
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]

# Plain `docker build .` builds the last stage; make the CPU image the default.
FROM cpu
