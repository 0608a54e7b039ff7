"""A stand-in for the few torch calls tpjit.deep_gemm and the DeepGEMM
benchmark make, for CPU tests: tensors are shapes with a value, nothing is
computed. Not a model of torch beyond that."""

import os
import pickle
import time

# A slow `import torch` in spawned (helper) processes, for tests of helper
# start-up.
if os.environ.get("FAKE_TORCH_IMPORT_SECONDS"):
    import multiprocessing
    if multiprocessing.parent_process() is not None:
        time.sleep(float(os.environ["FAKE_TORCH_IMPORT_SECONDS"]))

float8_e4m3fn, float32, bfloat16, int32, uint8 = "fp8", "f32", "bf16", "i32", "u8"
__version__ = "0.0-fake"


class Tensor:
    def __init__(self, shape, value=0.0):
        self.shape = tuple(shape)
        self.value = value

    def __getitem__(self, index):
        if isinstance(index, slice):
            n = len(range(*index.indices(self.shape[0])))
            return Tensor((n,) + self.shape[1:], self.value)
        return Tensor(self.shape[1:], self.value)

    def __floordiv__(self, other):
        return self

    __mod__ = __floordiv__

    def cpu(self):
        return self

    def contiguous(self):
        return self

    def view(self, dtype):
        return self

    def numpy(self):
        return self

    def tobytes(self):
        return repr((self.shape, self.value)).encode()

    def __eq__(self, other):
        return (isinstance(other, Tensor) and self.shape == other.shape and
                self.value == other.value)

    __hash__ = None


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def empty(*shape, device=None, dtype=None):
    return Tensor(_shape(shape))


def ones(*shape, device=None, dtype=None):
    return Tensor(_shape(shape), 1.0)


def zeros(*shape, device=None, dtype=None):
    return Tensor(_shape(shape))


def full(shape, value, device=None, dtype=None):
    return Tensor(_shape((shape,)), value)


def arange(n, device=None, dtype=None):
    return Tensor((n,))


def randn(*shape, device=None, generator=None, dtype=None):
    return Tensor(_shape(shape), generator.next() if generator else 0.5)


def stack(tensors):
    return Tensor((len(tensors),) + tensors[0].shape,
                  sum(t.value for t in tensors))


def equal(a, b):
    return a == b


def save(obj, path):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


class Generator:
    def __init__(self, device=None):
        self.seed = 0

    def manual_seed(self, seed):
        self.seed = seed
        return self

    def next(self):
        self.seed = (self.seed * 1103515245 + 12345) % (1 << 31)
        return self.seed / float(1 << 31)


class _Stream:
    def synchronize(self):
        pass


class cuda:  # noqa: N801 (the module torch.cuda, as a namespace)
    @staticmethod
    def init():
        pass

    @staticmethod
    def current_device():
        return 0

    @staticmethod
    def set_device(device):
        pass

    @staticmethod
    def mem_get_info():
        return (100 << 30, 141 << 30)

    @staticmethod
    def current_stream():
        return _Stream()

    @staticmethod
    def synchronize():
        pass

    @staticmethod
    def get_device_name():
        return "Fake GPU"
