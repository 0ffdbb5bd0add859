#!/usr/bin/env bash
# Builds the Debian package with CPack from a configured, built BUILD_DIR and
# checks it: the file name, control fields and dependencies (dpkg-deb -I),
# the contents and conffiles (dpkg-deb -c), the systemd unit
# (systemd-analyze verify, when installed), that the packaged programs run,
# and that `cmake --install` to another prefix points the unit there.
#   deb_package_test.sh BUILD_DIR
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

if ! (cd "$build" && cpack -G DEB -B "$work/out") >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log" >&2
  echo "FAIL: cpack" >&2
  exit 1
fi
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
deb=$work/out/phi3serve_${version}_amd64.deb
if [[ ! -f $deb ]]; then
  echo "FAIL: no phi3serve_${version}_amd64.deb in: $(ls "$work/out")" >&2
  exit 1
fi

for field in "Package: phi3serve" "Version: $version" "Architecture: amd64" "Section: net"; do
  dpkg-deb -f "$deb" | grep -qx "$field" || fail "control lacks \"$field\""
done
depends=$(dpkg-deb -f "$deb" Depends)
depends_names=$(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ .*//')
# Found by dpkg-shlibdeps from the binaries: the runtime libraries, not -dev packages.
for package in libc6 libstdc++6 libgrpc++1.51 libprotobuf32 libcpp-httplib0.11 \
               libprometheus-cpp-pull1.0 libssl3 libsqlite3-0 libpq5; do
  grep -qxF "$package" <<<"$depends_names" || fail "Depends lacks $package: $depends"
done
[[ $depends == *-dev* ]] && fail "Depends names a -dev package: $depends"

contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
programs=(phi3-server phi3-client phi3-run phi3-mkmodel phi3-usage)
for path in "${programs[@]/#/./usr/bin/}" \
            ./usr/share/phi3serve/proto/phi3/v1/phi3.proto ./etc/phi3serve/phi3-server.env \
            ./usr/lib/systemd/system/phi3-server.service ./usr/lib/sysusers.d/phi3serve.conf \
            ./usr/share/doc/phi3serve/api-keys.example; do
  grep -qx -- "$path" <<<"$contents" || fail "package lacks $path"
done
grep -q '/usr/local\|/build/' <<<"$contents" && fail "package holds build paths"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/phi3serve/phi3-server.env ||
  fail "/etc/phi3serve/phi3-server.env is not a conffile"

dpkg-deb -x "$deb" "$work/root"
for program in "${programs[@]}"; do
  out=$("$work/root/usr/bin/$program" --version 2>&1) || fail "$program --version exited $?"
  [[ $out == "$program $version (git "* ]] || fail "$program --version printed: $out"
  "$work/root/usr/bin/$program" --help >/dev/null 2>&1 || fail "$program --help exited non-zero"
done

unit=$work/root/usr/lib/systemd/system/phi3-server.service
grep -q '^ExecStart=/usr/bin/phi3-server$' "$unit" || fail "unit does not start /usr/bin/phi3-server"
for setting in User=phi3serve NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes \
               EnvironmentFile=/etc/phi3serve/phi3-server.env; do
  grep -qx "$setting" "$unit" || fail "unit lacks $setting"
done
if command -v systemd-analyze >/dev/null; then
  # Verify against the packaged binary (not installed on this machine).
  sed "s|/usr/bin/phi3-server|$work/root/usr/bin/phi3-server|" "$unit" >"$work/phi3-server.service"
  systemd-analyze verify "$work/phi3-server.service" || fail "systemd-analyze verify"
else
  echo "note: systemd-analyze not installed, unit syntax not verified"
fi

# cmake --install elsewhere than /usr: the unit names that prefix's paths.
cmake --install "$build" --prefix "$work/local" >/dev/null || fail "cmake --install"
local_unit=$work/local/lib/systemd/system/phi3-server.service
grep -qx "ExecStart=$work/local/bin/phi3-server" "$local_unit" || fail "cmake --install: ExecStart"
grep -qx "EnvironmentFile=$work/local/etc/phi3serve/phi3-server.env" "$local_unit" ||
  fail "cmake --install: EnvironmentFile"
[[ -f $work/local/etc/phi3serve/phi3-server.env && -x $work/local/bin/phi3-usage ]] ||
  fail "cmake --install: settings or programs missing"

if ((failures)); then exit 1; fi
echo "deb: $(basename "$deb") $(du -h "$deb" | cut -f1), Depends: $depends"
