"""utils/host_syncs.py: which calls count as host-device synchronisations, simulated on the CPU."""

import torch

from ovavss_d2.utils.host_syncs import HostSyncCounter


def test_reads_of_device_tensors_count_and_host_tensors_do_not():
    weight = torch.nn.Parameter(torch.ones(3))  # made outside the counter: a device tensor
    host = torch.arange(3)
    counter = HostSyncCounter(torch.device("cpu"))
    counter.mark_host(host)
    with counter:
        derived = (host * 2).sum()  # computed from host tensors only: stays on the host
        assert int(derived) == 6 and host.tolist() == [0, 1, 2] and bool(host.any())
        assert counter.total == 0
        value = weight.detach() * 2
        value.sum().item()
        value.cpu()
        bool(value.any())
        value.nonzero()
        value[value > 1]
        value.cpu().numpy()  # after the download: no second sync
    assert dict(counter.counts) == {
        "Tensor.item": 1,
        "Tensor.cpu": 2,
        "Tensor.__bool__": 1,
        "nonzero": 1,
        "__getitem__[bool]": 1,
    }
    assert all(site.endswith(".py:" + site.rsplit(":", 1)[1]) for _, site in counter.sites)
    assert "test_host_syncs.py" in counter.sites[0][1]


def test_blocking_uploads_count_non_blocking_ones_do_not():
    host = torch.zeros(4)
    counter = HostSyncCounter(torch.device("cpu"))
    counter.mark_host({"x": [host]})
    device = torch.device("cpu")
    with counter:
        moved = host.to(device, non_blocking=True)
        host.to(torch.float64)  # a dtype change stays on the host
        assert counter.total == 0
        host.to(device)
        torch.tensor([1, 2], device=device)
        assert dict(counter.counts) == {"upload": 2}
        moved.sum().item()  # the moved tensor is a device tensor now
        torch.zeros(2, device=device).tolist()  # made on the device
    assert dict(counter.counts) == {"upload": 2, "Tensor.item": 1, "Tensor.tolist": 1}
