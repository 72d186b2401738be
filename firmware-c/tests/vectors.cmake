# Turns what the agent's unit tests need from the shared protocol vectors
# (tests/vectors/proto.json) into a C header at configure time:
#   FWLV_NOW, FWLV_ROOT_KEY_HEX (acme/root), FWLV_OTHER_ROOT_KEY_HEX (globex/root), FWLV_IMAGE_SIZE, FWLV_IMAGE_SHA256_HEX,
#   FWLV_MANIFEST_110_HEX (lamp-1.1.0), FWLV_MANIFEST_120_HEX (lamp-1.2.0, every optional field),
#   fwlv_negative[]: the negative vectors of kind "manifest" {name, input hex, check, min_key_generation}.

function(fwl_agent_vectors json_file out_header)
  file(READ "${json_file}" json)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${json_file}")
  string(JSON now GET "${json}" times now)
  string(JSON nkeys LENGTH "${json}" keys)
  math(EXPR last "${nkeys} - 1")
  foreach(i RANGE ${last})
    string(JSON name GET "${json}" keys ${i} name)
    if(name STREQUAL "acme/root")
      string(JSON root GET "${json}" keys ${i} public)
    elseif(name STREQUAL "globex/root")
      string(JSON other GET "${json}" keys ${i} public)
    endif()
  endforeach()
  string(JSON size GET "${json}" image size)
  string(JSON sha GET "${json}" image sha256)
  string(JSON m110 GET "${json}" manifests 0 signed)
  string(JSON m110_name GET "${json}" manifests 0 name)
  string(JSON m120 GET "${json}" manifests 1 signed)
  string(JSON m120_name GET "${json}" manifests 1 name)
  if(NOT m110_name STREQUAL "lamp-1.1.0" OR NOT m120_name STREQUAL "lamp-1.2.0")
    message(FATAL_ERROR "unexpected manifests in ${json_file}")
  endif()
  set(neg "")
  string(JSON nneg LENGTH "${json}" negative)
  math(EXPR last "${nneg} - 1")
  set(count 0)
  foreach(i RANGE ${last})
    string(JSON kind GET "${json}" negative ${i} kind)
    if(kind STREQUAL "manifest")
      string(JSON name GET "${json}" negative ${i} name)
      string(JSON input GET "${json}" negative ${i} input)
      string(JSON expected GET "${json}" negative ${i} expected)
      string(JSON mkg ERROR_VARIABLE err GET "${json}" negative ${i} min_key_generation)
      if(err)
        set(mkg 0)
      endif()
      string(APPEND neg "    {\"${name}\", \"${input}\", \"${expected}\", ${mkg}u},\n")
      math(EXPR count "${count} + 1")
    endif()
  endforeach()
  file(WRITE "${out_header}.tmp"
"/* Generated from ${json_file} by firmware-c/tests/vectors.cmake. Do not edit. */
#ifndef FWL_AGENT_VECTORS_H
#define FWL_AGENT_VECTORS_H
#include <stdint.h>
#define FWLV_NOW UINT64_C(${now})
#define FWLV_ROOT_KEY_HEX \"${root}\"
#define FWLV_OTHER_ROOT_KEY_HEX \"${other}\"
#define FWLV_IMAGE_SIZE ${size}u
#define FWLV_IMAGE_SHA256_HEX \"${sha}\"
#define FWLV_MANIFEST_110_HEX \"${m110}\"
#define FWLV_MANIFEST_120_HEX \"${m120}\"
typedef struct { const char *name, *input, *check; unsigned min_key_generation; } fwlv_negative_t;
static const fwlv_negative_t fwlv_negative[] = {
${neg}};
#define FWLV_NEGATIVE_COUNT ${count}u
#endif
")
  configure_file("${out_header}.tmp" "${out_header}" COPYONLY)
endfunction()
