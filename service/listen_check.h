// Why a listening address cannot be used, for one-line start-up errors: gRPC
// and prometheus-cpp only report that listening failed, not why.
#ifndef PHI3_SERVICE_LISTEN_CHECK_H_
#define PHI3_SERVICE_LISTEN_CHECK_H_

#include <string>

namespace phi3::service {

// Binds a TCP socket to `address` ("HOST:PORT", "[V6]:PORT") and releases it.
// Returns the reason binding fails ("address already in use", "cannot
// resolve host ...", "not HOST:PORT"), or "the address is free but the
// server could not use it" when binding works.
std::string WhyCannotListen(const std::string& address);

}  // namespace phi3::service

#endif  // PHI3_SERVICE_LISTEN_CHECK_H_
