# Ignition: ComfyUI for RunPod GPU pods. Code lives in the image (/opt), data on the /workspace
# volume, so nothing here writes to /workspace: a volume mounted there would hide it anyway.
#
# Layers run from least to most often changed (system packages → torch → ComfyUI → Ignition), so
# an Ignition change rebuilds and re-pulls only the last, small layer.
#
# Every version is a build arg; the defaults are the supported GPU build. `scripts/image-smoke.sh`
# builds the same file on a plain Debian base with CPU torch to prove it builds and boots.

# The `base` flavour (CUDA runtime + driver capability env) rather than `runtime`/`cudnn-runtime`:
# the torch wheels bring their own cuBLAS/cuDNN/NCCL as pip packages, so those images would ship
# every library twice (several GB). 12.8 is the first CUDA with Blackwell (sm_120, RTX 5090) and
# makes the NVIDIA runtime refuse hosts whose driver is too old (NVIDIA_REQUIRE_CUDA), up front.
ARG BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS system
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive
# Names that exist on Ubuntu and Debian alike, so BASE_IMAGE can be either. Versions are not
# pinned (DL3008): they differ per distribution release and the base tag already fixes them.
# caddy: the auth proxy in front of ComfyUI; git: ComfyUI-Manager installs custom nodes with it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates caddy git python3 python3-venv tini \
    && rm -rf /var/lib/apt/lists/*

# ---------------------------------------------------------------------------------------------
# uv resolves and installs several times faster than pip; it is bind-mounted into the steps that
# use it and never becomes part of the image.
FROM system AS uv
ARG UV_VERSION=0.13.9
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/python -m pip install --no-cache-dir "uv==${UV_VERSION}"

# ---------------------------------------------------------------------------------------------
FROM system AS image
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Bytecode is compiled at build time so that no container pays for it on its first start.
# pip stays in the venv: ComfyUI-Manager installs custom nodes' requirements with it at run time.
RUN python3 -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    UV_SYSTEM_CERTS=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never

# torch 2.11 is the newest stable release with CUDA 12.8 wheels (later ones ship 12.6, 13.x); it
# runs Blackwell (sm_120) without nightlies and needs a driver ≥ 570 rather than 13.x's ≥ 580.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_SPEC="torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0"
# The constraints file pins the installed torch trio for every later pip/uv install, including
# custom-node requirements installed at run time: one of them asking for "torch" must not swap
# the CUDA build for a different one.
# hadolint ignore=SC2086
RUN --mount=type=bind,from=uv,source=/opt/uv,target=/opt/uv \
    --mount=type=cache,target=/root/.cache/uv,id=ignition-uv \
    /opt/uv/bin/uv pip install --index "${TORCH_INDEX_URL}" ${TORCH_SPEC} \
    && /opt/uv/bin/uv pip freeze | grep -E '^(torch|torchvision|torchaudio)==' \
        > /opt/venv/torch-constraints.txt
ENV PIP_CONSTRAINT=/opt/venv/torch-constraints.txt \
    UV_CONSTRAINT=/opt/venv/torch-constraints.txt

# A release tag, never a branch: the same tag must always build the same ComfyUI.
ARG COMFYUI_REPO=https://github.com/Comfy-Org/ComfyUI.git
ARG COMFYUI_REF=v0.46.0
ENV COMFYUI_DIR=/opt/ComfyUI \
    WORKSPACE=/workspace
# manager_requirements.txt (the pip-packaged ComfyUI-Manager) exists from ComfyUI 0.3.6x on;
# older refs simply don't have one. EXTRA_PYTHON_PACKAGES: more requirements for a derived image
# (custom nodes' needs, or what an older ComfyUI ref forgot to list), installed in the same layer.
ARG EXTRA_PYTHON_PACKAGES=""
# hadolint ignore=SC2086
RUN --mount=type=bind,from=uv,source=/opt/uv,target=/opt/uv \
    --mount=type=cache,target=/root/.cache/uv,id=ignition-uv \
    git clone --depth 1 --branch "${COMFYUI_REF}" "${COMFYUI_REPO}" "${COMFYUI_DIR}" \
    && /opt/uv/bin/uv pip install -r "${COMFYUI_DIR}/requirements.txt" \
    && if [ -f "${COMFYUI_DIR}/manager_requirements.txt" ]; then \
        /opt/uv/bin/uv pip install -r "${COMFYUI_DIR}/manager_requirements.txt"; fi \
    && if [ -n "${EXTRA_PYTHON_PACKAGES}" ]; then \
        /opt/uv/bin/uv pip install ${EXTRA_PYTHON_PACKAGES}; fi \
    && python -m compileall -q "${COMFYUI_DIR}"

COPY pyproject.toml README.md LICENSE /opt/ignition/
COPY src /opt/ignition/src
# Opt-in extras a person runs inside the pod (see the README); nothing runs them by default.
COPY scripts/optional /opt/ignition/optional
RUN --mount=type=bind,from=uv,source=/opt/uv,target=/opt/uv \
    --mount=type=cache,target=/root/.cache/uv,id=ignition-uv \
    /opt/uv/bin/uv pip install /opt/ignition \
    && rm -rf /opt/ignition/build /opt/ignition/src/*.egg-info \
    && ignition --version

EXPOSE 8188 8080
# `ignition status` exits non-zero while ComfyUI or the file browser is down; the start period
# covers model downloads on first boot.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10m --retries=3 CMD ["ignition", "status"]
# tini reaps zombies and forwards SIGTERM, so `docker stop` reaches Ignition's supervisor.
ENTRYPOINT ["tini", "--", "ignition", "start"]
