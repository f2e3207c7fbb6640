"""A tiny CLIP, built from open_clip's own classes, trained from scratch on shapes captions.

CLIP has an image encoder f (a ViT) and a text encoder g (a causal Transformer over BPE tokens,
pooled at the end-of-text token), each followed by a linear projection to a shared
``embed_dim``. For a batch of N matching pairs (x_i, t_i), with unit vectors
I_i = f(x_i)/||f(x_i)||, T_j = g(t_j)/||g(t_j)|| and a learned temperature τ = 1/exp(s):

    logits_ij = exp(s) I_i · T_j                       (N, N); the diagonal holds the true pairs
    L = ½ [ CE(logits, diag) + CE(logits^T, diag) ]    the symmetric InfoNCE loss

Each image must pick its own caption among the N captions of the batch, and each caption its
own image. ``open_clip.loss.ClipLoss`` computes exactly this (the chapter writes it from scratch
and compares the two).

This module holds what later chapters reuse: the config (:class:`TinyClipConfig`), the builder
(:func:`build_tiny_clip`, an ``open_clip.CLIP``), its tokenizer (open_clip's ``SimpleTokenizer``,
whose BPE vocabulary ships with the package), training (:func:`fit_clip`, :func:`train_shapes_clip`,
:func:`load_or_train_clip`; the shapes pairs come from ``course_utils.data.captions``), zero-shot
classification (:func:`zero_shot_logits`), the per-token text features that a text-conditioned
generator can attend to (:func:`text_token_features`), and saving/loading in open_clip's own
format (:func:`save_clip` writes ``open_clip_config.json`` + ``open_clip_pytorch_model.bin``,
:func:`load_clip` reads them back with ``open_clip.create_model("local-dir:...")``).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.captions import HELD_OUT, shapes_caption_data
from ..data.shapes import ShapesConfig
from ..cache import cache_dir
from ..train import History, embed, fit, max_steps, resolve_device, seeded

CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAME = "open_clip_pytorch_model.bin"
MAX_LOGIT_SCALE = 4.6052  # log 100: the learned temperature τ = 1/exp(s) stays >= 0.01, as in CLIP


@dataclass
class TinyClipConfig:
    """A CLIP small enough to train on a CPU in seconds (most parameters: the 49 408-token table)."""

    embed_dim: int = 64  # the shared embedding space
    image_size: int = 32  # images are image_size x image_size, RGB in [0, 1]
    patch_size: int = 4  # ViT patches: (image_size / patch_size)^2 tokens + 1 class token
    vision_width: int = 64
    vision_layers: int = 2
    vision_head_width: int = 32  # heads = vision_width / vision_head_width
    vision_mlp_ratio: float = 2.0
    vision_pool: str = "tok"  # image vector: the class token ("tok") or the mean of the patch tokens ("avg")
    context_length: int = 16  # tokens per caption, incl. start and end of text
    vocab_size: int = 49408  # open_clip's BPE vocabulary (fixed by the tokenizer)
    text_width: int = 64
    text_heads: int = 2
    text_layers: int = 2
    text_mlp_ratio: float = 2.0

    def __post_init__(self):
        if self.image_size % self.patch_size != 0:
            raise ValueError(f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}.")
        if self.vision_width % self.vision_head_width != 0:
            raise ValueError(f"vision_width={self.vision_width} is not a multiple of "
                             f"vision_head_width={self.vision_head_width}.")
        if self.text_width % self.text_heads != 0:
            raise ValueError(f"text_width={self.text_width} is not divisible by text_heads={self.text_heads}.")
        if self.context_length < 3:
            raise ValueError(f"context_length={self.context_length}: a caption needs start, word and end tokens.")

    def model_cfg(self) -> dict:
        """The configuration in open_clip's JSON format (``embed_dim``, ``vision_cfg``, ``text_cfg``)."""
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": {"image_size": self.image_size, "patch_size": self.patch_size,
                           "width": self.vision_width, "layers": self.vision_layers,
                           "head_width": self.vision_head_width, "mlp_ratio": self.vision_mlp_ratio,
                           "pool_type": self.vision_pool},
            "text_cfg": {"context_length": self.context_length, "vocab_size": self.vocab_size,
                         "width": self.text_width, "heads": self.text_heads, "layers": self.text_layers,
                         "mlp_ratio": self.text_mlp_ratio},
        }


def build_tiny_clip(config: Optional[TinyClipConfig] = None):
    """An ``open_clip.CLIP`` with the tiny config and random weights (no download)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    config = config if config is not None else TinyClipConfig()
    cfg = config.model_cfg()
    return CLIP(cfg["embed_dim"], CLIPVisionCfg(**cfg["vision_cfg"]), CLIPTextCfg(**cfg["text_cfg"]))


def get_tokenizer(config: Optional[TinyClipConfig] = None):
    """open_clip's BPE tokenizer padding/cutting to ``config.context_length`` tokens.

    ``tokenizer(["a red circle"])`` -> (1, context_length) int64: start, words, end, zeros.
    """
    from open_clip import SimpleTokenizer

    config = config if config is not None else TinyClipConfig()
    return SimpleTokenizer(context_length=config.context_length)


def model_config(model) -> TinyClipConfig:
    """Recover the TinyClipConfig of a model built by :func:`build_tiny_clip`."""
    visual = model.visual
    block = visual.transformer.resblocks[0]
    text_block = model.transformer.resblocks[0]
    width = visual.transformer.width
    return TinyClipConfig(
        embed_dim=model.text_projection.shape[1],
        image_size=visual.image_size[0],
        patch_size=visual.patch_size[0],
        vision_width=width,
        vision_layers=visual.transformer.layers,
        vision_head_width=width // block.attn.num_heads,
        vision_mlp_ratio=block.mlp.c_fc.out_features / width,
        vision_pool=visual.pool_type,
        context_length=model.context_length,
        vocab_size=model.vocab_size,
        text_width=model.transformer.width,
        text_heads=text_block.attn.num_heads,
        text_layers=model.transformer.layers,
        text_mlp_ratio=text_block.mlp.c_fc.out_features / model.transformer.width,
    )


# --------------------------------------------------------------------------------------------
# Training and using it


def fit_clip(model, images: Tensor, tokens: Tensor, steps: int = 300, batch_size: int = 64, lr: float = 2e-3,
             loss_fn: Optional[Callable] = None, seed: int = 0, train_token_embedding: bool = False,
             device=None) -> History:
    """Train ``model`` on (images (N, 3, H, W), tokens (N, context_length)) pairs with ``train.fit``.

    Each step draws ``batch_size`` *distinct* random pairs (a repeated pair would be its own
    negative) and minimises ``loss_fn(I, T, logit_scale)`` -- the symmetric InfoNCE loss,
    ``open_clip.loss.ClipLoss()`` by default -- with AdamW and a one-cycle schedule (10 % warm-up).
    The learned scale is kept at exp(s) <= 100 (τ >= 0.01), as in CLIP. Returns the History.

    The token table holds 49 408 x text_width of the parameters (3.2 M of 3.4 M) while shapes
    captions use a few dozen of its rows; with ``train_token_embedding=False`` (default) it stays
    at its random initialisation -- random vectors are already distinct -- and a step costs about
    half as much (no dense (49 408, width) gradient and Adam update).
    """
    if len(images) != len(tokens):
        raise ValueError(f"{len(images)} images but {len(tokens)} captions: they must come in pairs.")
    if loss_fn is None:
        from open_clip.loss import ClipLoss

        loss_fn = ClipLoss()
    model.token_embedding.weight.requires_grad_(train_token_embedding)

    def draw(generator):
        idx = torch.randperm(len(images), generator=generator)[:batch_size]  # (B,) distinct pairs
        return images[idx], tokens[idx]  # (B, 3, H, W), (B, context_length)

    def clip_step_loss(model, batch_images, batch_tokens):
        _clamp_logit_scale(model)  # the previous step may have pushed s past log 100
        image_features, text_features, logit_scale = model(batch_images, batch_tokens)  # (B, D), (B, D), ()
        return loss_fn(image_features, text_features, logit_scale)  # features are unit vectors

    history = fit(model, clip_step_loss, draw, steps=steps, batch_size=batch_size, lr=lr, warmup=0.1,
                  seed=seed, device=device, desc="CLIP")
    _clamp_logit_scale(model)
    return history


@torch.no_grad()
def _clamp_logit_scale(model) -> None:
    model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)


def train_shapes_clip(model, n: int = 2000, steps: int = 300, seed: int = 0, exclude=HELD_OUT,
                      device=None) -> History:
    """The chapter's recipe in one call: draw ``n`` shapes pairs and train ``model`` on them.

    ``model`` comes from ``build_tiny_clip(config)``. With the defaults this is the training that
    Chapter 6 does (same data without the ``HELD_OUT`` combinations, same seed, ``ClipLoss`` in
    place of the chapter's equal loss), for a later chapter that needs a text encoder and finds no
    saved one; ``exclude=()`` trains on every combination. Returns the History.
    """
    config = model_config(model)
    images, captions, _ = shapes_caption_data(n, ShapesConfig(image_size=config.image_size), seed, exclude)
    tokens = get_tokenizer(config)(captions)  # (n, context_length)
    return fit_clip(model, images, tokens, steps=steps, seed=seed, device=device)


def load_or_train_clip(directory=None, device=None):
    """The tiny shapes CLIP: loaded from ``directory`` (default ``default_clip_dir()``) when the saved
    config equals ``TinyClipConfig()``, else built (seed 0) and trained here with ``train_shapes_clip``.

    Returns ``(model, config, how)`` with the model on ``device`` (default: the runtime's) in eval
    mode and ``how`` = "loaded from <dir>" or "trained here (...)".
    """
    directory = default_clip_dir() if directory is None else directory
    device = resolve_device(device)
    wanted = TinyClipConfig()
    reason = "no saved model"
    try:
        saved = load_config(directory)
        if saved == wanted:
            model = load_clip(directory, device=device)
            return model, saved, f"loaded from {directory}"
        reason = "the saved config differs from the current recipe"
    except (FileNotFoundError, ValueError, OSError, RuntimeError, KeyError) as err:
        reason = f"no usable saved model ({type(err).__name__})"
    with seeded(0):
        model = build_tiny_clip(wanted)
    train_shapes_clip(model, device=device)
    return model.eval(), wanted, f"trained here ({reason})"


def default_clip_dir() -> Path:
    """Where Chapter 6 saves its trained CLIP: ``$COURSE_CACHE/tiny_clip_shapes``.

    ``$COURSE_CACHE`` defaults to ``~/.cache/course_utils``.
    A run with its loops capped (``$COURSE_MAX_STEPS``) keeps its barely trained model apart.
    """
    cap = max_steps()
    return cache_dir() / ("tiny_clip_shapes" if cap is None else f"tiny_clip_shapes-max-steps-{cap}")


def encode_images(model, images: Tensor, batch_size: int = 512, device=None) -> Tensor:
    """Unit image embeddings (N, embed_dim) on the CPU, computed in chunks on ``device``."""
    return embed(model, images, lambda m, x: m.encode_image(x), batch_size=batch_size, device=device)


def encode_texts(model, texts: Sequence[str], tokenizer=None, batch_size: int = 512, device=None) -> Tensor:
    """Unit text embeddings (N, embed_dim) of a list of strings, on the CPU."""
    tokenizer = tokenizer if tokenizer is not None else get_tokenizer(model_config(model))
    tokens = tokenizer(list(texts))  # (N, context_length)
    return embed(model, tokens, lambda m, t: m.encode_text(t), batch_size=batch_size, device=device)


def zero_shot_logits(image_features: Tensor, class_text_features: Tensor, logit_scale: float = 1.0) -> Tensor:
    """Cosine-similarity classifier: (N, D) images x (K, D) class prompts -> (N, K) logits.

    logits_nk = scale · cos(I_n, T_k) = scale · (I_n/||I_n||) · (T_k/||T_k||); predict argmax_k.
    """
    if image_features.shape[-1] != class_text_features.shape[-1]:
        raise ValueError(f"image features have dim {image_features.shape[-1]} but text features "
                         f"{class_text_features.shape[-1]}.")
    image_features = F.normalize(image_features, dim=-1)  # (N, D)
    class_text_features = F.normalize(class_text_features, dim=-1)  # (K, D)
    return logit_scale * image_features @ class_text_features.T  # (N, K)


def zero_shot_classify(image_features: Tensor, class_text_features: Tensor) -> tuple[Tensor, Tensor]:
    """(cosine similarities (N, K), predicted class (N,) int64): the nearest class prompt per image."""
    sims = zero_shot_logits(image_features, class_text_features)  # (N, K) cosines
    return sims, sims.argmax(dim=1)  # ties: the first class


def text_token_features(model, tokens: Tensor) -> Tensor:
    """Per-token outputs of the text Transformer, (B, context_length, text_width), after ln_final.

    What a text-conditioned generator attends to (cross-attention); ``encode_text`` pools these at
    the end-of-text token and projects them. Positions after the end-of-text token are padding.
    """
    x = model.token_embedding(tokens)  # (B, T, W)
    x = x + model.positional_embedding  # (B, T, W)
    x = model.transformer(x, attn_mask=model.attn_mask)  # (B, T, W), causal
    return model.ln_final(x)  # (B, T, W)


# --------------------------------------------------------------------------------------------
# Saving and loading, in open_clip's format


def save_clip(model, directory, config: Optional[TinyClipConfig] = None) -> Path:
    """Write ``open_clip_config.json`` (model_cfg, preprocess_cfg) and the weights to ``directory``.

    Returns the directory. ``open_clip.create_model("local-dir:<directory>")`` (or
    :func:`load_clip`) builds the same model again.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = config if config is not None else model_config(model)
    payload = {
        "model_cfg": config.model_cfg(),
        # images are fed as RGB in [0, 1] without normalisation
        "preprocess_cfg": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        "course_utils": {"tiny_clip_config": asdict(config)},
    }
    (directory / CONFIG_NAME).write_text(json.dumps(payload, indent=2))
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, directory / WEIGHTS_NAME)
    return directory


def load_clip(directory, device="cpu"):
    """Load a CLIP saved by :func:`save_clip` with open_clip's own loader; returns it in eval mode."""
    import open_clip

    directory = Path(directory)
    if not (directory / CONFIG_NAME).is_file() or not (directory / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{directory} does not hold {CONFIG_NAME} and {WEIGHTS_NAME}: "
                                f"save a model there with save_clip(model, directory) first.")
    model = open_clip.create_model(f"local-dir:{directory.resolve()}", device=device)
    return model.eval()


def load_config(directory) -> TinyClipConfig:
    """The TinyClipConfig stored next to a saved model."""
    payload = json.loads((Path(directory) / CONFIG_NAME).read_text())
    stored = payload.get("course_utils", {}).get("tiny_clip_config")
    if stored is None:
        raise ValueError(f"{directory}/{CONFIG_NAME} was not written by save_clip.")
    known = {f.name for f in fields(TinyClipConfig)}
    return TinyClipConfig(**{k: v for k, v in stored.items() if k in known})


def load_pretrained(model_name: str = "ViT-B-32", pretrained: str = "openai", device="cpu"):
    """A pretrained open_clip model, its image transform and tokenizer (downloads unless local).

    ``pretrained`` is a tag (``"openai"``: needs the network) or a local checkpoint file, which
    ``open_clip.create_model_and_transforms(model_name, pretrained=<file>)`` loads offline.
    """
    import open_clip

    if os.path.sep in str(pretrained) and not os.path.isfile(pretrained):
        raise FileNotFoundError(f"no checkpoint file at {pretrained}.")
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained, device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(model_name)
