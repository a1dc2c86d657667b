"""Data: the `face_segmentation` TFDS dataset and the Grain input pipeline."""
