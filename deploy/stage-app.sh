#!/usr/bin/env bash
# Stages the Azure Functions app folder that `func start` and `func azure functionapp publish` run:
#
#   APPDIR/host.json
#   APPDIR/<Function>/function.json        one folder per functions/<Function>/function.json
#   APPDIR/enviromon-handler               the handler, DT_RPATH $ORIGIN/lib
#   APPDIR/lib/ld-linux-x86-64.so.2        glibc's dynamic loader: what the host starts
#   APPDIR/lib/libc.so.6, libm.so.6, ...   the rest of glibc the handler loads, and libgcc_s
#   APPDIR/lib/*.so*                       every other library it loads, DT_RPATH $ORIGIN
#   APPDIR/ca-certificates.crt             Debian's CA bundle, for HTTPS when the image has none
#   APPDIR/.funcignore
#
# The app runs with nothing from the Functions image but the kernel: which image (Debian 11 with
# glibc 2.31, Debian 12, Ubuntu) a custom handler gets is not documented, so the app carries its
# own glibc and host.json starts the handler through the carried loader:
#   defaultExecutablePath lib/ld-linux-x86-64.so.2, arguments [--inhibit-cache, ./enviromon-handler]
# (README.md, "Packaging", says why this and not a static build.) The loader is the only file
# that needs the execute bit: Core Tools' publish zip gives it to defaultExecutablePath alone.
#
# Library resolution never depends on the working directory or on LD_LIBRARY_PATH: $ORIGIN is
# made absolute when each object is loaded, and DT_RPATH (not DT_RUNPATH) is searched before
# LD_LIBRARY_PATH for every object that has no DT_RUNPATH, dlopen()s by libc included.
#
# usage: deploy/stage-app.sh [HANDLER] [APPDIR]     (defaults: build/enviromon-handler app)
#        CA_BUNDLE=path overrides the CA bundle copied (default /etc/ssl/certs/ca-certificates.crt)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
handler=${1:-build/enviromon-handler}
appdir=${2:-app}
appdir=${appdir%/}
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
loader=ld-linux-x86-64.so.2

die() { printf 'stage-app: %s\n' "$*" >&2; exit 1; }

# glibc's own libraries: copied as they are (no RPATH of ours). libc's dependency is the loader,
# which is loaded first and found by its soname.
is_glibc() {
  case $1 in
    ld-linux*.so* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | \
      librt.so.* | libresolv.so.* | libanl.so.* | libutil.so.* | libnsl.so.* | libnss_*.so.* | \
      libBrokenLocale.so.* | libthread_db.so.* | libc_malloc_debug.so.*)
      return 0 ;;
  esac
  return 1
}

command -v patchelf >/dev/null || die "patchelf is needed: apt-get install patchelf (or make deps)"
command -v ldd >/dev/null || die "ldd is needed (Debian package libc-bin)"
[[ -f $handler && -x $handler ]] || die "$handler is not built: run make first"
[[ -f $root/host.json ]] || die "$root/host.json is missing"
[[ -f $ca_bundle && -r $ca_bundle ]] || die "no CA bundle at $ca_bundle: apt-get install ca-certificates (or make deps)"
grep -q -- '-----BEGIN CERTIFICATE-----' "$ca_bundle" || die "$ca_bundle holds no certificate"
shopt -s nullglob
functions=("$root"/functions/*/function.json)
shopt -u nullglob
((${#functions[@]} > 0)) || die "no functions/*/function.json in $root"
[[ $(uname -m) == x86_64 ]] || die "built on $(uname -m): the app carries an x86-64 glibc; stage on x86-64"

# host.json must start the handler the way this folder is laid out.
command -v node >/dev/null || die "node is needed to read host.json (make deps)"
want_exe="lib/$loader"
desc=$(node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).customHandler.description;
  console.log(JSON.stringify([d.defaultExecutablePath, d.workingDirectory ?? "", d.arguments ?? []]));' \
  "$root/host.json") || die "host.json: cannot read customHandler.description"
[[ $desc == "[\"$want_exe\",\"\",[\"--inhibit-cache\",\"./enviromon-handler\"]]" ]] ||
  die "host.json's customHandler.description is $desc; this layout needs [\"$want_exe\",\"\",[\"--inhibit-cache\",\"./enviromon-handler\"]]"

[[ -n $appdir && $appdir != / ]] || die "refusing to stage into '$appdir'"
if [[ -e $appdir ]]; then
  [[ -d $appdir ]] || die "$appdir exists and is not a folder"
  [[ $(cd "$appdir" && pwd) != "$root" ]] || die "refusing to stage into the repository root"
  # Only ever replace an empty folder or an app folder staged before.
  if [[ -n $(ls -A "$appdir") && ! -f $appdir/host.json ]]; then
    die "$appdir is not empty and holds no host.json: not replacing it"
  fi
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
install -m 0644 "$ca_bundle" "$stage/ca-certificates.crt"

# The handler keeps its mode (a Debian 12 machine can still run it directly); on Azure it is
# read by the loader and needs no execute bit.
install -m 0755 "$handler" "$stage/enviromon-handler"
# shellcheck disable=SC2016 # a literal $ORIGIN, for the dynamic loader
patchelf --force-rpath --set-rpath '$ORIGIN/lib' "$stage/enviromon-handler"

# Every library the loader resolves for the handler, its dependencies' dependencies included,
# glibc's too; then libgcc_s, which glibc dlopen()s for pthread_cancel and pthread_exit.
install -d -m 0755 "$stage/lib"
copy_lib() { # name path
  [[ -f $2 ]] || die "cannot read $2 (for $1)"
  cp -L "$2" "$stage/lib/$1"
  chmod 0644 "$stage/lib/$1"
  if ! is_glibc "$1"; then
    # shellcheck disable=SC2016
    patchelf --force-rpath --set-rpath '$ORIGIN' "$stage/lib/$1"
  fi
}
libs=0
while read -r name arrow path _; do
  if [[ $arrow != "=>" ]]; then
    # The loader is listed by its path alone: /lib64/ld-linux-x86-64.so.2 (0x...)
    [[ $(basename "$name") == "$loader" ]] || continue
    path=$name
  fi
  name=$(basename "$name") # some ldd list the loader as /lib64/ld-linux-x86-64.so.2 => /lib/...
  [[ $path == not ]] && die "$handler needs $name, which is not installed"
  copy_lib "$name" "$path"
  libs=$((libs + 1))
done < <(env -u LD_LIBRARY_PATH -u LD_PRELOAD ldd "$handler")
[[ -f $stage/lib/$loader && -f $stage/lib/libc.so.6 ]] || die "ldd did not list $loader and libc.so.6"
# (awk reads all of ldconfig's output: an early exit would kill ldconfig with SIGPIPE under pipefail)
gcc_s=$(ldconfig -p 2>/dev/null | awk '$1 == "libgcc_s.so.1" && /x86-64/ && !f {f = $NF} END {print f}')
[[ -n $gcc_s ]] || gcc_s=/lib/x86_64-linux-gnu/libgcc_s.so.1
if [[ ! -f $stage/lib/libgcc_s.so.1 ]]; then
  copy_lib libgcc_s.so.1 "$gcc_s"
  libs=$((libs + 1))
fi
# The loader is what the host starts: the one file with the execute bit that matters.
chmod 0755 "$stage/lib/$loader"

# Check: started as host.json says, from the app folder, the carried loader resolves every
# library of the handler to lib/ (ld.so --list prints "name => path (address)").
resolved=$(cd "$stage" && env -i "lib/$loader" --inhibit-cache --list ./enviromon-handler) ||
  die "the carried loader cannot list the staged handler's libraries"
n=0
while read -r name arrow path _; do
  [[ $arrow == "=>" ]] || continue
  name=$(basename "$name") # the loader is listed as /lib64/ld-linux-x86-64.so.2 => lib/...
  [[ $(cd "$stage" && realpath -m "$path") == "$stage/lib/$name" ]] ||
    die "staged handler resolves $name to $path, not to lib/"
  n=$((n + 1))
done <<<"$resolved"
((n > 0)) || die "the carried loader listed no library: $resolved"

rm -rf "$appdir"
mv "$stage" "$appdir"
trap - EXIT

size=$(du -sh "$appdir" | cut -f1)
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}') || glibc=
echo "stage-app: $appdir/ ready: ${#names[@]} functions (${names[*]}), enviromon-handler, $libs libraries in lib/ (glibc ${glibc:-?} and its loader included), ca-certificates.crt ($size)"
