#!/usr/bin/env bash
# Builds the fwledger uniffi cdylib, generates the Kotlin bindings from it (library mode) and
# compiles and runs the Kotlin tests on the JVM with Maven (kotlin-maven-plugin, JNA, JUnit 5).
#
#   bindings/kotlin/run.sh            # from anywhere; exits non-zero on any failure
#   MAVEN_OFFLINE=1 bindings/kotlin/run.sh   # force Maven offline (after a first run filled ~/.m2)
#
# Maven uses the default local repository (~/.m2); every plugin and dependency version is
# pinned, so once it is filled no network access is needed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

cargo build -p fwledger-uniffi --locked

target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
    Darwin) lib="$target_dir/debug/libfwledger_uniffi.dylib" ;;
    *) lib="$target_dir/debug/libfwledger_uniffi.so" ;;
esac
generated="$here/target/generated-sources/uniffi"
rm -rf "$generated"
"$target_dir/debug/uniffi-bindgen" generate "$lib" --language kotlin --out-dir "$generated" --no-format

mvn_args=(-B -f "$here/pom.xml" "-Dfwledger.lib.dir=$(dirname "$lib")" "-Dfwledger.generated.dir=$generated")
if [[ "${MAVEN_OFFLINE:-0}" == 1 ]]; then
    mvn_args+=(-o)
fi
mvn "${mvn_args[@]}" test
