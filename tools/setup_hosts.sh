#!/usr/bin/env bash
# Build the four real test hosts from the source tarballs in shared/hosts, following the recipe in
# shared/hosts/README.md: ComfyUI 0.3.64 and 0.8.0, AUTOMATIC1111 1.10.1, Forge dfdcbab6. Each host lives in its
# own folder with its own venv layered over $PY (--system-site-packages plus a .pth line), so torch is installed
# once and pinned by a constraints file:
#
#   HOSTS_DIR/comfyui-0.3.64/{ComfyUI,venv}        HOSTS_DIR/a1111-1.10.1/{stable-diffusion-webui,CLIP,venv}
#   HOSTS_DIR/comfyui-0.8.0/{ComfyUI,venv}         HOSTS_DIR/forge-dfdcbab6/{stable-diffusion-webui-forge,venv}
#
# usage: tools/setup_hosts.sh HOSTS_SRC HOSTS_DIR [HOST...]
#   HOSTS_SRC  folder holding the four tarballs
#   HOSTS_DIR  where to build (outside the repository)
#   HOST       build only these (default: all four); names as in the layout above
# A host's folder gets .setup-complete when it is finished: a finished host is reused, a half-built one rebuilt.
# HOSTS_DIR/.setup-complete is written once all four are finished (tests/hosts/ reads the per-host marks).
# $PY (default: python) is the interpreter that already has torch==2.14.1 and torchvision==0.29.1.
set -euo pipefail

HOSTS_SRC=$(cd "${1:?usage: setup_hosts.sh HOSTS_SRC HOSTS_DIR [HOST...]}" && pwd)
HOSTS=${2:?usage: setup_hosts.sh HOSTS_SRC HOSTS_DIR [HOST...]}
shift 2
ALL_HOSTS=(comfyui-0.3.64 comfyui-0.8.0 a1111-1.10.1 forge-dfdcbab6)
WANTED=("$@")
(( ${#WANTED[@]} )) || WANTED=("${ALL_HOSTS[@]}")
for host in "${WANTED[@]}"; do
  [[ " ${ALL_HOSTS[*]} " == *" $host "* ]] || { echo "setup_hosts: unknown host $host (known: ${ALL_HOSTS[*]})" >&2; exit 1; }
done
PY=${PY:-python}
OWNER_MARK=.swin2sr-hosts  # says the folder is ours, so a half-built host in it may be deleted
DONE_MARK=.setup-complete

if [[ -n "$(ls -A "$HOSTS" 2>/dev/null)" && ! -f "$HOSTS/$OWNER_MARK" ]]; then
  echo "setup_hosts: $HOSTS is not empty and was not made by this script; pick an empty folder" >&2
  exit 1
fi
mkdir -p "$HOSTS"
HOSTS=$(cd "$HOSTS" && pwd)
touch "$HOSTS/$OWNER_MARK"

mkvenv() {  # a venv that sees $PY's packages (torch); its own installs shadow them
  "$PY" -m venv --system-site-packages "$1"
  "$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    > "$("$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_host_base.pth"
}

pins() {  # constraints: torch from $PY, never replaced; setuptools < 81 where pkg_resources is imported
  printf 'torch==2.14.1\ntorchvision==0.29.1\n'
  [[ "${1:-}" == setuptools ]] && printf 'setuptools==80.10.2\n'
  return 0
}

build_comfyui() {  # $1: version. torchaudio has no build for torch 2.14.1: skipped, only the audio nodes are lost
  tar xzf "$HOSTS_SRC/ComfyUI-$1.tar.gz"
  mkvenv venv
  pins > pins.txt
  grep -vE '^(torch|torchvision|torchaudio)[[:space:]]*$' ComfyUI/requirements.txt > requirements.txt
  venv/bin/python -m pip install -q -c pins.txt -r requirements.txt requests  # requests: used, not listed
}

build_webui() {  # $1: tarball name, $2: extracted folder; $3...: extra packages the host uses but does not list
  local tarball=$1 tree=$2
  shift 2
  tar xzf "$HOSTS_SRC/$tarball"
  mkvenv venv
  pins setuptools > pins.txt
  venv/bin/python -m pip install -q -c pins.txt setuptools==80.10.2
  grep -vE '^(torch|setuptools)([^A-Za-z0-9_.-]|$)' "$tree/requirements_versions.txt" > requirements.txt
  venv/bin/python -m pip install -q -c pins.txt -r requirements.txt "$@"
}

build_host() {
  case "$1" in
    comfyui-*) build_comfyui "${1#comfyui-}" ;;
    a1111-1.10.1)  # CLIP: k-diffusion imports it at start
      build_webui stable-diffusion-webui-1.10.1.tar.gz stable-diffusion-webui
      venv/bin/python -m pip install -q -c pins.txt --no-build-isolation ./CLIP ;;
    forge-dfdcbab6)  # joblib: the built-in soft-inpainting script needs it, Forge does not list it
      build_webui stable-diffusion-webui-forge-dfdcbab6.tar.gz stable-diffusion-webui-forge joblib ;;
  esac
  # torch must come from $PY, not from the host's venv
  venv/bin/python -c "import sys, torch; assert torch.__version__.startswith('2.14.1'); \
assert not torch.__file__.startswith(sys.prefix), torch.__file__"
}

# The hosts build side by side (mostly downloads and unpacking), each logging to HOSTS_DIR/<host>.log.
declare -A building=()
started=$SECONDS
for host in "${WANTED[@]}"; do
  if [[ -f "$HOSTS/$host/$DONE_MARK" ]]; then
    echo "setup_hosts: reusing $host in $HOSTS"
    continue
  fi
  rm -rf "${HOSTS:?}/$host"  # an unfinished build of ours (or nothing): start again
  mkdir "$HOSTS/$host"
  (cd "$HOSTS/$host"; build_host "$host") > "$HOSTS/$host.log" 2>&1 &
  building[$host]=$!
done
failed=()
for host in "${!building[@]}"; do
  if wait "${building[$host]}"; then
    touch "$HOSTS/$host/$DONE_MARK"
    echo "setup_hosts: built $host (all builds so far: $((SECONDS - started)) s)"
  else
    echo "setup_hosts: building $host failed; the end of $HOSTS/$host.log:" >&2
    tail -n 40 "$HOSTS/$host.log" >&2
    failed+=("$host")
  fi
done
(( ${#failed[@]} == 0 )) || exit 1

for host in "${ALL_HOSTS[@]}"; do
  [[ -f "$HOSTS/$host/$DONE_MARK" ]] || exit 0
done
touch "$HOSTS/$DONE_MARK"
echo "setup_hosts: all four hosts built in $HOSTS"
