#!/usr/bin/env bash
# `systemd-analyze verify` on deploy/tpjitd.service: the unit as shipped, with
# only its binary paths (/usr/local/bin/tpjitd, /usr/local/bin/tpjit-worker)
# pointed at the built ones, since verify checks that ExecStart= is
# executable. Fails on a non-zero exit or any diagnostic about the unit.
# Exits 77 (ctest SKIP_RETURN_CODE) only where systemd-analyze is not
# installed (scripts/install-deps installs it: Debian package `systemd`).
#   systemd_verify_test.sh UNIT TPJITD TPJIT_WORKER
set -uo pipefail
unit=$1 tpjitd=$2 worker=$3
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (apt-get install systemd)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
name=$(basename "$unit")
sed -e "s|/usr/local/bin/tpjitd |$tpjitd |" \
    -e "s|/usr/local/bin/tpjitd\$|$tpjitd|" \
    -e "s|/usr/local/bin/tpjit-worker|$worker|" "$unit" >"$tmp/$name"
grep -q "ExecStart=$tpjitd" "$tmp/$name" || {
  echo "FAIL: ExecStart= of $unit does not start /usr/local/bin/tpjitd"
  exit 1
}
systemd-analyze --version | head -1
out=$(cd "$tmp" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "./$name" 2>&1)
rc=$?
# Diagnostics about other units (e.g. a host's own broken units pulled in
# as dependencies) are not ours; anything naming this unit is.
ours=$(grep -F "$name" <<<"$out" || true)
echo "$out"
if ((rc != 0)) || [[ -n "$ours" ]]; then
  echo "FAIL: systemd-analyze verify exit $rc${ours:+; about $name: $ours}"
  exit 1
fi
echo "PASS: systemd-analyze verify $name: no diagnostics"
