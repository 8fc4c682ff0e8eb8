#!/usr/bin/env bash
# Makes Graphviz's `dot` available for rendering SVG/PNG figures, when it can.
# Installs the system package `graphviz` through apt-get when `dot` is missing and we
# are root (or have password-less sudo); otherwise prints the exact command to run.
# Never fails: without `dot`, fusionlab still writes DOT files.
set -u
if command -v dot >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "fusionlab: Graphviz's 'dot' is missing; install it with: sudo apt-get install graphviz" >&2
    echo "fusionlab: continuing; figures will be written as DOT files only." >&2
    exit 0
  fi
  echo "fusionlab: installing Graphviz (apt-get install graphviz)" >&2
  if $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null; then
    exit 0
  fi
  echo "fusionlab: could not install Graphviz; run: sudo apt-get install graphviz" >&2
  exit 0
fi
echo "fusionlab: Graphviz's 'dot' is missing; install the 'graphviz' package of your system (https://graphviz.org/download/)" >&2
exit 0
