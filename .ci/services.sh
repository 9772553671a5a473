# Services for the scale-out tests (tests/test_scaleout.py), sourced by .ci/run:
#   start_services VENV   PostgreSQL (Debian's package) and an MLflow tracking server with a
#                         PostgreSQL backend and served artifacts, both on 127.0.0.1 only;
#                         exports SEGMENTLAB_PG_URL, SEGMENTLAB_MLFLOW_URL, SEGMENTLAB_MLFLOW_ARTIFACTS
#   stop_services         stops both and removes their files (run it from a trap)
# PostgreSQL runs as a private cluster in a temporary folder on a free port, so it neither needs
# nor touches the machine's own cluster. The role `segmentlab` may create databases: each test
# makes a fresh, empty Optuna database of its own.

_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_services() {
  local venv=$1
  if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  local pg_bin password pg_port mlflow_port
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  pg_port=$(_free_port)
  mlflow_port=$(_free_port)
  SERVICES_DIR=$(mktemp -d /tmp/segmentlab-services.XXXXXX)
  chmod 755 "$SERVICES_DIR"
  install -d -o postgres -g postgres "$SERVICES_DIR/pg"
  runuser -u postgres -- "$pg_bin/initdb" -D "$SERVICES_DIR/pg/data" -U postgres \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$SERVICES_DIR/pg/data" -l "$SERVICES_DIR/pg/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $SERVICES_DIR/pg" start >/dev/null
  PG_STARTED=1
  local psql=("$pg_bin/psql" -q -v ON_ERROR_STOP=1 -h "$SERVICES_DIR/pg" -p "$pg_port" -U postgres)
  "${psql[@]}" -c "CREATE ROLE segmentlab LOGIN CREATEDB PASSWORD '$password'"
  "${psql[@]}" -c "CREATE DATABASE mlflow OWNER segmentlab"
  local pg="postgresql+psycopg2://segmentlab:$password@127.0.0.1:$pg_port"
  mkdir -p "$SERVICES_DIR/mlartifacts"
  # One uvicorn worker: with several, a supervisor kills workers that start slower than its
  # 5 s health check, which a loaded 2-core machine does not meet.
  setsid "$venv/bin/mlflow" server --backend-store-uri "$pg/mlflow" \
    --artifacts-destination "$SERVICES_DIR/mlartifacts" --host 127.0.0.1 --port "$mlflow_port" \
    --workers 1 >"$SERVICES_DIR/mlflow.log" 2>&1 &
  MLFLOW_PID=$!
  local waited=0
  until "$venv/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$mlflow_port/health', timeout=5)" \
      2>/dev/null; do
    if ! kill -0 "$MLFLOW_PID" 2>/dev/null || [ "$waited" -ge 180 ]; then
      echo "ci: mlflow server did not start:" >&2; tail -n 20 "$SERVICES_DIR/mlflow.log" >&2
      stop_services; return 1
    fi
    sleep 1; waited=$((waited + 1))
  done
  export SEGMENTLAB_PG_URL="$pg/postgres"
  export SEGMENTLAB_MLFLOW_URL="http://127.0.0.1:$mlflow_port"
  export SEGMENTLAB_MLFLOW_ARTIFACTS="$SERVICES_DIR/mlartifacts"
  echo "services: PostgreSQL on 127.0.0.1:$pg_port, MLflow server on $SEGMENTLAB_MLFLOW_URL (${waited}s to start)"
}

stop_services() {
  if [ -n "${MLFLOW_PID:-}" ]; then
    kill -TERM -- "-$MLFLOW_PID" 2>/dev/null || true  # its process group: the server and its workers
    for _ in $(seq 20); do kill -0 "$MLFLOW_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$MLFLOW_PID" 2>/dev/null || true
    wait "$MLFLOW_PID" 2>/dev/null || true
    MLFLOW_PID=
  fi
  if [ -n "${PG_STARTED:-}" ]; then
    local pg_bin
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$SERVICES_DIR/pg/data" -m fast -w stop >/dev/null || true
    PG_STARTED=
  fi
  if [ -n "${SERVICES_DIR:-}" ]; then rm -rf "$SERVICES_DIR"; SERVICES_DIR=; fi
}
