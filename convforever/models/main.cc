// `models`: prints the registry: name, parameters, GMACs at the native size and at 224.
#include <cstdio>

#include "convforever/models/registry.h"

int main() {
  std::printf("%-22s %12s %8s %14s %12s  %s\n", "name", "params", "native", "GMACs@native",
              "GMACs@224", "description");
  for (const cf::models::ModelInfo& m : cf::models::ListModels()) {
    std::printf("%-22s %12lld %8lld %14.4f %12.3f  %s\n", m.name.c_str(),
                static_cast<long long>(m.params), static_cast<long long>(m.native_size),
                m.gmacs_native, m.gmacs_224, m.description.c_str());
  }
  return 0;
}
