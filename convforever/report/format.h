// Number formatting shared by the page, the plots' ticks and legends. Pure; thread-safe.
#ifndef CONVFOREVER_REPORT_FORMAT_H_
#define CONVFOREVER_REPORT_FORMAT_H_

#include <string>

namespace cf::report {

// `digits` significant digits, plain or scientific as %g picks ("0.0123", "1.5e+15" -> "1.5e15").
std::string FormatSig(double value, int digits = 4);

// Scientific with at most `digits` significant digits and no trailing zeros: 1e-4 -> "1e-4",
// 2.50e15 -> "2.5e15".
std::string FormatSci(double value, int digits = 3);

// Large counts with a suffix: 1234 -> "1.23k", 2.5e6 -> "2.5M", 3e9 -> "3G", 4e15 -> "4P";
// below 1000 as FormatSig.
std::string FormatSi(double value, int digits = 3);

// A fraction as a percentage: 0.8123 -> "81.23%".
std::string FormatPercent(double fraction);

}  // namespace cf::report

#endif  // CONVFOREVER_REPORT_FORMAT_H_
