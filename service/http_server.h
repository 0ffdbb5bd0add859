// The OpenAI-compatible HTTP API (cpp-httplib), over the same
// GenerationService as gRPC: same API keys (Authorization: Bearer KEY),
// tenants, validation, limits, metrics and drain.
//
//   POST /v1/completions, POST /v1/chat/completions   JSON or SSE (stream)
//   GET  /v1/models, GET /v1/models/{id}
//
// A client that disconnects cancels its request: writes fail once the peer
// is gone, and while no token is due the response sends a heartbeat every
// second (an SSE comment, or a space before the JSON body, which JSON
// allows), so a vanished client is noticed within about two seconds.
//
// Thread safety: Start/port/Stop from one thread; handlers run on the
// server's own thread pool.
#ifndef PHI3_SERVICE_HTTP_SERVER_H_
#define PHI3_SERVICE_HTTP_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "service/generation_service.h"

namespace httplib {
class Server;
struct Request;
}

namespace phi3::service {

struct HttpOptions {
  std::string listen;    // HOST:PORT; port 0 picks a free one
  std::string tls_cert;  // PEM files; both set = HTTPS
  std::string tls_key;
  std::string model_id;  // the name /v1/models lists and responses carry
  int num_threads = 32;  // connections served at once (others wait)
};

class HttpServer {
 public:
  // Binds and starts serving. FailedPrecondition when the address is in use
  // or cannot be bound, InvalidArgument for a bad address or TLS files.
  // `core` must outlive the server.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(GenerationService* core,
                                                           HttpOptions options);
  ~HttpServer();  // Stop()

  int port() const { return port_; }
  // Stops accepting, closes connections and joins the threads.
  void Stop();

 private:
  HttpServer(GenerationService* core, HttpOptions options);
  void Route();
  // The caller of a request (one Authorization header at most).
  absl::StatusOr<Caller> Admit(const httplib::Request& req) const;

  GenerationService* const core_;
  const HttpOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace phi3::service

#endif  // PHI3_SERVICE_HTTP_SERVER_H_
