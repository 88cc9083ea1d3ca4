"""PyTorch reference timings of the origin net (same layers as agegender's),
printed as JSON lines like bench/speed: inference at batch 1 and 32 and one
Adam training step at batch 32. Run with Debian's python3-torch:

    /usr/bin/python3 bench/torch_speed.py --input 227 --threads 2
"""
import argparse, json, time
import torch, torch.nn as nn

def origin(classes):
    return nn.Sequential(
        nn.Conv2d(3, 96, 7, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(5, 1e-4, 0.75),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(5, 1e-4, 0.75),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Flatten(), nn.LazyLinear(512), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, classes))

def time_it(secs, f):
    f(); f()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < secs or n < 3:
        f(); n += 1
    return (time.perf_counter() - t0) * 1000 / n

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", type=int, default=227)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--secs", type=float, default=8)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (GPU)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if a.device.startswith("cuda") else (lambda: None)
    amp = torch.autocast(device_type=a.device.split(":")[0], dtype=torch.bfloat16, enabled=a.bf16)
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = origin(8)
    net(torch.zeros(1, 3, a.input, a.input))
    net = net.to(dev)
    base = dict(impl="pytorch", backend="torch " + torch.__version__, ops=a.device + (" bf16" if a.bf16 else " fp32"),
                net="origin", input=a.input, threads=a.threads)
    net.eval()
    for b in [int(x) for x in a.batches.split(",")]:
        x = torch.randn(b, 3, a.input, a.input, device=dev) * 50  # batch kept on the device
        def f():
            with torch.no_grad(), amp:
                torch.softmax(net(x), -1)
            sync()
        ms = time_it(a.secs, f)
        print(json.dumps(dict(base, what="inference", batch=b, img_per_s=b / ms * 1000, ms_per_batch=ms)), flush=True)
    if a.train_batch:
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=5e-4)
        b = a.train_batch
        x = torch.randn(b, 3, a.input, a.input, device=dev) * 50
        y = torch.arange(b, device=dev) % 8
        lossf = nn.CrossEntropyLoss()
        def step():
            opt.zero_grad()
            with amp:
                l = lossf(net(x), y)
            l.backward()
            opt.step()
            sync()
        ms = time_it(a.secs, step)
        print(json.dumps(dict(base, what="train_step", batch=b, img_per_s=b / ms * 1000, ms_per_batch=ms)), flush=True)

main()
