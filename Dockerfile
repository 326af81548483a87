# callcoach for a GPU server. CTranslate2 (faster-whisper's engine) needs the CUDA 12 runtime
# with cuDNN 9; the same image runs on a CPU-only host (the device is detected at start).
#
#   docker build -t callcoach .
#   docker run --gpus all -p 8080:8080 -v callcoach-data:/data --env-file .env callcoach
#
# EXTRAS=hf adds transformers + torch for Hugging Face sentiment/topic models.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ARG EXTRAS=""
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY callcoach ./callcoach
COPY app_manifest ./app_manifest
# The same steps CI runs in a fresh virtual environment (scripts/docker_install.sh).
COPY scripts/docker_install.sh ./scripts/
RUN sh scripts/docker_install.sh /opt/venv "${EXTRAS}"

FROM ${CUDA_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    CALLCOACH_DATA_DIR=/data CALLCOACH_HOST=0.0.0.0 CALLCOACH_PORT=8080 CALLCOACH_LOG_JSON=true
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 callcoach \
    && mkdir -p /data && chown callcoach:callcoach /data
COPY --from=build /opt/venv /opt/venv
USER 10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8080/livez"]
# The bundled Whisper base is joined into /data/models on first start; for production set
# CALLCOACH_WHISPER_MODEL=large-v3-turbo (or a mounted path) and mount the model.
CMD ["callcoach", "serve"]
