#!/usr/bin/env bash
# Builds the compiled core with AddressSanitizer and UndefinedBehaviorSanitizer in its own
# build folder (build/asan) and runs the tests that exercise the kernels against it.
#
#   .ci/sanitize.sh                 # default kernel test files, slow statistical checks skipped
#   .ci/sanitize.sh tests/test_x.py # other pytest arguments instead of the defaults
#
# Python itself is not instrumented: libasan is preloaded, leak detection is off (the
# interpreter keeps objects alive until exit by design) and any ASan or UBSan report ends
# the run with an error. Needs gcc or clang with the sanitizer runtimes, CMake, and the
# build requirements (pybind11, cmeel-eigen) in the active Python environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python}
BUILD=build/asan
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g"

GENERATOR=()
command -v ninja >/dev/null 2>&1 && GENERATOR=(-G Ninja)
# RelWithDebInfo: the target's own -O3 still applies, and pybind11 does not strip symbols
# (reports keep their file:line); no LTO, which only slows the instrumented build.
cmake -S . -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF \
  -DCMAKE_CXX_FLAGS="$SAN_FLAGS" -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DPython_EXECUTABLE="$(command -v "$PYTHON")" \
  -Dpybind11_DIR="$("$PYTHON" -m pybind11 --cmakedir)" -DSKBUILD_PROJECT_VERSION=asan >/dev/null
cmake --build "$BUILD" -j "${JOBS:-2}"

# A private copy of the package with the instrumented core, so the tree stays untouched.
PKG=$(mktemp -d)
trap 'rm -rf "$PKG"' EXIT
cp -r python/modelcollapse "$PKG/"
rm -f "$PKG"/modelcollapse/_core*.so
cp "$BUILD"/_core*.so "$PKG/modelcollapse/"

CXX_BIN=$(grep -m1 '^CMAKE_CXX_COMPILER:' "$BUILD/CMakeCache.txt" | cut -d= -f2)
LIBASAN=$("$CXX_BIN" -print-file-name=libasan.so)
[ -f "$LIBASAN" ] || { echo "sanitize.sh: libasan.so not found next to $CXX_BIN" >&2; exit 2; }

if [ "$#" -eq 0 ]; then
  # The tests of the compiled kernels; the timing-based (interrupts) and address-space-limit
  # checks are left out: ASan's shadow memory and slowdown change what they measure.
  set -- tests/test_random.py tests/test_mixture.py tests/test_empirical.py tests/test_sampler.py \
    tests/truncation/test_hermite.py tests/test_metrics.py tests/dae/test_dae.py tests/dae/test_dae_spectral.py \
    tests/hodge/test_hodge.py tests/retraining/test_retraining_gaussian.py tests/test_threads_safety.py \
    -m "not slow" -k "not thread_start_failure"
fi

cd "$PKG"  # so that `import modelcollapse` finds the copy, not python/ of the tree
env PYTHONPATH="$PKG" PYTHONMALLOC=malloc LD_PRELOAD="$LIBASAN" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  "$PYTHON" -m pytest -q -p no:cacheprovider --rootdir="$ROOT" "${@/#tests\//$ROOT/tests/}"
