#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace phi3 {
namespace {

// Total order used everywhere: higher logit first, then lower id.
template <typename T>
bool Before(const T& a, const T& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

int32_t ArgMax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

// log(sum(exp(x - max))) + max over `logits`.
double LogSumExp(std::span<const float> logits) {
  float max = -std::numeric_limits<float>::infinity();
  for (float l : logits) max = std::max(max, l);
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  return std::log(sum) + max;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int vocab_size)
    : params_(params), vocab_size_(vocab_size), rng_(params.seed) {
  window_.reserve(kPenaltyLastN);
}

bool Sampler::PenaltiesActive() const {
  return params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
         params_.frequency_penalty != 0.0f;
}

void Sampler::Accept(int32_t token) {
  if (!PenaltiesActive()) return;
  if (static_cast<int>(window_.size()) < kPenaltyLastN) {
    window_.push_back(token);
  } else {
    int32_t& slot = window_[window_next_];
    auto it = window_counts_.find(slot);
    if (--it->second == 0) window_counts_.erase(it);
    slot = token;
    window_next_ = (window_next_ + 1) % kPenaltyLastN;
  }
  ++window_counts_[token];
}

void Sampler::ApplyPenalties(std::vector<float>& logits) const {
  for (const auto& [token, count] : window_counts_) {
    if (token < 0 || token >= vocab_size_) continue;
    float& l = logits[token];
    if (l <= 0.0f) {
      l *= params_.repetition_penalty;
    } else {
      l /= params_.repetition_penalty;
    }
    l -= static_cast<float>(count) * params_.frequency_penalty +
         static_cast<float>(count > 0) * params_.presence_penalty;
  }
}

double Sampler::NextUniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

float Sampler::LogProb(std::span<const float> logits, int32_t token) {
  return static_cast<float>(logits[token] - LogSumExp(logits));
}

std::vector<TokenLogprob> Sampler::TopLogProbs(std::span<const float> logits, int n) {
  n = std::min<int>(n, static_cast<int>(logits.size()));
  if (n <= 0) return {};
  struct Entry {
    int32_t id;
    float logit;
  };
  // Keep the n best in a small sorted array: n <= 20, so this is O(vocab * n)
  // worst case but O(vocab) in practice, with no allocation per element.
  std::vector<Entry> best;
  best.reserve(n + 1);
  for (size_t i = 0; i < logits.size(); ++i) {
    Entry e{static_cast<int32_t>(i), logits[i]};
    if (static_cast<int>(best.size()) == n && !Before(e, best.back())) continue;
    auto pos = std::upper_bound(best.begin(), best.end(), e,
                                [](const Entry& a, const Entry& b) { return Before(a, b); });
    best.insert(pos, e);
    if (static_cast<int>(best.size()) > n) best.pop_back();
  }
  const double lse = LogSumExp(logits);
  std::vector<TokenLogprob> out;
  out.reserve(n);
  for (const Entry& e : best) out.push_back({e.id, static_cast<float>(e.logit - lse)});
  return out;
}

int32_t Sampler::Sample(std::span<const float> logits, TokenEvent* event) {
  std::span<const float> work = logits;
  if (PenaltiesActive() && !window_counts_.empty()) {
    scratch_logits_.assign(logits.begin(), logits.end());
    ApplyPenalties(scratch_logits_);
    work = scratch_logits_;
  }

  int32_t chosen;
  if (params_.temperature <= 0.0f) {
    chosen = ArgMax(work);
  } else {
    candidates_.clear();
    for (size_t i = 0; i < work.size(); ++i) {
      candidates_.push_back({static_cast<int32_t>(i), work[i]});
    }
    auto before = [](const Candidate& a, const Candidate& b) { return Before(a, b); };
    bool sorted = false;
    if (params_.top_k > 0 && params_.top_k < static_cast<int>(candidates_.size())) {
      std::partial_sort(candidates_.begin(), candidates_.begin() + params_.top_k, candidates_.end(),
                        before);
      candidates_.resize(params_.top_k);
      sorted = true;
    }
    if (params_.top_p < 1.0f) {
      // Probabilities of the current candidates (llama.cpp's softmax before top_p).
      float max = -std::numeric_limits<float>::infinity();
      for (const Candidate& c : candidates_) max = std::max(max, c.logit);
      double sum = 0.0;
      for (const Candidate& c : candidates_) sum += std::exp(static_cast<double>(c.logit) - max);
      // Sort lazily: the nucleus is usually inside the best 256.
      size_t sorted_prefix = sorted ? candidates_.size() : 0;
      double cum = 0.0;
      size_t keep = candidates_.size();
      for (size_t i = 0; i < candidates_.size(); ++i) {
        if (i == sorted_prefix) {
          size_t grow = std::min(candidates_.size(), std::max<size_t>(256, 2 * sorted_prefix));
          std::partial_sort(candidates_.begin() + i, candidates_.begin() + grow, candidates_.end(),
                            before);
          sorted_prefix = grow;
        }
        cum += std::exp(static_cast<double>(candidates_[i].logit) - max) / sum;
        if (cum >= params_.top_p) {
          keep = i + 1;
          break;
        }
      }
      candidates_.resize(keep);
    }
    if (params_.min_p > 0.0f) {
      float max = -std::numeric_limits<float>::infinity();
      for (const Candidate& c : candidates_) max = std::max(max, c.logit);
      const float min_logit = max + std::log(params_.min_p);
      std::erase_if(candidates_, [&](const Candidate& c) { return c.logit < min_logit; });
    }
    // Temperature, then a draw from the softmax over what is left.
    float max = -std::numeric_limits<float>::infinity();
    for (const Candidate& c : candidates_) max = std::max(max, c.logit);
    double sum = 0.0;
    for (Candidate& c : candidates_) {
      c.logit =
          static_cast<float>(std::exp((static_cast<double>(c.logit) - max) / params_.temperature));
      sum += c.logit;
    }
    const double target = NextUniform() * sum;
    double cum = 0.0;
    chosen = candidates_.back().id;
    for (const Candidate& c : candidates_) {
      cum += c.logit;
      if (target < cum) {
        chosen = c.id;
        break;
      }
    }
  }

  if (event != nullptr) {
    if (params_.logprobs || params_.num_top_logprobs > 0) {
      event->logprob = LogProb(logits, chosen);
    }
    if (params_.num_top_logprobs > 0) {
      event->top_logprobs = TopLogProbs(logits, params_.num_top_logprobs);
    }
  }
  return chosen;
}

}  // namespace phi3
