import torch


def per_token_cast_to_fp8(x, use_ue8m0, gran_k=128, use_packed_ue8m0=False):
    return torch.Tensor(x.shape, x.value), torch.Tensor(
        (x.shape[0], -(-x.shape[1] // gran_k)), 1.0)


def per_block_cast_to_fp8(x, use_ue8m0, gran_k=128):
    return torch.Tensor(x.shape, x.value), torch.Tensor(
        (-(-x.shape[0] // gran_k), -(-x.shape[1] // gran_k)), 1.0)
