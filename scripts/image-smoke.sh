#!/usr/bin/env bash
# Build the real Dockerfile on a private Docker engine on this machine and boot a pod from it.
#
# Not part of .ci/run: it takes minutes (apt, debootstrap, a multi-GB pip install) and needs root.
# Everything it makes lives under one temp dir and is removed at the end, the engine included.
#
#   1. Start a private dockerd (own data root and socket; no bridge, no iptables changes: every
#      build and container uses the host's network namespace, so loopback servers are reachable).
#   2. Make the base image from Debian packages (debootstrap) with this machine's CA bundle,
#      because the package registries are reached through a proxy whose CA containers must trust.
#   3. Serve ComfyUI's source (a git repo re-committed from a local snapshot) and the local torch
#      wheel index over loopback, and pass them as COMFYUI_REPO / TORCH_INDEX_URL.
#   4. Build; check `ignition --version`, the torch import and the bundled tools.
#   5. Boot ComfyUI alone (`python main.py --cpu`) from the image and time it to /system_stats.
#   6. Boot the pod (`ignition start`, the real entrypoint) with COMFY_FLAGS=--cpu, a temp dir at
#      /workspace and one model from a loopback fake of Hugging Face; wait for the UI and the
#      model; soft restart and hard stop through the seed's scripts; check the HEALTHCHECK.
#
# Prints build time, image size and the time from `docker run` to a ready UI.
#
# Knobs (environment):
#   COMFYUI_SOURCE        git dir or checkout of ComfyUI (default: the search tool's mirror under
#                         /work/.mirror/Comfy-Org+ComfyUI/repo)
#   SMOKE_TORCH_INDEX_DIR a PEP 503 directory (simple/torch/...) with Linux cp311 torch wheels
#                         (default: the first file:// index in pip's config that has torch)
#   SMOKE_TORCH_SPEC      requirements for the torch step (default "torch torchvision torchaudio":
#                         whatever the local index holds)
#   SMOKE_EXTRA_PYTHON_PACKAGES  EXTRA_PYTHON_PACKAGES for the build (default "requests", see below)
#   SMOKE_SKIP_BOOT=1     stop after step 5 (e.g. while `ignition start` is not built yet)
#   SMOKE_KEEP=1          keep the temp dir (engine stopped) for a look afterwards
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
COMFYUI_SOURCE="${COMFYUI_SOURCE:-/work/.mirror/Comfy-Org+ComfyUI/repo}"
SMOKE_TORCH_SPEC="${SMOKE_TORCH_SPEC:-torch torchvision torchaudio}"
# The mirrored ComfyUI (0.3.64, Oct 2025) imports requests without listing it; it used to arrive
# with transformers, whose current releases no longer depend on it.
SMOKE_EXTRA_PYTHON_PACKAGES="${SMOKE_EXTRA_PYTHON_PACKAGES-requests}"
SUITE="bookworm"
IMAGE="local/ignition:smoke"
BASE="local/ignition-smoke-base:${SUITE}"
HF_REPO="ignition-smoke/tiny-vae"
HF_FILE="tiny-vae.safetensors"

say() { printf '\n=== %s\n' "$*"; }
die() {
    printf 'image-smoke: FAIL: %s\n' "$*" >&2
    exit 1
}
now() { date +%s.%N; }
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$2"; }

# A loopback port: the preferred one when it is free (the seed's defaults), any free one otherwise.
free_port() {
    python3 - "${1:-0}" <<'EOF'
import socket, sys
for port in (int(sys.argv[1]), 0):
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            print(s.getsockname()[1])
            break
    except OSError:
        continue
EOF
}

# Polls until the URL answers 2xx (curl -f); fails after $2 seconds, or at once when the
# container named by $3 (if any) has exited. Further arguments go to curl.
wait_http() {
    local url="$1" timeout_s="$2" container="${3:-}" deadline
    shift 3
    deadline=$((SECONDS + timeout_s))
    until curl -fsS -o /dev/null --max-time 5 "$@" "$url" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        if [ -n "$container" ] && [ "$(docker inspect -f '{{.State.Running}}' "$container")" != true ]; then
            return 1
        fi
        sleep 0.5
    done
}

[ "$(id -u)" = 0 ] || die "run as root: it starts a Docker engine."
for tool in git python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is missing."
done
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    say "installing docker.io and debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
# The CLI that ships with the engine: a newer standalone CLI without the buildx plugin cannot
# drive BuildKit, which the Dockerfile's bind and cache mounts need.
DOCKER_CLI="$(dirname "$(command -v dockerd)")/../bin/docker"
[ -x "$DOCKER_CLI" ] || DOCKER_CLI="$(command -v docker)"

WORK="$(mktemp -d /tmp/ignition-smoke.XXXXXX)"
declare -a PIDS=()
cleanup() {
    local code=$?
    set +e
    if [ -S "$WORK/docker.sock" ]; then
        docker ps -aq | xargs --no-run-if-empty "$DOCKER_CLI" -H "unix://$WORK/docker.sock" rm -f >/dev/null
    fi
    if [ -f "$WORK/dockerd.pid" ]; then
        local pid
        pid="$(cat "$WORK/dockerd.pid")"
        kill "$pid" 2>/dev/null
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    [ -f "$WORK/git-daemon.pid" ] && kill "$(cat "$WORK/git-daemon.pid")" 2>/dev/null
    # A killed engine can leave overlay mounts behind; rm -rf must not walk into them.
    grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | xargs --no-run-if-empty -n1 umount -l 2>/dev/null
    if [ "${SMOKE_KEEP:-0}" = 1 ]; then
        echo "image-smoke: kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$code"
}
trap cleanup EXIT INT TERM

docker() { "$DOCKER_CLI" -H "unix://$WORK/docker.sock" "$@"; }
export DOCKER_BUILDKIT=1

# --- 1. private engine ------------------------------------------------------------------------
say "starting a private dockerd in $WORK"
dockerd --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
    --host "unix://$WORK/docker.sock" --bridge=none --iptables=false --ip-masq=false \
    >"$WORK/dockerd.log" 2>&1 &
for _ in $(seq 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
docker version >/dev/null 2>&1 || die "dockerd did not start; see $WORK/dockerd.log"

# --- 2. base image ----------------------------------------------------------------------------
say "making the base image ($SUITE, debootstrap minbase)"
t0="$(now)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,git,tini \
    "$SUITE" "$WORK/rootfs" >"$WORK/debootstrap.log" 2>&1 || die "debootstrap failed; see $WORK/debootstrap.log"
# Both places: the bundle itself, and the source update-ca-certificates rebuilds it from.
cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$WORK/rootfs/usr/local/share/ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/usr/local/share/ca-certificates/host-bundle.crt"
tar -C "$WORK/rootfs" -c . | docker import - "$BASE" >/dev/null
rm -rf "$WORK/rootfs"
echo "base image ready in $(elapsed "$t0" "$(now)") s"

# --- 3. loopback sources ------------------------------------------------------------------------
say "serving ComfyUI from $COMFYUI_SOURCE over git://"
git_dir="$(git -C "$COMFYUI_SOURCE" rev-parse --git-dir 2>/dev/null)" || die "COMFYUI_SOURCE is not a git repo: $COMFYUI_SOURCE"
git_dir="$(cd "$COMFYUI_SOURCE" && cd "$git_dir" && pwd)"
# The snapshot may lack large blobs; re-commit the tree without them into a fresh repo.
export GIT_INDEX_FILE="$WORK/comfyui.index"
git --git-dir="$git_dir" read-tree HEAD
missing="$(git --git-dir="$git_dir" ls-files -s | awk '{print $2}' |
    git --git-dir="$git_dir" cat-file --batch-check | awk '$2 == "missing" {print $1}')"
if [ -n "$missing" ]; then
    git --git-dir="$git_dir" ls-files -s | grep -F -f <(printf '%s\n' "$missing") | cut -f2 |
        while read -r path; do
            echo "  (snapshot lacks $path: left out)"
            git --git-dir="$git_dir" rm -q --cached -- "$path"
        done
fi
mkdir -p "$WORK/comfyui-src"
git --git-dir="$git_dir" checkout-index -a --prefix="$WORK/comfyui-src/"
unset GIT_INDEX_FILE
comfyui_version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$WORK/comfyui-src/comfyui_version.py")"
COMFYUI_REF="v${comfyui_version:-0.0.0}"
(
    cd "$WORK/comfyui-src"
    git init -q -b master
    git add -A
    git -c user.name=image-smoke -c user.email=image-smoke@localhost commit -q -m "ComfyUI ${COMFYUI_REF} snapshot"
    git tag "$COMFYUI_REF"
)
mkdir -p "$WORK/git"
git clone -q --bare "$WORK/comfyui-src" "$WORK/git/ComfyUI.git"
rm -rf "$WORK/comfyui-src"
git_port="$(free_port)"
git daemon --reuseaddr --listen=127.0.0.1 --port="$git_port" --base-path="$WORK/git" --export-all \
    --detach --pid-file="$WORK/git-daemon.pid" "$WORK/git"
COMFYUI_REPO="git://127.0.0.1:${git_port}/ComfyUI.git"
for _ in $(seq 20); do git ls-remote "$COMFYUI_REPO" >/dev/null 2>&1 && break; sleep 0.5; done
git ls-remote "$COMFYUI_REPO" "$COMFYUI_REF" | grep -q . || die "git daemon does not serve $COMFYUI_REPO"
echo "ComfyUI $COMFYUI_REF at $COMFYUI_REPO"

if [ -z "${SMOKE_TORCH_INDEX_DIR:-}" ]; then
    for url in $(pip config list 2>/dev/null | sed -n "s/.*index-url='\(.*\)'/\1/p"); do
        dir="${url#file://}"
        dir="${dir%/}"
        if [ -d "$dir/torch" ]; then
            SMOKE_TORCH_INDEX_DIR="$(dirname "$dir")"
            break
        fi
    done
fi
[ -d "${SMOKE_TORCH_INDEX_DIR:-}/simple/torch" ] ||
    die "no local torch wheel index found; set SMOKE_TORCH_INDEX_DIR to a dir with simple/torch/"
wheel_port="$(free_port)"
python3 -m http.server --bind 127.0.0.1 --directory "$SMOKE_TORCH_INDEX_DIR" "$wheel_port" \
    >"$WORK/wheels.log" 2>&1 &
PIDS+=("$!")
TORCH_INDEX_URL="http://127.0.0.1:${wheel_port}/simple"
wait_http "$TORCH_INDEX_URL/torch/" 20 "" || die "wheel index server did not start"
echo "torch wheels from $SMOKE_TORCH_INDEX_DIR at $TORCH_INDEX_URL"

# --- 4. build -----------------------------------------------------------------------------------
say "building $IMAGE"
t0="$(now)"
docker build --network host --progress plain -t "$IMAGE" \
    --build-arg BASE_IMAGE="$BASE" \
    --build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL" \
    --build-arg TORCH_SPEC="$SMOKE_TORCH_SPEC" \
    --build-arg COMFYUI_REPO="$COMFYUI_REPO" \
    --build-arg COMFYUI_REF="$COMFYUI_REF" \
    --build-arg EXTRA_PYTHON_PACKAGES="$SMOKE_EXTRA_PYTHON_PACKAGES" \
    "$ROOT" >"$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log" >&2
    die "docker build failed"
}
build_s="$(elapsed "$t0" "$(now)")"
size_bytes="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
base_bytes="$(docker image inspect -f '{{.Size}}' "$BASE")"
echo "build: ${build_s} s; image: $((size_bytes / 1000000)) MB (base $((base_bytes / 1000000)) MB)"

run() { docker run --rm --network host "$@"; }
say "checking the image"
run --entrypoint ignition "$IMAGE" --version
run --entrypoint python "$IMAGE" -c "import torch; print(torch.__version__)"
run --entrypoint python "$IMAGE" -c "import torchvision, torchaudio; print('torchvision', torchvision.__version__, 'torchaudio', torchaudio.__version__)"
# shellcheck disable=SC2016 # expanded by the container's shell, not this one
run --entrypoint bash "$IMAGE" -c '
    set -e
    echo "caddy $(caddy version)"; tini --version; git --version
    test "$COMFYUI_DIR" = /opt/ComfyUI && test -f "$COMFYUI_DIR/main.py"
    test -x /opt/ignition/optional/install-sageattention.sh
    test ! -e /workspace || { echo "/workspace exists in the image"; exit 1; }
    test -z "$(ls -A /root/.cache/uv 2>/dev/null)" || { echo "uv cache leaked into the image"; exit 1; }
    ! command -v uv >/dev/null || { echo "uv leaked into the image"; exit 1; }
    ! command -v gcc >/dev/null || { echo "a compiler is in the image"; exit 1; }' ||
    die "the image's contents are not as expected (see above)"
health="$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$IMAGE")"
entrypoint="$(docker image inspect -f '{{json .Config.Entrypoint}}' "$IMAGE")"
echo "entrypoint $entrypoint, healthcheck $health"
[ "$entrypoint" = '["tini","--","ignition","start"]' ] || die "unexpected entrypoint $entrypoint"

# --- 5. ComfyUI alone -----------------------------------------------------------------------------
say "booting ComfyUI alone (python main.py --cpu)"
# ComfyUI expects its data folders under --base-directory (ignition start makes them in a pod).
mkdir -p "$WORK"/workspace-comfyui/ComfyUI/{custom_nodes,models,input,output,user}
comfy_port="$(free_port 8188)"
t0="$(now)"
docker run -d --name smoke-comfyui --network host -v "$WORK/workspace-comfyui:/workspace" \
    --entrypoint python "$IMAGE" /opt/ComfyUI/main.py --cpu --listen 127.0.0.1 \
    --port "$comfy_port" --base-directory /workspace/ComfyUI >/dev/null
if ! wait_http "http://127.0.0.1:${comfy_port}/system_stats" 300 smoke-comfyui; then
    docker logs --tail 60 smoke-comfyui >&2
    die "ComfyUI did not answer /system_stats within 300 s"
fi
comfyui_ready_s="$(elapsed "$t0" "$(now)")"
curl -fsS "http://127.0.0.1:${comfy_port}/system_stats" | python3 -c \
    'import json,sys; s=json.load(sys.stdin)["system"]; print("ComfyUI", s.get("comfyui_version"), "python", s["python_version"].split()[0], "torch", s.get("pytorch_version"))'
echo "ComfyUI alone: ready ${comfyui_ready_s} s after docker run"
docker rm -f smoke-comfyui >/dev/null

if [ "${SMOKE_SKIP_BOOT:-0}" = 1 ]; then
    say "SMOKE_SKIP_BOOT=1: not booting the pod through ignition start"
    printf '\nimage-smoke: build %s s | image %s MB | ComfyUI alone ready %s s | pod boot SKIPPED\n' \
        "$build_s" "$((size_bytes / 1000000))" "$comfyui_ready_s"
    exit 0
fi

# --- 6. the pod -----------------------------------------------------------------------------------
say "booting the pod (ignition start) with one model from a loopback Hugging Face"
run --entrypoint ignition "$IMAGE" start --help >/dev/null ||
    die "this build has no 'ignition start' yet (rerun with SMOKE_SKIP_BOOT=1 to stop before the pod boot)"
python3 "$ROOT/scripts/smoke/fake_hf.py" "$WORK/hf.port" "$HF_REPO" "$HF_FILE" 2>"$WORK/fake-hf.log" &
PIDS+=("$!")
for _ in $(seq 20); do [ -s "$WORK/hf.port" ] && break; sleep 0.25; done
hf_endpoint="http://127.0.0.1:$(cat "$WORK/hf.port")"

mkdir -p "$WORK/workspace"
comfy_port="$(free_port 8188)"
files_port="$(free_port 8080)"
token="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
auth=(-H "Authorization: Bearer ${token}")
t0="$(now)"
docker run -d --name smoke-pod --network host -v "$WORK/workspace:/workspace" \
    --health-interval 5s --health-start-period 10m \
    -e COMFY_FLAGS=--cpu -e COMFYUI_PORT="$comfy_port" -e FILEBROWSER_PORT="$files_port" \
    -e HF_ENDPOINT="$hf_endpoint" -e HUGGINGFACE_MODELS="$HF_REPO" -e WAIT_FOR_MODELS=true \
    -e COMFYUI_API_TOKEN="$token" -e FILEBROWSER_PASSWORD="$token" \
    "$IMAGE" >/dev/null
if ! wait_http "http://127.0.0.1:${comfy_port}/system_stats" 600 smoke-pod "${auth[@]}"; then
    docker logs --tail 80 smoke-pod >&2
    die "the pod's ComfyUI did not answer /system_stats within 600 s"
fi
pod_ready_s="$(elapsed "$t0" "$(now)")"
echo "pod: UI ready ${pod_ready_s} s after docker run"

model_folder() {
    curl -fsS "${auth[@]}" "http://127.0.0.1:${comfy_port}/models" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)))' |
        while read -r folder; do
            if curl -fsS "${auth[@]}" "http://127.0.0.1:${comfy_port}/models/${folder}" | grep -q "\"${HF_FILE}\""; then
                echo "$folder"
            fi
        done
}
folder="$(model_folder)"
[ -n "$folder" ] || die "ComfyUI does not list ${HF_FILE} in any model folder"
model_path="$(find "$WORK/workspace/ComfyUI/models" -name "$HF_FILE" | head -1)"
[ -n "$model_path" ] || die "${HF_FILE} is not under /workspace/ComfyUI/models"
echo "model listed in ComfyUI folder '$folder' ($model_path)"

deadline=$((SECONDS + 120))
until [ "$(docker inspect -f '{{.State.Health.Status}}' smoke-pod)" = healthy ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "HEALTHCHECK did not turn healthy: $(docker inspect -f '{{json .State.Health}}' smoke-pod)"
    sleep 1
done
echo "HEALTHCHECK: healthy"

# Read from the host (the image has no procps): the pid of ComfyUI's main.py, if running.
comfyui_pid() { docker top smoke-pod -eo pid,args | awk '/ main\.py( |$)|\/main\.py( |$)/ {print $1; exit}'; }
seed_script() { docker exec smoke-pod bash -c "if command -v $1 >/dev/null; then $1; else /workspace/scripts/$1; fi"; }

say "soft restart (restart-comfyui.sh): ComfyUI restarts, models kept, container runs, no nuke"
before="$(comfyui_pid)"
seed_script restart-comfyui.sh
deadline=$((SECONDS + 180))
until after="$(comfyui_pid)" && [ -n "$after" ] && [ "$after" != "$before" ] &&
    curl -fs -o /dev/null "${auth[@]}" "http://127.0.0.1:${comfy_port}/system_stats"; do
    [ "$SECONDS" -lt "$deadline" ] || die "ComfyUI did not come back after restart-comfyui.sh"
    sleep 1
done
[ "$(docker inspect -f '{{.State.Running}}' smoke-pod)" = true ] || die "the container stopped on a soft restart"
[ -f "$model_path" ] || die "the soft restart deleted the model"
echo "ComfyUI pid ${before} -> ${after}; model kept; container running"

say "hard stop (stop-pod.sh): ComfyUI stops, container exits, nuke deletes the models"
seed_script stop-pod.sh || true # the container may die under docker exec
timeout 120 "$DOCKER_CLI" -H "unix://$WORK/docker.sock" wait smoke-pod >/dev/null ||
    die "the container did not exit after stop-pod.sh"
[ ! -e "$model_path" ] || die "stop-pod.sh left the model in place (no nuke)"
echo "container exited with $(docker inspect -f '{{.State.ExitCode}}' smoke-pod); models deleted"

say "docker run IMAGE ignition --version (a command after the image, through the entrypoint)"
# `ignition start CMD...` has to run CMD instead of the pod; a start that ignored it would boot
# a whole pod here, hence the timeout.
passthrough="$(timeout 120 "$DOCKER_CLI" -H "unix://$WORK/docker.sock" run --name smoke-passthrough \
    --network host "$IMAGE" ignition --version 2>&1)" || true
docker rm -f smoke-passthrough >/dev/null 2>&1 || true
echo "$passthrough"
[ "$passthrough" = "ignition $(run --entrypoint ignition "$IMAGE" --version | cut -d' ' -f2)" ] ||
    die "'docker run IMAGE ignition --version' does not print the version: ignition start must run a command given after it"

printf '\nimage-smoke: PASS | build %s s | image %s MB | ComfyUI alone ready %s s | pod UI ready %s s\n' \
    "$build_s" "$((size_bytes / 1000000))" "$comfyui_ready_s" "$pod_ready_s"
