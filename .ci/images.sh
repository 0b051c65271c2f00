#!/usr/bin/env bash
# The container images without a registry: buildah builds images/*.Dockerfile on a Python base image
# made here with debootstrap (Debian bookworm from the apt mirror), and saves each image as an archive
# that `ctr images import` reads, for the one-node test cluster's containerd.
#
#   .ci/images.sh base           debootstrap bookworm + python3 once (rootfs tarball cached in
#                                $HADIS_IMAGES_CACHE/base), commit it as localhost/hadis/python:3.11-bookworm
#   .ci/images.sh build          base, then the operator, gateway and worker-cpu images (buildah bud,
#                                --build-arg PYTHON_IMAGE=<the local base>); an image whose inputs are
#                                unchanged is not rebuilt; each is saved as $HADIS_IMAGES_CACHE/archives/*.tar
#   .ci/images.sh import SOCKET  import every cached archive into the containerd at unix socket SOCKET
#                                (namespace k8s.io), then check that the names are listed
#   .ci/images.sh list           the cached base and archives, their names and sizes
#
# The archives are docker-archives tagged e.g. hadis/hadis-operator:0.1.0, which containerd imports as
# docker.io/hadis/hadis-operator:0.1.0: the name a kubelet looks up for `image: hadis/hadis-operator:0.1.0`.
# An image's inputs are its Dockerfile, the files .dockerignore lets into the context, the base's
# rootfs digest, its name and this script's recipe number; PyPI's state is not one of them (a changed
# dependency release does not rebuild: HADIS_IMAGES_FORCE=1 does).
#
# pip inside the build talks to the same indexes as the host's pip, and trusts the same CA bundle: a
# pip.conf derived from `python3 -m pip config list` (cert rewritten to a copy of the host bundle), and
# the local directories it names, are mounted read-only into the RUN steps of the `build` stage only
# (buildah bud --volume, in a first pass with --target build); nothing of that, not even an empty mount
# point, reaches the image, and the Dockerfiles are the ones docker would build.
#
# Settings (environment): HADIS_IMAGES_CACHE (/opt/hadis-images: base tarball, archives, buildah's
# storage), HADIS_IMAGE_PREFIX (hadis/hadis-), HADIS_IMAGE_TAG (pyproject.toml's version),
# HADIS_IMAGES ("operator gateway worker-cpu": images/<name>.Dockerfile), HADIS_IMAGES_MIRROR (the first
# URI of /etc/apt/sources.list.d/debian.sources), HADIS_IMAGES_STORAGE_DRIVER (overlay; vfs where the
# kernel has no overlayfs), HADIS_IMAGES_ISOLATION (chroot), HADIS_IMAGES_SNAPSHOTTER (ctr import's
# --snapshotter; containerd's default when empty), HADIS_IMAGES_FORCE=1 (rebuild every image).
#
# Every step is idempotent. Run it under `nice -n 10` on a shared machine: the children inherit it.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# bump when the base's recipe (debootstrap, packages, clean-up) changes: an older tarball is rebuilt
BASE_RECIPE=1
# bump when the image build (flags, mounts, archive format) changes: cached archives are rebuilt
IMAGE_RECIPE=2
CACHE="${HADIS_IMAGES_CACHE:-/opt/hadis-images}"
STORAGE="$CACHE/storage"
RUNROOT="/run/hadis-images/storage"
SUITE=bookworm
BASE_IMAGE="localhost/hadis/python:3.11-$SUITE"
BASE_TAR="$CACHE/base/python3-$SUITE-r$BASE_RECIPE.tar.gz"
BASE_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
ARCHIVES="$CACHE/archives"
PREFIX="${HADIS_IMAGE_PREFIX:-hadis/hadis-}"
TAG="${HADIS_IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")}"
read -r -a COMPONENTS <<<"${HADIS_IMAGES:-operator gateway worker-cpu}"
DRIVER="${HADIS_IMAGES_STORAGE_DRIVER:-overlay}"
ISOLATION="${HADIS_IMAGES_ISOLATION:-chroot}"
HOST_CA=/etc/ssl/certs/ca-certificates.crt

log() { echo "images: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# shellcheck source=.ci/lib.sh
source "$ROOT/.ci/lib.sh"

bah() { # buildah on this script's own storage (not /var/lib/containers): `rm -rf` of the cache resets it
  buildah --root "$STORAGE" --runroot "$RUNROOT" --storage-driver "$DRIVER" "$@"
}

human() { numfmt --to=iec --suffix=B "$1"; }

lock() { # one build at a time per cache (a second `make images` waits)
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  if ! flock -n 9; then
    log "waiting for another .ci/images.sh on $CACHE"
    flock 9
  fi
}

# ---------------------------------------------------------------- base
mirror() {
  if [[ -n "${HADIS_IMAGES_MIRROR:-}" ]]; then
    echo "$HADIS_IMAGES_MIRROR"
    return 0
  fi
  local sources=/etc/apt/sources.list.d/debian.sources uri
  [[ -f $sources ]] || die "no $sources to take the mirror from (set HADIS_IMAGES_MIRROR)"
  uri=$(awk '/^URIs:/ { print $2; exit }' "$sources")
  [[ -n $uri ]] || die "no URIs: line in $sources (set HADIS_IMAGES_MIRROR)"
  echo "$uri"
}

base_key() { cut -d' ' -f1 "$BASE_TAR.sha256"; }

build_rootfs() { # debootstrap into a scratch directory, clean it, pack it into $BASE_TAR
  ensure_packages debootstrap
  local t0=$SECONDS mirror work
  mirror=$(mirror)
  mkdir -p "$CACHE/base"
  work=$(mktemp -d "$CACHE/base/rootfs.XXXXXX")
  # debootstrap and the chroot below mount /proc and /sys in the rootfs: in a private mount namespace,
  # those mounts end with it, so a failure leaves none behind
  trap 'rm -rf "$work"' EXIT
  log "debootstrap --variant=minbase $SUITE from $mirror (+ $BASE_PACKAGES) into $work"
  if ! unshare --mount --propagation private debootstrap --variant=minbase --include="$BASE_PACKAGES" \
    --components=main "$SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" | sed 's/^/  [debootstrap] /' >&2
    die "debootstrap failed (the last lines above)"
  fi
  [[ -x $work/rootfs/usr/bin/python3 && -x $work/rootfs/usr/bin/python ]] || die "debootstrap left no python3/python"
  # the security and updates suites too, with the host's sources (the mirror it can reach)
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    cp /etc/apt/sources.list.d/debian.sources "$work/rootfs/etc/apt/sources.list.d/debian.sources"
    rm -f "$work/rootfs/etc/apt/sources.list"
    [[ -z "${HADIS_IMAGES_MIRROR:-}" ]] || sed -i "s|^URIs: .*/debian\$|URIs: $HADIS_IMAGES_MIRROR|" \
      "$work/rootfs/etc/apt/sources.list.d/debian.sources"
  fi
  log "apt-get upgrade in the rootfs (security updates)"
  # shellcheck disable=SC2016 # $1 is the inner shell's
  if ! unshare --mount --propagation private sh -ec '
    mount -t proc proc "$1/proc"
    chroot "$1" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive chroot "$1" apt-get -y -qq -o Dpkg::Options::=--force-confold upgrade
    chroot "$1" apt-get clean
  ' sh "$work/rootfs" >"$work/apt.log" 2>&1; then
    tail -n 30 "$work/apt.log" | sed 's/^/  [apt] /' >&2
    die "apt-get upgrade in the rootfs failed (the last lines above)"
  fi
  log "upgraded: $(grep -c '^Unpacking' "$work/apt.log" || true) packages"
  (
    cd "$work/rootfs"
    rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb var/cache/debconf/*-old \
      var/lib/dpkg/*-old var/log/apt/* var/log/*.log usr/share/man/* usr/share/info/* tmp/* var/tmp/*
    find usr/share/doc -type f ! -name copyright -delete # keep the licences
    find usr/share/doc -type d -empty -delete
    : >etc/resolv.conf # the runtime provides these
    : >etc/hostname
    : >etc/machine-id
  )
  for tool in useradd groupadd; do
    [[ -x $work/rootfs/usr/sbin/$tool ]] || die "the rootfs has no /usr/sbin/$tool (the Dockerfiles add their user with it)"
  done
  log "packing $(du -sh "$work/rootfs" | cut -f1) rootfs into $BASE_TAR"
  tar --numeric-owner --xattrs --xattrs-include='security.capability' -C "$work/rootfs" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -czf "$BASE_TAR.tmp" .
  (cd "$(dirname "$BASE_TAR")" && sha256sum "$(basename "$BASE_TAR").tmp" | sed 's/\.tmp$//') >"$BASE_TAR.sha256"
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$work"
  trap - EXIT
  local old # tarballs of older recipes
  for old in "$CACHE"/base/python3-"$SUITE"-r*.tar.gz; do
    [[ $old != "$BASE_TAR" ]] && rm -f "$old" "$old.sha256"
  done
  log "rootfs built in $((SECONDS - t0)) s: $(human "$(stat -c %s "$BASE_TAR")") ($(base_key | cut -c1-12))"
}

base_label() { # the rootfs digest the base image in storage was committed from ("" when there is none)
  bah inspect --type image --format '{{index .Docker.Config.Labels "io.hadis.base.rootfs-sha256"}}' \
    "$BASE_IMAGE" 2>/dev/null || true
}

cmd_base() {
  ensure_packages buildah
  if [[ -s $BASE_TAR && -s $BASE_TAR.sha256 ]]; then
    log "base rootfs cached: $BASE_TAR ($(base_key | cut -c1-12)); skipping debootstrap"
  else
    build_rootfs
  fi
  local key
  key=$(base_key)
  if [[ "$(base_label)" == "$key" ]]; then
    log "base image $BASE_IMAGE is current ($(bah inspect --type image --format '{{.FromImageID}}' "$BASE_IMAGE" | cut -c1-12))"
    return 0
  fi
  local t0=$SECONDS ctr
  log "committing $BASE_IMAGE from $(basename "$BASE_TAR")"
  ctr=$(bah from --pull-never scratch)
  trap 'bah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  bah add --quiet "$ctr" "$BASE_TAR" / >/dev/null
  bah config --os linux --arch amd64 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd '["python3"]' --label io.hadis.base.rootfs-sha256="$key" \
    --label org.opencontainers.image.description="Debian $SUITE (minbase) with python3 and python3-venv, built by .ci/images.sh" \
    "$ctr"
  bah commit --quiet --rm --format docker "$ctr" "$BASE_IMAGE" >/dev/null
  trap - EXIT
  log "base image $BASE_IMAGE committed in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- build
context_digest() { # the files .dockerignore lets into the build context (its `!` roots minus `**/` names)
  local line roots=() prune=()
  while IFS= read -r line; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    case $line in
      !*) roots+=("${line#!}") ;;
      '**/'*) prune+=(-name "${line#'**/'}" -o) ;; # a directory (pruned) or a file (not printed)
    esac # any other line is ignored: hashing more than the context only costs an extra rebuild
  done <"$ROOT/.dockerignore"
  [[ ${#roots[@]} -gt 0 ]] || die ".dockerignore lets nothing in: expected an allow-list (!pyproject.toml ...)"
  (
    cd "$ROOT"
    sha256sum .dockerignore
    local r
    for r in "${roots[@]}"; do [[ -e ${r%/} ]] || die ".dockerignore allows ${r%/}, which does not exist"; done
    find "${roots[@]%/}" \( "${prune[@]}" -false \) -prune -o -type f -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -d' ' -f1
}

pip_config() { # pip_config DIR: DIR/pip.conf for the RUN steps; prints the host paths to mount read-only
  local dir=$1 line key value item path
  local -A file=() env=()
  while IFS= read -r line; do
    key=${line%%=*} value=${line#*=}
    value=${value#\'} value=${value%\'}
    case $key in
      global.*) file[${key#global.}]=$value ;;
      :env:.*) env[${key#:env:.}]=$value ;; # PIP_* variables win over the files, as in pip
    esac
  done < <(python3 -m pip config list 2>/dev/null || true)
  for key in "${!env[@]}"; do file[$key]=${env[$key]}; done
  local cert=${file[cert]:-$HOST_CA}
  [[ -f $cert ]] || die "the CA bundle $cert (pip's cert) does not exist"
  cp "$cert" "$dir/ca.crt"
  {
    echo "# written by .ci/images.sh for the RUN steps of one build; mounted at /etc/xdg/pip, never in a layer"
    echo "[global]"
    echo "cert = /etc/xdg/pip/ca.crt"
    for key in index-url extra-index-url find-links trusted-host constraint default-timeout timeout retries; do
      [[ -n ${file[$key]:-} ]] || continue
      value=""
      for item in ${file[$key]}; do
        case $key in
          constraint) # a file: copied beside pip.conf
            [[ -f $item ]] || die "pip's constraint file $item does not exist"
            cp "$item" "$dir/$(basename "$item")"
            item=/etc/xdg/pip/$(basename "$item")
            ;;
          index-url | extra-index-url | find-links)
            path=${item#file://}
            if [[ $path == /* ]]; then # a local index or wheel directory: mounted at the same path
              [[ -e $path ]] || die "pip's $key $item does not exist"
              # an index's pages link to ../../files: mount its parent
              if [[ $key == find-links ]]; then echo "$path" >&3; else dirname "$path" >&3; fi
            fi
            ;;
        esac
        value+="${value:+ }$item"
      done
      echo "$key = $value"
    done
  } 3>"$dir/.mounts" >"$dir/pip.conf"
  sort -u "$dir/.mounts"
  rm -f "$dir/.mounts"
}

safe_name() { echo "$1" | tr '/:@' '__-'; } # hadis/hadis-operator:0.1.0 -> hadis_hadis-operator_0.1.0

cmd_build() {
  ensure_packages buildah
  lock
  local t_all=$SECONDS
  cmd_base
  local base context work
  base=$(base_key)
  context=$(context_digest)
  mkdir -p "$ARCHIVES"
  work=$(mktemp -d /tmp/hadis-images-build.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  local mounts=() path c built=0 cached=0
  for c in "${COMPONENTS[@]}"; do
    local ref="$PREFIX$c:$TAG" dockerfile="images/$c.Dockerfile"
    [[ -f "$ROOT/$dockerfile" ]] || die "$dockerfile does not exist"
    local archive
    archive="$ARCHIVES/$(safe_name "$ref").tar"
    local key
    key=$( (
      echo "recipe=$IMAGE_RECIPE ref=$ref base=$BASE_IMAGE@$base context=$context"
      sha256sum <"$ROOT/$dockerfile"
    ) | sha256sum | cut -d' ' -f1)
    if [[ -s $archive && "$(sed -n 's/^key=//p' "$archive.meta" 2>/dev/null)" == "$key" && "${HADIS_IMAGES_FORCE:-0}" != 1 ]]; then
      log "$ref: inputs unchanged ($(echo "$key" | cut -c1-12)); cached $(basename "$archive") ($(human "$(stat -c %s "$archive")"))"
      cached=$((cached + 1))
      continue
    fi
    local t0=$SECONDS
    if [[ ${#mounts[@]} -eq 0 ]]; then # the first image to build: pip's settings for the RUN steps
      mkdir -p "$work/pip"
      mounts=(--volume "$work/pip:/etc/xdg/pip:ro")
      pip_config "$work/pip" >"$work/mounts"
      while IFS= read -r path; do
        [[ -n $path ]] && mounts+=(--volume "$path:$path:ro")
      done <"$work/mounts"
      log "pip in the build stages: $(grep -v '^#' "$work/pip/pip.conf" | tr '\n' ' ')(+ read-only: $(tr '\n' ' ' <"$work/mounts"))"
    fi
    grep -qiE '^FROM[[:space:]].*[[:space:]]AS[[:space:]]+build[[:space:]]*$' "$ROOT/$dockerfile" ||
      die "$dockerfile has no stage named build (pip runs there, with the mounts)"
    log "building $ref from $dockerfile on $BASE_IMAGE"
    # Two passes, so that the mounts reach only the stage that runs pip: buildah creates a --volume's
    # mount point in every RUN step's rootfs and leaves it there (empty /etc/xdg/pip, /opt/wheels ...
    # directories in the runtime stage's layer otherwise). The first pass builds the build stage with
    # them (--layers keeps each step as a cached image); the second builds the whole file without
    # them, taking the build stage from that cache.
    local bud=(bud --isolation "$ISOLATION" --network host --pull-never --format docker --layers
      --build-arg PYTHON_IMAGE="$BASE_IMAGE" -f "$dockerfile")
    (
      cd "$ROOT"
      bah "${bud[@]}" --target build "${mounts[@]}" .
      bah "${bud[@]}" --iidfile "$work/$c.iid" -t "$ref" .
    ) 2>&1 | sed -u "s/^/  [$c] /" >&2
    local id
    id=$(cat "$work/$c.iid")
    id=${id#sha256:}
    log "$ref built in $((SECONDS - t0)) s ($(echo "$id" | cut -c1-12)); saving $(basename "$archive")"
    rm -f "$archive" "$archive.meta" "$archive.tmp"
    bah push --quiet "$id" "docker-archive:$archive.tmp:$ref" >/dev/null
    mv "$archive.tmp" "$archive"
    printf 'ref=%s\nname=%s\nkey=%s\nid=%s\nbuilt=%s\n' "$ref" "$(containerd_name "$ref")" "$key" "$id" \
      "$(date -u +%FT%TZ)" >"$archive.meta"
    log "$ref: $(human "$(stat -c %s "$archive")") archive, $((SECONDS - t0)) s in all"
    built=$((built + 1))
  done
  rm -rf "$work"
  trap - EXIT
  local untagged # the step images --layers kept, and earlier builds of these names (this storage is ours)
  untagged=$(bah images --all --format '{{.ID}} {{.Name}}' | awk '$2 == "<none>" { print $1 }')
  if [[ -n $untagged ]]; then
    # shellcheck disable=SC2086 # one ID a word
    bah rmi $untagged >/dev/null 2>&1 || log "warning: could not remove every untagged image in $STORAGE"
  fi
  log "done in $((SECONDS - t_all)) s: $built built, $cached cached (.ci/images.sh list)"
}

# ---------------------------------------------------------------- import
containerd_name() { # the name containerd (and a kubelet) gives a docker reference: docker.io/library/...
  local ref=$1 first=${1%%/*}
  if [[ $ref != */* ]]; then
    echo "docker.io/library/$ref"
  elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
    echo "$ref"
  else
    echo "docker.io/$ref"
  fi
}

imported_id() { # imported_id SOCKET NAME: the image ID (config digest) NAME has there, "" if none
  local ctr_=(ctr --address "$1" --namespace k8s.io) digest
  digest=$("${ctr_[@]}" images list "name==$2" | awk 'NR > 1 { print $3; exit }')
  [[ -n $digest ]] || return 0
  "${ctr_[@]}" content get "$digest" | grep -o '"config":{[^}]*}' | grep -o 'sha256:[0-9a-f]*' | cut -d: -f2
}

cmd_import() {
  local socket=${1:-}
  [[ -n $socket ]] || die "usage: $0 import SOCKET (the containerd's unix socket)"
  [[ -S $socket ]] || die "$socket is not a unix socket (is the containerd running?)"
  ensure_packages containerd # ctr
  local ctr_=(ctr --address "$socket" --namespace k8s.io) archive
  "${ctr_[@]}" version >/dev/null || die "no containerd answers on $socket"
  local archives=()
  for archive in "$ARCHIVES"/*.tar; do [[ -s $archive ]] && archives+=("$archive"); done
  [[ ${#archives[@]} -gt 0 ]] || die "no image archives in $ARCHIVES: run .ci/images.sh build"
  local t0=$SECONDS opts=() name id imported=0 present=0
  [[ -z "${HADIS_IMAGES_SNAPSHOTTER:-}" ]] || opts+=(--snapshotter "$HADIS_IMAGES_SNAPSHOTTER")
  local -A want=()
  for archive in "${archives[@]}"; do
    name=$(sed -n 's/^name=//p' "$archive.meta" 2>/dev/null)
    id=$(sed -n 's/^id=//p' "$archive.meta" 2>/dev/null)
    [[ -n $name && -n $id ]] || die "$archive.meta names no image: rebuild it (.ci/images.sh build)"
    want[$name]=$id
    if [[ "$(imported_id "$socket" "$name")" == "$id" ]]; then
      log "$name: already there (${id:0:12})"
      present=$((present + 1))
      continue
    fi
    log "importing $(basename "$archive") ($(human "$(stat -c %s "$archive")")) as $name into $socket (k8s.io)"
    "${ctr_[@]}" images import "${opts[@]}" "$archive" 2>&1 | sed -u 's/^/  [ctr] /' >&2
    imported=$((imported + 1))
  done
  local wrong=()
  for name in "${!want[@]}"; do # listed, with the image ID the archive holds
    id=$(imported_id "$socket" "$name")
    [[ $id == "${want[$name]}" ]] || wrong+=("$name (${id:-not listed})")
  done
  [[ ${#wrong[@]} -eq 0 ]] || die "after the import, the containerd does not list: ${wrong[*]}"
  log "$imported imported, $present already there, in $((SECONDS - t0)) s; listed: ${!want[*]}"
}

# ---------------------------------------------------------------- list
cmd_list() {
  if [[ -s $BASE_TAR ]]; then
    printf '%-48s %8s  %s\n' "$BASE_IMAGE (rootfs)" "$(human "$(stat -c %s "$BASE_TAR")")" "$BASE_TAR"
  else
    echo "no base rootfs cached ($BASE_TAR)"
  fi
  local archive found=0
  for archive in "$ARCHIVES"/*.tar; do
    [[ -s $archive ]] || continue
    found=1
    printf '%-48s %8s  %s  (built %s)\n' "$(sed -n 's/^name=//p' "$archive.meta" 2>/dev/null)" \
      "$(human "$(stat -c %s "$archive")")" "$archive" "$(sed -n 's/^built=//p' "$archive.meta" 2>/dev/null)"
  done
  [[ $found == 1 ]] || echo "no image archives in $ARCHIVES (.ci/images.sh build)"
  if [[ -d $STORAGE ]]; then
    echo "buildah storage $STORAGE: $(du -sh "$STORAGE" 2>/dev/null | cut -f1)"
  fi
}

# ---------------------------------------------------------------- main
main() {
  case "${1:-}" in
    base)
      lock
      cmd_base
      ;;
    build) cmd_build ;;
    import) cmd_import "${2:-}" ;;
    list) cmd_list ;;
    *)
      echo "usage: $0 base|build|import SOCKET|list" >&2
      return 2
      ;;
  esac
}

# on one line, so that editing this file while it runs (a long build) cannot change what runs next
main "$@"; exit $?
