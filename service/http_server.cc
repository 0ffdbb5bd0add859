#include "service/http_server.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "service/openai_api.h"

namespace phi3::service {
namespace {

using nlohmann::json;

// How long a response waits for output before it writes a heartbeat, which
// is also how a vanished client is noticed.
constexpr absl::Duration kHeartbeat = absl::Seconds(1);

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

void SendError(httplib::Response& res, const absl::Status& status) {
  res.status = openai::HttpStatusOf(status);
  if (res.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(Dump(openai::ErrorBody(status)), "application/json");
}

// Splits "HOST:PORT" or "[V6]:PORT".
absl::Status SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), port) ||
      *port < 0 || *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen must be HOST:PORT, got \"", address, "\""));
  }
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return absl::OkStatus();
}

// Carries the generation's notify (engine thread) to the response's content
// provider (an HTTP worker thread).
class Wakeup {
 public:
  void Signal() {
    absl::MutexLock lock(&mu_);
    ready_ = true;
  }
  // True when signalled since the last call, false after `timeout`.
  bool Wait(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&ready_), timeout);
    const bool was_ready = ready_;
    ready_ = false;
    return was_ready;
  }

 private:
  absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
};

// One response being produced; owned by its content provider and releaser.
struct Exchange {
  openai::Request request;
  openai::ResponseHeader header;
  std::shared_ptr<Wakeup> wakeup = std::make_shared<Wakeup>();
  std::shared_ptr<Generation> generation;
  std::string text;    // non-streamed responses collect all text
  bool first = true;   // no chunk sent yet
};

std::string Sse(const json& event) { return absl::StrCat("data: ", Dump(event), "\n\n"); }

// The bytes to send for `chunk`, in the response's format.
std::string Render(Exchange& x, const Generation::Chunk& chunk) {
  const v1::GenerateResponse& m = chunk.message;
  if (!x.request.stream) {
    x.text += m.text();
    if (!chunk.last) return "";
    if (!chunk.status.ok()) return Dump(openai::ErrorBody(chunk.status));
    return Dump(openai::CompletionResponse(x.request.endpoint, x.header, x.text, m));
  }
  if (chunk.last && !chunk.status.ok()) {
    return Sse(openai::ErrorBody(chunk.status)) + "data: [DONE]\n\n";
  }
  std::string out;
  if (!m.text().empty() || x.first) {
    out += Sse(openai::StreamChunk(x.request, x.header, m.text(), x.first, nullptr));
    x.first = false;
  }
  if (chunk.last) {
    out += Sse(openai::StreamChunk(x.request, x.header, "", false, &m));
    if (x.request.include_usage) out += Sse(openai::UsageChunk(x.request, x.header, m.usage()));
    out += "data: [DONE]\n\n";
  }
  return out;
}

// Called by httplib until it returns false or calls sink.done().
bool Provide(Exchange& x, httplib::DataSink& sink) {
  std::optional<Generation::Chunk> chunk = x.generation->Take();
  if (!chunk.has_value()) {
    if (x.wakeup->Wait(kHeartbeat)) return true;
    const char* heartbeat = x.request.stream ? ": keep-alive\n\n" : " ";
    if (sink.write(heartbeat, std::strlen(heartbeat))) return true;
    x.generation->ClientGone();
    return false;
  }
  const std::string out = Render(x, *chunk);
  if (!out.empty() && !sink.write(out.data(), out.size())) {
    x.generation->ClientGone();
    return false;
  }
  if (chunk->last) sink.done();
  return true;
}

std::optional<absl::string_view> AuthorizationOf(const httplib::Request& req) {
  if (!req.has_header("Authorization")) return std::nullopt;
  // Valid until the request is destroyed, after the handler returns.
  auto it = req.headers.find("Authorization");
  return absl::string_view(it->second);
}

}  // namespace

HttpServer::HttpServer(GenerationService* core, HttpOptions options)
    : core_(core), options_(std::move(options)) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(GenerationService* core,
                                                              HttpOptions options) {
  std::string host;
  int port = 0;
  if (absl::Status s = SplitHostPort(options.listen, &host, &port); !s.ok()) return s;
  std::unique_ptr<HttpServer> http(new HttpServer(core, std::move(options)));
  const HttpOptions& o = http->options_;
  if (o.tls_cert.empty()) {
    http->server_ = std::make_unique<httplib::Server>();
  } else {
    auto tls = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!tls->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot use --tls-cert ", o.tls_cert, " / --tls-key ", o.tls_key, " for HTTPS"));
    }
    http->server_ = std::move(tls);
  }
  httplib::Server& server = *http->server_;
  // Not httplib's default SO_REUSEPORT, which lets a second server share a
  // port that is in use.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  const int num_threads = o.num_threads;
  server.new_task_queue = [num_threads] { return new httplib::ThreadPool(num_threads); };
  server.set_payload_max_length(8 << 20);
  http->Route();
  errno = 0;
  const bool bound = port == 0 ? (port = server.bind_to_any_port(host)) > 0
                               : server.bind_to_port(host, port);
  if (!bound) {
    const int error = errno;
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot listen for HTTP on ", o.listen, ": ",
        error == EADDRINUSE ? "address already in use"
                            : (error != 0 ? std::strerror(error) : "cannot bind")));
  }
  http->port_ = port;
  http->thread_ = std::thread([&server] { server.listen_after_bind(); });
  // Stop() is only safe once the loop runs.
  for (int i = 0; i < 1000 && !server.is_running(); ++i) absl::SleepFor(absl::Milliseconds(1));
  return http;
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

absl::StatusOr<Caller> HttpServer::Admit(const httplib::Request& req) const {
  if (req.get_header_value_count("Authorization") > 1) {
    return absl::UnauthenticatedError("more than one Authorization header");
  }
  return core_->Admit(AuthorizationOf(req));
}

void HttpServer::Route() {
  const std::string model = options_.model_id;
  const int64_t created = absl::ToUnixSeconds(absl::Now());
  httplib::Server& server = *server_;

  server.Get("/v1/models", [this, model, created](const httplib::Request& req,
                                                  httplib::Response& res) {
    if (absl::Status s = Admit(req).status(); !s.ok()) {
      SendError(res, s);
      return;
    }
    res.set_content(Dump(openai::ModelList(model, created)), "application/json");
  });
  server.Get(R"(/v1/models/(.+))", [this, model, created](const httplib::Request& req,
                                                          httplib::Response& res) {
    if (absl::Status s = Admit(req).status(); !s.ok()) {
      SendError(res, s);
      return;
    }
    if (req.matches[1] != model) {
      SendError(res, absl::NotFoundError(absl::StrCat("model \"", req.matches[1].str(),
                                                      "\" is not served; this server has \"",
                                                      model, "\"")));
      return;
    }
    res.set_content(Dump(openai::ModelObject(model, created)), "application/json");
  });

  auto generate = [this, model](openai::Endpoint endpoint) {
    return [this, model, endpoint](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<Caller> caller = Admit(req);
      if (!caller.ok()) {
        core_->Reject("unauthenticated", caller.status());
        SendError(res, caller.status());
        return;
      }
      absl::StatusOr<openai::Request> parsed = openai::ParseRequest(endpoint, req.body);
      if (!parsed.ok()) {
        core_->Reject(caller->tenant, parsed.status());
        SendError(res, parsed.status());
        return;
      }
      auto x = std::make_shared<Exchange>();
      x->request = *std::move(parsed);
      x->header = {"", absl::ToUnixSeconds(absl::Now()), model};
      Generation::Notify notify = [wakeup = x->wakeup] { wakeup->Signal(); };
      const Generation::Call call{*caller, "http"};
      absl::StatusOr<std::shared_ptr<Generation>> generation =
          endpoint == openai::Endpoint::kCompletions
              ? core_->Start(call, x->request.generate, notify)
              : core_->Start(call, x->request.chat, notify);
      if (!generation.ok()) {
        SendError(res, generation.status());
        return;
      }
      x->generation = *std::move(generation);
      x->header.id = absl::StrCat(endpoint == openai::Endpoint::kCompletions ? "cmpl-" : "chatcmpl-",
                                  x->generation->request_id());
      if (x->request.stream) res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          x->request.stream ? "text/event-stream" : "application/json",
          [x](size_t, httplib::DataSink& sink) { return Provide(*x, sink); },
          [x](bool success) {
            if (!success) x->generation->ClientGone();
          });
    };
  };
  server.Post("/v1/completions", generate(openai::Endpoint::kCompletions));
  server.Post("/v1/chat/completions", generate(openai::Endpoint::kChatCompletions));

  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    SendError(res, res.status == 404
                       ? absl::NotFoundError(absl::StrCat("no such endpoint: ", req.method, " ",
                                                          req.path))
                       : absl::InvalidArgumentError(absl::StrCat("HTTP status ", res.status)));
    return httplib::Server::HandlerResponse::Handled;
  }));
}

}  // namespace phi3::service
