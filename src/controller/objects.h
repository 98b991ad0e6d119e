// What an apply or delete carries: the parsed documents with their typed objects.
#pragma once

#include <utility>
#include <vector>

#include "manifest/document.h"
#include "manifest/object.h"

namespace pilus::controller {

using Objects = std::vector<std::pair<manifest::Document, manifest::Object>>;

}  // namespace pilus::controller
