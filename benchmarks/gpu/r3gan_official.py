"""Times brownvc/R3GAN's own training step: its CIFAR-10 configuration (`--preset=CIFAR10
--batch=512 --cond=1 --aug=1`, 32 px, one GPU), on synthetic images (no data set).

The networks (`training.networks.Generator` / `Discriminator` around `R3GAN.Networks`,
with its bfloat16 stages), the loss (`training.loss.R3GANLoss`: relativistic pairing
with R1 and R2 every step), the augmentation pipe and custom ops are the repository's
own, built as its `train.py` builds them for that command: widths 3/4 x [1024] x 4,
2 blocks per stage, cardinality 96, expansion 2, noise 64, class-conditional (10 classes;
condition embedding 64 in G, 768 in D), Adam(betas (0, 0), eps 1e-8) whose lr and beta_2
its loop sets every step from the cosine schedules (lr 2e-4, beta_2 0.9, gamma 0.05 and
augmentation p 0 at the start), EMA from the schedule. The loop body is
`training/training_loop.py`'s (a D phase and a G phase per iteration, each on its own
real batch, gradients flattened before the optimizer step, G_ema), with the data loader
replaced by fixed pinned uint8 batches and one-hot labels copied to the GPU each step,
as its loader hands them over (PNG decoding, done in its worker processes, is left out).
TF32 off and cuDNN benchmark on, as its loop sets them.

Patches, applied at run time (their files are not edited):
  * `pkg_resources`: its torch_utils (StyleGAN3's) import `pkg_resources.parse_version`;
    where setuptools no longer ships it, a stand-in gives `packaging.version.parse`.
  * Adam's betas are given as floats, (0.0, 0.0) and (0.0, beta_2): its train.py passes
    `betas=[0,0]`, which recent PyTorch refuses ("betas must be either both floats or
    both Tensors", seen on 2.13).
  * nothing else: its grid_sample_gradfix already calls PyTorch >= 1.11's API, and its
    conv2d_gradfix falls back to `F.conv2d` on PyTorch >= 1.11 by itself.
  * bias_act and upfirdn2d: their CUDA extensions are built with nvcc at the first call
    (`--impl auto`); if the build fails the repository falls back to its reference ops,
    and the JSON records which (`custom_ops`) and the build error.

Run (on a GPU; `benchmarks/gpu/run.sh` runs it):
    python benchmarks/gpu/r3gan_official.py --repo .gpu_carry/R3GAN --out r3gan_official.json
"""

from __future__ import annotations

import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import official  # noqa: E402

REPO = ".gpu_carry/R3GAN"
RESOLUTION, BATCH, CLASSES = 32, 512, 10
# train.py, `--preset=CIFAR10`
WIDTHS = [3 * x // 4 for x in [1024, 1024, 1024, 1024]]
BLOCKS = [2 * x for x in [1, 1, 1, 1]]
CARDINALITY = [3 * x for x in [32, 32, 32, 32]]
FP16_STAGES = [-1, -2, -3]
NOISE = 64
SCHEDULES = dict(lr=(2e-4, 5e-5), beta2=(0.9, 0.99), gamma=(0.05, 0.005), aug=(0.0, 0.55),
                 ema=(0.0, 5000 * 1000))
DECAY_NIMG = 2e7
AUGMENT = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
               brightness=0.5, contrast=0.5, lumaflip=0.5, hue=0.5, saturation=0.5, cutout=1)


def cosine(cur_nimg: float, start: float, end: float, total: float = DECAY_NIMG) -> float:
    """training_loop.cosine_decay_with_warmup without warm-up or hold (as train.py uses it)."""
    import math

    if cur_nimg > total:
        return end
    decay = 0.5 * (1 + math.cos(math.pi * cur_nimg / total))
    return start + (1 - decay) * (end - start)


def main(argv=None) -> int:
    p = official.parser(__doc__.splitlines()[0], REPO, warmup=5, steps=10, repeats=3)
    p.add_argument("--batch", type=int, default=BATCH)
    args = p.parse_args(argv)
    result = official.Result("r3gan_official", args)
    torch = official.import_torch(result, args.repo)
    if torch is None:
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        return result.fail("skipped", "PyTorch sees no CUDA device")
    import dnnlib
    from torch_utils import training_stats
    from torch_utils.ops import bias_act, conv2d_gradfix, grid_sample_gradfix, upfirdn2d

    ops = official.choose_ops(result, args.impl, bias_act, upfirdn2d, args.device)
    if args.build_only:
        result.update(status="built")
        return 0 if args.impl != "cuda" or set(ops.values()) == {"cuda"} else 1

    batch = args.batch
    device = torch.device(args.device)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    conv2d_gradfix.enabled = True
    grid_sample_gradfix.enabled = True
    training_stats.init_multiprocessing(rank=0, sync_device=None)

    widths = WIDTHS
    g_kwargs = dict(NoiseDimension=NOISE, WidthPerStage=widths,
                    CardinalityPerStage=CARDINALITY, BlocksPerStage=BLOCKS, ExpansionFactor=2,
                    FP16Stages=FP16_STAGES, ConditionEmbeddingDimension=NOISE)
    d_kwargs = dict(WidthPerStage=[*reversed(widths)],
                    CardinalityPerStage=[*reversed(CARDINALITY)],
                    BlocksPerStage=[*reversed(BLOCKS)], ExpansionFactor=2,
                    FP16Stages=[x + len(FP16_STAGES) for x in FP16_STAGES],
                    ConditionEmbeddingDimension=widths[0])
    common = dict(c_dim=CLASSES, img_resolution=RESOLUTION)
    G = dnnlib.util.construct_class_by_name(class_name="training.networks.Generator",
                                            **g_kwargs, **common)
    D = dnnlib.util.construct_class_by_name(class_name="training.networks.Discriminator",
                                            **d_kwargs, **common)
    G = G.train().requires_grad_(False).to(device)
    D = D.train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    augment_pipe = dnnlib.util.construct_class_by_name(
        class_name="training.augment.AugmentPipe", **AUGMENT).train().requires_grad_(False)
    augment_pipe = augment_pipe.to(device)
    loss = dnnlib.util.construct_class_by_name(class_name="training.loss.R3GANLoss", G=G, D=D,
                                               augment_pipe=augment_pipe)
    phases = []
    for name, module in (("D", D), ("G", G)):
        opt = torch.optim.Adam(module.parameters(), betas=[0.0, 0.0], eps=1e-8)
        phases.append(dnnlib.EasyDict(name=name, module=module, opt=opt))
    result.update(config=dict(resolution=RESOLUTION, batch=batch, widths=widths,
                              blocks=BLOCKS, cardinality=CARDINALITY, noise=NOISE,
                              classes=CLASSES, fp16_stages_bfloat16=FP16_STAGES,
                              G_params=sum(p.numel() for p in G.parameters()),
                              D_params=sum(p.numel() for p in D.parameters())))

    images = [torch.randint(0, 256, (batch, 3, RESOLUTION, RESOLUTION), dtype=torch.uint8)
              for _ in range(2)]
    onehot = torch.nn.functional.one_hot(torch.arange(batch) % CLASSES, CLASSES).float()
    if args.device == "cuda":
        images, onehot = [x.pin_memory() for x in images], onehot.pin_memory()
    state = dict(cur_nimg=0)

    def step(_: int) -> None:
        """One iteration of training_loop.py's `while True` body (one GPU)."""
        cur = state["cur_nimg"]
        lr, beta2 = cosine(cur, *SCHEDULES["lr"]), cosine(cur, *SCHEDULES["beta2"])
        gamma, aug_p = cosine(cur, *SCHEDULES["gamma"]), cosine(cur, *SCHEDULES["aug"])
        ema_nimg = cosine(cur, *SCHEDULES["ema"])
        augment_pipe.p.copy_(torch.as_tensor(aug_p, device=device))
        for phase, real in zip(phases, images, strict=True):
            real_img = real.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1
            real_c = onehot.to(device, non_blocking=True)
            gen_z = torch.randn([batch, G.z_dim], device=device)
            phase.opt.zero_grad(set_to_none=True)
            phase.module.requires_grad_(True)
            loss.accumulate_gradients(phase=phase.name, real_img=real_img, real_c=real_c,
                                      gen_z=gen_z, gamma=gamma, gain=1.0)
            phase.module.requires_grad_(False)
            for group in phase.opt.param_groups:
                group["lr"] = lr
                group["betas"] = (0.0, beta2)
            params = [p for p in phase.module.parameters() if p.grad is not None]
            if params:
                flat = torch.cat([p.grad.flatten() for p in params])
                for param, grad in zip(params, flat.split([p.numel() for p in params]),
                                       strict=True):
                    param.grad = grad.reshape(param.shape)
            phase.opt.step()
        ema_beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        official.ema_update(torch, G_ema, G, ema_beta)
        state["cur_nimg"] += batch

    official.time_steps(result, torch, step, args, batch)
    return 0


if __name__ == "__main__":
    sys.exit(official.run(main))
