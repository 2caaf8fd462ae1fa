// Every source against real files on disk, including each bad input the issue lists.
#include "convforever/data/source.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "convforever/data/decode.h"
#include "convforever/data/test_util.h"

namespace cf::data {
namespace {

using ::cf::data::testing::IdxBytes;
using ::cf::data::testing::PatternImage;
using ::cf::data::testing::TempDir;
using ::cf::data::testing::WriteFile;
using ::cf::data::testing::WriteGzipFile;

bool Contains(const absl::Status& s, const std::string& what) {
  return std::string(s.message()).find(what) != std::string::npos;
}

Record FetchOne(Source& s, int64_t i) {
  auto r = s.Fetch({i});
  EXPECT_TRUE(r[0].record.ok()) << r[0].record.status();
  return r[0].record.ok() ? *r[0].record : Record();
}

TEST(IdxSourceTest, ReadsDebianFashionMnist) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  DatasetSpec spec{"idx", dir};
  spec.split = "test";
  auto src = OpenSource(spec);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ((*src)->size(), 10000);
  EXPECT_EQ((*src)->num_classes(), 10);
  Record r = FetchOne(**src, 0);
  EXPECT_EQ(r.image.h, 28);
  EXPECT_EQ(r.image.w, 28);
  EXPECT_EQ(r.image.c, 1);
  EXPECT_EQ(r.label, 9);  // the first Fashion-MNIST test image is an ankle boot
  EXPECT_TRUE((*src)->class_names().empty());  // plain IDX (MNIST digits, ...) names no classes
  spec.kind = "fashion_mnist";
  auto fashion = OpenSource(spec);
  ASSERT_TRUE(fashion.ok()) << fashion.status();
  ASSERT_EQ((*fashion)->class_names().size(), 10u);
  EXPECT_EQ((*fashion)->class_names()[0], "T-shirt/top");
  EXPECT_EQ((*fashion)->class_names()[FetchOne(**fashion, 0).label], "Ankle boot");
}

TEST(IdxSourceTest, RawAndGzipAgree) {
  const std::string dir = TempDir("idx_ok");
  std::vector<uint8_t> px(3 * 4 * 5), labels = {2, 0, 1};
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i);
  WriteFile(dir + "/raw/train-images-idx3-ubyte", IdxBytes({3, 4, 5}, px));
  WriteFile(dir + "/raw/train-labels-idx1-ubyte", IdxBytes({3}, labels));
  WriteGzipFile(dir + "/train-images-idx3-ubyte.gz", IdxBytes({3, 4, 5}, px));
  WriteGzipFile(dir + "/train-labels-idx1-ubyte.gz", IdxBytes({3}, labels));
  for (const std::string& d : {dir + "/raw", dir}) {
    auto src = OpenSource({"idx", d});
    ASSERT_TRUE(src.ok()) << src.status();
    ASSERT_EQ((*src)->size(), 3);
    Record r = FetchOne(**src, 1);
    EXPECT_EQ(r.label, 0);
    EXPECT_EQ(r.image.h, 4);
    EXPECT_EQ(r.image.w, 5);
    EXPECT_EQ(r.image.pixels[0], 20);
  }
}

TEST(IdxSourceTest, TruncatedFileNamesFileAndExpectedSize) {
  const std::string dir = TempDir("idx_trunc");
  std::vector<uint8_t> px(3 * 4 * 5, 7), labels = {2, 0, 1};
  std::string images = IdxBytes({3, 4, 5}, px);
  WriteFile(dir + "/train-images-idx3-ubyte", images.substr(0, images.size() - 9));
  WriteFile(dir + "/train-labels-idx1-ubyte", IdxBytes({3}, labels));
  auto src = OpenSource({"idx", dir});
  ASSERT_FALSE(src.ok());
  EXPECT_TRUE(Contains(src.status(), "train-images-idx3-ubyte")) << src.status();
  EXPECT_TRUE(Contains(src.status(), "expected 76 bytes")) << src.status();
  // A truncated gzip stream is also an error naming the file.
  const std::string gz = TempDir("idx_trunc_gz");
  WriteGzipFile(gz + "/x.gz", std::string(100000, 'a'));
  std::string bytes = *ReadFile(gz + "/x.gz");
  WriteFile(gz + "/train-images-idx3-ubyte.gz", bytes.substr(0, bytes.size() / 2));
  WriteFile(gz + "/train-labels-idx1-ubyte", IdxBytes({3}, labels));
  auto src2 = OpenSource({"idx", gz});
  ASSERT_FALSE(src2.ok());
  EXPECT_TRUE(Contains(src2.status(), "train-images-idx3-ubyte.gz")) << src2.status();
  // Missing files: a clear error at start.
  auto missing = OpenSource({"idx", TempDir("idx_empty")});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status(), "train-images-idx3-ubyte")) << missing.status();
}

// An IDX header with the given dims (each a full uint32) and `payload` bytes after it.
std::string IdxHeader(const std::vector<uint32_t>& dims, size_t payload) {
  std::string out = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((d >> shift) & 0xFF));
  }
  return out + std::string(payload, '\x01');
}

TEST(IdxSourceTest, ParseIdxPromisesElementsThatFitTheInput) {
  auto ok = ParseIdx(IdxBytes({2, 3}, {1, 2, 3, 4, 5, 6}), "mem");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ok->header_bytes, 12);
  EXPECT_EQ(ok->num_elements, 6);
  auto empty = ParseIdx(IdxHeader({0, 0xFFFFFFFF, 0xFFFFFFFF}, 0), "mem");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->num_elements, 0);
  EXPECT_FALSE(ParseIdx(IdxHeader({2, 3}, 5), "short.idx").ok());
  EXPECT_FALSE(ParseIdx(std::string("\0\0\x08", 3), "mem").ok());
  EXPECT_FALSE(ParseIdx(IdxHeader({1, 2, 3, 4, 5}, 120), "mem").ok());  // at most 4 dims
}

// The review's finding: the product of the dims was formed before the size check, so dims whose
// product overflows int64 passed it and the source read far past the end of the file.
TEST(IdxSourceTest, DimsWhoseProductOverflowsAreAnErrorNotAnOverread) {
  auto parsed = ParseIdx(IdxHeader({0xFFFFFFFF, 0xFFFFFFFF}, 8), "huge.idx");
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(Contains(parsed.status(), "huge.idx")) << parsed.status();
  EXPECT_TRUE(Contains(parsed.status(), "4294967295x4294967295")) << parsed.status();
  const std::string dir = TempDir("idx_overflow");
  WriteFile(dir + "/train-images-idx3-ubyte", IdxHeader({1, 0xFFFFFFFF, 0xFFFFFFFF}, 4));
  WriteFile(dir + "/train-labels-idx1-ubyte", IdxHeader({1}, 1));
  auto src = OpenSource({"idx", dir});
  ASSERT_FALSE(src.ok());
  EXPECT_TRUE(Contains(src.status(), "train-images-idx3-ubyte")) << src.status();
}

// A zero dim makes the product 0 whatever the others are: those must still be image sizes.
TEST(IdxSourceTest, ImageDimsMustBePositiveSidesAndOneOrThreeChannels) {
  const std::string dir = TempDir("idx_dims");
  WriteFile(dir + "/train-labels-idx1-ubyte", IdxHeader({1}, 1));
  for (const auto& dims : std::vector<std::vector<uint32_t>>{
           {1, 0, 0xFFFFFFFF}, {1, 0x80000000, 0}, {1, 2, 2, 2}, {1, 2, 2, 0}, {1, 2}}) {
    WriteFile(dir + "/train-images-idx3-ubyte", IdxHeader(dims, 64));
    auto src = OpenSource({"idx", dir});
    EXPECT_FALSE(src.ok()) << "dims " << dims.size();
    if (!src.ok()) {
      EXPECT_TRUE(Contains(src.status(), "train-images-idx3-ubyte")) << src.status();
    }
  }
  WriteFile(dir + "/train-images-idx3-ubyte", IdxHeader({1, 2, 2, 3}, 12));
  auto rgb = OpenSource({"idx", dir});
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_EQ(FetchOne(**rgb, 0).image.c, 3);
}

TEST(ClassListTest, ParseClassListStripsSkipsCommentsAndRejectsDuplicates) {
  auto names = ParseClassList("  cat \r\n\n# not a class\ndog\n", "mem");
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, (std::vector<std::string>{"cat", "dog"}));
  auto dup = ParseClassList("cat\ndog\ncat\r\n", "classes.txt");
  ASSERT_FALSE(dup.ok());
  EXPECT_TRUE(Contains(dup.status(), "classes.txt:3")) << dup.status();
  EXPECT_FALSE(ParseClassList(" \n# only comments\n", "mem").ok());
}

TEST(CifarSourceTest, Cifar10And100RecordsAndTruncation) {
  const std::string dir = TempDir("cifar");
  std::string rec10, rec100;
  for (int i = 0; i < 4; ++i) {
    std::string px(3072, '\0');
    for (int p = 0; p < 1024; ++p) { px[p] = 10; px[1024 + p] = 20; px[2048 + p] = static_cast<char>(i); }
    rec10 += std::string(1, static_cast<char>(i)) + px;
    rec100 += std::string(1, static_cast<char>(i % 20)) + std::string(1, static_cast<char>(50 + i)) + px;
  }
  for (int b = 1; b <= 5; ++b) WriteFile(absl::StrCat(dir, "/c10/data_batch_", b, ".bin"), rec10);
  WriteFile(dir + "/c10/test_batch.bin", rec10);
  WriteFile(dir + "/c100/train.bin", rec100);
  auto c10 = OpenSource({"cifar10", dir + "/c10"});
  ASSERT_TRUE(c10.ok()) << c10.status();
  EXPECT_EQ((*c10)->size(), 20);
  Record r = FetchOne(**c10, 3);
  EXPECT_EQ(r.label, 3);
  EXPECT_EQ(r.image.at(5, 5, 0), 10);  // planar CHW became interleaved HWC
  EXPECT_EQ(r.image.at(5, 5, 1), 20);
  EXPECT_EQ(r.image.at(5, 5, 2), 3);
  DatasetSpec fine{"cifar100", dir + "/c100"};
  auto c100 = OpenSource(fine);
  ASSERT_TRUE(c100.ok()) << c100.status();
  EXPECT_EQ((*c100)->num_classes(), 100);
  EXPECT_EQ(FetchOne(**c100, 2).label, 52);
  fine.cifar100_labels = "coarse";
  EXPECT_EQ(FetchOne(**OpenSource(fine), 2).label, 2);
  EXPECT_TRUE((*c10)->class_names().empty());  // no label-name file beside the batches
  // The archives' label-name files name the classes; one with the wrong count is an error.
  WriteFile(dir + "/c10/batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n");
  auto named = OpenSource({"cifar10", dir + "/c10"});
  ASSERT_TRUE(named.ok()) << named.status();
  ASSERT_EQ((*named)->class_names().size(), 10u);
  EXPECT_EQ((*named)->class_names()[9], "truck");
  WriteFile(dir + "/c100/coarse_label_names.txt", "only\ntwo\n");
  auto short_list = OpenSource(fine);
  ASSERT_FALSE(short_list.ok());
  EXPECT_TRUE(Contains(short_list.status(), "coarse_label_names.txt")) << short_list.status();
  WriteFile(dir + "/c10/data_batch_3.bin", rec10.substr(0, rec10.size() - 100));
  auto bad = OpenSource({"cifar10", dir + "/c10"});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status(), "data_batch_3.bin")) << bad.status();
  EXPECT_TRUE(Contains(bad.status(), "expected 12292 bytes")) << bad.status();
}

std::string Jpeg(int seed) { return *EncodeJpeg(PatternImage(40, 50, 3, seed), 90); }

TEST(FolderSourceTest, ClassesFromSubfoldersAndMissingFolder) {
  const std::string dir = TempDir("folder");
  WriteFile(dir + "/cat/a.jpg", Jpeg(1));
  WriteFile(dir + "/cat/b.png", *EncodePng(PatternImage(8, 8, 3, 1)));
  WriteFile(dir + "/dog/c.JPEG", Jpeg(2));
  WriteFile(dir + "/dog/notes.txt", "ignored");
  auto src = OpenSource({"folder", dir});
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ((*src)->size(), 3);
  EXPECT_EQ((*src)->num_classes(), 2);
  EXPECT_EQ((*src)->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(FetchOne(**src, 2).label, 1);
  EXPECT_FALSE(FetchOne(**src, 0).encoded.empty());
  auto missing = OpenSource({"folder", dir + "/nope"});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status(), dir + "/nope")) << missing.status();
  // A file that vanishes after indexing is skipped with a reason, not fatal.
  std::filesystem::remove(dir + "/cat/a.jpg");
  auto r = (*src)->Fetch({0});
  EXPECT_FALSE(r[0].record.ok());
  EXPECT_EQ(r[0].skip_reason, "read_failed");
}

TEST(ImageNetSourceTest, TrainFoldersAndBothValidationListFormats) {
  const std::string root = TempDir("imagenet");
  const std::string data = root + "/ILSVRC/Data/CLS-LOC";
  WriteFile(data + "/train/n01/n01_1.JPEG", Jpeg(1));
  WriteFile(data + "/train/n02/n02_1.JPEG", Jpeg(2));
  WriteFile(data + "/train/n02/n02_2.JPEG", Jpeg(3));
  WriteFile(data + "/val/ILSVRC2012_val_00000001.JPEG", Jpeg(4));
  WriteFile(data + "/val/ILSVRC2012_val_00000002.JPEG", Jpeg(5));
  WriteFile(root + "/LOC_val_solution.csv",
            "ImageId,PredictionString\nILSVRC2012_val_00000002,n01 1 2 3 4 n01 5 6 7 8\n"
            "ILSVRC2012_val_00000001,n02 1 2 3 4\n");
  auto train = OpenSource({"imagenet", root});
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ((*train)->size(), 3);
  DatasetSpec val{"imagenet", root};
  val.split = "val";
  auto v = OpenSource(val);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ((*v)->size(), 2);
  EXPECT_EQ(FetchOne(**v, 0).label, 1);  // val_00000001 is n02
  EXPECT_EQ(FetchOne(**v, 1).label, 0);
  std::filesystem::remove(root + "/LOC_val_solution.csv");
  WriteFile(data + "/val.txt", "ILSVRC2012_val_00000001.JPEG 0\nILSVRC2012_val_00000002.JPEG n02\n");
  auto v2 = OpenSource(val);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(FetchOne(**v2, 0).label, 0);
  EXPECT_EQ(FetchOne(**v2, 1).label, 1);
  std::filesystem::remove(data + "/val.txt");
  auto none = OpenSource(val);
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(Contains(none.status(), "LOC_val_solution.csv")) << none.status();
}

TEST(JsonlSourceTest, LabelsFromClassListUnknownExcludedNeverClassZero) {
  const std::string dir = TempDir("jsonl");
  WriteFile(dir + "/classes.txt", "fish\nbird\n# comment\nmammal\n");
  WriteFile(dir + "/img/a.jpg", Jpeg(1));
  WriteFile(dir + "/data.jsonl",
            "{\"path\": \"img/a.jpg\", \"label\": \"bird\"}\n"
            "{\"path\": \"img/a.jpg\", \"label\": \"unknown\"}\n"
            "\n"
            "{\"path\": \"img/a.jpg\", \"label\": \"dragon\"}\n"
            "{\"url\": \"http://127.0.0.1:9/x.jpg\", \"label\": 2}\n"
            "{\"path\": \"img/a.jpg\", \"label\": 7}\n");
  DatasetSpec spec{"jsonl", dir + "/data.jsonl"};
  spec.class_list_path = dir + "/classes.txt";
  auto src = OpenSource(spec);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ((*src)->size(), 2);
  EXPECT_EQ((*src)->num_classes(), 3);
  EXPECT_EQ(FetchOne(**src, 0).label, 1);
  auto ex = (*src)->excluded();
  EXPECT_EQ(ex["unknown_label"], 1);
  EXPECT_EQ(ex["label_out_of_list"], 2);
}

TEST(JsonlSourceTest, MalformedLineIsAnErrorWithLineNumberOrSkippedOnRequest) {
  const std::string dir = TempDir("jsonl_bad");
  WriteFile(dir + "/a.jpg", Jpeg(1));
  WriteFile(dir + "/data.jsonl",
            "{\"path\": \"a.jpg\", \"label\": 0}\n{\"path\": \"a.jpg\", \"label\": \n"
            "{\"label\": 1}\n{\"path\": \"a.jpg\", \"label\": 1}\n");
  DatasetSpec spec{"jsonl", dir + "/data.jsonl"};
  spec.num_classes = 2;
  auto src = OpenSource(spec);
  ASSERT_FALSE(src.ok());
  EXPECT_TRUE(Contains(src.status(), "data.jsonl:2")) << src.status();
  spec.skip_malformed = true;
  auto ok = OpenSource(spec);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->size(), 2);
  EXPECT_EQ((*ok)->excluded()["malformed_line"], 2);
  DatasetSpec no_classes{"jsonl", dir + "/data.jsonl"};
  EXPECT_FALSE(OpenSource(no_classes).ok());
  EXPECT_FALSE(OpenSource({"jsonl", dir + "/missing.jsonl"}).ok());
}

TEST(SyntheticSourceTest, DeterministicLearnableAndNoise) {
  DatasetSpec spec{"synthetic", ""};
  spec.synthetic_samples = 50;
  spec.synthetic_classes = 5;
  spec.synthetic_size = 16;
  auto a = OpenSource(spec);
  auto b = OpenSource(spec);
  ASSERT_TRUE(a.ok());
  Record ra = FetchOne(**a, 7), rb = FetchOne(**b, 7);
  EXPECT_EQ(ra.image.pixels, rb.image.pixels);
  EXPECT_EQ(ra.label, 2);
  // Same class: closer to each other than to another class (the task is learnable).
  auto dist = [](const Image& x, const Image& y) {
    double d = 0;
    for (size_t i = 0; i < x.pixels.size(); ++i) d += std::abs(x.pixels[i] - y.pixels[i]);
    return d;
  };
  Record same = FetchOne(**a, 12), other = FetchOne(**a, 8);
  EXPECT_LT(dist(ra.image, same.image), dist(ra.image, other.image));
  spec.synthetic_pure_noise = true;
  auto noise = OpenSource(spec);
  ASSERT_TRUE(noise.ok());
  EXPECT_NE(FetchOne(**noise, 7).image.pixels, ra.image.pixels);
  spec.synthetic_channels = 2;
  EXPECT_FALSE(OpenSource(spec).ok());
  EXPECT_FALSE(OpenSource({"nonsense", ""}).ok());
}

}  // namespace
}  // namespace cf::data
