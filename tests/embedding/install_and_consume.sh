#!/bin/sh
# Installs the built sluice into a temporary prefix, then builds and runs a one-file consumer
# against it twice: with find_package(sluice) (CMake) and with pkg-config.
#   install_and_consume.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
expected='/ok 200 hello handled
/blocked 403 hello blocked'

cmake --install "$build" --prefix "$work/prefix" >/dev/null
launcher=""
if command -v ccache >/dev/null 2>&1; then launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"; fi

cmake -S "$src/tests/embedding/consumer" -B "$work/cmake-build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" $launcher >/dev/null
cmake --build "$work/cmake-build" -j1 >/dev/null
out=$("$work/cmake-build/consumer")
if [ "$out" != "$expected" ]; then
  echo "find_package consumer printed:"; echo "$out"; exit 1
fi

pcdir=$(ls -d "$work"/prefix/lib*/pkgconfig)
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs --static sluice)
${CXX:-g++} -std=c++20 -O1 "$src/tests/embedding/consumer/main.cpp" -o "$work/pc-consumer" $flags
out=$("$work/pc-consumer")
if [ "$out" != "$expected" ]; then
  echo "pkg-config consumer printed:"; echo "$out"; exit 1
fi
echo "embedding: find_package and pkg-config consumers ok"
