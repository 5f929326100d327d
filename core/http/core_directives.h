#pragma once
#include <portico/module.h>

#include "http/conf.h"

#include <string>

namespace portico {
const pt_directive *core_directives();
const char *ensure_http(pt_conf &cf);          // an implicit empty http{}
bool finish_http(pt_conf &cf, std::string &err); // merge levels, build lookups, postconfig
LocationConf *new_location(pt_conf &cf, LocationConf *parent);
const char *compile_value(std::string_view text, ComplexValue &out); // checks variables exist
} // namespace portico
