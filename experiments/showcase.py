"""The README's pictures: trained models on public-domain portraits.

    python -m experiments.showcase --workdirs=runs/quick,runs/lips_eyes,runs/face_parsing_cpu \
        --output=docs/images/astronaut.png
    python -m experiments.showcase --photo=grace_hopper --workdirs=runs/quick \
        --output=docs/images/grace_hopper.png

The portraits ship inside installed wheels (no download): NASA's astronaut with scikit-image,
the US Navy's portrait of Grace Hopper, in glasses, with matplotlib. Each model predicts it as
`experiments.predict` would (the face found and framed, the mask pasted back), and the picture
shows the face, then one panel per model, labelled with its workdir's name and target.
"""

from absl import flags

from experiments import cli

flags.DEFINE_enum('photo', 'astronaut', ['astronaut', 'grace_hopper'], 'The portrait: NASA\'s astronaut '
                  '(scikit-image) or Grace Hopper in glasses (matplotlib).')
flags.DEFINE_list('workdirs', None, 'Trained workdirs, one panel each.', required=True)
flags.DEFINE_string('output', None, 'Where to write the picture; default docs/images/<photo>.png.')
flags.DEFINE_integer('size', 320, 'Height of each panel in pixels.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import os

  import numpy as np
  import skimage.data
  from PIL import Image, ImageDraw

  from unet_flax import faces, pictures
  from unet_flax.predict import Predictor, load_image

  if FLAGS.photo == 'astronaut':
    photo, credit = Image.fromarray(skimage.data.astronaut()), 'NASA'
  else:
    import matplotlib.cbook
    photo, credit = load_image(matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)), 'US Navy'

  detected = faces.regions(photo, 'auto')
  boxes = detected or [faces.Box(0, 0, photo.width, photo.height)]
  # Show the face: the square the first face was predicted in, clipped to the photo.
  b = boxes[0]
  view = np.s_[max(b.y0, 0):min(b.y1, photo.height), max(b.x0, 0):min(b.x1, photo.width)]

  def titled(panel, title):  # FLAGS.size pixels high, the title above it
    img = Image.fromarray(panel)
    img = img.resize((round(img.width * FLAGS.size / img.height), FLAGS.size), Image.Resampling.LANCZOS)
    canvas = Image.new('RGB', (img.width, img.height + 18), 'white')
    canvas.paste(img, (0, 18))
    ImageDraw.Draw(canvas).text((4, 3), title, fill='black')
    return np.asarray(canvas)

  panels = [titled(np.asarray(photo)[view], f'photo ({credit}, public domain)')]
  for workdir in FLAGS.workdirs:
    predictor = Predictor(workdir)
    label = faces.paste(predictor.in_boxes([(photo, box, bool(detected)) for box in boxes]), boxes, photo.size)
    panel = pictures.overlay(np.asarray(photo)[view], label[view], predictor.num_classes)
    if predictor.num_classes > 1:
      panel = pictures.with_legend(panel, predictor.class_names)
    panels.append(titled(panel, f'{os.path.basename(os.path.normpath(workdir))}: {predictor.config.target}'))
  output = FLAGS.output or f'docs/images/{FLAGS.photo}.png'
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  Image.fromarray(np.concatenate(panels, axis=1)).save(output)
  print(f'Wrote {output}')


if __name__ == '__main__':
  cli.run(main)
