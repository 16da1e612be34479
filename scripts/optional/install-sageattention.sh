#!/usr/bin/env bash
# Optional: build SageAttention 2 into the image's venv, inside a running pod (not run by default).
#
# SageAttention has no prebuilt wheels on PyPI for current torch/CUDA (PyPI's 1.0.6 is the old
# Triton-only release), so it is compiled here against the installed torch. That needs nvcc and
# the CUDA headers of the same major.minor version torch was built with, which the lean image
# leaves out; this script installs them from the NVIDIA apt repository that nvidia/cuda base
# images already configure. Expect 10-20 minutes on a pod; the result lives in the container
# layer, so run it again after a pod is re-created (or bake it into a derived image).
#
# Usage (in the pod):  bash install-sageattention.sh
# Then run ComfyUI with it, e.g. COMFY_FLAGS="--use-sage-attention" and a soft restart.
#
# Knobs: SAGEATTENTION_REF (git tag or commit, default v2.2.0), TORCH_CUDA_ARCH_LIST (default:
# the compute capability of the GPUs nvidia-smi sees, e.g. 12.0 on an RTX 5090), MAX_JOBS.
set -euo pipefail

SAGEATTENTION_REF="${SAGEATTENTION_REF:-v2.2.0}"
SAGEATTENTION_REPO="${SAGEATTENTION_REPO:-https://github.com/thu-ml/SageAttention.git}"
VENV_PYTHON="${VENV_PYTHON:-/opt/venv/bin/python}"

die() {
    echo "install-sageattention: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (it installs the CUDA compiler with apt-get)."
command -v nvidia-smi >/dev/null || die "no GPU visible (nvidia-smi missing): run it in a GPU pod."

cuda_version="$("$VENV_PYTHON" -c 'import torch; print(torch.version.cuda or "")')"
[ -n "$cuda_version" ] || die "the installed torch is a CPU build; SageAttention needs CUDA torch."
cuda_pkg_suffix="${cuda_version/./-}" # 12.8 -> 12-8, as NVIDIA names its apt packages

if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    TORCH_CUDA_ARCH_LIST="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | sort -u | paste -sd';')"
fi
export TORCH_CUDA_ARCH_LIST
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
echo "install-sageattention: torch CUDA ${cuda_version}, building for ${TORCH_CUDA_ARCH_LIST}"

# nvcc plus the headers torch's extension headers include (cuBLAS, cuSPARSE, cuSOLVER).
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends build-essential \
    "cuda-minimal-build-${cuda_pkg_suffix}" "libcublas-dev-${cuda_pkg_suffix}" \
    "libcusparse-dev-${cuda_pkg_suffix}" "libcusolver-dev-${cuda_pkg_suffix}" ||
    die "could not install the CUDA ${cuda_version} compiler; is the NVIDIA apt repository configured?"
export CUDA_HOME="/usr/local/cuda-${cuda_version}"
export PATH="${CUDA_HOME}/bin:${PATH}"

# --no-build-isolation: compile against the torch already installed (the image's constraints
# file keeps pip from replacing it).
"$VENV_PYTHON" -m pip install --no-cache-dir ninja packaging wheel setuptools
"$VENV_PYTHON" -m pip install --no-cache-dir --no-build-isolation \
    "git+${SAGEATTENTION_REPO}@${SAGEATTENTION_REF}"

"$VENV_PYTHON" -c 'import sageattention; print("sageattention", getattr(sageattention, "__version__", "installed"))'
echo "install-sageattention: done. Add --use-sage-attention to COMFY_FLAGS and restart ComfyUI."
