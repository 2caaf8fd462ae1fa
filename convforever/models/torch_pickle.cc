#include "convforever/models/torch_pickle.h"

#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include "absl/strings/str_cat.h"
#include "convforever/base/status_macros.h"

namespace cf::models {
namespace {

struct Value;
// Values are owned by the Machine's arena and refer to each other by plain pointers: a pickle can
// build cycles (a list appended to itself) and deep nesting, which shared ownership would leak or
// destroy recursively.
using ValuePtr = Value*;

// A Python object as far as a state dict needs one; anything else is kOpaque.
struct Value {
  enum Kind { kNone, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kOpaque };
  Kind kind = kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;                                   // string; "module.name" of a global
  std::vector<ValuePtr> items;                     // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict, in insertion order
  at::Tensor tensor;                               // tensor; storage as a 1-D tensor
};

// Loads storage `key` ("data/<key>") of `dtype` with `numel` elements.
using StorageLoader = std::function<absl::StatusOr<at::Tensor>(const std::string&, at::ScalarType, int64_t)>;

absl::StatusOr<at::ScalarType> StorageDtype(const std::string& global) {
  static const auto* types = new std::map<std::string, at::ScalarType>{
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},     {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},     {"torch.BoolStorage", at::kBool}};
  auto it = types->find(global);
  if (it == types->end()) return absl::UnimplementedError(absl::StrCat("storage type ", global, " unsupported"));
  return it->second;
}

class Machine {
 public:
  Machine(std::string_view pickle, StorageLoader load) : p_(pickle), load_(std::move(load)) {}

  ValuePtr Make(Value::Kind kind) {
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }

  absl::StatusOr<ValuePtr> Run() {
    while (pos_ < p_.size()) {
      const uint8_t op = Byte();
      if (op == '.') {  // STOP
        if (stack_.empty()) return Error("STOP with an empty stack");
        return stack_.back();
      }
      RETURN_IF_ERROR(Step(op));
    }
    return Error("no STOP opcode");
  }

 private:
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("pickle offset ", pos_, ": ", what));
  }
  uint8_t Byte() { return pos_ < p_.size() ? uint8_t(p_[pos_++]) : (pos_++, 0); }
  uint64_t Le(int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= uint64_t(Byte()) << (8 * k);
    return v;
  }
  // Past the end, Byte() reads zeros and Bytes() returns what there is; pos_ then lies beyond
  // p_.size() and Run() stops with "no STOP". A length never moves pos_ backwards (no wrap-around).
  std::string Bytes(uint64_t n) {
    const size_t start = std::min<size_t>(pos_, p_.size());
    std::string out(p_.substr(start, n));
    pos_ = n > p_.size() - start ? p_.size() + 1 : start + n;
    return out;
  }
  std::string Line() {
    if (pos_ >= p_.size()) {
      pos_ = p_.size() + 1;
      return "";
    }
    const size_t end = p_.find('\n', pos_);
    std::string out(p_.substr(pos_, end == std::string_view::npos ? std::string_view::npos : end - pos_));
    pos_ = end == std::string_view::npos ? p_.size() + 1 : end + 1;
    return out;
  }
  void Push(ValuePtr v) { stack_.push_back(std::move(v)); }
  absl::StatusOr<ValuePtr> Pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) return Error("stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  absl::StatusOr<std::vector<ValuePtr>> PopToMark() {
    if (marks_.empty()) return Error("no MARK");
    std::vector<ValuePtr> out(stack_.begin() + marks_.back(), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return out;
  }
  ValuePtr Str(std::string s) {
    ValuePtr v = Make(Value::kString);
    v->s = std::move(s);
    return v;
  }
  ValuePtr Int(int64_t i) {
    ValuePtr v = Make(Value::kInt);
    v->i = i;
    return v;
  }
  ValuePtr Tuple(std::vector<ValuePtr> items) {
    ValuePtr v = Make(Value::kTuple);
    v->items = std::move(items);
    return v;
  }

  absl::Status Step(uint8_t op);           // scalars, strings, memo, globals
  absl::Status StepComposite(uint8_t op);  // containers, calls, persistent ids
  absl::Status Memo(uint64_t index) {
    if (stack_.empty()) return Error("memoizing an empty stack");
    memo_[index] = stack_.back();
    return absl::OkStatus();
  }
  absl::Status Get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) return Error(absl::StrCat("memo ", index, " unset"));
    Push(it->second);
    return absl::OkStatus();
  }
  absl::Status SetItems(std::vector<ValuePtr> kv) {
    if (stack_.empty()) return Error("SETITEM(S) without a target");
    if (kv.size() % 2 != 0) return Error("SETITEMS with an odd item count");
    Value& target = *stack_.back();
    if (target.kind != Value::kDict) return absl::OkStatus();  // an opaque object's items
    for (size_t k = 0; k < kv.size(); k += 2) target.entries.emplace_back(kv[k], kv[k + 1]);
    return absl::OkStatus();
  }
  absl::Status Append(std::vector<ValuePtr> items) {
    if (stack_.empty()) return Error("APPEND(S) without a target");
    Value& target = *stack_.back();
    if (target.kind == Value::kList) target.items.insert(target.items.end(), items.begin(), items.end());
    return absl::OkStatus();
  }
  absl::StatusOr<ValuePtr> Reduce(const ValuePtr& callable, const ValuePtr& args);
  absl::StatusOr<ValuePtr> RebuildTensor(const ValuePtr& args);
  absl::StatusOr<ValuePtr> PersistentLoad(const ValuePtr& pid);

  std::string_view p_;
  size_t pos_ = 0;
  StorageLoader load_;
  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  // Bytes of the storages loaded, and of the tensors materialized from them (bounded by twice
  // the former, so a small pickle cannot turn one storage into many copies of it).
  int64_t storage_bytes_ = 0;
  int64_t tensor_bytes_ = 0;
};

absl::StatusOr<std::vector<int64_t>> Ints(const ValuePtr& v, const char* what) {
  std::vector<int64_t> out;
  if (v->kind != Value::kTuple) return absl::InvalidArgumentError(absl::StrCat(what, " is not a tuple"));
  for (const ValuePtr& x : v->items) {
    if (x->kind != Value::kInt) return absl::InvalidArgumentError(absl::StrCat(what, " holds a non-integer"));
    out.push_back(x->i);
  }
  return out;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, ...).
// The view must lie inside the storage and hold at most as many elements as it (a state dict's
// tensors do; a broadcast view of a tiny storage could otherwise ask for any amount of memory).
absl::StatusOr<ValuePtr> Machine::RebuildTensor(const ValuePtr& args) {
  if (args->kind != Value::kTuple || args->items.size() < 4 || args->items[0]->kind != Value::kStorage ||
      args->items[1]->kind != Value::kInt) {
    return absl::InvalidArgumentError("_rebuild_tensor: unexpected arguments");
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> size, Ints(args->items[2], "tensor size"));
  ASSIGN_OR_RETURN(std::vector<int64_t> stride, Ints(args->items[3], "tensor stride"));
  if (size.size() != stride.size()) return absl::InvalidArgumentError("tensor size and stride differ in rank");
  const at::Tensor& storage = args->items[0]->tensor;
  const int64_t offset = args->items[1]->i;
  const int64_t storage_numel = storage.numel();
  if (offset < 0 || offset > storage_numel) return absl::InvalidArgumentError("tensor offset outside its storage");
  int64_t numel = 1;
  int64_t last = offset;  // index of the view's last element
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d] < 0 || stride[d] < 0) return absl::InvalidArgumentError("negative tensor size or stride");
    if (size[d] == 0) numel = 0;
  }
  for (size_t d = 0; d < size.size() && numel > 0; ++d) {
    int64_t span = 0;
    if (__builtin_mul_overflow(numel, size[d], &numel) || numel > storage_numel ||
        __builtin_mul_overflow(size[d] - 1, stride[d], &span) || __builtin_add_overflow(last, span, &last) ||
        last >= storage_numel) {
      return absl::InvalidArgumentError("tensor beyond its storage");
    }
  }
  if (numel > 0 && last >= storage_numel) {  // a 0-d tensor: its one element is at `offset`
    return absl::InvalidArgumentError("tensor beyond its storage");
  }
  tensor_bytes_ += numel * static_cast<int64_t>(storage.element_size());
  if (tensor_bytes_ > 2 * storage_bytes_) {
    return absl::InvalidArgumentError("tensors take more than twice the bytes of their storages");
  }
  ValuePtr v = Make(Value::kTensor);
  v->tensor = numel == 0 ? at::empty(size, storage.options())
                         : storage.as_strided(size, stride, offset).clone(at::MemoryFormat::Contiguous);
  return v;
}

absl::StatusOr<ValuePtr> Machine::Reduce(const ValuePtr& callable, const ValuePtr& args) {
  if (callable->kind != Value::kGlobal) return Make(Value::kOpaque);
  const std::string& name = callable->s;
  if (name == "collections.OrderedDict" || name == "builtins.dict") return Make(Value::kDict);
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") return RebuildTensor(args);
  if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
    if (args->kind == Value::kTuple && !args->items.empty() && args->items[0]->kind == Value::kTensor) {
      return args->items[0];
    }
    return Error("_rebuild_parameter without a tensor");
  }
  return Make(Value::kOpaque);
}

// pid = ("storage", <storage type global>, key, location, numel).
absl::StatusOr<ValuePtr> Machine::PersistentLoad(const ValuePtr& pid) {
  if (pid->kind != Value::kTuple || pid->items.size() < 5 || pid->items[0]->s != "storage" ||
      pid->items[1]->kind != Value::kGlobal || pid->items[2]->kind != Value::kString ||
      pid->items[4]->kind != Value::kInt) {
    return Error("persistent id is not a ('storage', type, key, location, numel) tuple");
  }
  ASSIGN_OR_RETURN(at::ScalarType dtype, StorageDtype(pid->items[1]->s));
  if (pid->items[4]->i < 0) return Error("negative storage size");
  ValuePtr v = Make(Value::kStorage);
  ASSIGN_OR_RETURN(v->tensor, load_(pid->items[2]->s, dtype, pid->items[4]->i));
  storage_bytes_ += static_cast<int64_t>(v->tensor.nbytes());
  return v;
}

absl::Status Machine::Step(uint8_t op) {
  switch (op) {
    case 0x80: Byte(); return absl::OkStatus();                       // PROTO
    case 0x95: Le(8); return absl::OkStatus();                        // FRAME
    case '(': marks_.push_back(stack_.size()); return absl::OkStatus();  // MARK
    case 'N': Push(Make(Value::kNone)); return absl::OkStatus();
    case 0x88: Push(Int(1)); return absl::OkStatus();                 // NEWTRUE
    case 0x89: Push(Int(0)); return absl::OkStatus();                 // NEWFALSE
    case 'K': Push(Int(Byte())); return absl::OkStatus();             // BININT1
    case 'M': Push(Int(Le(2))); return absl::OkStatus();              // BININT2
    case 'J': Push(Int(int32_t(Le(4)))); return absl::OkStatus();     // BININT
    case 0x8a: {                                                       // LONG1
      const int n = Byte();
      uint64_t v = Le(std::min(n, 8));
      if (n > 8) Bytes(n - 8);  // beyond int64: only its low bits are kept
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign-extend
      Push(Int(int64_t(v)));
      return absl::OkStatus();
    }
    case 'G': {                                                        // BINFLOAT (big-endian)
      uint64_t bits = 0;
      for (int k = 0; k < 8; ++k) bits = (bits << 8) | Byte();
      ValuePtr v = Make(Value::kFloat);
      std::memcpy(&v->f, &bits, 8);
      Push(v);
      return absl::OkStatus();
    }
    case 'X': case 'T': case 'B': Push(Str(Bytes(Le(4)))); return absl::OkStatus();  // 4-byte length
    case 0x8c: case 'U': case 'C': Push(Str(Bytes(Byte()))); return absl::OkStatus();  // 1-byte length
    case 0x8d: case 0x8e: Push(Str(Bytes(Le(8)))); return absl::OkStatus();          // 8-byte length
    case ')': Push(Tuple({})); return absl::OkStatus();
    case '}': Push(Make(Value::kDict)); return absl::OkStatus();
    case ']': Push(Make(Value::kList)); return absl::OkStatus();
    case 'q': return Memo(Byte());                                     // BINPUT
    case 'r': return Memo(Le(4));                                      // LONG_BINPUT
    case 0x94: return Memo(memo_.size());                              // MEMOIZE
    case 'h': return Get(Byte());                                      // BINGET
    case 'j': return Get(Le(4));                                       // LONG_BINGET
    case '0': return Pop().status();                                   // POP
    case '2': if (stack_.empty()) return Error("DUP on empty stack"); Push(stack_.back()); return absl::OkStatus();
    case 'c': {                                                        // GLOBAL
      ValuePtr g = Make(Value::kGlobal);
      g->s = Line();
      g->s += "." + Line();
      Push(g);
      return absl::OkStatus();
    }
    default: break;
  }
  return StepComposite(op);
}

absl::Status Machine::StepComposite(uint8_t op) {
  switch (op) {
    case 't': {                                                        // TUPLE
      ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark());
      Push(Tuple(std::move(items)));
      return absl::OkStatus();
    }
    case 0x85: case 0x86: case 0x87: {                                 // TUPLE1..3
      std::vector<ValuePtr> items(op - 0x84);
      for (size_t k = items.size(); k-- > 0;) {
        ASSIGN_OR_RETURN(items[k], Pop());
      }
      Push(Tuple(std::move(items)));
      return absl::OkStatus();
    }
    case 'l': case 'd': {                                              // LIST, DICT
      ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark());
      Push(Make(op == 'l' ? Value::kList : Value::kDict));
      return op == 'l' ? Append(std::move(items)) : SetItems(std::move(items));
    }
    case '1': return PopToMark().status();                             // POP_MARK
    case 's': {                                                        // SETITEM
      ASSIGN_OR_RETURN(ValuePtr value, Pop());
      ASSIGN_OR_RETURN(ValuePtr key, Pop());
      return SetItems({key, value});
    }
    case 'u': {                                                        // SETITEMS
      ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark());
      return SetItems(std::move(items));
    }
    case 'a': {                                                        // APPEND
      ASSIGN_OR_RETURN(ValuePtr item, Pop());
      return Append({item});
    }
    case 'e': {                                                        // APPENDS
      ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark());
      return Append(std::move(items));
    }
    case 'R': case 0x81: {                                             // REDUCE, NEWOBJ
      ASSIGN_OR_RETURN(ValuePtr args, Pop());
      ASSIGN_OR_RETURN(ValuePtr callable, Pop());
      if (op == 0x81) {
        Push(Make(Value::kOpaque));
        return absl::OkStatus();
      }
      ASSIGN_OR_RETURN(ValuePtr out, Reduce(callable, args));
      Push(out);
      return absl::OkStatus();
    }
    case 'b': return Pop().status();  // BUILD: object state (OrderedDict._metadata, ...) is not needed
    case 0x93: {                                                       // STACK_GLOBAL
      ASSIGN_OR_RETURN(ValuePtr name, Pop());
      ASSIGN_OR_RETURN(ValuePtr module, Pop());
      ValuePtr g = Make(Value::kGlobal);
      g->s = module->s + "." + name->s;
      Push(g);
      return absl::OkStatus();
    }
    case 'Q': {                                                        // BINPERSID
      ASSIGN_OR_RETURN(ValuePtr pid, Pop());
      ASSIGN_OR_RETURN(ValuePtr storage, PersistentLoad(pid));
      Push(storage);
      return absl::OkStatus();
    }
    default:
      return Error(absl::StrCat("unsupported pickle opcode 0x", absl::Hex(op)));
  }
}

// The dict holding the tensors: `root`, or its "state_dict" / "model" entry when that is a dict.
const Value* StateDictOf(const Value& root) {
  if (root.kind != Value::kDict) return nullptr;
  for (const char* key : {"state_dict", "model"}) {
    for (const auto& [k, v] : root.entries) {
      if (k->kind == Value::kString && k->s == key && v->kind == Value::kDict) return v;
    }
  }
  return &root;
}

}  // namespace

absl::StatusOr<NamedTensors> ParseTorchPickleStateDict(std::string_view pickle,
                                                       const TorchStorageReader& read_storage,
                                                       const std::string& source) {
  // One tensor per storage key, as torch.save writes each storage once.
  std::map<std::string, at::Tensor> storages;
  StorageLoader load = [&](const std::string& key, at::ScalarType dtype, int64_t numel) -> absl::StatusOr<at::Tensor> {
    if (auto it = storages.find(key); it != storages.end()) {
      if (it->second.scalar_type() != dtype || it->second.numel() != numel) {
        return absl::InvalidArgumentError(absl::StrCat("storage data/", key, " is loaded with two types or sizes"));
      }
      return it->second;
    }
    ASSIGN_OR_RETURN(std::string_view data, read_storage(key));
    const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
    if (numel > static_cast<int64_t>(data.size()) / element || static_cast<int64_t>(data.size()) != numel * element) {
      return absl::DataLossError(absl::StrCat("storage data/", key, " has ", data.size(), " bytes, not ", numel,
                                              " elements of ", element, " bytes"));
    }
    at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(dtype));
    if (!data.empty()) std::memcpy(t.data_ptr(), data.data(), data.size());
    storages[key] = t;
    return t;
  };
  Machine machine(pickle, load);
  absl::StatusOr<ValuePtr> root = machine.Run();
  if (!root.ok()) return absl::InvalidArgumentError(absl::StrCat(source, ": ", root.status().message()));
  const Value* dict = StateDictOf(**root);
  if (dict == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(source, " does not hold a dict (want a state dict, or one under "
                                                   "'state_dict' or 'model')"));
  }
  NamedTensors out;
  for (const auto& [k, v] : dict->entries) {
    if (k->kind != Value::kString) return absl::InvalidArgumentError(absl::StrCat(source, ": a state-dict key is not a string"));
    if (v->kind != Value::kTensor) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": '", k->s, "' is not a tensor (want a state dict, or one "
                                                     "under 'state_dict' or 'model')"));
    }
    out.emplace_back(k->s, v->tensor);
  }
  return out;
}

absl::StatusOr<NamedTensors> ReadTorchSaveStateDict(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader zip(path);
    if (zip.hasRecord("byteorder")) {
      auto [data, size] = zip.getRecord("byteorder");
      if (std::string(static_cast<const char*>(data.get()), size) != "little") {
        return absl::UnimplementedError(absl::StrCat(path, ": big-endian torch.save files are not supported"));
      }
    }
    auto [pkl, pkl_size] = zip.getRecord("data.pkl");
    std::map<std::string, at::DataPtr> records;  // keeps each storage's bytes alive while parsing
    TorchStorageReader read = [&](const std::string& key) -> absl::StatusOr<std::string_view> {
      const std::string name = "data/" + key;
      if (!zip.hasRecord(name)) return absl::NotFoundError(absl::StrCat("no record ", name));
      auto [data, size] = zip.getRecord(name);
      const char* bytes = static_cast<const char*>(data.get());
      records[key] = std::move(data);
      return std::string_view(bytes, size);
    };
    return ParseTorchPickleStateDict(std::string_view(static_cast<const char*>(pkl.get()), pkl_size), read, path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a readable torch.save zip file: ", e.what()));
  }
}

}  // namespace cf::models
