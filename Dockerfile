# modelgate: the gateway (REST on 8501, gRPC on 8500), with the example models built in.
#
#   docker build -t modelgate .
#   docker run --rm -p 8500:8500 -p 8501:8501 modelgate                        # example config, every example model
#   docker run --rm -p 8501:8501 -e MODEL_NAME=half_plus_two modelgate       # one model from /models/$MODEL_NAME, as TF Serving's image
#   docker run --rm -p 8501:8501 -v "$PWD/my_model:/models/my_model" -e MODEL_NAME=my_model modelgate
#   docker run --rm -p 8501:8501 -v "$PWD/conf:/conf" modelgate --model_config_file=/conf/models.config
#
# The same image runs a standalone worker: --entrypoint node, then dist/worker/main.js and its flags
# (see compose.yaml and deploy/kubernetes/).

# ---- build: compile TypeScript and generate the example models ----------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
# onnxruntime-node's CPU binaries ship inside its npm package; its postinstall would only fetch the
# CUDA libraries from NuGet. package.json's allowScripts denies that script for npm 11; the npm 10 in
# this image does not read allowScripts, so the script's own switch says skip.
COPY package.json package-lock.json ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
COPY . .
# `npm run build`: tsc, then scripts/make-example-models.ts and make-example-savedmodel.ts write models/.
# Then drop the dev dependencies, and onnxruntime-node's binaries for other platforms (~220 MB).
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && node -e "const fs = require('node:fs'), dir = 'node_modules/onnxruntime-node/bin/napi-v6'; \
      for (const os of fs.readdirSync(dir)) for (const arch of fs.readdirSync(dir + '/' + os)) \
        if (os !== 'linux' || arch !== process.arch) fs.rmSync(dir + '/' + os + '/' + arch, { recursive: true });" \
 && chmod 0755 deploy/docker/entrypoint.sh

# ---- runtime ------------------------------------------------------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/protos ./protos
COPY --from=build /app/config ./config
COPY --from=build /app/deploy/docker ./deploy/docker
# The example models live where TF Serving's image keeps models, /models; config/models.config names
# them as ../models/<name>, so /app/models points there. Mount your own repository over /models.
COPY --from=build /app/models /models
RUN ln -s /models /app/models

# Non-root: the node image's `node` user (uid 1000). The gateway writes only its workers' sockets,
# under the temp dir.
USER node

# gRPC (tensorflow.serving.PredictionService, ModelService, grpc.health.v1) and REST.
EXPOSE 8500 8501

# Ready once every configured model has an AVAILABLE version (GET /readyz). A gateway started with
# another --rest_api_port: set HEALTHCHECK_URL. A standalone worker: its own /healthz (compose.yaml).
ENV HEALTHCHECK_URL=http://127.0.0.1:8501/readyz
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs"]

ENTRYPOINT ["/app/deploy/docker/entrypoint.sh"]
CMD []
