"""unet_flax: U-Net face-part segmentation in JAX/Flax (eyeglasses, eyes, lips, face parsing)."""
