"""The `face_segmentation` TFDS dataset folder."""
from unet_flax.data.face_segmentation.face_segmentation_dataset_builder import (
    SOURCE_FILE,
    Builder,
    FaceSegmentationConfig,
)

__all__ = ['SOURCE_FILE', 'Builder', 'FaceSegmentationConfig']
