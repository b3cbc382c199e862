#!/usr/bin/env bash
# Installs what the demo and the tests need and is not installed yet, then exits.
#
#   scripts/setup.sh          # nats-server, prometheus, openssl
#
# Works as root (no sudo needed: containers, CI runners, cloud shells) and as a normal user
# with sudo. Installs nothing when everything is there. Only Debian/Ubuntu (apt) installs are
# automated; elsewhere it says what to install.
set -euo pipefail

# Debian installs servers to sbin, which a normal user's PATH often lacks.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# command -> Debian package that provides it
required=(
  "nats-server:nats-server"
  "prometheus:prometheus"
  "promtool:prometheus"
  "openssl:openssl"
)

missing=()
for pair in "${required[@]}"; do
  cmd="${pair%%:*}"
  pkg="${pair#*:}"
  if ! command -v "$cmd" >/dev/null 2>&1; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: nats-server, prometheus and openssl are installed"
else
  echo "setup: installing ${missing[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: no apt-get here; install these with your package manager: ${missing[*]}" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "setup: installing packages needs root; run as root, or install sudo, or ask an" >&2
    echo "       administrator for: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for pair in "${required[@]}"; do
    if ! command -v "${pair%%:*}" >/dev/null 2>&1; then
      echo "setup: ${pair%%:*} is still missing after installing ${pair#*:}" >&2
      exit 1
    fi
  done
  echo "setup: installed ${missing[*]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not on PATH; install Rust with https://rustup.rs (1.89 or newer)," >&2
  echo "       then open a new shell (or run: . \"\$HOME/.cargo/env\")" >&2
  exit 1
fi
