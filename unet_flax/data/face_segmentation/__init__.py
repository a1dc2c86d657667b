"""The `face_segmentation` TFDS dataset folder."""
from unet_flax.data.face_segmentation.face_segmentation_dataset_builder import Builder, FaceSegmentationConfig

__all__ = ['Builder', 'FaceSegmentationConfig']
