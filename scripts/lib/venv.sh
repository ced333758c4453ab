# Sourced by scripts/fuzz and scripts/sdk: a Python venv with pinned requirements,
# rebuilt when the requirements file changes. Debian ships venv's pip bootstrap
# (ensurepip) separately, in python3-venv, installed here when missing.
#   ensure_venv VENV REQUIREMENTS  (SAY: a function that prints a progress line)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  say "installing $* from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_venv() {
  local venv=$1 requirements=$2
  command -v python3 >/dev/null || apt_install python3
  local stamp=$venv/.requirements
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
    say "installing $requirements into $venv"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
  fi
}
