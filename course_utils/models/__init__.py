"""Models of the course, one concept per module.

* ``attention``   -- scaled dot-product attention, multi-head self-attention (Chapter 1)
* ``transformer`` -- the Transformer encoder (Chapter 1; reused by the ViT and embeddings chapters)
* ``bert``        -- a tiny BERT trained with masked-language modelling (Chapter 1)
* ``vit``         -- the Vision Transformer, MAE pretraining, attention rollout (Chapter 2)
* ``autoencoder`` -- linear / deep / denoising / sparse autoencoders (Chapter 5)
* ``vae``         -- the variational autoencoder and the reparameterisation trick (Chapter 5)
* ``unet``        -- the U-Net every image-to-image chapter reuses (Chapter 5)
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
    count_parameters,
    to_torch_encoder_layer,
)

__all__ = [
    "attention_probabilities", "causal_mask", "combine_masks", "MultiHeadSelfAttention",
    "to_torch_mha", "from_torch_mha",
    "EncoderConfig", "MLP", "EncoderBlock", "TransformerEncoder", "count_parameters",
    "to_torch_encoder_layer",
    "BertConfig", "MaskedLanguageModel", "mlm_loss", "masked_token_accuracy", "IGNORE_INDEX",
]
