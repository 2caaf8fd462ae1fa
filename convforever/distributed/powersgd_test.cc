// PowerSGD's math in one process, through its GradientReducer interface on a world-1 communicator
// (collectives are identities, so the reduction is the rank-r compression of this rank's M):
// which tensors are compressed and batched, orthogonalisation, exactness on low-rank matrices,
// error feedback, state save/load. The 2-rank behaviour (equal to DDP at full rank, bytes,
// resume) is tested through the trainer in convforever/train/powersgd_train_test.cc.
#include "convforever/distributed/powersgd.h"

#include <cstdlib>
#include <limits>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "convforever/distributed/communicator.h"
#include "gtest/gtest.h"

namespace cf::distributed {
namespace {

std::unique_ptr<Communicator> OneRank() {
  auto comm = Communicator::Create(LaunchEnv{}, CommOptions{});
  EXPECT_TRUE(comm.ok()) << comm.status();
  return std::move(*comm);
}

PowerSgdOptions Compressing(int rank) {
  PowerSgdOptions o;
  o.rank = rank;
  o.start_iter = 0;
  return o;
}

// One bucket holding `shapes` back to back.
BucketLayout Layout(const std::vector<std::vector<int64_t>>& shapes) {
  BucketLayout layout;
  int64_t offset = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    layout.push_back({"t" + std::to_string(i), offset, shapes[i]});
    int64_t numel = 1;
    for (int64_t d : shapes[i]) numel *= d;
    offset += numel;
  }
  return layout;
}

// Runs one reduction of `flat` (a copy) and returns the result.
at::Tensor Reduce(PowerSgd& psgd, const at::Tensor& flat) {
  at::Tensor out = flat.clone();
  absl::Status s = psgd.ReduceAsync(0, out).Wait();
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

double MaxDiff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(PowerSgdMath, MatrixShapesAndWhatIsWorthCompressing) {
  EXPECT_EQ(MatrixShape({32, 1, 3, 3}), std::make_pair(int64_t{32}, int64_t{9}));
  EXPECT_EQ(MatrixShape({10, 128}), std::make_pair(int64_t{10}, int64_t{128}));
  EXPECT_EQ(MatrixShape({64}), std::make_pair(int64_t{0}, int64_t{0}));
  // 32 x 9 at rank 4: 288 elements against 2 x 4 x 41 = 328 -> not worth it; at rate 0 it is.
  EXPECT_FALSE(WorthCompressing(32, 9, 4, 2.0));
  EXPECT_TRUE(WorthCompressing(32, 9, 4, 0.0));
  EXPECT_TRUE(WorthCompressing(128, 512, 4, 2.0));
  // The rank is capped at min(n, m): a 3 x 1000 matrix at "rank 4" is rank 3.
  EXPECT_TRUE(WorthCompressing(3, 1000, 4, 0.5));
  EXPECT_FALSE(WorthCompressing(3, 1000, 4, 1.0));
  EXPECT_FALSE(WorthCompressing(0, 0, 4, 0.0));
}

void ExpectOrthonormalSpanning(const at::Tensor& q, const at::Tensor& original, double tol) {
  const int64_t r = q.size(1);
  EXPECT_LT(MaxDiff(at::mm(q.t(), q), at::eye(r, q.options())), tol);
  // Every original column lies in span(q): projecting onto it changes nothing.
  EXPECT_LT(MaxDiff(at::mm(q, at::mm(q.t(), original)), original), tol * original.abs().max().item<double>());
}

TEST(PowerSgdMath, OrthogonalisationGivesOrthonormalColumnsSpanningTheInput) {
  at::manual_seed(1);
  const at::Tensor p = at::randn({50, 4});
  at::Tensor qr = p.clone();
  OrthogonalizeColumns(qr, 0);
  ExpectOrthonormalSpanning(qr, p, 1e-5);
  at::Tensor gs = p.clone();
  GramSchmidt(gs, 1e-8);
  ExpectOrthonormalSpanning(gs, p, 1e-5);
  // bf16 goes through Gram-Schmidt (no LAPACK QR for 16-bit types).
  at::Tensor half = p.to(at::kBFloat16);
  OrthogonalizeColumns(half, 1e-8);
  EXPECT_LT(MaxDiff(at::mm(half.t().to(at::kFloat), half.to(at::kFloat)), at::eye(4)), 3e-2);

  // Dependent columns (rank 2 in 4 columns): QR still gives orthonormal columns spanning them.
  const at::Tensor low = at::mm(at::randn({50, 2}), at::randn({2, 4}));
  at::Tensor low_qr = low.clone();
  OrthogonalizeColumns(low_qr, 0);
  ExpectOrthonormalSpanning(low_qr, low, 1e-5);
  // A zero column stays finite under Gram-Schmidt thanks to epsilon.
  at::Tensor zero_col = p.clone();
  zero_col.select(1, 2).zero_();
  GramSchmidt(zero_col, 1e-8);
  EXPECT_TRUE(at::isfinite(zero_col).all().item<bool>());
}

TEST(PowerSgdReduce, LowRankMatrixIsReproducedExactly) {
  at::manual_seed(2);
  std::unique_ptr<Communicator> comm = OneRank();
  PowerSgd psgd(comm.get(), Compressing(4));
  psgd.SetBuckets({Layout({{40, 30}})});
  ASSERT_EQ(psgd.compressed_tensors(), 1);
  const at::Tensor m = at::mm(at::randn({40, 3}), at::randn({3, 30}));  // rank 3 <= r
  const at::Tensor out = Reduce(psgd, m.reshape(-1));
  EXPECT_LT(MaxDiff(out, m.reshape(-1)), 1e-5 * m.abs().max().item<double>());
  // A rank-6 matrix is not: rank 4 keeps its largest directions only.
  const at::Tensor m6 = at::mm(at::randn({40, 6}), at::randn({6, 30}));
  PowerSgd fresh(comm.get(), Compressing(4));
  fresh.SetBuckets({Layout({{40, 30}})});
  EXPECT_GT(MaxDiff(Reduce(fresh, m6.reshape(-1)), m6.reshape(-1)), 1e-2);
}

TEST(PowerSgdReduce, OneDimensionalAndSmallTensorsPassUncompressed) {
  at::manual_seed(3);
  std::unique_ptr<Communicator> comm = OneRank();
  PowerSgd psgd(comm.get(), Compressing(4));
  // bias [7], weight [40, 30], norm weight [5], a 3x3 matrix (9 < 2*3*6: not worth it).
  psgd.SetBuckets({Layout({{7}, {40, 30}, {5}, {3, 3}})});
  EXPECT_EQ(psgd.compressed_tensors(), 1);
  EXPECT_EQ(psgd.uncompressed_tensors(), 3);
  EXPECT_EQ(psgd.compressed_bytes_per_step(), 4 * 4 * (40 + 30));
  EXPECT_EQ(psgd.uncompressed_bytes_per_step(), 4 * (7 + 5 + 9));
  const at::Tensor flat = at::randn({7 + 1200 + 5 + 9});
  const at::Tensor out = Reduce(psgd, flat);
  for (auto [offset, numel] : {std::pair<int64_t, int64_t>{0, 7}, {1207, 5}, {1212, 9}}) {
    EXPECT_TRUE(at::equal(out.narrow(0, offset, numel), flat.narrow(0, offset, numel)))
        << "offset " << offset;
  }
  EXPECT_FALSE(at::equal(out.narrow(0, 7, 1200), flat.narrow(0, 7, 1200)));  // rank 4 of a random 40x30
}

TEST(PowerSgdReduce, PlainAllReduceBeforeStartIter) {
  std::unique_ptr<Communicator> comm = OneRank();
  PowerSgdOptions o = Compressing(2);
  o.start_iter = 2;
  PowerSgd psgd(comm.get(), o);
  psgd.SetBuckets({Layout({{40, 30}})});
  const at::Tensor flat = at::randn({1200});
  EXPECT_TRUE(at::equal(Reduce(psgd, flat), flat));
  EXPECT_TRUE(at::equal(Reduce(psgd, flat), flat));
  EXPECT_FALSE(at::equal(Reduce(psgd, flat), flat));  // the third step compresses
}

// Sum over steps of what was applied, against the sum of the true gradients, for a constant
// full-rank gradient G compressed at rank 2.
double Deficit(bool error_feedback, int steps) {
  at::manual_seed(4);
  const at::Tensor g = at::randn({30, 20});
  std::unique_ptr<Communicator> comm = OneRank();
  PowerSgdOptions o = Compressing(2);
  o.use_error_feedback = error_feedback;
  PowerSgd psgd(comm.get(), o);
  psgd.SetBuckets({Layout({{30, 20}})});
  at::Tensor applied = at::zeros({600});
  for (int t = 0; t < steps; ++t) applied += Reduce(psgd, g.reshape(-1));
  return (applied - steps * g.reshape(-1)).norm().item<double>() / g.norm().item<double>();
}

// Error feedback: applied_t = g_t + e_{t-1} - e_t, so the applied sum trails the gradient sum by
// the last residual only, which stays bounded; without it the deficit grows with every step.
TEST(PowerSgdReduce, ErrorFeedbackTracksTheSumOfGradients) {
  const double ef_30 = Deficit(true, 30), ef_90 = Deficit(true, 90);
  const double plain_30 = Deficit(false, 30), plain_90 = Deficit(false, 90);
  EXPECT_LT(ef_90, 1.5 * ef_30 + 1.0) << ef_30 << " " << ef_90;   // bounded
  EXPECT_GT(plain_90, 2.5 * plain_30) << plain_30 << " " << plain_90;  // linear growth
  EXPECT_LT(ef_90, plain_90 / 10) << ef_90 << " " << plain_90;
}

TEST(PowerSgdState, SavedStateContinuesIdentically) {
  at::manual_seed(5);
  std::unique_ptr<Communicator> comm = OneRank();
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp ? tmp : "/tmp") + "/powersgd_state";
  std::filesystem::create_directories(dir);
  std::vector<at::Tensor> grads;
  for (int t = 0; t < 6; ++t) grads.push_back(at::randn({7 + 1200}));
  const std::vector<BucketLayout> layout = {Layout({{7}, {40, 30}})};

  PowerSgd straight(comm.get(), Compressing(3));
  straight.SetBuckets(layout);
  std::vector<at::Tensor> expected;
  for (int t = 0; t < 6; ++t) {
    expected.push_back(Reduce(straight, grads[t]));
    if (t == 2) {
      ASSERT_TRUE(straight.SaveState(dir).ok());
    }
  }
  PowerSgd resumed(comm.get(), Compressing(3));
  resumed.SetBuckets(layout);
  ASSERT_TRUE(resumed.LoadState(dir).ok());
  for (int t = 3; t < 6; ++t) EXPECT_TRUE(at::equal(Reduce(resumed, grads[t]), expected[t])) << t;

  // Without the state (error and warm-start Q lost) the steps differ: the state matters.
  PowerSgd amnesiac(comm.get(), Compressing(3));
  amnesiac.SetBuckets(layout);
  amnesiac.RestartAt(3);
  EXPECT_FALSE(at::equal(Reduce(amnesiac, grads[3]), expected[3]));

  PowerSgd other_rank(comm.get(), Compressing(2));
  other_rank.SetBuckets(layout);
  absl::Status s = other_rank.LoadState(dir);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("--powersgd_rank=3"), std::string::npos) << s;
  PowerSgd nothing(comm.get(), Compressing(3));
  nothing.SetBuckets(layout);
  EXPECT_EQ(nothing.LoadState(dir + "/nowhere").code(), absl::StatusCode::kNotFound);
}

TEST(PowerSgdReduce, NonFiniteGradientDoesNotPoisonLaterSteps) {
  at::manual_seed(6);
  std::unique_ptr<Communicator> comm = OneRank();
  PowerSgd psgd(comm.get(), Compressing(2));
  psgd.SetBuckets({Layout({{30, 20}})});
  Reduce(psgd, at::randn({600}));
  at::Tensor bad = at::randn({600});
  bad[17] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(at::isfinite(Reduce(psgd, bad)).all().item<bool>());
  EXPECT_TRUE(at::isfinite(Reduce(psgd, at::randn({600}))).all().item<bool>());
}

}  // namespace
}  // namespace cf::distributed
