#!/usr/bin/env bash
# Builds assistd's image with podman and checks that it serves (docs/deployment.md#containers):
#   1. the base image: one named by ASSISTD_IMAGE_BASE, or (the default, where no container registry is
#      reachable) localhost/debian:bookworm built here with debootstrap from the apt mirror this
#      machine already uses;
#   2. `podman build` (timed), the image's size;
#   3. the image runs as a non-root user and refuses to listen on 0.0.0.0 without an API key;
#   4. on a bridge network with -p 127.0.0.1:PORT:8000 and an API key: start -> /healthz time, the
#      image's HEALTHCHECK, a run answered by the bundled local model, an upload read back, a vector
#      store ingested and searched with the bundled embedding model; the data volume survives a restart;
#   5. on the host network bound to 127.0.0.1, a run answered by the fake upstream started here;
#      code_interpreter refused under the default confinement;
#   6. code_interpreter working with the documented relaxations, non-root and root.
# Needs root (or rootful podman), podman, debootstrap (for the default base), and a Python with
# openai and assistd importable (PYTHON, default python3; export PYTHONPATH=$PWD/src).
# Prints one line per check; exits non-zero at the first failure. Timings at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${ASSISTD_IMAGE:-localhost/assistd:smoke}
BASE=${ASSISTD_IMAGE_BASE:-localhost/debian:bookworm}
PYTHON=${PYTHON:-python3}
PORT=${SMOKE_PORT:-18000}
HOST_NET_PORT=${SMOKE_HOST_NET_PORT:-18002}
UPSTREAM_PORT=${SMOKE_UPSTREAM_PORT:-18001}
KEY="sk-smoke-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
NAME="assistd-smoke-$$"
VOLUME="assistd-smoke-data-$$"
WORK=$(mktemp -d)
UPSTREAM_PID=""

log() { printf '%s %s\n' "$(date -u +%T)" "$*"; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
cleanup() {
  podman rm -f "$NAME-a" "$NAME-b" "$NAME-c" >/dev/null 2>&1 || true
  podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  if [[ -n $UPSTREAM_PID ]]; then kill "$UPSTREAM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_healthy() {  # URL, seconds -> prints the seconds it took
  local url=$1 limit=$2 t0 now
  t0=$(date +%s.%N)
  while :; do
    if python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; then
      now=$(date +%s.%N); elapsed "$t0" "$now"; return 0
    fi
    now=$(date +%s.%N)
    if (( $(python3 -c "import sys; print(int(float(sys.argv[2]) - float(sys.argv[1]) > float(sys.argv[3])))" "$t0" "$now" "$limit") )); then
      return 1
    fi
    sleep 0.2
  done
}

# 1. The base image.
if ! podman image exists "$BASE"; then
  [[ $BASE == localhost/* ]] || { log "base image $BASE is missing"; exit 1; }
  mirror=$(awk '($1 == "URIs:" || $1 == "deb") { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }' \
    /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -1)
  [[ -n $mirror ]] || { log "no Debian mirror found in /etc/apt/sources.list*"; exit 1; }
  log "building $BASE with debootstrap"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  # What debian:bookworm-slim leaves out too: package caches, lists, docs.
  rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/* \
    "$WORK"/rootfs/usr/share/doc/* "$WORK"/rootfs/usr/share/man/*
  tar -C "$WORK/rootfs" -c . | podman import -q - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

# Where the default OCI runtime cannot run containers here (crun on hybrid cgroups; no CAP_SYS_RESOURCE
# to raise rlimits), use runc and limits no higher than the host's, for every podman command below.
if [[ -z ${CONTAINERS_CONF:-} ]] && ! podman run --rm "$BASE" true >/dev/null 2>&1; then
  printf '[engine]\nruntime = "runc"\n[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n' \
    "$(ulimit -Hn)" "$(ulimit -Hn)" >"$WORK/containers.conf"
  export CONTAINERS_CONF=$WORK/containers.conf
  podman run --rm "$BASE" true || { log "podman cannot run a container here"; exit 1; }
  log "podman: runc, rlimits no higher than the host's ($CONTAINERS_CONF)"
fi
pm() { podman "$@"; }

# 2. Build. The host's CA bundle goes to pip (HTTPS through an intercepting proxy, where there is one).
build_args=(--format docker --build-arg "BASE=$BASE" -t "$IMAGE")
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  build_args+=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt)
fi
log "podman build (log: $WORK/build.log while it runs)"
t0=$(date +%s.%N)
if ! pm build "${build_args[@]}" . >"$WORK/build.log" 2>&1; then tail -40 "$WORK/build.log"; exit 1; fi
BUILD_SECONDS=$(elapsed "$t0" "$(date +%s.%N)")
SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
log "ok   image built in ${BUILD_SECONDS} s, $(python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e6:.0f} MB')" "$SIZE")"

# 3. Non-root; no API key, no listening on 0.0.0.0.
user=$(pm run --rm --entrypoint id "$IMAGE" -u 2>>"$WORK/podman.err")
[[ $user != 0 ]] || { log "FAIL the image runs as root"; exit 1; }
log "ok   runs as uid $user"
rc=0; pm run --rm "$IMAGE" >"$WORK/nokey.log" 2>&1 || rc=$?
[[ $rc == 2 ]] || { cat "$WORK/nokey.log"; log "FAIL serve without a key exited $rc, not 2"; exit 1; }
log "ok   without an API key serve refuses 0.0.0.0 (exit 2)"

# 4. Bridge network, published on loopback, the bundled models.
pm run -d --name "$NAME-a" -p "127.0.0.1:$PORT:8000" -v "$VOLUME:/var/lib/assistd" \
  -e "ASSISTD_API_KEYS=$KEY" "$IMAGE" >/dev/null 2>>"$WORK/podman.err"
if ! START_A=$(wait_healthy "http://127.0.0.1:$PORT/healthz" 120); then
  podman logs "$NAME-a" | tail -30; log "FAIL not healthy within 120 s"; exit 1
fi
log "ok   healthy ${START_A} s after podman run (bridge, -p 127.0.0.1:$PORT:8000)"
podman healthcheck run "$NAME-a" >/dev/null || { log "FAIL the image's HEALTHCHECK failed"; exit 1; }
log "ok   HEALTHCHECK passes"
"$PYTHON" scripts/container_smoke_client.py --base-url "http://127.0.0.1:$PORT/v1" --api-key "$KEY" --search \
  | sed 's/^/     local model: /'
t0=$(date +%s.%N); pm stop -t 60 "$NAME-a" >/dev/null 2>>"$WORK/podman.err"; STOP_A=$(elapsed "$t0" "$(date +%s.%N)")
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME-a")
# uvicorn ends a graceful shutdown by re-raising the signal: 143 (128 + SIGTERM) once it has finished.
if [[ $code != 0 && $code != 143 ]] || ! podman logs "$NAME-a" 2>&1 | grep -q '"Application shutdown complete."'; then
  podman logs "$NAME-a" | tail -20; log "FAIL no graceful shutdown on SIGTERM (exit code $code)"; exit 1
fi
log "ok   stopped by SIGTERM in ${STOP_A} s after a graceful shutdown (exit code $code)"
files=$(pm run --rm -v "$VOLUME:/var/lib/assistd" --entrypoint python "$IMAGE" -c \
  "import sqlite3; print(sqlite3.connect('/var/lib/assistd/assistd.db').execute('select count(*) from files').fetchone()[0])")
[[ $files -ge 1 ]] || { log "FAIL the data volume lost the file rows"; exit 1; }
log "ok   the data volume keeps the database ($files file rows)"
pm run -d --name "$NAME-c" -p "127.0.0.1:$PORT:8000" -v "$VOLUME:/var/lib/assistd" \
  -e "ASSISTD_API_KEYS=$KEY" "$IMAGE" >/dev/null 2>>"$WORK/podman.err"
RESTART_A=$(wait_healthy "http://127.0.0.1:$PORT/healthz" 120) || { log "FAIL restart not healthy"; exit 1; }
log "ok   restarted on the same volume, healthy in ${RESTART_A} s"
pm rm -f "$NAME-c" >/dev/null 2>&1

# 5. Host network on loopback, the fake upstream.
"$PYTHON" -m assistd.testing.fake_upstream --port "$UPSTREAM_PORT" >"$WORK/upstream.log" 2>&1 &
UPSTREAM_PID=$!
pm run -d --name "$NAME-b" --network host -e "ASSISTD_API_KEYS=$KEY" \
  -e "ASSISTD_UPSTREAM_BASE_URL=http://127.0.0.1:$UPSTREAM_PORT/v1" -e ASSISTD_LOCAL_ENABLED=false \
  "$IMAGE" serve --host 127.0.0.1 --port "$HOST_NET_PORT" >/dev/null 2>>"$WORK/podman.err"
START_B=$(wait_healthy "http://127.0.0.1:$HOST_NET_PORT/healthz" 120) \
  || { podman logs "$NAME-b" | tail -30; log "FAIL not healthy (host network)"; exit 1; }
log "ok   healthy ${START_B} s after podman run (host network, 127.0.0.1:$HOST_NET_PORT)"
"$PYTHON" scripts/container_smoke_client.py --base-url "http://127.0.0.1:$HOST_NET_PORT/v1" --api-key "$KEY" \
  --expect "Hello from the fake upstream." | sed 's/^/     fake upstream: /'
# code_interpreter with the container engine's default confinement: refused (the run fails), never
# run unsandboxed.
out=$("$PYTHON" scripts/container_smoke_client.py --base-url "http://127.0.0.1:$HOST_NET_PORT/v1" --api-key "$KEY" \
  --code-interpreter "http://127.0.0.1:$UPSTREAM_PORT" 2>&1) && { echo "$out"; log "FAIL code ran without privileges"; exit 1; }
grep -q "FAIL code_interpreter run completed: failed The Python sandbox failed to start" <<<"$out" \
  || { echo "$out"; log "FAIL unexpected code_interpreter failure"; exit 1; }
log "ok   code_interpreter by default: the run fails, the sandbox cannot start ($(podman logs "$NAME-b" 2>&1 \
  | grep -o 'bwrap: [^"\]*' | head -1))"
pm rm -f "$NAME-b" >/dev/null 2>&1
python3 -c "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:$UPSTREAM_PORT/_fake/reset', method='POST'))"

# 6. code_interpreter with the relaxations docs/deployment.md#containers lists (Docker's
#    `systempaths=unconfined` is Podman's `unmask=ALL`): as the image's user, then as root.
sandbox_mode() {  # label, podman run options...
  local label=$1; shift
  pm run -d --name "$NAME-b" --network host "$@" -e "ASSISTD_API_KEYS=$KEY" \
    -e "ASSISTD_UPSTREAM_BASE_URL=http://127.0.0.1:$UPSTREAM_PORT/v1" -e ASSISTD_LOCAL_ENABLED=false \
    "$IMAGE" serve --host 127.0.0.1 --port "$HOST_NET_PORT" >/dev/null 2>>"$WORK/podman.err"
  wait_healthy "http://127.0.0.1:$HOST_NET_PORT/healthz" 120 >/dev/null \
    || { podman logs "$NAME-b" | tail -30; log "FAIL not healthy ($label)"; exit 1; }
  "$PYTHON" scripts/container_smoke_client.py --base-url "http://127.0.0.1:$HOST_NET_PORT/v1" --api-key "$KEY" \
    --code-interpreter "http://127.0.0.1:$UPSTREAM_PORT" | sed "s/^/     $label: /"
  if grep -q "no usable cgroups" <<<"$(podman logs "$NAME-b" 2>&1)"; then log "     $label: no usable cgroups, rlimits only"; fi
  pm rm -f "$NAME-b" >/dev/null 2>&1
}
sandbox_mode "code_interpreter as uid $user, user namespaces" \
  --security-opt seccomp=unconfined --security-opt unmask=ALL
sandbox_mode "code_interpreter as root, per-session uids" --user 0 --cap-add SYS_ADMIN --cap-add NET_ADMIN \
  --security-opt seccomp=unconfined --security-opt unmask=ALL

echo
echo "| measure | value |"
echo "| --- | --- |"
echo "| image size | $(python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e6:.0f} MB')" "$SIZE") |"
echo "| podman build | ${BUILD_SECONDS} s |"
echo "| podman run -> /healthz 200 (bridge, new volume) | ${START_A} s |"
echo "| podman run -> /healthz 200 (existing volume) | ${RESTART_A} s |"
echo "| podman run -> /healthz 200 (host network) | ${START_B} s |"
echo "| podman stop (SIGTERM) -> exited | ${STOP_A} s |"
log "container smoke test passed"
