#!/usr/bin/env bash
# Provides CIFAR-10 (binary layout) as DEST/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin.
#
# Usage: tools/get_cifar10.sh [--dest DIR] [--archive FILE]
#   --dest DIR      where cifar-10-batches-bin/ goes (default: data/ under the repository root)
#   --archive FILE  a local .tar.gz or .tar.xz holding cifar-10-batches-bin/ (or set CIFAR10_ARCHIVE)
# Without an archive the official cifar-10-binary.tar.gz is downloaded and its MD5 checked.
# If cifar-10-batches-bin.sha256 sits beside the archive, every unpacked file is checked against it.
#
# Idempotent: complete data (six files of 30,730,000 bytes) is left alone. The archive is unpacked
# into a temporary folder inside DEST and moved into place only once verified, so an interrupted
# run never leaves a partial folder under the final name.
set -euo pipefail

readonly OFFICIAL_URL=https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
readonly OFFICIAL_MD5=c32a1d4ab5d03f1284b67883e8d87530
readonly BATCH_FILES=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin)
readonly BATCH_BYTES=30730000  # 10,000 records of 3,073 bytes
readonly FOLDER=cifar-10-batches-bin

die() {
  echo "get_cifar10: error: $*" >&2
  exit 1
}

# The first non-blank line of a tool's error output (gzip's starts with an empty line).
first_line() {
  grep -m1 . <<<"$1" || true
}

usage() {
  sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$repo_root/data"
archive="${CIFAR10_ARCHIVE:-}"
while (($#)); do
  case "$1" in
    --dest) (($# >= 2)) || die "--dest needs a directory"; dest="$2"; shift 2 ;;
    --archive) (($# >= 2)) || die "--archive needs a file"; archive="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# An archive named explicitly must be usable, even if the data is already in place: a typo
# should not pass silently.
if [[ -n "$archive" ]]; then
  [[ -f "$archive" ]] || die "archive not found: $archive"
  case "$archive" in
    *.tar.gz|*.tgz|*.tar.xz|*.txz) ;;
    *) die "unsupported archive type: $archive (expected .tar.gz or .tar.xz)" ;;
  esac
  archive=$(cd "$(dirname "$archive")" && pwd)/$(basename "$archive")
fi

# Prints the first problem with the batch files in $1, or nothing when all six are complete.
batch_problem() {
  local file size
  for file in "${BATCH_FILES[@]}"; do
    [[ -f "$1/$file" ]] || { echo "$file is missing"; return; }
    size=$(stat -c %s "$1/$file")
    ((size == BATCH_BYTES)) || { echo "$file has $size bytes, expected $BATCH_BYTES"; return; }
  done
}

mkdir -p "$dest" || die "cannot create destination folder $dest"
dest=$(cd "$dest" && pwd)
final="$dest/$FOLDER"
if [[ -d "$final" && -z "$(batch_problem "$final")" ]]; then
  echo "get_cifar10: CIFAR-10 already present in $final"
  exit 0
fi

work=$(mktemp -d "$dest/.get_cifar10.XXXXXX") || die "cannot create a temporary folder in $dest"
trap 'rm -rf "$work"' EXIT
# Make Ctrl-C and kill run the EXIT trap too, so the temporary folder goes with them.
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "$archive" ]]; then
  archive="$work/cifar-10-binary.tar.gz"
  echo "get_cifar10: downloading $OFFICIAL_URL"
  if command -v curl >/dev/null; then
    download=(curl -fsSL --connect-timeout 30 --retry 2 -o "$archive" "$OFFICIAL_URL")
  elif command -v wget >/dev/null; then
    download=(wget -nv --timeout=30 --tries=3 -O "$archive" "$OFFICIAL_URL")
  else
    die "neither curl nor wget is installed; pass --archive FILE or set CIFAR10_ARCHIVE"
  fi
  # Retries repeat the same error: report only the last, on the one error line.
  download_errors=$("${download[@]}" 2>&1) ||
    die "download of $OFFICIAL_URL failed ($(tail -n1 <<<"$download_errors")); offline? pass --archive FILE or set CIFAR10_ARCHIVE"
  md5=$(md5sum "$archive" | cut -d' ' -f1)
  [[ "$md5" == "$OFFICIAL_MD5" ]] || die "downloaded archive has MD5 $md5, expected $OFFICIAL_MD5 (corrupt download?)"
fi

case "$archive" in
  *.tar.gz|*.tgz) tar_flags=-xzf ;;
  *) tar_flags=-xJf ;;
esac
echo "get_cifar10: unpacking $archive"
tar_errors=$(tar "$tar_flags" "$archive" -C "$work" 2>&1) ||
  die "cannot unpack $archive: $(first_line "$tar_errors")"

unpacked="$work/$FOLDER"
[[ -d "$unpacked" ]] || die "archive $archive does not contain the folder $FOLDER/"
problem=$(batch_problem "$unpacked")
[[ -z "$problem" ]] || die "archive $archive is incomplete: $problem"

# The checksum file lists bare file names ("<sha256>  data_batch_1.bin"), so check from inside
# the unpacked folder.
checksums="$(dirname "$archive")/$FOLDER.sha256"
if [[ -f "$checksums" ]]; then
  if ! check_output=$(cd "$unpacked" && sha256sum -c --quiet "$checksums" 2>&1); then
    failed=$(grep -E ': FAILED' <<<"$check_output" | cut -d: -f1 | paste -sd' ' -)
    die "checksum mismatch against $checksums: ${failed:-$(first_line "$check_output")}"
  fi
  echo "get_cifar10: checksums match $checksums"
fi

# Replace an incomplete earlier copy only now that the new one is verified.
if [[ -e "$final" ]]; then
  echo "get_cifar10: replacing incomplete $final ($(batch_problem "$final"))"
  mv "$final" "$work/previous"
fi
mv "$unpacked" "$final"
echo "get_cifar10: CIFAR-10 ready in $final"
