# vitrep in a container: the image that `grid --emit k8s` jobs run (one grid
# cell per pod of a Kubernetes Indexed Job). Debian + Node.js; Deno comes from
# npm like everywhere else in this repository.
#   docker build -t vitrep:latest .
#   docker run --rm -v "$PWD/out/grid:/grid" vitrep:latest grid --out /grid --cell 0
# (Not built in this repository's CI: no container engine there.)
FROM debian:bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
  && rm -rf /var/lib/apt/lists/*
ENV DENO_DIR=/opt/deno-cache
WORKDIR /app
COPY . .
# Deno and the npm packages (onnxruntime, pngjs, jpeg-js) at build time, so pods start offline.
RUN npx --yes deno@2.9.6 cache mod.ts
ENTRYPOINT ["npx", "--yes", "deno@2.9.6", "run", "-A", "/app/mod.ts"]
CMD ["--help"]
