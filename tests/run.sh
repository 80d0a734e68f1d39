#!/usr/bin/env bash
# The whole test suite, from nothing: installs what is missing (PostgreSQL, Redis, Python venv),
# starts private instances on free ports in a temporary directory, runs formatting, lints and
# every test against both backends, and stops what it started, also on failure or Ctrl-C.
#
# Usage: tests/run.sh [extra cargo test arguments]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi
}

apt_updated=
apt_install() {
  command -v apt-get >/dev/null || die "missing $* and no apt-get to install it"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- What the tests need -----------------------------------------------------------------
find_pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(find_pg_bin)" ] || [ ! -x "$(find_pg_bin)/initdb" ]; then
  say "installing PostgreSQL server"; apt_install postgresql
fi
pg_bin=$(find_pg_bin); [ -x "$pg_bin/initdb" ] || die "PostgreSQL's initdb not found after install"
command -v redis-server >/dev/null || { say "installing Redis server"; apt_install redis-server; }
command -v python3 >/dev/null || { say "installing Python"; apt_install python3; }
python3 -c 'import venv, ensurepip' 2>/dev/null || { say "installing python3-venv"; apt_install python3-venv; }
# Browser tests: Debian's Chromium, driven by playwright-core from Node.js (no browser download).
[ -x /usr/bin/chromium ] || { say "installing Chromium"; apt_install chromium; }
command -v node >/dev/null || { say "installing Node.js"; apt_install nodejs; }
command -v npm >/dev/null || { say "installing npm"; apt_install npm; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- Private services in a temporary directory ----------------------------------------------
work=$(mktemp -d -t syncline-tests.XXXXXX)
pg_user_cmd=()
if [ "$(id -u)" -eq 0 ]; then
  # initdb refuses to run as root.
  id postgres >/dev/null 2>&1 || as_root useradd --system --home-dir "$work" postgres
  chown postgres "$work"
  pg_user_cmd=(runuser -u postgres --)
fi

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -f "$work/pg/postmaster.pid" ]; then "${pg_user_cmd[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true; fi
  if [ -f "$work/redis.pid" ]; then kill "$(cat "$work/redis.pid")" 2>/dev/null || true; fi
  if [ -f "$work/smtp.pid" ]; then kill "$(cat "$work/smtp.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pg_port=$(free_port)
say "starting PostgreSQL on 127.0.0.1:$pg_port"
"${pg_user_cmd[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --no-locale >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; die "initdb failed"; }
"${pg_user_cmd[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -t 60 start \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null \
  || { cat "$work/pg.log" >&2; die "PostgreSQL did not start"; }

redis_port=$(free_port)
say "starting Redis on 127.0.0.1:$redis_port"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$work/redis.pid" --dir "$work" --logfile "$work/redis.log" || die "Redis did not start"
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$redis_port" ping >/dev/null 2>&1 || { cat "$work/redis.log" >&2; die "Redis does not answer"; }

# --- Python clients used by the contract tests (cached between runs) -----------------------
venv="${SYNCLINE_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/syncline/venv-$(sha256sum tests/requirements.txt | cut -c1-12)}"
if [ ! -x "$venv/bin/python" ]; then
  say "creating the Python venv for contract tests at $venv"
  python3 -m venv "$venv" || die "cannot create a Python venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt || { rm -rf "$venv"; die "pip install failed"; }
fi

smtp_port=$(free_port)
say "starting the SMTP sink on 127.0.0.1:$smtp_port (aiosmtpd, messages to a Maildir)"
"$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$work/maildir" >"$work/smtp.log" 2>&1 &
echo $! >"$work/smtp.pid"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null || { cat "$work/smtp.log" >&2; die "the SMTP sink did not start"; }

export SYNCLINE_TEST_SMTP_URL="smtp://127.0.0.1:$smtp_port"
export SYNCLINE_TEST_MAILDIR="$work/maildir"
export SYNCLINE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
export SYNCLINE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
export SYNCLINE_TEST_PYTHON="$venv/bin/python"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# --- Checks ----------------------------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo test (SQLite and PostgreSQL, in-process and Redis)"
cargo test --workspace --locked --no-fail-fast "$@"
say "browser tests (headless Chromium, frontend/tests/browser)"
# The test build already produced the binary; `--no-run` keeps it (a plain `cargo build`
# would unify features differently and rebuild half the workspace).
cargo test --workspace --locked --no-run --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
(cd frontend/tests/browser && npm ci --no-audit --no-fund --loglevel=error)
SYNCLINE_BIN="$target_dir/debug/syncline" node --test frontend/tests/browser/
say "all tests passed"
