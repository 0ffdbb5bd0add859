# Sourced by the image scripts. `podman_cmd ARGS...` runs podman; on a host
# without systemd as init (a plain VM or a CI sandbox) it also picks what
# such a host needs:
#  - cgroupfs and a file for events (no systemd, no journald);
#  - runc: crun 1.8 refuses "hybrid" cgroups (v1 controllers next to an
#    empty cgroup2 mount);
#  - for `run` and `build`: open-file and process limits no higher than ours
#    (podman's defaults, 1048576 and 32768 files/processes, need
#    CAP_SYS_RESOURCE when they exceed the hard limits we were given).
podman_cmd() {
  if [[ -d /run/systemd/system ]]; then
    podman "$@"
    return
  fi
  local command=$1
  shift
  local args=(--cgroup-manager=cgroupfs --events-backend=file --runtime=runc "$command")
  if [[ $command == run || $command == build ]]; then
    local files processes
    files=$(ulimit -Hn) processes=$(ulimit -Hu)
    [[ $files == unlimited || $files -gt 1048576 ]] && files=1048576
    [[ $processes == unlimited || $processes -gt 32768 ]] && processes=32768
    args+=(--ulimit "nofile=$files:$files" --ulimit "nproc=$processes:$processes")
  fi
  podman "${args[@]}" "$@"
}
