// CachingSource: a Source wrapper that keeps the encoded bytes of the samples it has fetched, up
// to a byte cap, and serves them from memory afterwards.
//
// For a data set read again and again unchanged, such as the evaluation set of remote (URL) JSONL
// data: the first pass downloads each sample once, later passes make no request. Only records
// with encoded bytes are kept (pixel sources already live in memory); failed fetches are not
// kept, so a later pass tries them again. When keeping a record would pass the cap, the cache
// stops growing (what it holds stays), logs that once, and the rest is fetched from the wrapped
// source at every pass. Sizes, keys, classes and exclusions are the wrapped source's. Fetch is
// thread-safe like every Source's; the wrapped source is fetched outside the lock.
#ifndef CONVFOREVER_DATA_CACHING_SOURCE_H_
#define CONVFOREVER_DATA_CACHING_SOURCE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "convforever/data/source.h"

namespace cf::data {

class CachingSource : public Source {
 public:
  // cap_bytes > 0: the most encoded bytes kept in memory.
  CachingSource(std::unique_ptr<Source> inner, int64_t cap_bytes);

  int64_t size() const override { return inner_->size(); }
  int num_classes() const override { return inner_->num_classes(); }
  std::vector<std::string> class_names() const override { return inner_->class_names(); }
  std::string SampleKey(int64_t i) const override { return inner_->SampleKey(i); }
  std::map<std::string, int64_t> excluded() const override { return inner_->excluded(); }
  std::vector<FetchResult> Fetch(absl::Span<const int64_t> indices) override;

  int64_t cached_samples() const;
  int64_t cached_bytes() const;
  bool full() const;  // a record did not fit under the cap

 private:
  std::unique_ptr<Source> inner_;
  const int64_t cap_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<int64_t, Record> cache_;  // source index -> its record
  int64_t bytes_ = 0;
  bool full_ = false;
};

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_CACHING_SOURCE_H_
