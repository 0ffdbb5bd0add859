# Sourced by scripts/run.sh and scripts/fleet.sh.
# demo_model ROOT BUILD_DIR: prints the path of the RANDOM-WEIGHTS demo model
# (generated once into $PHI3_MODELS_DIR, default ROOT/models) and warns loudly
# on stderr that its output is gibberish.
demo_model() {
  local root=$1 build_dir=$2
  local models_dir=${PHI3_MODELS_DIR:-$root/models}
  local demo=$models_dir/phi3-demo-tiny.gguf
  mkdir -p "$models_dir"
  if [[ ! -f $demo ]]; then
    "$build_dir/engine/tools/mkmodel/phi3-mkmodel" --preset=tiny --seed=1 --out="$demo" >&2
  fi
  cat >&2 <<BANNER

  ###########################################################################
  #  NO --model GIVEN: SERVING A RANDOM-WEIGHTS DEMO MODEL                  #
  #  $demo
  #  Phi-3's architecture and real vocabulary, but random weights: the text #
  #  it generates is GIBBERISH. Use it to try the API, not the model.       #
  #  Real model: add --model /path/to/Phi-3-mini-4k-instruct.gguf           #
  ###########################################################################

BANNER
  echo "$demo"
}
