#!/usr/bin/env bash
# Stages the Azure Functions app folder that `func start` and `func azure functionapp publish` run:
#
#   APPDIR/host.json
#   APPDIR/<Function>/function.json        one folder per functions/<Function>/function.json
#   APPDIR/enviromon-handler               the handler, RUNPATH $ORIGIN/lib
#   APPDIR/lib/*.so*                       every shared library it loads beyond glibc, RUNPATH $ORIGIN
#   APPDIR/.funcignore
#
# The Functions Linux image (Debian 12) has none of our C libraries, so they travel with the app.
# DT_RUNPATH applies only to the object that carries it (it is not inherited by the libraries
# that object loads), so every copied library gets its own $ORIGIN RUNPATH: libcurl then finds
# libnghttp2, libssl and the rest beside itself too.
#
# usage: deploy/stage-app.sh [HANDLER] [APPDIR]     (defaults: build/enviromon-handler app)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
handler=${1:-build/enviromon-handler}
appdir=${2:-app}
appdir=${appdir%/}

die() { printf 'stage-app: %s\n' "$*" >&2; exit 1; }

# glibc's own libraries: present on every Linux image, and never to be shipped (the dynamic
# loader and libc must match each other and the kernel interface of the machine).
is_glibc() {
  case $1 in
    ld-linux*.so* | linux-vdso.so* | linux-gate.so* | libc.so.* | libm.so.* | libmvec.so.* | \
      libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | libanl.so.* | libutil.so.* | \
      libnsl.so.* | libnss_*.so.* | libBrokenLocale.so.* | libthread_db.so.* | libc_malloc_debug.so.*)
      return 0 ;;
  esac
  return 1
}

command -v patchelf >/dev/null || die "patchelf is needed: apt-get install patchelf (or make deps)"
command -v ldd >/dev/null || die "ldd is needed (Debian package libc-bin)"
[[ -f $handler && -x $handler ]] || die "$handler is not built: run make first"
[[ -f $root/host.json ]] || die "$root/host.json is missing"
shopt -s nullglob
functions=("$root"/functions/*/function.json)
shopt -u nullglob
((${#functions[@]} > 0)) || die "no functions/*/function.json in $root"

[[ -n $appdir && $appdir != / ]] || die "refusing to stage into '$appdir'"
if [[ -e $appdir ]]; then
  [[ -d $appdir ]] || die "$appdir exists and is not a folder"
  [[ $(cd "$appdir" && pwd) != "$root" ]] || die "refusing to stage into the repository root"
  # Only ever replace an empty folder or an app folder staged before.
  if [[ -n $(ls -A "$appdir") && ! -f $appdir/host.json ]]; then
    die "$appdir is not empty and holds no host.json: not replacing it"
  fi
fi

if [[ $(uname -m) != x86_64 ]]; then
  echo "stage-app: warning: built on $(uname -m); Azure's Linux Functions workers are x86_64" >&2
fi
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}') || glibc=
if [[ -n $glibc ]] && [[ $(printf '%s\n' "$glibc" 2.36 | sort -V | tail -n1) != 2.36 ]]; then
  echo "stage-app: warning: built against glibc $glibc; the Functions image (Debian 12) has 2.36." \
    "Build on Debian 12 so that the handler starts there." >&2
fi

# Build the new folder beside the old one, then swap, so a failure leaves the old one intact.
parent=$(dirname "$appdir")
mkdir -p "$parent"
parent=$(cd "$parent" && pwd -P)
stage=$(mktemp -d "$parent/.$(basename "$appdir").staging.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"

install -m 0644 "$root/host.json" "$stage/host.json"
[[ -f $root/.funcignore ]] && install -m 0644 "$root/.funcignore" "$stage/.funcignore"
names=()
for f in "${functions[@]}"; do
  name=$(basename "$(dirname "$f")")
  install -d -m 0755 "$stage/$name"
  install -m 0644 "$f" "$stage/$name/function.json"
  names+=("$name")
done

install -m 0755 "$handler" "$stage/enviromon-handler"
# shellcheck disable=SC2016 # a literal $ORIGIN, for the dynamic loader
patchelf --set-rpath '$ORIGIN/lib' "$stage/enviromon-handler"

# Every library the loader resolves for the handler, its dependencies' dependencies included.
install -d -m 0755 "$stage/lib"
libs=0
while read -r name arrow path _; do
  [[ $arrow == "=>" ]] || continue
  is_glibc "$name" && continue
  [[ $path == not ]] && die "$handler needs $name, which is not installed"
  [[ -f $path ]] || die "cannot read $path (for $name)"
  cp -L "$path" "$stage/lib/$name"
  chmod 0644 "$stage/lib/$name"
  # shellcheck disable=SC2016
  patchelf --set-rpath '$ORIGIN' "$stage/lib/$name"
  libs=$((libs + 1))
done < <(env -u LD_LIBRARY_PATH -u LD_PRELOAD ldd "$handler")

# Check: every library of the staged handler now resolves to the app's lib/ or to glibc.
while read -r name arrow path _; do
  [[ $arrow == "=>" ]] || continue
  is_glibc "$name" && continue
  [[ $(realpath -m "$path") == "$stage/lib/$name" ]] || die "staged handler resolves $name to $path, not to lib/"
done < <(env -u LD_LIBRARY_PATH -u LD_PRELOAD ldd "$stage/enviromon-handler")

rm -rf "$appdir"
mv "$stage" "$appdir"
trap - EXIT

size=$(du -sh "$appdir" | cut -f1)
echo "stage-app: $appdir/ ready: ${#names[@]} functions (${names[*]}), enviromon-handler, $libs libraries in lib/ ($size)"
