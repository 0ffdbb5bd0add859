# Sourced by build.sh and test.sh. `source_digest ROOT` prints a digest of the
# committed sources the image's binaries are built from (git tree ids of these
# paths), with "-dirty" when any of them has uncommitted changes, or
# "unknown" outside a git checkout. An image labelled with the digest of the
# current checkout holds what this checkout would build.
image_source_paths=(CMakeLists.txt cmake engine service clients proto deploy/Dockerfile
                    deploy/image/collect-runtime.sh scripts/deps/run-apt.txt)
source_digest() {
  local root=$1 trees
  trees=$(cd "$root" && for p in "${image_source_paths[@]}"; do git rev-parse "HEAD:$p"; done) ||
    { echo unknown; return; }
  local digest
  digest=$(sha256sum <<< "$trees" | cut -c1-16)
  [[ -n $(git -C "$root" status --porcelain -- "${image_source_paths[@]}") ]] && digest+=-dirty
  echo "$digest"
}
