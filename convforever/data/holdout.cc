#include "convforever/data/holdout.h"

namespace cf::data {

double HoldoutPosition(absl::string_view key) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  // splitmix64's finaliser: FNV alone leaves keys that differ in their last digit close together.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53;  // 53 bits: exact in a double, < 1
}

bool InHoldoutPart(absl::string_view key, double fraction, HoldoutPart part) {
  if (part == HoldoutPart::kAll) return true;
  const bool held_out = fraction > 0 && HoldoutPosition(key) < fraction;
  return part == HoldoutPart::kHeldOut ? held_out : !held_out;
}

const char* HoldoutPartName(HoldoutPart part) {
  switch (part) {
    case HoldoutPart::kAll: return "all";
    case HoldoutPart::kTraining: return "training";
    case HoldoutPart::kHeldOut: return "held-out";
  }
  return "?";
}

}  // namespace cf::data
