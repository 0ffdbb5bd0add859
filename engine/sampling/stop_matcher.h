// Finds stop strings in streamed text across token boundaries without ever
// releasing text that belongs to a stop string.
//
// Invariant: the held text never contains a complete stop string, and it is
// the shortest suffix of everything pushed that could still grow into one
// (the longest suffix that is a proper prefix of some stop string). Stop
// strings start at UTF-8 character boundaries, so released text is always
// complete UTF-8 when the input is.
//
// Thread safety: not thread-safe; one matcher per request.
#ifndef PHI3_ENGINE_SAMPLING_STOP_MATCHER_H_
#define PHI3_ENGINE_SAMPLING_STOP_MATCHER_H_

#include <string>
#include <string_view>
#include <vector>

namespace phi3 {

class StopMatcher {
 public:
  // Empty strings in `stop_strings` are ignored.
  explicit StopMatcher(std::vector<std::string> stop_strings);

  // Appends `text` and returns the text that can be released now. After a
  // match, returns "" and ignores further input; the text before the match
  // stays held (see TakeHeld).
  std::string Push(std::string_view text);

  // True once a stop string was found.
  bool matched() const { return matched_; }

  // Returns and clears the held text: at finish, everything not yet released
  // that precedes the stop string (or all of it when nothing matched).
  std::string TakeHeld();

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool matched_ = false;
};

}  // namespace phi3

#endif  // PHI3_ENGINE_SAMPLING_STOP_MATCHER_H_
