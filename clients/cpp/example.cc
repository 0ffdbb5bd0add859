// The smallest useful phi3.v1 client: stream a completion to stdout.
//   phi3_client_example HOST:PORT "prompt" [API_KEY]
#include <iostream>
#include <memory>

#include "grpcpp/grpcpp.h"
#include "proto/phi3/v1/phi3.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " HOST:PORT PROMPT [API_KEY]\n";
    return 2;
  }
  auto stub = phi3::v1::Phi3::NewStub(
      grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));

  phi3::v1::GenerateRequest request;
  request.set_prompt(argv[2]);
  request.mutable_sampling()->set_temperature(0);  // greedy
  request.mutable_stop()->set_max_tokens(32);

  grpc::ClientContext context;
  if (argc > 3) context.AddMetadata("authorization", std::string("Bearer ") + argv[3]);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));

  std::unique_ptr<grpc::ClientReader<phi3::v1::GenerateResponse>> reader =
      stub->Generate(&context, request);
  phi3::v1::GenerateResponse chunk;
  while (reader->Read(&chunk)) {
    std::cout << chunk.text() << std::flush;
    if (chunk.finish_reason() != phi3::v1::FINISH_REASON_UNSPECIFIED) {
      std::cout << "\n[" << phi3::v1::FinishReason_Name(chunk.finish_reason()) << ", "
                << chunk.usage().completion_tokens() << " tokens, $" << chunk.cost_usd() << "]\n";
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    std::cerr << "error " << status.error_code() << ": " << status.error_message() << "\n";
    return 1;
  }
  return 0;
}
