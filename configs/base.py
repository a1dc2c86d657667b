"""Seed 000: eyeglasses segmentation, 256x256, U-Net 64..1024, Adam 1e-3, BCE, batch 16.

    python -m experiments.main --config=configs/base.py
    python -m experiments.main --config=configs/base.py \
        --config.dataset.config=celebamask_hq --config.dataset.manual_dir=/data/CelebAMask-HQ

Every other config imports this one and overrides fields. The seed's plain U-Net, meant for
a GPU: 10 epochs on the synthetic set, or on CelebAMask-HQ. Its target is in docs/training.md
("What the configs aim at"); measured results are in docs/benchmarks.md.
"""

import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.target = 'eyeglasses'  # eyeglasses | eyes | lips | eyes_lips | face_parsing | 'part,part'
  c.painting_order = ()  # face parsing only; () = CelebAMask-HQ's own order
  # Binary targets only: parts (named as c.target names them) the U-Net also learns in a second
  # output channel, so that it tells the target from what looks like it (glasses from the eyes
  # they frame). Training only: evaluation, prediction and exports see the target's channel.
  c.auxiliary_target = ''  # '' = none | eyes | 'part,part'

  c.dataset = ml_collections.ConfigDict()
  c.dataset.config = 'synthetic'  # synthetic | celebamask_hq | folder (+ _512)
  c.dataset.data_dir = '~/tensorflow_datasets'
  c.dataset.manual_dir = ''
  c.dataset.synthetic_sizes = {}  # e.g. {'train': 200, 'validation': 50, 'test': 50}; {} = default
  c.dataset.synthetic_seed = 0

  c.model = ml_collections.ConfigDict()
  c.model.kind = 'unet'  # unet | pix2pix (the U-Net as generator against a PatchGAN; see c.gan)
  c.model.image_size = 256
  c.model.base_features = 64
  c.model.depth = 4
  c.model.norm = 'none'  # none | batch | group
  c.model.dropout = 0.0
  c.model.upsample = 'transpose'  # transpose | resize
  c.model.dtype = 'float32'  # float32 | bfloat16 (parameters stay float32)

  c.loss = ml_collections.ConfigDict()
  c.loss.name = 'bce'  # bce | dice | bce_dice | focal | cross_entropy
  c.loss.pos_weight = 1.0
  c.loss.focal_gamma = 2.0
  c.loss.focal_alpha = 0.25
  c.loss.auxiliary_weight = 1.0  # the auxiliary target's loss (config.loss.name) is added times this

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'adam'  # adam | adamw | sgd
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = 'constant'  # constant | warmup_cosine
  c.optimizer.warmup_steps = 0
  c.optimizer.weight_decay = 1e-4
  c.optimizer.momentum = 0.9  # sgd
  c.optimizer.beta1 = 0.9  # adam, adamw
  c.optimizer.grad_clip_norm = 0.0  # 0 = off

  c.gan = ml_collections.ConfigDict()  # model.kind=pix2pix only
  c.gan.l1_weight = 100.0  # generator loss = adversarial BCE + l1_weight x L1
  c.gan.disc_features = 64  # PatchGAN widths: 64, 128, 256, 512
  c.gan.output = 'sigmoid'  # sigmoid | tanh: how the generator's logits become a mask

  c.augment = ml_collections.ConfigDict()
  c.augment.enabled = True
  c.augment.hflip = True
  c.augment.scale_range = (0.85, 1.2)
  c.augment.rotation_degrees = 10.0
  c.augment.brightness = 0.1
  c.augment.contrast = 0.2
  c.augment.saturation = 0.2
  # Appearance randomisation for generalising beyond the training domain (unet_flax.appearance):
  # the probability of each per example, 0 = off.
  c.augment.colour_style = 0.0
  c.augment.randconv = 0.0
  c.augment.randconv_kernels = (1, 3, 5, 7)
  c.augment.amplitude_mix = 0.0
  c.augment.amplitude_mix_strength = 0.5  # the largest share of the partner's amplitude
  c.augment.blur_noise = 0.0
  c.augment.jpeg = 0.0
  c.augment.cutout = 0.0

  c.batch_size = 16  # global, over all devices and hosts
  c.eval_batch_size = 16
  c.num_epochs = 10
  c.num_train_steps = 0  # > 0 overrides num_epochs
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 2
  c.best_metric = ''  # validation metric that picks the best checkpoint; '' = dice, or mean_f1 for face_parsing
  return c
