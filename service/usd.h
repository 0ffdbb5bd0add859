// Money amounts the service reports (cost_usd, spend counters, ledger
// reports) are rounded to whole nano-dollars, so that JSON and text show the
// amount rather than binary noise (2.2e-05, not 2.2000000000000003e-05).
#ifndef PHI3_SERVICE_USD_H_
#define PHI3_SERVICE_USD_H_

#include <cmath>

namespace phi3::service {

// `usd` rounded to a whole number of nano-dollars (1e-9 USD).
inline double RoundUsd(double usd) { return std::round(usd * 1e9) / 1e9; }

}  // namespace phi3::service

#endif  // PHI3_SERVICE_USD_H_
