"""course_utils.cache: a trained tool model is trained once per recipe and loaded afterwards."""
import torch
from torch import nn

from course_utils import cache


def test_load_or_train_trains_once_then_loads(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    calls = []

    def build():
        return nn.Linear(2, 1)

    def train(model):
        calls.append(1)
        with torch.no_grad():
            model.weight.fill_(3.0)

    recipe = {"steps": 10, "data": cache.fingerprint(torch.arange(6.0))}
    first, how = cache.load_or_train("toy", recipe, build, train)
    assert "trained here" in how and calls == [1]
    second, how = cache.load_or_train("toy", recipe, build, train)
    assert "loaded" in how and calls == [1] and not second.training
    torch.testing.assert_close(second.weight, first.weight)
    _, how = cache.load_or_train("toy", {**recipe, "steps": 11}, build, train)  # a new recipe: trained
    assert "trained here" in how and calls == [1, 1]


def test_an_unusable_cached_file_is_retrained(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    recipe = {"a": 1}
    (tmp_path / f"toy-{cache.recipe_key(recipe)}.pt").write_bytes(b"not a checkpoint")
    _, how = cache.load_or_train("toy", recipe, lambda: nn.Linear(2, 1), lambda m: None)
    assert "unusable" in how


def test_fingerprint_sees_values_shape_and_dtype():
    x = torch.arange(6.0)
    assert cache.fingerprint(x) == cache.fingerprint(x.clone())
    assert cache.fingerprint(x) != cache.fingerprint(x + 1e-3)
    assert cache.fingerprint(x) != cache.fingerprint(x.reshape(2, 3))
    assert cache.fingerprint(x) != cache.fingerprint(x.double())
