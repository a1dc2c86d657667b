"""The README's picture: trained models on NASA's public-domain astronaut portrait.

    python -m experiments.showcase --workdirs=runs/quick,runs/lips_eyes,runs/face_parsing_cpu \
        --output=docs/images/astronaut.png

The portrait ships with scikit-image (no download). Each model predicts it as
`experiments.predict` would (the face found and framed, the mask pasted back), and the picture
shows the face, then one panel per model, labelled with its workdir's name and target.
"""

from absl import flags

from experiments import cli

flags.DEFINE_list('workdirs', None, 'Trained workdirs, one panel each.', required=True)
flags.DEFINE_string('output', 'docs/images/astronaut.png', 'Where to write the picture.')
flags.DEFINE_integer('size', 320, 'Height of each panel in pixels.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import os

  import numpy as np
  import skimage.data
  from PIL import Image, ImageDraw

  from unet_flax import faces, pictures
  from unet_flax.predict import Predictor

  photo = Image.fromarray(skimage.data.astronaut())
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

  panels = [titled(np.asarray(photo)[view], 'photo (NASA, public domain)')]
  for workdir in FLAGS.workdirs:
    predictor = Predictor(workdir)
    label = faces.paste(predictor.in_boxes([(photo, box, bool(detected)) for box in boxes]), boxes, photo.size)
    panel = pictures.overlay(np.asarray(photo)[view], label[view], predictor.num_classes)
    if predictor.num_classes > 1:
      panel = pictures.with_legend(panel, predictor.class_names)
    panels.append(titled(panel, f'{os.path.basename(os.path.normpath(workdir))}: {predictor.config.target}'))
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  Image.fromarray(np.concatenate(panels, axis=1)).save(FLAGS.output)
  print(f'Wrote {FLAGS.output}')


if __name__ == '__main__':
  cli.run(main)
