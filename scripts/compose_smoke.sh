#!/usr/bin/env bash
# Runs compose.yaml's topology (PostgreSQL, an S3 store, 2 assistd replicas, nginx round robin) with
# podman-compose and drives it through the proxy with the SDK. Where no container registry is
# reachable, tests/container/compose.standins.yaml swaps the third-party images for stand-ins built
# here from Debian's packages (see that file for what differs). Run scripts/container_smoke.sh
# first: it builds localhost/assistd:smoke and localhost/debian:bookworm.
# Needs root podman, podman-compose (PODMAN_COMPOSE, default podman-compose) and a Python with openai
# and assistd importable (PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${ASSISTD_IMAGE_BASE:-localhost/debian:bookworm}
PYTHON=${PYTHON:-python3}
COMPOSE_CMD=${PODMAN_COMPOSE:-podman-compose}
export ASSISTD_PORT=${SMOKE_PROXY_PORT:-18080}
export ASSISTD_API_KEYS="sk-smoke-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
PROJECT=assistd-compose-smoke
WORK=$(mktemp -d)
HEALTH_PID=""
log() { printf '%s %s\n' "$(date -u +%T)" "$*"; }

# Where crun cannot run containers here (hybrid cgroups, no CAP_SYS_RESOURCE), use runc and limits no
# higher than the host's, for every podman command podman-compose runs.
if ! podman run --rm "$BASE" true >/dev/null 2>&1; then
  printf '[engine]\nruntime = "runc"\n[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n' \
    "$(ulimit -Hn)" "$(ulimit -Hn)" >"$WORK/containers.conf"
  export CONTAINERS_CONF=$WORK/containers.conf
fi
compose() { $COMPOSE_CMD -p "$PROJECT" -f compose.yaml -f tests/container/compose.standins.yaml "$@"; }
cleanup() {
  if [[ -n $HEALTH_PID ]]; then kill "$HEALTH_PID" 2>/dev/null || true; fi
  compose down -v -t 5 >"$WORK/down.log" 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log "building the stand-in images"
build_args=(--build-arg "BASE=$BASE")
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then  # pip behind an intercepting proxy, where there is one
  build_args+=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt)
fi
for name in postgres s3 nginx; do
  podman build -q "${build_args[@]}" -t "localhost/assistd-standin-$name" \
    -f "tests/container/standins/$name.Containerfile" tests/container/standins >/dev/null
done

# Health checks are run by systemd timers, and there is no systemd here: do what the timers would,
# so that `depends_on: condition: service_healthy` can be met.
( while sleep 2; do
    for c in $(podman ps -q --filter "label=io.podman.compose.project=$PROJECT" 2>/dev/null); do
      podman healthcheck run "$c" >/dev/null 2>&1 || true
    done
  done ) &
HEALTH_PID=$!

log "compose up"
t0=$(date +%s.%N)
# podman 4.3 cannot start a container whose dependency has exited (minio-init), so the services go up
# in two steps: the backing services, then (once PostgreSQL is healthy and the bucket made) the rest.
compose up -d --no-build postgres minio minio-init upstream >"$WORK/up.log" 2>&1 || { tail -30 "$WORK/up.log"; exit 1; }
for _ in $(seq 120); do
  pg=$(podman inspect --format '{{.State.Health.Status}}' "${PROJECT}_postgres_1" 2>/dev/null || true)
  init=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "${PROJECT}_minio-init_1" 2>/dev/null || true)
  [[ $pg == healthy && $init == "exited 0" ]] && break
  sleep 1
done
[[ $pg == healthy && $init == "exited 0" ]] || { log "FAIL postgres: $pg, minio-init: $init"; exit 1; }
compose up -d --no-build --no-deps assistd-1 assistd-2 proxy >>"$WORK/up.log" 2>&1 || { tail -30 "$WORK/up.log"; exit 1; }
for _ in $(seq 300); do
  if python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
       "http://127.0.0.1:$ASSISTD_PORT/healthz" 2>/dev/null; then break; fi
  sleep 0.5
done
UP=$(python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$t0")
log "ok   the proxy answers /healthz ${UP} s after compose up"
podman ps --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}\t{{.Status}}' | sed 's/^/     /'

for i in 1 2 3; do
  "$PYTHON" scripts/container_smoke_client.py --base-url "http://127.0.0.1:$ASSISTD_PORT/v1" \
    --api-key "$ASSISTD_API_KEYS" --expect "Hello from the fake upstream." --search | sed "s/^/     pass $i: /"
done
for replica in assistd-1 assistd-2; do
  n=$(podman logs "${PROJECT}_${replica}_1" 2>&1 | grep -c '"logger":"assistd.access"' || true)
  [[ $n -gt 0 ]] || { log "FAIL $replica served no request"; exit 1; }
  log "ok   $replica served $n requests"
done
migrations=$(podman logs "${PROJECT}_assistd-1_1" "${PROJECT}_assistd-2_1" 2>&1 | grep -c 'Running upgrade' || true)
log "     alembic 'Running upgrade' lines across both replicas: $migrations"
log "compose smoke test passed"
