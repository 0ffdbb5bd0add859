#!/usr/bin/env bash
# Copies executables and every shared library they load (as ldd resolves
# them, the ELF interpreter included) into a root filesystem folder, so that a
# `FROM scratch` image holds nothing else.
#   collect-runtime.sh ROOT BINARY...   binaries go to ROOT/usr/local/bin,
#                                       except those under /bin or /usr/bin,
#                                       which keep their path
set -euo pipefail
root=$1
shift
libdir=$root/usr/lib/x86_64-linux-gnu
mkdir -p "$root/usr/local/bin" "$libdir" "$root/etc"
for bin in "$@"; do
  case $bin in
    /bin/* | /usr/bin/*) install -D -m 0755 "$bin" "$root$bin" ;;
    *) install -m 0755 "$bin" "$root/usr/local/bin/" ;;
  esac
  # "libx.so.1 => /path/libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3} $1 ~ /^\// {print "interp", $1}' |
    while read -r name path; do
      if [[ $name == interp ]]; then
        install -D -m 0755 "$(readlink -f "$path")" "$root$path"
      else
        install -m 0644 "$(readlink -f "$path")" "$libdir/$name"
      fi
    done
done
echo "$libdir" > "$root/etc/ld.so.conf"
ldconfig -r "$root"
