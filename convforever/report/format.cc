#include "convforever/report/format.h"

#include <cmath>
#include <cstdio>

namespace cf::report {

std::string FormatSig(double value, int digits) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, value);
  std::string out = buf;
  // "1.5e+15" -> "1.5e15", "2e-05" -> "2e-5": shorter on axes.
  const size_t e = out.find('e');
  if (e != std::string::npos) {
    std::string mantissa = out.substr(0, e);
    std::string exponent = out.substr(e + 1);
    bool negative = exponent[0] == '-';
    if (exponent[0] == '+' || exponent[0] == '-') exponent.erase(0, 1);
    while (exponent.size() > 1 && exponent[0] == '0') exponent.erase(0, 1);
    out = mantissa + "e" + (negative ? "-" : "") + exponent;
  }
  return out;
}

std::string FormatSci(double value, int digits) {
  if (!std::isfinite(value)) return FormatSig(value, digits);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*e", digits > 1 ? digits - 1 : 0, value);
  std::string out = buf;
  const size_t e = out.find('e');
  std::string mantissa = out.substr(0, e);
  if (mantissa.find('.') != std::string::npos) {
    while (mantissa.back() == '0') mantissa.pop_back();
    if (mantissa.back() == '.') mantissa.pop_back();
  }
  return mantissa + "e" + std::to_string(std::stoi(out.substr(e + 1)));
}

std::string FormatSi(double value, int digits) {
  static const char* const kSuffix[] = {"k", "M", "G", "T", "P", "E"};
  const double magnitude = std::fabs(value);
  if (!std::isfinite(value) || magnitude < 1000) return FormatSig(value, digits);
  int index = -1;
  double scaled = value;
  while (std::fabs(scaled) >= 1000 && index < 5) {
    scaled /= 1000;
    ++index;
  }
  return FormatSig(scaled, digits) + kSuffix[index];
}

std::string FormatPercent(double fraction) {
  if (!std::isfinite(fraction)) return FormatSig(fraction);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f%%", 100.0 * fraction);
  return buf;
}

}  // namespace cf::report
