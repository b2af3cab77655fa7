# vitrep in a container: the image that `grid --emit k8s` and `essay --plan --emit k8s` jobs run
# (one grid cell per pod of a Kubernetes Indexed Job), and a way to give cluster nodes the
# same Deno: `deno` is on the image's PATH (npm's deno@2.9.6, as everywhere else in this repository).
#   docker build -t vitrep:latest .
#   docker run --rm -v "$PWD/out/grid:/grid" vitrep:latest grid --out /grid --cell 0
#   docker run --rm -v "$PWD/out/essay:/essay" vitrep:latest essay --out /essay --task 0
# (Not built in this repository's CI: no container engine there.)
FROM debian:bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
  && rm -rf /var/lib/apt/lists/*
# deno on PATH (npm's global bin): what emitted Slurm scripts run, and this image's entrypoint
RUN npm install -g deno@2.9.6 && deno --version
ENV DENO_DIR=/opt/deno-cache
WORKDIR /app
COPY . .
# The npm packages (onnxruntime, pngjs, jpeg-js) at build time, so pods start offline.
RUN deno cache mod.ts
ENTRYPOINT ["deno", "run", "-A", "/app/mod.ts"]
CMD ["--help"]
