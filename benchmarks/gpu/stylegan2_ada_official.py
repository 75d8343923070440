"""Times NVlabs/stylegan2-ada-pytorch's own training step: `--cfg auto` at 128 px, batch 32,
one GPU, on synthetic images (no data set, no download).

The networks, loss (`training.loss.StyleGAN2Loss`), augmentation pipe and custom ops are
the repository's own, built as its `train.py` builds them for `--cfg auto --gpus 1` at
128 px: mapping 2 layers, channel_base 16384 (fmaps 0.5), channel_max 512, the 4 highest
resolutions in FP16 with conv_clamp 256, minibatch-stddev group 4, Adam(0.0025, 0, 0.99,
eps 1e-8), R1 gamma 0.0002 * 128^2 / 32 = 0.1024 every 16 D steps, path length (weight 2)
every 4 G steps, style mixing 0.9, EMA half-life 10 kimg with ramp-up 0.05, ADA ('bgc',
target 0.6, adjusted every 4 steps), TF32 off (its default), cuDNN benchmark on. The loop
body is `training/training_loop.py`'s (phases Gmain, Greg, Dmain, Dreg with their
intervals and lazy-regularisation Adam settings, gradient nan_to_num, G_ema, ADA), with
its data loader replaced by a fixed pinned uint8 batch copied to the GPU each step, as its
loader hands batches over (PNG decoding, done in its worker processes, is left out). The
timed window is a whole number of 16-step periods. Its published figure for this
configuration: 6.79 s/kimg on one A100 (README, "Expected training time").

Patches, applied at run time (their files are not edited):
  * `torch_utils.ops.grid_sample_gradfix`: the repository enables its double-backward
    grid_sample only on PyTorch 1.7-1.9 and falls back to `F.grid_sample`, whose
    backward PyTorch cannot differentiate again, so R1 through the augmentation pipe
    (the Dreg phase) would fail. The patch enables it on any version and calls
    `aten::grid_sampler_2d_backward` with the output mask PyTorch >= 1.11 takes (as
    StyleGAN3's copy of the same file does).
  * `torch_utils.ops.conv2d_gradfix` is left as it is: on PyTorch > 1.9 it falls back to
    `F.conv2d` (with a warning), which supports the double backward R1 needs.
  * bias_act and upfirdn2d: their CUDA extensions are built with nvcc at the first call
    (`--impl auto`); if the build fails, the repository itself falls back to its
    reference ops, and the JSON records which (`custom_ops`) and the build error.

Run (on a GPU; `benchmarks/gpu/run.sh` runs it):
    python benchmarks/gpu/stylegan2_ada_official.py --repo .gpu_carry/stylegan2-ada-pytorch \
        --out stylegan2_official.json
"""

from __future__ import annotations

import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import official  # noqa: E402

REPO = ".gpu_carry/stylegan2-ada-pytorch"
RESOLUTION, BATCH = 128, 32
PUBLISHED = {"gpu": "A100", "s_per_kimg": 6.79, "source": "stylegan2-ada-pytorch README, "
             "'Expected training time', 128x128, 1 GPU, --cfg auto"}
BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1,
           contrast=1, lumaflip=1, hue=1, saturation=1)


def auto_config(resolution: int, gpus: int = 1) -> dict:
    """train.py's `--cfg auto` numbers for one resolution and GPU count."""
    mb = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    return dict(mb=mb, mbstd=min(mb // gpus, 4), fmaps=1 if resolution >= 512 else 0.5,
                lrate=0.002 if resolution >= 1024 else 0.0025,
                gamma=0.0002 * resolution**2 / mb, ema=mb * 10 / 32, ramp=0.05, map=2)


def patch_grid_sample(torch, grid_sample_gradfix) -> str:
    """Enables the double-backward grid_sample on new PyTorch (see the module docstring)."""

    def backward_forward(ctx, grad_output, input, grid):  # noqa: A002 - their name
        output_mask = (ctx.needs_input_grad[1], ctx.needs_input_grad[2])
        grad_input, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
            grad_output, input, grid, 0, 0, False, output_mask)
        ctx.save_for_backward(grid)
        return grad_input, grad_grid

    grid_sample_gradfix._should_use_custom_op = lambda: grid_sample_gradfix.enabled
    grid_sample_gradfix._GridSample2dBackward.forward = staticmethod(backward_forward)
    return ("grid_sample_gradfix: custom op enabled on any PyTorch; backward via "
            "aten::grid_sampler_2d_backward with output_mask")


def main(argv=None) -> int:
    p = official.parser(__doc__.splitlines()[0], REPO, warmup=16, steps=32, repeats=3)
    p.add_argument("--resolution", type=int, default=RESOLUTION)
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--fp16-res", type=int, default=4,
                   help="resolutions in FP16 (--cfg auto: 4; 0 for a CPU smoke run, where "
                        "PyTorch emulates FP16 convolutions some 10x slower)")
    p.add_argument("--channel-max", type=int, default=512,
                   help="widest layer (--cfg auto: 512; smaller for a CPU smoke run)")
    p.add_argument("--augment-p", type=float, default=0.0,
                   help="ADA's starting probability (training starts at 0; a smoke run "
                        "sets it high so that R1 differentiates through the augmentation)")
    args = p.parse_args(argv)
    result = official.Result("stylegan2_ada_pytorch_official", args)
    result.update(published=PUBLISHED)
    torch = official.import_torch(result, args.repo)
    if torch is None:
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        return result.fail("skipped", "PyTorch sees no CUDA device")
    import dnnlib
    import numpy as np
    from torch_utils import misc, training_stats
    from torch_utils.ops import bias_act, conv2d_gradfix, grid_sample_gradfix, upfirdn2d

    result.update(patches=[patch_grid_sample(torch, grid_sample_gradfix)])
    ops = official.choose_ops(result, args.impl, bias_act, upfirdn2d, args.device)
    if args.build_only:
        result.update(status="built")
        return 0 if args.impl != "cuda" or set(ops.values()) == {"cuda"} else 1

    spec = auto_config(args.resolution)
    batch = args.batch
    device = torch.device(args.device)
    torch.manual_seed(0)
    np.random.seed(0)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # training_loop's allow_tf32=False default
    torch.backends.cudnn.allow_tf32 = False
    conv2d_gradfix.enabled = True
    grid_sample_gradfix.enabled = True
    training_stats.init_multiprocessing(rank=0, sync_device=None)

    common = dict(c_dim=0, img_resolution=args.resolution, img_channels=3)
    channel_base = int(spec["fmaps"] * 32768)
    G = dnnlib.util.construct_class_by_name(
        class_name="training.networks.Generator", z_dim=512, w_dim=512,
        mapping_kwargs=dict(num_layers=spec["map"]),
        synthesis_kwargs=dict(channel_base=channel_base, channel_max=args.channel_max,
                              num_fp16_res=args.fp16_res,
                              conv_clamp=256), **common).train().requires_grad_(False).to(device)
    D = dnnlib.util.construct_class_by_name(
        class_name="training.networks.Discriminator", channel_base=channel_base,
        channel_max=args.channel_max, num_fp16_res=args.fp16_res, conv_clamp=256,
        block_kwargs={}, mapping_kwargs={},
        epilogue_kwargs=dict(mbstd_group_size=spec["mbstd"]), **common,
    ).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    augment_pipe = dnnlib.util.construct_class_by_name(
        class_name="training.augment.AugmentPipe", **BGC).train().requires_grad_(False).to(device)
    augment_pipe.p.copy_(torch.as_tensor(args.augment_p))
    ada_stats = training_stats.Collector(regex="Loss/signs/real")
    loss = dnnlib.util.construct_class_by_name(
        class_name="training.loss.StyleGAN2Loss", device=device, G_mapping=G.mapping,
        G_synthesis=G.synthesis, D=D, augment_pipe=augment_pipe, r1_gamma=spec["gamma"])
    phases = []
    for name, module, reg_interval in (("G", G, 4), ("D", D, 16)):
        mb_ratio = reg_interval / (reg_interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=spec["lrate"] * mb_ratio,
                               betas=[b**mb_ratio for b in (0, 0.99)], eps=1e-8)
        phases += [dnnlib.EasyDict(name=name + "main", module=module, opt=opt, interval=1),
                   dnnlib.EasyDict(name=name + "reg", module=module, opt=opt,
                                   interval=reg_interval)]
    result.update(config=dict(spec, resolution=args.resolution, batch=batch,
                              channel_base=channel_base, channel_max=args.channel_max,
                              num_fp16_res=args.fp16_res, conv_clamp=256,
                              G_params=sum(p.numel() for p in G.parameters()),
                              D_params=sum(p.numel() for p in D.parameters())))

    images = torch.randint(0, 256, (batch, 3, args.resolution, args.resolution),
                           dtype=torch.uint8)
    images = images.pin_memory() if args.device == "cuda" else images
    labels = torch.zeros([batch, 0], device=device)
    ema_nimg_max = spec["ema"] * 1000
    state = dict(cur_nimg=0)

    def step(batch_idx: int) -> None:
        """One iteration of training_loop.py's `while True` body (one GPU)."""
        real = (images.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1)
        all_gen_z = torch.randn([len(phases) * batch, G.z_dim], device=device).split(batch)
        for phase, gen_z in zip(phases, all_gen_z, strict=True):
            if batch_idx % phase.interval != 0:
                continue
            phase.opt.zero_grad(set_to_none=True)
            phase.module.requires_grad_(True)
            loss.accumulate_gradients(phase=phase.name, real_img=real, real_c=labels,
                                      gen_z=gen_z, gen_c=labels, sync=True,
                                      gain=phase.interval)
            phase.module.requires_grad_(False)
            for param in phase.module.parameters():
                if param.grad is not None:
                    misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5,
                                    out=param.grad)
            phase.opt.step()
        ema_nimg = min(ema_nimg_max, state["cur_nimg"] * 0.05)
        ema_beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        official.ema_update(torch, G_ema, G, ema_beta)
        state["cur_nimg"] += batch
        if (batch_idx + 1) % 4 == 0:  # ADA every ada_interval = 4 iterations
            ada_stats.update()
            adjust = np.sign(ada_stats["Loss/signs/real"] - 0.6) * (batch * 4) / (500 * 1000)
            augment_pipe.p.copy_((augment_pipe.p + adjust).max(misc.constant(0,
                                                                              device=device)))

    official.time_steps(result, torch, step, args, batch, period=16)
    result.update(augment_p=float(augment_pipe.p.cpu()))
    if "s_per_kimg" in result.data:
        result.update(vs_published_a100=round(PUBLISHED["s_per_kimg"]
                                              / result.data["s_per_kimg"], 3))
    return 0


if __name__ == "__main__":
    sys.exit(official.run(main))
