"""Chapter 6 on fake CUDA: word2vec, the tiny open_clip CLIP and the captioner, and their trainers.

Each model case builds its model on the CPU, moves it to a fake ``"cuda"`` device
(tests/fake_cuda.py), makes its batch there and runs the forward pass and the loss; a tensor made
on the CPU inside the computation (a mask, labels from ``torch.arange`` without ``device=``) raises
here as it would on a GPU. The training cases run each package trainer with ``device="cuda"`` from
CPU data up to its first ``backward()``: the batches, the negatives word2vec draws, CLIP's loss and
its temperature clamp all have to follow the model to the device.
"""
import pytest
import torch

from course_utils.data.captions import shapes_caption_data
from course_utils.data.corpus import PAD_ID
from course_utils.data.shapes import ShapesConfig
from course_utils.models import clip
from course_utils.models.captioner import Captioner, CaptionerConfig, train_captioner
from course_utils.models.word2vec import Word2Vec, Word2VecConfig, train_word2vec
from fake_cuda import CUDA, assert_on_cuda, fake_cuda, run_training_path

V, D, B = 40, 8, 4
CLIP = clip.TinyClipConfig(image_size=16, patch_size=8, vision_width=32, vision_layers=1, context_length=8,
                           text_width=32, text_layers=1, embed_dim=16)
CAPTIONER = CaptionerConfig(vocab_size=V, image_dim=16, d_model=16, n_heads=2, n_layers=1, max_len=6)


def word2vec_config(mode):
    return Word2VecConfig(vocab_size=V, dim=D, window=2, negatives=3, mode=mode)


def word2vec_model(monkeypatch):
    for mode in ("skipgram", "cbow"):
        model = Word2Vec(word2vec_config(mode)).train()
        with fake_cuda():
            model.to(CUDA)
            inputs = (torch.randint(5, V, (B,), device=CUDA) if mode == "skipgram"
                      else torch.randint(5, V, (B, 4), device=CUDA))  # (B,) centres or (B, 2w) contexts
            inputs = inputs if mode == "skipgram" else torch.where(inputs == 7, PAD_ID, inputs)  # empty slots
            loss = model(inputs, torch.randint(5, V, (B,), device=CUDA), torch.randint(5, V, (B, 3), device=CUDA))
            assert_on_cuda(model, loss, model.hidden(inputs))
            assert loss.dim() == 0


def captioner_model(monkeypatch):
    model = Captioner(CAPTIONER).train()
    with fake_cuda():
        model.to(CUDA)
        z = torch.randn(B, CAPTIONER.image_dim, device=CUDA)  # (B, image_dim)
        tokens = torch.randint(0, V, (B, CAPTIONER.max_len), device=CUDA)  # (B, max_len)
        logits = model(z, tokens[:, :-1])  # (B, T - 1, V), causal mask made on the device
        loss = model.loss(z, tokens)
        assert_on_cuda(model, logits, loss)
        assert logits.shape == (B, CAPTIONER.max_len - 1, V)


def clip_model(monkeypatch):
    """The open_clip ``CLIP`` that ``build_tiny_clip`` builds: forward, ClipLoss, the token features,
    and the chunked encoders (embeddings come back on the CPU)."""
    from open_clip.loss import ClipLoss

    model = clip.build_tiny_clip(CLIP).train()
    tokens = clip.get_tokenizer(CLIP)(["a small red circle", "a large blue square", "a small green triangle",
                                       "a large cyan circle"])  # (4, context_length), real CPU ids
    with fake_cuda():
        model.to(CUDA)
        images = torch.rand(B, 3, CLIP.image_size, CLIP.image_size, device=CUDA)
        image_features, text_features, logit_scale = model(images, tokens.to(CUDA))  # (B, E), (B, E), ()
        loss = ClipLoss()(image_features, text_features, logit_scale)
        per_token = clip.text_token_features(model, tokens.to(CUDA))  # (B, T, W)
        assert_on_cuda(model, image_features, text_features, logit_scale, loss, per_token)
        assert loss.dim() == 0 and per_token.shape == (B, CLIP.context_length, CLIP.text_width)
        image_embeddings = clip.encode_images(model, torch.rand(5, 3, CLIP.image_size, CLIP.image_size),
                                              batch_size=2, device="cuda")
        assert image_embeddings.device.type == "cpu" and image_embeddings.shape == (5, CLIP.embed_dim)


MODEL_CASES = {
    "word2vec.Word2Vec": word2vec_model,
    "captioner.Captioner": captioner_model,
    "clip.build_tiny_clip": clip_model,
}


def training_word2vec(monkeypatch):
    noise = torch.full((V,), 1.0 / (V - 5))
    noise[:5] = 0  # special tokens are never noise words
    for mode in ("skipgram", "cbow"):
        model = Word2Vec(word2vec_config(mode))
        g = torch.Generator().manual_seed(0)
        inputs = torch.randint(5, V, (32,) if mode == "skipgram" else (32, 4), generator=g)
        targets = torch.randint(5, V, (32,), generator=g)
        run_training_path(monkeypatch, lambda: train_word2vec(model, inputs, targets, noise, steps=2, batch_size=8,
                                                              device="cuda"))
        assert_on_cuda(model)
        monkeypatch.undo()  # backward works again for the next mode


def training_captioner(monkeypatch):
    model = Captioner(CAPTIONER)
    g = torch.Generator().manual_seed(0)
    z, tokens = torch.randn(16, CAPTIONER.image_dim, generator=g), torch.randint(0, V, (16, CAPTIONER.max_len), generator=g)
    run_training_path(monkeypatch, lambda: train_captioner(model, z, tokens, steps=2, batch_size=4, device="cuda"))
    assert_on_cuda(model)


def shapes_pairs(n=12):
    images, captions, _ = shapes_caption_data(n, ShapesConfig(image_size=CLIP.image_size), seed=0)
    return images, captions


def training_fit_clip(monkeypatch):
    from course_utils.authoring import all_exercises

    images, captions = shapes_pairs()
    tokens = clip.get_tokenizer(CLIP)(captions)  # (n, context_length)
    reference = all_exercises()["embeddings.clip_loss"].load()  # the chapter trains with its own loss
    for loss_fn in (None, reference):  # open_clip's ClipLoss, then the chapter's
        model = clip.build_tiny_clip(CLIP)
        run_training_path(monkeypatch, lambda: clip.fit_clip(model, images, tokens, steps=2, batch_size=4,
                                                             loss_fn=loss_fn, device="cuda"))
        assert_on_cuda(model)
        monkeypatch.undo()


def training_train_shapes_clip(monkeypatch):
    # fake tensors have no values, and drawing the scenes reads them: the pairs are drawn here, on the
    # CPU, and handed to the real path (tokenizer, fit_clip, fit) in place of the draw
    images, captions = shapes_pairs()
    monkeypatch.setattr(clip, "shapes_caption_data", lambda n, config, seed, exclude: (images, captions, None))
    model = clip.build_tiny_clip(CLIP)
    run_training_path(monkeypatch, lambda: clip.train_shapes_clip(model, n=12, steps=2, device="cuda"))
    assert_on_cuda(model)


TRAINING_CASES = {
    "word2vec.train_word2vec": training_word2vec,
    "captioner.train_captioner": training_captioner,
    "clip.fit_clip": training_fit_clip,
    "clip.train_shapes_clip": training_train_shapes_clip,
}


def test_clip_labels_left_on_the_cpu_are_caught(monkeypatch):
    """The chapter's exercise, answered with labels made on the CPU, crashes on the GPU: the harness sees it."""
    import torch.nn.functional as F

    def cpu_labels(I, T, scale):
        logits = scale * F.normalize(I, dim=-1) @ F.normalize(T, dim=-1).T
        labels = torch.arange(len(I))  # on the CPU
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2

    images, captions = shapes_pairs()
    model = clip.build_tiny_clip(CLIP)
    with pytest.raises(RuntimeError, match="device"):
        run_training_path(monkeypatch, lambda: clip.fit_clip(model, images, clip.get_tokenizer(CLIP)(captions),
                                                             steps=2, batch_size=4, loss_fn=cpu_labels, device="cuda"))
