# shellcheck shell=bash
# Sourced by scripts/test.sh and .ci/run: `step NAME` announces a step and reports how long the
# previous one took; a trap reports the step that was running when the script ended, so a failure
# under `set -e` still says where and after how long.

current_step=""
step_started=0

finish_step() {
  if [[ -n "$current_step" ]]; then
    echo "==> ${current_step}: done in $((SECONDS - step_started))s"
  fi
  current_step=""
}

step() {
  finish_step
  current_step=$1
  step_started=$SECONDS
  echo "==> ${current_step}"
}

on_exit() {
  local status=$?
  if [[ $status -ne 0 && -n "$current_step" ]]; then
    echo "==> ${current_step}: FAILED (exit ${status}) after $((SECONDS - step_started))s" >&2
  else
    finish_step
  fi
  return "$status"
}

trap on_exit EXIT
