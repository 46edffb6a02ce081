# Lua scripts live as files (one atomic operation each) and are embedded at
# build time as C strings: hq_script_<name> in the generated scripts_gen.c,
# declared in common/scripts.h.
function(hq_embed_lua out files)
  set(body "/* Generated from the files in common/scripts by cmake/HqEmbed.cmake. Do not edit. */\n")
  foreach(f ${files})
    get_filename_component(name ${f} NAME_WE)
    file(READ ${f} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(APPEND body "const char hq_script_${name}[] = {${hex} 0};\n")
  endforeach()
  file(CONFIGURE OUTPUT ${out} CONTENT "${body}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${files})
endfunction()
