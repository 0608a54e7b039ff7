// How many GPUs this node has (gpu_probe.cc). Asks the CUDA runtime, which
// reports no device on machines without one; creates no context.
#ifndef TPJIT_SRC_CUDA_GPU_PROBE_H_
#define TPJIT_SRC_CUDA_GPU_PROBE_H_

namespace tpjit {

int DetectGpuCount();

}  // namespace tpjit

#endif  // TPJIT_SRC_CUDA_GPU_PROBE_H_
