"""Pure step functions: train state, optimiser, and the train/eval/predict steps.

Two kinds of model share them (config.model.kind): the U-Net, trained on a segmentation
loss (`train_step`), and pix2pix, the same U-Net as generator against a PatchGAN
discriminator (`gan_train_step`, state `GanState`). Evaluation and prediction use the
network that makes masks (`inference_state`), so the loop, checkpoints and metrics do
not care which kind trains.

The steps take a state and a per-device batch and use collectives over
`axis_name`; replication lives only in `pmap_steps`, so moving to `jax.jit`
with shardings changes that one function. This module imports no input
pipeline, TFDS or TensorFlow, so benchmarks and inference run on a host that
has only JAX.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from unet_flax import augment, losses
from unet_flax import metrics as metrics_lib
from unet_flax import model as model_lib
from unet_flax.data import parts as parts_lib
from unet_flax.errors import ConfigError

AXIS = 'batch'


class TrainState(train_state.TrainState):
  batch_stats: Any = None


class GanState(flax.struct.PyTreeNode):
  """pix2pix: generator and discriminator, each with its own optimiser state."""
  generator: TrainState
  discriminator: TrainState

  @property
  def step(self):
    return self.generator.step


def make_optimizer(opt_cfg, total_steps: int) -> optax.GradientTransformation:
  lr = opt_cfg.learning_rate
  if opt_cfg.schedule == 'constant':
    schedule = optax.constant_schedule(lr)
  elif opt_cfg.schedule == 'warmup_cosine':
    warmup = min(opt_cfg.warmup_steps, max(total_steps - 1, 0))
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))
  else:
    raise ConfigError(f'config.optimizer.schedule={opt_cfg.schedule!r}: use constant or warmup_cosine.')
  b1 = opt_cfg.beta1
  makers = {
      'adam': lambda: optax.adam(schedule, b1=b1),
      'adamw': lambda: optax.adamw(schedule, b1=b1, weight_decay=opt_cfg.weight_decay),
      'sgd': lambda: optax.sgd(schedule, momentum=opt_cfg.momentum, nesterov=True),
  }
  if opt_cfg.name not in makers:
    raise ConfigError(f'config.optimizer.name={opt_cfg.name!r}: use one of {sorted(makers)}.')
  tx = makers[opt_cfg.name]()
  if opt_cfg.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(opt_cfg.grad_clip_norm), tx)
  return tx


def create_train_state(rng, model, image_size: int, tx) -> TrainState:
  variables = jax.jit(functools.partial(model.init, train=False))(
      rng, jnp.zeros((1, image_size, image_size, 3), jnp.float32))
  return TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                           batch_stats=variables.get('batch_stats'))


def create_state(rng, config, num_classes: int, total_steps: int) -> TrainState | GanState:
  """The initial state for config.model.kind: a TrainState, or a GanState for pix2pix."""
  return _kind(config).init(rng, config, num_classes, total_steps)


def make_unet(config, num_classes: int) -> model_lib.UNet:
  """The U-Net a config trains: `num_classes` outputs, and one more for config.auxiliary_target."""
  return model_lib.from_config(config.model, num_classes, auxiliary_classes=1 if config.auxiliary_target else 0)


def _unet_state(rng, config, num_classes: int, total_steps: int) -> TrainState:
  return create_train_state(rng, make_unet(config, num_classes), config.model.image_size,
                            make_optimizer(config.optimizer, total_steps))


def _gan_state(rng, config, num_classes: int, total_steps: int) -> GanState:
  generator = _unet_state(rng, config, num_classes, total_steps)
  size = config.model.image_size
  disc = model_lib.PatchDiscriminator(config.gan.disc_features)
  variables = jax.jit(disc.init)(jax.random.fold_in(rng, 1), jnp.zeros((1, size, size, 3)),
                                 jnp.zeros((1, size, size, 1)))
  return GanState(generator=generator, discriminator=TrainState.create(
      apply_fn=disc.apply, params=variables['params'], tx=make_optimizer(config.optimizer, total_steps)))


def inference_state(state: TrainState | GanState) -> TrainState:
  """The network that maps images to mask logits."""
  return state.generator if isinstance(state, GanState) else state


def _apply(state, params, images, train, rng=None, **kwargs):
  variables = {'params': params}
  if state.batch_stats is not None:
    variables['batch_stats'] = state.batch_stats
  mutable = ['batch_stats'] if train and state.batch_stats is not None else False
  out = state.apply_fn(variables, images, train=train, rngs={'dropout': rng} if train else None,
                       mutable=mutable, **kwargs)
  return out if mutable else (out, {})


def _step_inputs(state, batch, config, mirror_label_map, axis_name):
  """(images, labels, dropout key) of a train step: resized to the model, augmented with the
  draws of (seed, step), the same on every device count."""
  step_key = jax.random.fold_in(jax.random.key(config.seed), state.step)
  aug_key, dropout_key = jax.random.split(step_key)
  images, labels = augment.resize(batch['image'], batch['label'], config.model.image_size)
  if config.augment.enabled:
    images, labels = augment.augment(aug_key, images, labels, config.augment, mirror_label_map, axis_name)
  return images, labels, dropout_key


def _updated(state: TrainState, grads, updates, axis_name) -> TrainState:
  """One optimiser update, with batch statistics averaged over the devices."""
  new_state = state.apply_gradients(grads=grads)
  if updates:
    new_state = new_state.replace(batch_stats=jax.lax.pmean(updates['batch_stats'], axis_name))
  return new_state


def _finish(state, new_state, scalars, logits, labels, loss, axis_name):
  """(state, metrics, finite) at the end of a train step. A non-finite scalar or state leaf
  rolls the whole state back (params, optimiser moments, batch statistics, step); the
  logged loss is the optimised one, this step's global-batch loss, once per example."""
  finite = jnp.all(jnp.isfinite(jnp.stack(scalars))) & _all_finite(new_state)
  new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, state)
  n = logits.shape[0]
  step_metrics = metrics_lib.global_batch(axis_name, logits, labels, jnp.ones(n, bool), jnp.full(n, loss))
  return new_state, step_metrics, finite


def train_step(state: TrainState, batch, *, loss_fn, config, mirror_label_map, axis_name=AXIS):
  """One optimiser step on this device's slice of the global batch.

  The result does not depend on how many devices share the batch: the loss is the
  global-batch loss (`loss_fn` is called with `axis_name`), batch norm statistics are
  synchronised, and augmentation and dropout draw from (seed, step, global example index).
  A non-finite loss or gradient leaves the state unchanged and is reported in the
  metrics, so the caller can stop with the last good state.
  """
  images, labels, dropout_key = _step_inputs(state, batch, config, mirror_label_map, axis_name)
  weights = jnp.ones(images.shape[0], jnp.float32)
  if config.auxiliary_target:
    labels, auxiliary_labels = parts_lib.split_auxiliary(labels)

  def loss_and_logits(params):
    if not config.auxiliary_target:
      logits, updates = _apply(state, params, images, True, dropout_key)
      return loss_fn(logits, labels, weights, axis_name=axis_name), (logits, updates)
    (logits, auxiliary), updates = _apply(state, params, images, True, dropout_key, with_auxiliary=True)
    loss = (loss_fn(logits, labels, weights, axis_name=axis_name)
            + config.loss.auxiliary_weight * loss_fn(auxiliary, auxiliary_labels, weights, axis_name=axis_name))
    return loss, (logits, updates)

  (loss, (logits, updates)), grads = jax.value_and_grad(loss_and_logits, has_aux=True)(state.params)
  grads = jax.lax.pmean(grads, axis_name)
  grad_norm = optax.global_norm(grads)
  new_state = _updated(state, grads, updates, axis_name)
  new_state, step_metrics, finite = _finish(state, new_state, (loss, grad_norm), logits, labels, loss, axis_name)
  return new_state, step_metrics, {'grad_norm': grad_norm, 'finite': finite, 'loss': loss}


def gan_train_step(state: GanState, batch, *, config, mirror_label_map, axis_name=AXIS):
  """One pix2pix step: the discriminator, then the generator against the updated discriminator.

  Discriminator: BCE on (image, real mask) towards 1 and (image, generated mask) towards 0,
  halved. Generator: adversarial BCE + config.gan.l1_weight x L1 to the real mask. The
  generated mask is the U-Net's logits through sigmoid (in [0, 1]) or tanh (in [-1, 1],
  with image and real mask mapped there too); either way its threshold is logits > 0, so
  evaluation is the U-Net's. Same guarantees as `train_step`: global-batch losses,
  per-example keys, and a non-finite step rolled back whole. It has its own losses (no
  config.loss): the logged loss is the generator's.
  """
  images, labels, dropout_key = _step_inputs(state, batch, config, mirror_label_map, axis_name)
  tanh = config.gan.output == 'tanh'
  condition = images * 2 - 1 if tanh else images
  real = labels[..., None].astype(jnp.float32)
  real = real * 2 - 1 if tanh else real
  gen, disc = state.generator, state.discriminator
  discriminate = lambda params, mask: disc.apply_fn({'params': params}, condition, mask)

  def generate(params):
    logits, updates = _apply(gen, params, images, True, dropout_key)
    return (jnp.tanh(logits) if tanh else jax.nn.sigmoid(logits)), (logits, updates)

  fake, pull_back, (logits, updates) = jax.vjp(generate, gen.params, has_aux=True)

  def disc_loss(params):
    return 0.5 * (losses.adversarial(discriminate(params, real), True, axis_name)
                  + losses.adversarial(discriminate(params, jax.lax.stop_gradient(fake)), False, axis_name))

  d_loss, d_grads = jax.value_and_grad(disc_loss)(disc.params)
  new_disc = disc.apply_gradients(grads=jax.lax.pmean(d_grads, axis_name))

  def gen_loss(mask):
    adv = losses.adversarial(discriminate(new_disc.params, mask), True, axis_name)
    l1 = losses.l1(mask, real, axis_name)
    return adv + config.gan.l1_weight * l1, (adv, l1)

  (g_loss, (g_adv, g_l1)), d_fake = jax.value_and_grad(gen_loss, has_aux=True)(fake)
  g_grads = jax.lax.pmean(pull_back(d_fake)[0], axis_name)
  grad_norm = optax.global_norm(g_grads)
  new_state = GanState(generator=_updated(gen, g_grads, updates, axis_name), discriminator=new_disc)
  new_state, step_metrics, finite = _finish(state, new_state, (g_loss, d_loss, grad_norm), logits, labels, g_loss,
                                            axis_name)
  return new_state, step_metrics, {'grad_norm': grad_norm, 'finite': finite, 'loss': g_loss,
                                   'd_loss': d_loss, 'g_adversarial': g_adv, 'g_l1': g_l1}


class _Kind(NamedTuple):
  init: Callable  # (rng, config, num_classes, total_steps) -> the initial state
  train_step: Callable  # loss_fn -> the per-device train step (state, batch, *, config, ...)


# Every difference between the kinds of model is here: the loop, checkpoints, evaluation and
# prediction take whatever state `init` makes (`inference_state` finds its mask network).
KINDS = {
    'unet': _Kind(_unet_state, lambda loss_fn: functools.partial(train_step, loss_fn=loss_fn)),
    'pix2pix': _Kind(_gan_state, lambda loss_fn: gan_train_step),
}


def _kind(config) -> _Kind:
  kind = config.model.kind
  if kind not in KINDS:
    raise ConfigError(f'config.model.kind={kind!r}: use one of {list(KINDS)}.')
  return KINDS[kind]


def _all_finite(tree) -> jax.Array:
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def eval_step(state: TrainState, batch, *, loss_fn, config, axis_name=AXIS):
  """Metrics of one eval batch, {'label_size': ..., 'model_size': ...}.

  Masks are scored at the dataset's label resolution, the logits upsampled to it, as
  published results are; when the model runs at another size the scores at its input
  size come too ('model_size', else None). The loss is the training loss, at the model's
  size, over the batch's valid examples.
  """
  valid = batch['valid']
  state = inference_state(state)
  images, labels = augment.resize(batch['image'], batch['label'], config.model.image_size)
  logits, _ = _apply(state, state.params, images, False)
  loss = loss_fn(logits, labels, valid.astype(jnp.float32), axis_name=axis_name)
  loss_per_example = jnp.where(valid, loss, 0.0)  # an all-padding batch has a NaN loss
  at_model_size = metrics_lib.global_batch(axis_name, logits, labels, valid, loss_per_example)
  full_labels = batch['label']
  if full_labels.shape[1:3] == labels.shape[1:3]:
    return {'label_size': at_model_size, 'model_size': None}
  b, (h, w), k = logits.shape[0], full_labels.shape[1:3], logits.shape[-1]
  full_logits = jax.image.resize(logits, (b, h, w, k), 'bilinear')
  at_label_size = metrics_lib.global_batch(axis_name, full_logits, full_labels, valid, loss_per_example)
  return {'label_size': at_label_size, 'model_size': at_model_size}


@functools.partial(jax.jit, static_argnames='image_size')
def predict_step(state: TrainState, images, *, image_size):
  """Logits for [B, H, W, 3] float images, at the model's input size."""
  images, _ = augment.resize(images, jnp.zeros(images.shape[:3], jnp.int32), image_size)
  state = inference_state(state)
  return _apply(state, state.params, images, False)[0]


def pmap_steps(loss_fn, config, mirror_label_map):
  """Train and eval steps pmapped over local devices. The state is passed and returned
  replicated (in_axes/out_axes None) and donated to the train step."""
  step = _kind(config).train_step(loss_fn)
  train = jax.pmap(functools.partial(step, config=config,
                                     mirror_label_map=jnp.asarray(mirror_label_map)),
                   axis_name=AXIS, in_axes=(None, 0), out_axes=(None, None, None),
                   # Across processes, pmap hands the donated replicated state back as the
                   # output's buffers and then frees them ("Array has been deleted").
                   donate_argnums=(0,) if jax.process_count() == 1 else ())
  evaluate = jax.pmap(functools.partial(eval_step, loss_fn=loss_fn, config=config),
                      axis_name=AXIS, in_axes=(None, 0), out_axes=None)
  return train, evaluate
