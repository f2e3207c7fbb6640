"""The tiny CLIP: built from open_clip's classes, its loss against open_clip's ClipLoss (the oracle
for the chapter's from-scratch loss), zero-shot logits, saving/loading in open_clip's format --
including ``open_clip.create_model(name, pretrained=<local file>)``, the path the chapter's online
section uses, on a checkpoint this test writes itself."""
import json

import pytest
import torch
import torch.nn.functional as F

from course_utils.data.captions import HELD_OUT, shapes_caption_data
from course_utils.data.shapes import COLOURS, SHAPES, ShapesConfig
from course_utils.models import clip as tiny_clip
from course_utils.train import seeded

SMALL = tiny_clip.TinyClipConfig(context_length=8)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tiny_clip.build_tiny_clip(SMALL).eval()


def test_builds_an_open_clip_model_with_unit_embeddings(model):
    import open_clip

    assert isinstance(model, open_clip.CLIP)
    tokens = tiny_clip.get_tokenizer(SMALL)(["a small red circle", "a large cyan triangle"])
    assert tokens.shape == (2, 8) and tokens[0, 0] == 49406  # start-of-text
    with torch.no_grad():
        image_features, text_features, scale = model(torch.rand(2, 3, 32, 32), tokens)
    assert image_features.shape == text_features.shape == (2, SMALL.embed_dim)
    torch.testing.assert_close(image_features.norm(dim=-1), torch.ones(2))
    assert torch.isclose(scale, torch.tensor(1 / 0.07), rtol=1e-4)


def test_model_config_round_trip(model):
    assert tiny_clip.model_config(model) == SMALL


def test_config_errors():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        tiny_clip.TinyClipConfig(image_size=30, patch_size=4)
    with pytest.raises(ValueError, match="divisible"):
        tiny_clip.TinyClipConfig(text_width=64, text_heads=3)


def _reference_infonce(I, T, scale):
    """The chapter's from-scratch symmetric InfoNCE, written out with explicit log-softmaxes."""
    I, T = F.normalize(I, dim=-1), F.normalize(T, dim=-1)
    logits = scale * I @ T.T  # (B, B)
    i2t = -torch.diagonal(logits.log_softmax(dim=1)).mean()  # each image picks its caption
    t2i = -torch.diagonal(logits.log_softmax(dim=0)).mean()  # each caption picks its image
    return (i2t + t2i) / 2


@pytest.mark.parametrize("B, D, scale", [(8, 16, 14.3), (3, 4, 1.0), (32, 64, 100.0)])
def test_infonce_matches_open_clip_clip_loss(B, D, scale):
    from open_clip.loss import ClipLoss

    g = torch.Generator().manual_seed(B)
    I, T = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)
    expected = ClipLoss()(F.normalize(I, dim=-1), F.normalize(T, dim=-1), torch.tensor(scale))
    torch.testing.assert_close(_reference_infonce(I, T, scale), expected)


def test_book_reference_clip_loss_matches_clip_loss():
    from open_clip.loss import ClipLoss

    from course_utils.authoring import all_exercises

    clip_loss = all_exercises()["embeddings.clip_loss"].load()
    g = torch.Generator().manual_seed(0)
    I, T = F.normalize(torch.randn(16, 8, generator=g), dim=-1), F.normalize(torch.randn(16, 8, generator=g), dim=-1)
    torch.testing.assert_close(clip_loss(I, T, torch.tensor(20.0)), ClipLoss()(I, T, torch.tensor(20.0)))


def test_zero_shot_logits_are_scaled_cosines():
    images = torch.tensor([[3.0, 0.0], [0.0, 0.1]])
    classes = torch.tensor([[10.0, 0.0], [0.0, 0.5]])  # very different lengths: cosine ignores them
    logits = tiny_clip.zero_shot_logits(images, classes, logit_scale=2.0)
    torch.testing.assert_close(logits, torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="dim"):
        tiny_clip.zero_shot_logits(images, torch.ones(3, 5))


def test_text_token_features_pool_to_encode_text(model):
    tokens = tiny_clip.get_tokenizer(SMALL)(["a small red circle", "a large blue square"])
    with torch.no_grad():
        per_token = tiny_clip.text_token_features(model, tokens)  # (B, T, W)
        eot = tokens.argmax(dim=-1)  # the end-of-text token has the largest id
        pooled = per_token[torch.arange(2), eot] @ model.text_projection
        torch.testing.assert_close(pooled, model.encode_text(tokens))
    assert per_token.shape == (2, 8, SMALL.text_width)


def test_save_and_load_in_open_clip_format(model, tmp_path):
    directory = tiny_clip.save_clip(model, tmp_path / "clip")
    payload = json.loads((directory / tiny_clip.CONFIG_NAME).read_text())
    assert set(payload["model_cfg"]) == {"embed_dim", "vision_cfg", "text_cfg"}
    assert tiny_clip.load_config(directory) == SMALL
    loaded = tiny_clip.load_clip(directory)
    tokens = tiny_clip.get_tokenizer(SMALL)(["a small green triangle"])
    images = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_text(tokens), model.encode_text(tokens))
        torch.testing.assert_close(loaded.encode_image(images), model.encode_image(images))
    with pytest.raises(FileNotFoundError, match="save_clip"):
        tiny_clip.load_clip(tmp_path / "nothing")


def test_create_model_with_pretrained_local_file(model, tmp_path):
    """The online section's path, offline: a registered architecture + pretrained=<file>."""
    import open_clip

    name = "course-test-tiny-clip"
    (tmp_path / f"{name}.json").write_text(json.dumps(SMALL.model_cfg()))
    open_clip.add_model_config(tmp_path / f"{name}.json")
    checkpoint = tmp_path / "weights.pt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    loaded = open_clip.create_model(name, pretrained=str(checkpoint))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    pretrained, preprocess, tokenizer = tiny_clip.load_pretrained(name, str(checkpoint))
    assert not pretrained.training and callable(preprocess)
    with torch.no_grad():
        tokens = tokenizer(["a small red circle"])
        torch.testing.assert_close(pretrained.encode_text(tokens[:, :8]), model.encode_text(tokens[:, :8]))
    with pytest.raises(FileNotFoundError):
        tiny_clip.load_pretrained(name, str(tmp_path / "missing" / "weights.pt"))


def test_shapes_caption_data_holds_out_combinations():
    config = ShapesConfig(image_size=32)
    images, captions, attrs = shapes_caption_data(60, config, seed=0, exclude=HELD_OUT)
    assert images.shape == (60, 3, 32, 32) and len(captions) == 60 and attrs.shape == (60, 3)
    pairs = {(COLOURS[c], SHAPES[s]) for c, s, _ in attrs.tolist()}
    assert not pairs & set(HELD_OUT)
    for caption, (c, s, _) in zip(captions, attrs.tolist()):
        assert COLOURS[c] in caption and SHAPES[s] in caption
    _, _, only = shapes_caption_data(20, config, seed=1, only=HELD_OUT)
    assert {(COLOURS[c], SHAPES[s]) for c, s, _ in only.tolist()} <= set(HELD_OUT)
    with pytest.raises(ValueError, match="nothing to draw"):
        shapes_caption_data(5, config, exclude=[(c, s) for c in COLOURS for s in SHAPES])


def test_fit_clip_lowers_the_loss():
    images, captions, _ = shapes_caption_data(64, ShapesConfig(image_size=32), seed=0)
    torch.manual_seed(0)
    model = tiny_clip.build_tiny_clip(SMALL)
    tokens = tiny_clip.get_tokenizer(SMALL)(captions)
    history = tiny_clip.fit_clip(model, images, tokens, steps=30, batch_size=32, lr=2e-3, device="cpu")
    assert history.steps == 30 and history.mean(last=5) < history.loss[0] - 0.5
    assert not model.token_embedding.weight.requires_grad  # the token table stays frozen by default
    assert model.logit_scale.item() <= tiny_clip.MAX_LOGIT_SCALE
    with pytest.raises(ValueError, match="pairs"):
        tiny_clip.fit_clip(model, images, tokens[:10], steps=1)


def test_train_shapes_clip_trains_the_model_it_is_given():
    with seeded(0):
        model = tiny_clip.build_tiny_clip(SMALL)
    before = model.visual.proj.detach().clone()
    history = tiny_clip.train_shapes_clip(model, n=40, steps=3, device="cpu")
    assert history.steps == 3 and len(history.loss) == 3
    assert not torch.equal(model.visual.proj, before) and not model.training


def test_encoders_give_unit_embeddings_in_chunks(model):
    images = torch.rand(5, 3, 32, 32)
    texts = ["a small red circle", "a large blue square", "a small green triangle"]
    image_embeddings = tiny_clip.encode_images(model, images, batch_size=2, device="cpu")
    text_embeddings = tiny_clip.encode_texts(model, texts, batch_size=2, device="cpu")
    assert image_embeddings.shape == (5, SMALL.embed_dim) and text_embeddings.shape == (3, SMALL.embed_dim)
    with torch.no_grad():
        torch.testing.assert_close(image_embeddings, model.encode_image(images, normalize=True))
        tokens = tiny_clip.get_tokenizer(SMALL)(texts)
        torch.testing.assert_close(text_embeddings, model.encode_text(tokens, normalize=True))


def test_zero_shot_classify_is_cosine_argmax_with_the_first_class_on_ties():
    g = torch.Generator().manual_seed(0)
    txt = torch.randn(4, 6, generator=g) * torch.tensor([0.1, 1.0, 10.0, 1.0])[:, None]
    txt[3] = txt[1]  # a tie between classes 1 and 3
    img = torch.cat([3 * txt[1:2], torch.randn(5, 6, generator=g)])
    sims, pred = tiny_clip.zero_shot_classify(img, txt)
    expected = F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
    torch.testing.assert_close(sims, expected)
    assert pred.dtype == torch.long and pred[0] == 1
    assert torch.equal(pred, expected.argmax(1))
