// The element type of the paged KV cache. Here, below the model and the
// engine, so that the model does not include the engine's public header.
#ifndef PHI3_ENGINE_COMMON_KV_CACHE_TYPE_H_
#define PHI3_ENGINE_COMMON_KV_CACHE_TYPE_H_

namespace phi3 {

enum class KvCacheType {
  kF16,   // llama.cpp's default cache type; what the conformance tests compare
  kQ8_0,  // half the bytes; llama.cpp's q8_0 cache (which needs flash attention there)
};

}  // namespace phi3

#endif  // PHI3_ENGINE_COMMON_KV_CACHE_TYPE_H_
