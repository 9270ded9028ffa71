#!/usr/bin/env bash
# Zips a staged app folder for zip deploy, keeping each file's Unix mode (the loader that
# host.json's defaultExecutablePath names stays executable, as in the zip Core Tools' publish
# makes) and leaving out local.settings.json and whatever the app's .funcignore names.
#
# usage: deploy/zip-app.sh APPDIR ZIPFILE
set -euo pipefail

die() { printf 'zip-app: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: deploy/zip-app.sh APPDIR ZIPFILE"
appdir=$1
zipfile=$2
command -v zip >/dev/null || die "zip is needed: apt-get install zip (or make deps)"
[[ -f $appdir/host.json && -f $appdir/enviromon-handler ]] || die "$appdir is not a staged app: run make app"
command -v node >/dev/null || die "node is needed to read host.json"
# The file host.json's customHandler.description.defaultExecutablePath names (staged: the loader).
exe=$(node -e 'const h = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(h.customHandler?.description?.defaultExecutablePath ?? "")' "$appdir/host.json") ||
  die "$appdir/host.json is not valid JSON"
if [[ -n $exe ]]; then
  [[ -f $appdir/$exe && -x $appdir/$exe ]] ||
    die "$appdir/$exe (host.json's defaultExecutablePath) is missing or not executable: run make app"
fi

# zip needs an absolute output path, since it runs inside the app folder.
case $zipfile in /*) ;; *) zipfile=$PWD/$zipfile ;; esac
rm -f "$zipfile"

# .funcignore patterns (gitignore style, simple forms only) become zip exclusions.
exclude=(local.settings.json '.funcignore')
if [[ -f $appdir/.funcignore ]]; then
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}
    line=${line%"${line##*[![:space:]]}"}
    [[ -n $line ]] || continue
    line=${line#/}
    if [[ $line == */ ]]; then
      exclude+=("${line}*")
    else
      exclude+=("$line" "*/$line" "${line}/*")
    fi
  done <"$appdir/.funcignore"
fi

# -X: no extra uid/gid fields; Unix permissions are kept in the external attributes.
(cd "$appdir" && zip -q -r -X "$zipfile" . -x "${exclude[@]}")
echo "zip-app: $zipfile ($(du -h "$zipfile" | cut -f1))"
