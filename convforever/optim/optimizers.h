// The concrete optimizers behind CreateOptimizer (see optimizer.h for the shared contract and
// optimizer_options.h for which options each reads). Update rules, per parameter p with gradient
// g at its step t (lr already multiplied by the group's lr_scale, wd the group's weight decay):
//   AdamW: p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
//          p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)            (torch.optim.AdamW)
//          (decoupled_weight_decay=false: g += wd*p instead of the first line: Adam + L2)
//   SGD:   g += wd*p; buf = t==1 ? g : momentum*buf + (1-dampening)*g;
//          p -= lr * (nesterov ? g + momentum*buf : buf)                   (torch.optim.SGD)
//   Lion:  p *= 1 - lr*wd; p -= lr * sign(b1*m + (1-b1)*g); m = b2*m + (1-b2)*g
//   LAMB:  m, v as Adam; r = (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps); u = r + wd*p;
//          trust = ||p|| > 0 && ||u|| > 0 ? ||p||/||u|| : 1 (clamped to [min_trust, max_trust]
//          when set); p -= lr * trust * u   (norms per parameter tensor, the paper's layers)
#ifndef CONVFOREVER_OPTIM_OPTIMIZERS_H_
#define CONVFOREVER_OPTIM_OPTIMIZERS_H_

#include "convforever/optim/optimizer.h"

namespace cf::optim {

class AdamW : public Optimizer {
 public:
  AdamW(OptimizerOptions options, std::vector<ParamGroup> groups);
  void Step(double lr) override;

 private:
  void FusedStep(Batch& b, double lr, double wd);
  void ForeachStep(Batch& b, double lr, double wd);
};

class Sgd : public Optimizer {
 public:
  Sgd(OptimizerOptions options, std::vector<ParamGroup> groups);
  void Step(double lr) override;

 protected:
  bool SlotRequired(size_t s) const override { return options_.momentum != 0; }
};

class Lion : public Optimizer {
 public:
  Lion(OptimizerOptions options, std::vector<ParamGroup> groups);
  void Step(double lr) override;
};

class Lamb : public Optimizer {
 public:
  Lamb(OptimizerOptions options, std::vector<ParamGroup> groups);
  void Step(double lr) override;
};

}  // namespace cf::optim

#endif  // CONVFOREVER_OPTIM_OPTIMIZERS_H_
