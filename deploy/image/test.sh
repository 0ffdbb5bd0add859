#!/usr/bin/env bash
# Runs the phi3-server image on loopback and streams a completion from it:
# the image's phi3-mkmodel writes a tiny model, phi3-server serves it
# (host network on 127.0.0.1, read-only root, no capabilities, non-root, the
# model mounted read-only and its SHA-256 checked), the image's phi3-client
# streams 8 tokens, a wrong --model-sha256 is refused, SIGTERM exits 0.
#
#   deploy/image/test.sh [--tag NAME]     default localhost/phi3serve:latest
#
# Building the image takes minutes (debootstrap, apt, a full compile), so this
# builds it only with PHI3_IMAGE_BUILD=1. Without podman, without an image
# built from this checkout's sources (source-digest.sh), or where podman cannot
# run containers, it exits 77 (ctest: skipped) and says why.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/deploy/image/podman.sh"
source "$root/deploy/image/source-digest.sh"
tag=localhost/phi3serve:latest
[[ ${1:-} == --tag ]] && tag=$2
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

command -v podman >/dev/null || skip "podman is not installed (apt-get install podman runc)"
if [[ ${PHI3_IMAGE_BUILD:-0} == 1 ]]; then
  "$root/deploy/image/build.sh" --tag "$tag"
fi
podman_cmd image exists "$tag" ||
  skip "no image $tag; build it with deploy/image/build.sh (or PHI3_IMAGE_BUILD=1)"
if ! out=$(podman_cmd run --rm --network host --entrypoint /bin/sleep "$tag" 0 2>&1); then
  skip "podman cannot start a container on this host: $out"
fi

work=$(mktemp -d)
name=phi3-image-test-$$
cleanup() {
  podman_cmd rm -f "$name" "$name-bad" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
chmod 0777 "$work"

user=$(podman_cmd image inspect --format '{{.Config.User}}' "$tag")
[[ $user == 10001:10001 ]] || fail "image user is '$user', expected 10001:10001"
label() { podman_cmd image inspect --format "{{index .Labels \"$1\"}}" "$tag"; }
revision=$(label org.opencontainers.image.revision)
[[ $revision =~ ^[0-9a-f]{40}$ ]] || fail "no org.opencontainers.image.revision label ('$revision')"
built=$(label io.phi3serve.source-digest) here=$(source_digest "$root")
if [[ $built != "$here" || $here == unknown || $here == *-dirty ]]; then
  skip "image $tag was built from other sources (revision $revision, digest $built; this checkout: $here): rebuild it with deploy/image/build.sh (or PHI3_IMAGE_BUILD=1)"
fi
size=$(podman_cmd image inspect --format '{{.Size}}' "$tag")
echo "image $tag: $((size / 1024 / 1024)) MiB, user $user, revision $revision"

run=(podman_cmd run --network host --read-only --cap-drop ALL --security-opt no-new-privileges)
"${run[@]}" --rm -v "$work:/out" --entrypoint /usr/local/bin/phi3-mkmodel "$tag" \
  --preset=tiny --seed=1 --out=/out/tiny.gguf
sha=$(sha256sum "$work/tiny.gguf" | cut -d' ' -f1)

flags=(--model=/models/tiny.gguf --no-auth --threads=1 --listen=127.0.0.1:0
       --metrics-listen=127.0.0.1:0)
if "${run[@]}" --name "$name-bad" -v "$work:/models:ro" "$tag" "${flags[@]}" \
    --model-sha256="${sha//?/0}" > "$work/bad.log" 2>&1; then
  fail "a wrong --model-sha256 was accepted"
fi
grep -q -- "--model-sha256: /models/tiny.gguf has SHA-256 \"$sha\"" "$work/bad.log" ||
  fail "unexpected refusal: $(cat "$work/bad.log")"

"${run[@]}" -d --name "$name" -v "$work:/models:ro" "$tag" "${flags[@]}" --model-sha256="$sha" \
  > /dev/null
address=""
for ((i = 0; i < 300; i++)); do
  address=$(podman_cmd logs "$name" 2>&1 | sed -n 's/.*ready grpc=\([^ ]*\) .*/\1/p')
  [[ -n $address ]] && break
  [[ $(podman_cmd inspect --format '{{.State.Running}}' "$name") == true ]] ||
    fail "the server exited: $(podman_cmd logs "$name" 2>&1)"
  sleep 0.2
done
[[ -n $address ]] || fail "not ready in 60 s: $(podman_cmd logs "$name" 2>&1)"
echo "serving on $address"

reply=$("${run[@]}" --rm --entrypoint /usr/local/bin/phi3-client "$tag" --addr "$address" \
  generate --prompt "Once upon a time" --max-tokens 8 --ignore-eos --json)
echo "completion: $reply"
[[ $reply == *'"finish_reason":"LENGTH"'* && $reply == *'"completion_tokens":8'* ]] ||
  fail "expected 8 streamed tokens"

podman_cmd stop --time 20 "$name" > /dev/null
code=$(podman_cmd inspect --format '{{.State.ExitCode}}' "$name")
[[ $code == 0 ]] || fail "SIGTERM: exit code $code"
echo "image test passed"
