# custody_obtain STEP: print the path of a verified Custody step binary.
#
# Shared by the GitHub composite actions (sourced from actions/lib/obtain.sh) and the
# GitLab components (inlined into each template by `cargo xtask components`). POSIX sh,
# so it runs in bash on GitHub runners and in busybox sh on small Alpine images.
#
# Settings, all from the environment (never interpolated into this script):
#   CUSTODY_VERSION            release version, e.g. 0.1.0 (from the manifest / inputs)
#   CUSTODY_RELEASED           "true" when release assets exist for CUSTODY_VERSION
#   CUSTODY_REPOSITORY         OWNER/REPO whose GitHub releases hold the assets
#   CUSTODY_SHA256_X86_64      SHA-256 of the x86_64-unknown-linux-musl asset
#   CUSTODY_SHA256_AARCH64     SHA-256 of the aarch64-unknown-linux-musl asset
#   CUSTODY_ASSET_X86_64, CUSTODY_ASSET_AARCH64
#                              asset names (default STEP-TARGET)
#   CUSTODY_CHECKSUMS          "NAME=SHA256 NAME=SHA256 ...": where a component runs several
#                              binaries, the checksum of each asset by name (used when the
#                              per-arch variable is empty)
#   CUSTODY_DOWNLOAD_URL       base URL the asset name is appended to (a mirror, such as
#                              a GitLab generic package), from the action/component input
#   CUSTODY_MIRROR_URL         the same, from the environment (a runner's, an instance
#                              CI/CD variable, a workflow's env:) when the input is empty;
#                              default: the GitHub release
#   CUSTODY_BUILD_FROM_SOURCE  "true" builds with cargo instead of downloading
#   CUSTODY_SOURCE_DIR         the workspace to build (the action's own checkout), or
#   CUSTODY_SOURCE_URL, CUSTODY_SOURCE_REF
#                              a git repository and ref (default vVERSION) to clone
#   CUSTODY_CACHE_DIR          where binaries are kept (default: RUNNER_TOOL_CACHE, else
#                              XDG_CACHE_HOME or ~/.cache)
#   CUSTODY_BIN_DIR            a directory of binaries already on the runner (an image
#                              with the tools preinstalled, an air-gapped runner, a
#                              checkout's build): STEP found there is used. When the
#                              version is released its SHA-256 must match the manifest's
#                              (or the checksum input), else the step fails naming both;
#                              when unreleased a warning says it runs unverified
#
# Logs go to stderr; the one line on stdout is the binary's path. A checksum mismatch
# deletes the download and fails before the binary is ever executed.
custody_obtain() (
  set -eu
  step="$1"
  log() { printf 'custody: %s\n' "$*" >&2; }
  die() { printf 'custody: error: %s\n' "$*" >&2; exit 1; }

  sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
      sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
      shasum -a 256 "$1" | cut -d' ' -f1
    elif command -v openssl >/dev/null 2>&1; then
      openssl dgst -sha256 -r "$1" | cut -d' ' -f1
    else
      die "no sha256sum, shasum or openssl on this runner: install one so the binary can be verified"
    fi
  }

  version="${CUSTODY_VERSION:-}"
  [ -n "$version" ] || die "no version for $step: the manifest or the version input is empty"
  case "$version" in
    *[!0-9A-Za-z.+-]*) die "version '$version' of $step is not a release version" ;;
  esac
  cache_root="${CUSTODY_CACHE_DIR:-${RUNNER_TOOL_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}}}"
  cache_root="${cache_root%/}/custody"

  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64 | Linux-amd64)
      target=x86_64-unknown-linux-musl
      asset="${CUSTODY_ASSET_X86_64:-$step-$target}"
      sum="${CUSTODY_SHA256_X86_64:-}" ;;
    Linux-aarch64 | Linux-arm64)
      target=aarch64-unknown-linux-musl
      asset="${CUSTODY_ASSET_AARCH64:-$step-$target}"
      sum="${CUSTODY_SHA256_AARCH64:-}" ;;
    *)
      target=""
      asset=""
      sum="" ;;
  esac

  if [ -z "$sum" ] && [ -n "$asset" ] && [ -n "${CUSTODY_CHECKSUMS:-}" ]; then
    for pair in $CUSTODY_CHECKSUMS; do
      case "$pair" in
        "$asset="*) sum="${pair#*=}" ;;
      esac
    done
  fi

  warn() {
    if [ "${GITHUB_ACTIONS:-}" = "true" ]; then
      printf '::warning title=custody::%s\n' "$*" >&2
    else
      printf 'custody: warning: %s\n' "$*" >&2
    fi
  }

  if [ -n "${CUSTODY_BIN_DIR:-}" ]; then
    local_bin="${CUSTODY_BIN_DIR%/}/$step"
    if [ -f "$local_bin" ] && [ -x "$local_bin" ]; then
      if [ "${CUSTODY_RELEASED:-false}" = "true" ]; then
        want=$(printf '%s' "$sum" | tr 'A-F' 'a-f')
        case "$want" in
          *[!0-9a-f]* | "") die "$local_bin (CUSTODY_BIN_DIR) cannot be verified: the manifest (or the checksum input) of $step $version names no sha256 for ${asset:-$(uname -sm)}" ;;
        esac
        got=$(sha256_of "$local_bin")
        [ "$got" = "$want" ] ||
          die "$local_bin (CUSTODY_BIN_DIR) has sha256 $got, but $step $version is released with sha256 $want: install the released binary there, or unset CUSTODY_BIN_DIR"
        log "using $step $version from CUSTODY_BIN_DIR: $local_bin (sha256 $got verified)"
      else
        warn "using $local_bin from CUSTODY_BIN_DIR unverified: $step $version is not released, so there is no checksum to hold it against"
      fi
      printf '%s\n' "$local_bin"
      exit 0
    fi
    log "no executable $step in CUSTODY_BIN_DIR ($CUSTODY_BIN_DIR): obtaining it as usual"
  fi

  build=false
  if [ "${CUSTODY_BUILD_FROM_SOURCE:-false}" = "true" ]; then
    build=true
    log "building $step from source (build-from-source is set)"
  elif [ "${CUSTODY_RELEASED:-false}" != "true" ]; then
    build=true
    log "building $step from source: version $version has no released binaries"
  elif [ -z "$target" ]; then
    build=true
    log "building $step from source: no released binary for $(uname -sm)"
  fi

  if [ "$build" = "false" ]; then
    sum=$(printf '%s' "$sum" | tr 'A-F' 'a-f')
    case "$sum" in
      *[!0-9a-f]* | "") die "no valid sha256 for $asset of $step $version: the manifest (or the sha256 input) must name the checksum of every released asset" ;;
    esac
    [ "${#sum}" -eq 64 ] || die "sha256 for $asset of $step $version has ${#sum} characters, not 64: fix the manifest (or the sha256 input)"
    dir="$cache_root/$step/$version/$target"
    bin="$dir/$step"
    if [ -f "$bin" ]; then
      if [ "$(sha256_of "$bin")" = "$sum" ]; then
        log "using cached $step $version ($target) from $dir"
        printf '%s\n' "$bin"
        exit 0
      fi
      log "cached $bin does not match its checksum: downloading it again"
      rm -f "$bin"
    fi
    if [ -n "${CUSTODY_DOWNLOAD_URL:-}" ]; then
      base="${CUSTODY_DOWNLOAD_URL%/}"
    elif [ -n "${CUSTODY_MIRROR_URL:-}" ]; then
      base="${CUSTODY_MIRROR_URL%/}"
    else
      repository="${CUSTODY_REPOSITORY:-}"
      case "$repository" in
        */* ) ;;
        *) die "the manifest names no repository (OWNER/REPO) for $step: set the download URL input or fix the manifest" ;;
      esac
      base="https://github.com/$repository/releases/download/v$version"
    fi
    url="$base/$asset"
    case "$url" in
      https://*) ;;
      http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) ;;
      *) die "refusing to download $step from $url: only https URLs (or http on loopback, for tests) are allowed" ;;
    esac
    mkdir -p "$dir"
    tmp=$(mktemp "$dir/.download.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    token_header=""
    if [ -n "${CI_API_V4_URL:-}" ] && [ -n "${CI_JOB_TOKEN:-}" ]; then
      case "$url" in
        "${CI_API_V4_URL%/}"/*) token_header="JOB-TOKEN: $CI_JOB_TOKEN" ;;
      esac
    fi
    log "downloading $url"
    if command -v curl >/dev/null 2>&1; then
      if [ -n "$token_header" ]; then
        curl -fsSL --retry 3 --connect-timeout 30 --proto-redir '=https' -H "$token_header" -o "$tmp" "$url" ||
          die "downloading $url failed: check the download URL and that the release $version exists"
      else
        curl -fsSL --retry 3 --connect-timeout 30 --proto-redir '=https' -o "$tmp" "$url" ||
          die "downloading $url failed: check the download URL and that the release $version exists"
      fi
    elif command -v wget >/dev/null 2>&1; then
      if [ -n "$token_header" ]; then
        wget -q -T 30 --header "$token_header" -O "$tmp" "$url" ||
          die "downloading $url failed: check the download URL and that the release $version exists"
      else
        wget -q -T 30 -O "$tmp" "$url" ||
          die "downloading $url failed: check the download URL and that the release $version exists"
      fi
    else
      die "neither curl nor wget is installed: install one, or use an image that has one"
    fi
    got=$(sha256_of "$tmp")
    if [ "$got" != "$sum" ]; then
      die "checksum mismatch for $url: expected sha256 $sum, got $got; the download was deleted and not run"
    fi
    chmod 0755 "$tmp"
    mv -f "$tmp" "$bin"
    trap - EXIT
    log "verified $step $version ($target): sha256 $sum"
    printf '%s\n' "$bin"
    exit 0
  fi

  command -v cargo >/dev/null 2>&1 ||
    die "building $step from source needs cargo on the runner (rustup, or an image such as rust:1-alpine), or a released version"
  src="${CUSTODY_SOURCE_DIR:-}"
  if [ -z "$src" ]; then
    [ -n "${CUSTODY_SOURCE_URL:-}" ] || die "no source to build $step from: set the source URL input"
    command -v git >/dev/null 2>&1 || die "building $step from source needs git on the runner"
    src="$cache_root/src/$step-$version"
    rm -rf "$src"
    ref="${CUSTODY_SOURCE_REF:-v$version}"
    log "cloning $CUSTODY_SOURCE_URL at $ref"
    git clone --quiet --depth 1 --branch "$ref" "$CUSTODY_SOURCE_URL" "$src" >&2 ||
      die "cloning $CUSTODY_SOURCE_URL at $ref failed: check the source URL and ref inputs"
  fi
  [ -f "$src/Cargo.toml" ] && [ -f "$src/Cargo.lock" ] ||
    die "$src is not the Custody workspace (no Cargo.toml and Cargo.lock)"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache_root/build}"
  log "cargo build --release --locked -p $step (target dir $CARGO_TARGET_DIR)"
  (cd "$src" && cargo build --release --locked -p "$step" >&2) ||
    die "building $step from source failed (see the cargo output above)"
  bin="$CARGO_TARGET_DIR/release/$step"
  [ -x "$bin" ] || die "cargo reported success but $bin is missing"
  printf '%s\n' "$bin"
)
