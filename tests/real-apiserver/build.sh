#!/usr/bin/env bash
# Test tooling, never shipped: fetches Debian's packaged Go sources of Kubernetes'
# apiextensions-apiserver (the CRD server inside every kube-apiserver), Go and etcd from
# Debian's packages (suite sid, through a private apt root that leaves the system's apt alone),
# builds the server offline in GOPATH mode and caches both binaries under
# ${STAMPEDE_CACHE:-~/.cache/stampede}/real-apiserver/<key>, keyed by the three package
# versions, so only the first run on a machine pays the build (~7 min on two cores).
#
# Prints the cache directory (holding `apiextensions-apiserver` and `etcd`) on its last line of
# stdout; everything else goes to stderr. Exit 0 when the binaries are there, 1 when they could
# not be had (no network, a package gone from sid, a build failure) - the tests then run against
# the in-memory stand-in alone and say so.
set -euo pipefail

log() { printf 'real-apiserver: %s\n' "$*" >&2; }

cache_root=${STAMPEDE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stampede}/real-apiserver
work=$cache_root/work
mkdir -p "$work"

# One build at a time per machine: parallel test runs wait for the first one's binaries.
exec 9>"$cache_root/lock"
flock 9

mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
if [ -z "$mirror" ]; then
  mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
fi
[ -n "$mirror" ] || { log "no Debian mirror found in the system's apt sources"; exit 1; }

apt_root=$work/apt
mkdir -p "$apt_root"/{state/lists/partial,cache/archives/partial,etc/preferences.d,etc/apt.conf.d}
: >"$apt_root/state/status"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" \
  >"$apt_root/etc/sources.list"
cat >"$apt_root/apt.conf" <<EOF
Dir::State "$apt_root/state";
Dir::State::status "$apt_root/state/status";
Dir::Etc::SourceList "$apt_root/etc/sources.list";
Dir::Etc::SourceParts "$apt_root/etc/sources.list.d";
Dir::Etc::Preferences "$apt_root/etc/preferences";
Dir::Etc::PreferencesParts "$apt_root/etc/preferences.d";
Dir::Etc::Parts "$apt_root/etc/apt.conf.d";
Dir::Cache "$apt_root/cache";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
// The mirror may serve a frozen snapshot whose Release has expired; the signature still counts.
Acquire::Check-Valid-Until "false";
APT::Sandbox::User "$(id -un)";
EOF
export APT_CONFIG=$apt_root/apt.conf

# The package index is refreshed at most once a day: the versions it names are the cache key.
index_stamp=$apt_root/state/updated
if [ ! -f "$index_stamp" ] || [ -n "$(find "$index_stamp" -mmin +1440)" ]; then
  log "apt-get update (sid, private apt root)"
  if ! apt-get -qq -o Debug::NoLocking=1 update >&2; then
    log "apt-get update failed"
    exit 1
  fi
  touch "$index_stamp"
fi

version() { apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n1; }
apiext_version=$(version golang-k8s-apiextensions-apiserver-dev)
go_package=$(apt-cache depends golang-go 2>/dev/null | sed -n 's/.*Depends: \(golang-1\.[0-9]*-go\).*/\1/p' | head -n1)
go_package=${go_package:-golang-1.27-go}
go_series=${go_package%-go}
go_version=$(version "$go_package")
etcd_version=$(version etcd-server)
for pair in "golang-k8s-apiextensions-apiserver-dev=$apiext_version" "$go_package=$go_version" "etcd-server=$etcd_version"; do
  [ -n "${pair#*=}" ] || { log "sid has no ${pair%=*}"; exit 1; }
done
key=$(printf '%s_%s_%s' "$apiext_version" "$go_version" "$etcd_version" | tr -c 'A-Za-z0-9._\n-' '_')
out=$cache_root/$key
if [ -x "$out/apiextensions-apiserver" ] && [ -x "$out/etcd" ]; then
  log "cached: apiextensions-apiserver $apiext_version, etcd $etcd_version ($out)"
  echo "$out"
  exit 0
fi

started=$(date +%s)
log "building apiextensions-apiserver $apiext_version with $go_package $go_version, etcd $etcd_version"
debs=$work/debs
fs=$work/fs-$key
rm -rf "$fs" && mkdir -p "$debs" "$fs"

# The Go source closure: every golang-*-dev package the server's sources depend on.
mapfile -t packages < <(
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances golang-k8s-apiextensions-apiserver-dev 2>/dev/null \
    | sed -n 's/^\(golang-[^ <>:]*-dev\)$/\1/p' | sort -u
)
packages+=("$go_package" "$go_series-src" etcd-server)
log "downloading ${#packages[@]} packages"
(cd "$debs" && apt-get -qq -o Debug::NoLocking=1 download "${packages[@]}" >&2) || {
  log "apt-get download failed"
  exit 1
}
for package in "${packages[@]}"; do
  for deb in "$debs/${package}"_*.deb; do
    [ -f "$deb" ] && dpkg -x "$deb" "$fs"
  done
done

goroot=$fs/usr/lib/go-${go_series#golang-}
mkdir -p "$out.partial"
log "go build k8s.io/apiextensions-apiserver (GOPATH mode, offline)"
if ! GOROOT=$goroot GOPATH=$fs/usr/share/gocode GO111MODULE=off GOTOOLCHAIN=local GOPROXY=off \
  GOFLAGS= GOCACHE=$work/gocache "$goroot/bin/go" build -o "$out.partial/apiextensions-apiserver" \
  k8s.io/apiextensions-apiserver >&2; then
  log "go build failed"
  exit 1
fi
cp "$fs/usr/bin/etcd" "$out.partial/etcd"
printf 'golang-k8s-apiextensions-apiserver-dev %s\n%s %s\netcd-server %s\n' \
  "$apiext_version" "$go_package" "$go_version" "$etcd_version" >"$out.partial/VERSIONS"
rm -rf "$out" && mv "$out.partial" "$out"
# The extracted sources and debs are only needed for a rebuild; keep the build cache for it.
rm -rf "$fs" "$debs"
log "built in $(($(date +%s) - started)) s: $out"
echo "$out"
