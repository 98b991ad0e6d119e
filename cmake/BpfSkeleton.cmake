# bpf_skeleton(NAME SOURCE): compiles SOURCE with clang -target bpf and generates
# NAME.skel.h with bpftool, so user space embeds the object (no .o at run time).
find_program(CLANG_BPF NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND uname -m OUTPUT_VARIABLE BPF_HOST_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
set(BPF_ARCH_INCLUDE /usr/include/${BPF_HOST_ARCH}-linux-gnu)
if(BPF_HOST_ARCH STREQUAL "x86_64")
  set(BPF_TARGET_ARCH x86)
else()
  set(BPF_TARGET_ARCH ${BPF_HOST_ARCH})
endif()
set(BPF_SKELETON_DIR ${CMAKE_BINARY_DIR}/skel)
file(MAKE_DIRECTORY ${BPF_SKELETON_DIR})

function(bpf_skeleton name source)
  set(obj ${BPF_SKELETON_DIR}/${name}.bpf.o)
  set(skel ${BPF_SKELETON_DIR}/${name}.skel.h)
  file(GLOB_RECURSE bpf_headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/*.h)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CLANG_BPF} -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -I${CMAKE_SOURCE_DIR}/bpf -I${BPF_ARCH_INCLUDE} -c ${source} -o ${obj}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${source} ${bpf_headers}
    COMMENT "BPF ${name}: compile and generate skeleton"
    VERBATIM)
  add_custom_target(${name}_skel DEPENDS ${skel})
endfunction()
