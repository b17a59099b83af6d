// The mask classifier's ONNX graph run by XNNPACK (the CPU engine behind TFLite) instead of
// OpenCV DNN. It reads the graph our exporter writes (Conv with folded BatchNorm, plain or
// depthwise; Clip; Relu; Add; GlobalAveragePool; Flatten; Gemm; Softmax) and builds an XNNPACK
// subgraph from it (vision/onnx_to_xnnpack.h), weights converted once to XNNPACK's NHWC
// layouts. Any other operator or attribute is refused with an Error, so a model it cannot run
// exactly is never run approximately. `maskwatch bench` compares it with OpenCV DNN (speed and probabilities).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace onnx {
class ModelProto;
}
struct pthreadpool;  // XNNPACK's thread pool and runtime (pthreadpool.h, xnnpack.h)
struct xnn_runtime;

namespace maskwatch {

// One inference of `runtime`, then the workers of `pool` (the pool the runtime was made on, null
// when it runs on the calling thread) are put to sleep. Every XNNPACK inference goes through
// here. The runtimes are made with XNN_FLAG_YIELD_WORKERS, yet with Debian 12's XNNPACK
// (2022-02) the workers kept spinning after every inference of our graphs (45 ms of CPU after the
// detector, 27 after the classifier, in 50 ms of idle; a test): the flag does not reach them
// here. Spinning, they took a core from the next stage (the detector ran in 8-10 ms right after
// the classifier instead of 4-5). A no-op task carrying PTHREADPOOL_FLAG_YIELD_WORKERS sends them
// to sleep.
void invoke_and_yield(xnn_runtime* runtime, pthreadpool* pool);

// A pool of n threads (null for n <= 1) whose workers sleep from the start. A new pool's workers
// spin for their first task as they do after one (about 20 ms of a core in 50 ms, a test); start-up
// makes one pool per model (the detector and each ensemble member) while it packs weights on
// the calling thread, so each spin took a core from that work.
pthreadpool* create_sleeping_pool(size_t n_threads);

// XNNPACK's thread pool splits every layer across threads and spins at each of ~65 joins per
// image. Beside another busy process that turns into waiting for a descheduled worker:
// measured on 2 cores with a busy loop per core, 76 ms per face pooled against 15 ms on one
// thread (6 and 11 ms when idle). So the net watches how much CPU its calling thread got
// during each inference (thread CPU time / wall time: 0.98 idle, 0.64-0.76 beside a busy
// process) and runs on one thread while the cores are contended, on the pool otherwise.
class PoolChoice {
 public:
  // One inference's thread CPU ms and wall ms; returns whether the next should use the pool.
  bool update(double cpu_ms, double wall_ms);
  // Runs `inference` on the calling thread, timed, and returns update()'s answer.
  bool run_timed(const std::function<void()>& inference);
  bool pooled() const { return pooled_; }
  double cpu_share() const { return share_; }

  static constexpr double kLeavePoolBelow = 0.85, kReturnAbove = 0.93;
  // Leaving the pool is urgent (each pooled inference may cost 5x); returning can wait.
  static constexpr int kMinPooledBeforeLeaving = 5, kMinAloneBeforeReturning = 30;

 private:
  bool pooled_ = true;
  double share_ = 1.0;  // moving average of cpu / wall
  int since_switch_ = 0;
};

class XnnpackNet {
 public:
  // `onnx_bytes`: a model that passed check_onnx_bytes; input [N, 3, size, size].
  // threads: XNNPACK's thread pool size (0 = all cores).
  XnnpackNet(const std::string& onnx_bytes, int input_size, int threads = 0);
  // The same from a parsed model, which it empties once the graph is built so that the
  // protobuf, the converted weights and XNNPACK's packed copy are never all in memory.
  // `reload` gives the same model again: with it, the converted weights are dropped once the
  // runtime is built and read again only when the runtime is rebuilt (a PoolChoice switch).
  XnnpackNet(onnx::ModelProto&& model, int input_size, int threads = 0, std::function<onnx::ModelProto()> reload = {});
  ~XnnpackNet();
  XnnpackNet(const XnnpackNet&) = delete;
  XnnpackNet& operator=(const XnnpackNet&) = delete;

  // [N, 3, size, size] float blob (make_blob) -> [N, classes] probabilities. One image
  // per XNNPACK invocation (the runtime is built for batch 1).
  cv::Mat forward(const cv::Mat& nchw_blob);

  // Multiply-accumulates of one image through the graph (convolutions and the dense layer).
  double macs_per_image() const;
  // Whether the thread pool is in use now (see PoolChoice).
  bool pooled() const;
  // Puts the runtime on the pool or on the calling thread now and keeps it there: forward()
  // no longer follows PoolChoice (for benchmarks and tests that need fixed conditions).
  // Without a pool, or when the model cannot be reloaded, the runtime stays where it is.
  void set_pooled(bool pooled);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace maskwatch
