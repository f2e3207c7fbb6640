"""Models of the course, one concept per module.

* ``attention``   -- scaled dot-product attention, multi-head self-attention (Chapter 1)
* ``parameters``  -- counting a model's parameters
* ``transformer`` -- the Transformer encoder (Chapter 1; reused by the ViT and embeddings chapters)
* ``bert``        -- a tiny BERT trained with masked-language modelling (Chapter 1)
* ``vit``         -- the Vision Transformer, MAE pretraining, attention rollout (Chapter 2)
* ``autoencoder`` -- linear / deep / denoising / sparse autoencoders (Chapter 5)
* ``vae``         -- the variational autoencoder and the reparameterisation trick (Chapter 5)
* ``unet``        -- the U-Net every image-to-image chapter reuses (Chapter 5)
* ``boxes``       -- box formats, IoU and non-maximum suppression (Chapter 3)
* ``selective_search`` -- R-CNN's region proposals by hierarchical grouping (Chapter 3)
* ``yolo``        -- a YOLO-style single-shot grid detector: targets, loss, decoding (Chapter 3)
* ``losses``      -- the focal loss (Chapter 3; reused for imbalanced medical data)
* ``gan``         -- DCGAN generator and discriminator, conditional by class, the two steps (Chapter 4)
* ``classifier``  -- the course's small CNN image classifier (Chapters 4, 7, 8)
* ``judge``       -- that CNN trained (and cached) to rate generated images (Chapters 4, 7)
* ``pix2pix``     -- U-Net generator, PatchGAN discriminator, the pix2pix objective (Chapter 4)
* ``word2vec``    -- skip-gram and CBOW with negative sampling, analogies (Chapter 6)
* ``clip``        -- a tiny open_clip CLIP: build, train on shapes, save and load (Chapters 6, 7)
* ``captioner``   -- a decoder that writes a caption from an image embedding (Chapter 6)
* ``diffusion``   -- noise schedule, q(x_t | x_0), the denoiser's training loop, DDPM sampling,
  inpainting, classifier-free guidance (Chapter 7)
* ``latent``      -- latent diffusion: a tiny autoencoder and text conditioning (Chapter 7)
* ``unclip``      -- the unCLIP prior from text to image embeddings (Chapter 7)
* ``cad``         -- a mammography CAD pipeline's parts: crop classifier and its losses, segment-and-classify U-Net,
  anomaly maps (Chapter 8)

The names of the first three modules are re-exported here; import the others from their module,
e.g. ``from course_utils.models.yolo import TinyYOLO``.
"""
from .attention import (
    MultiHeadSelfAttention,
    attention_probabilities,
    causal_mask,
    combine_masks,
    from_torch_mha,
    to_torch_mha,
)
from .bert import IGNORE_INDEX, BertConfig, MaskedLanguageModel, masked_token_accuracy, mlm_loss
from .transformer import (
    MLP,
    EncoderBlock,
    EncoderConfig,
    TransformerEncoder,
    to_torch_encoder_layer,
)
from .parameters import count_parameters

__all__ = [
    "attention_probabilities", "causal_mask", "combine_masks", "MultiHeadSelfAttention",
    "to_torch_mha", "from_torch_mha",
    "EncoderConfig", "MLP", "EncoderBlock", "TransformerEncoder", "count_parameters",
    "to_torch_encoder_layer",
    "BertConfig", "MaskedLanguageModel", "mlm_loss", "masked_token_accuracy", "IGNORE_INDEX",
]
