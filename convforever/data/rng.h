// Small, platform-independent random numbers for data pipelines.
//
// Everything random in convforever/data (shuffles, crops, flips, mixup) draws from an Rng seeded by
// a hash of integers such as (seed, epoch, sample index). The generator and every distribution
// are implemented here rather than taken from <random>, whose distributions are
// implementation-defined: the same seed must give the same batches on every machine, which is
// what exact resume and cross-rank agreement rely on. An Rng is a value; not thread-safe, cheap
// to create (one per sample).
#ifndef CONVFOREVER_DATA_RNG_H_
#define CONVFOREVER_DATA_RNG_H_

#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace cf::data {

// SplitMix64 finalizer: a bijective 64-bit mixer (Steele et al., "Fast splittable pseudorandom
// number generators", OOPSLA 2014).
inline uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Hashes a list of integers into one seed; order matters.
inline uint64_t SeedFrom(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x243F6A8885A308D3ull;
  for (uint64_t p : parts) h = Mix64(h ^ Mix64(p));
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t NextU64() { return Mix64(state_ += 0x9E3779B97F4A7C15ull); }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return (NextU64() >> 11) * (1.0 / 9007199254740992.0); }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n); n > 0. Lemire's multiply-shift (bias < n / 2^64, negligible).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(NextU64()) * n) >> 64);
  }
  // Uniform integer in [lo, hi] inclusive.
  int64_t IntIn(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Below(hi - lo + 1)); }
  bool Bernoulli(double p) { return Uniform() < p; }
  // Standard normal (Box-Muller; one value per call for simplicity).
  double Normal() {
    double u1 = Uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * Uniform());
  }
  // Gamma(shape, 1) by Marsaglia & Tsang (2000), with the shape < 1 boost.
  double Gamma(double shape) {
    if (shape < 1.0) return Gamma(shape + 1.0) * std::pow(Uniform() + 1e-300, 1.0 / shape);
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = Normal(), v = 1.0 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      const double u = Uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u + 1e-300) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }
  // Beta(a, b) from two gammas.
  double Beta(double a, double b) {
    const double x = Gamma(a), y = Gamma(b);
    return x / (x + y);
  }

 private:
  uint64_t state_;
};

}  // namespace cf::data

#endif  // CONVFOREVER_DATA_RNG_H_
