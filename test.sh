#!/usr/bin/env bash
# Runs every test of the workspace, after setting up what the tests need on this machine:
#
# 1. the Debian packages of the real servers and clients the tests start (BIND, PowerDNS, Kea,
#    ISC dhcpd, udhcpc, Chromium, PostgreSQL): installed when run as root, otherwise the exact
#    `sudo apt-get install ...` line is printed and the script stops;
# 2. PostgreSQL on 127.0.0.1:5432 with trust authentication for local connections and the
#    database `test`: started when installed but down;
# 3. the Python venv target/py (certbot-dns-micetro, unmodified, for the DNS test) and the Node
#    packages of tests/ui (playwright-core, for the browser tests);
# 4. `cargo test --workspace --locked` and a one-line summary of the results.
#
# Idempotent: on a machine that has everything it only checks and runs the tests. Arguments
# replace `--workspace` in the `cargo test` call (e.g. `./test.sh -p ipam-engine`). The README lists the
# opt-outs (IPAM_SKIP_* variables) for machines that cannot run some servers.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n==> %s\n' "$*"; }

# Every package the tests need, in one place (.ci/run calls this script).
PACKAGES=(
  bind9 bind9-utils bind9-dnsutils
  pdns-server pdns-backend-sqlite3 sqlite3
  kea-dhcp4-server kea-ctrl-agent kea-admin
  isc-dhcp-server isc-dhcp-client udhcpc iproute2
  chromium chromium-driver
  postgresql
  python3-venv
)

say "Debian packages for the tests"
missing=()
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${missing[*]}"
    echo "install them with:"
    echo "  sudo apt-get install --no-install-recommends ${missing[*]}"
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' own services from starting (the tests start their servers themselves on
  # loopback high ports or in network namespaces).
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$created_policy" ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
else
  echo "all present"
fi

say "PostgreSQL on 127.0.0.1:5432 (the PostgreSQL store's tests use the database test)"
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "PostgreSQL is not answering on 127.0.0.1:5432; start it with:"
    echo "  sudo pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start"
    exit 1
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    echo "no PostgreSQL cluster under /etc/postgresql: install the package postgresql" >&2
    exit 1
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
# The tests connect as `postgres` over TCP without a password and use the database `test`.
if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "cannot connect as postgres to the database test on 127.0.0.1 without a password" >&2
    exit 1
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    # A fresh cluster asks local TCP clients for a password; the tests connect without one.
    echo "adding trust for loopback connections to $hba"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
  su postgres -c "psql -Atc \"select 1 from pg_database where datname = 'test'\"" | grep -q 1 \
    || su postgres -c "createdb test"
  psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null
fi

say "Python: certbot-dns-micetro from PyPI, unmodified (a venv in target/py)"
if ! target/py/bin/python -c 'import certbot_dns_micetro.dns_micetro' 2>/dev/null; then
  python3 -m venv target/py
  target/py/bin/pip install -q --disable-pip-version-check certbot-dns-micetro==1.0.4 certbot==5.8.0
fi

say "Node: playwright-core for the browser tests (tests/ui)"
if [ ! -d tests/ui/node_modules/playwright-core ]; then
  (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
fi
chromium --version 2>/dev/null || true

# With arguments (`-p CRATE`, a test filter...) they choose what runs; without, everything.
if [ $# -gt 0 ]; then args=("$@"); else args=(--workspace); fi
say "tests: cargo test --locked ${args[*]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked "${args[@]}" 2>&1 | tee "$log" || status=$?

# One closing line summing cargo's own per-binary results.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
