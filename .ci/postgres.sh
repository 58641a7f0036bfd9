# Sourced by .ci/run: start a private PostgreSQL server (Debian's package) on loopback for the
# multi-machine study tests, and export NASX_TEST_POSTGRES_URL. Stopped when .ci/run exits.
nasx_pg_start() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "ci: installing Debian's postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || return 1
  fi
  local bin port=54329 pw=nasx-ci-pw
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  NASX_PG_DIR=$(mktemp -d /tmp/nasx-ci-pg.XXXXXX)
  echo "$pw" > "$NASX_PG_DIR/pw"
  local as=""
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$NASX_PG_DIR"; as="su postgres -s /bin/sh -c"; else as="sh -c"; fi
  $as "$bin/initdb -D $NASX_PG_DIR/data -U nasx --pwfile=$NASX_PG_DIR/pw -A scram-sha-256" >/dev/null || return 1
  $as "$bin/pg_ctl -D $NASX_PG_DIR/data -l $NASX_PG_DIR/log -w start -o '-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$NASX_PG_DIR -c max_connections=200'" >/dev/null || return 1
  PGPASSWORD=$pw "$bin/createdb" -h 127.0.0.1 -p $port -U nasx nasx || return 1
  NASX_PG_STOP="$as '$bin/pg_ctl -D $NASX_PG_DIR/data -m fast stop'"
  export NASX_TEST_POSTGRES_URL="postgresql://nasx:$pw@127.0.0.1:$port/nasx"
  echo "ci: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') running on 127.0.0.1:$port"
}

nasx_pg_stop() {
  if [ -n "${NASX_PG_STOP:-}" ]; then eval "$NASX_PG_STOP" >/dev/null 2>&1 || true; fi
  if [ -n "${NASX_PG_DIR:-}" ]; then rm -rf "$NASX_PG_DIR"; fi
}
