"""course_utils.train: the one training loop and the batched inference of the course."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import train
from course_utils.train import History, embed, fit, predict


def regression_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return x, y


def mse(model, x, y):
    return F.mse_loss(model(x), y)


def test_fit_learns_a_linear_map():
    x, y = regression_data()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    history = fit(model, mse, (x, y), steps=300, lr=0.05, batch_size=32, device="cpu")
    assert isinstance(history, History) and len(history) == 300 == history.steps
    assert history.mean(last=30) < 0.01 * history.mean(first=30)
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[1.0, -2.0, 0.5]]), atol=0.05, rtol=0)
    assert not model.training  # left in eval mode


def test_fit_equals_the_hand_written_loop_it_replaces():
    """Same draws, same optimiser, same schedule: the chapters' old loops and fit() agree exactly."""
    x, y = regression_data()
    torch.manual_seed(1)
    reference = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    engine = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    engine.load_state_dict(reference.state_dict())

    steps, lr = 40, 3e-2
    optimizer = torch.optim.AdamW(reference.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(7)
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(x), (16,), generator=g)
        loss = mse(reference, x[idx], y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())

    history = fit(engine, mse, (x, y), steps=steps, lr=lr, weight_decay=1e-4, batch_size=16, seed=7,
                  warmup=0.1, clip_grad_norm=0.5, device="cpu")
    assert history.loss == pytest.approx(losses, rel=1e-6, abs=1e-7)
    for a, b in zip(reference.parameters(), engine.parameters()):
        torch.testing.assert_close(a, b)


def test_fit_is_deterministic_and_leaves_the_global_generator_alone():
    x, y = regression_data()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = nn.Linear(3, 1)
        state = torch.get_rng_state()
        runs.append(fit(model, mse, (x, y), steps=20, device="cpu", seed=5).loss)
        assert torch.equal(state, torch.get_rng_state())  # batches come from a private generator
    assert runs[0] == runs[1]
    torch.manual_seed(3)
    other = fit(nn.Linear(3, 1), mse, (x, y), steps=20, device="cpu", seed=6).loss
    assert other != runs[0]  # a different seed draws different batches


def test_fit_records_what_the_loss_reports():
    x, y = regression_data()

    def loss_and_logs(model, xb, yb):
        err = model(xb) - yb
        return err.pow(2).mean(), {"mae": err.abs().mean(), "batch": len(xb)}

    history = fit(nn.Linear(3, 1), loss_and_logs, (x, y), steps=12, batch_size=10, device="cpu")
    assert len(history["mae"]) == 12 and history["batch"] == [10.0] * 12
    assert history["loss"] is history.loss


def test_fit_draws_from_a_callable_and_augments_on_the_cpu():
    seen = []

    def make_batch(g):
        x = torch.randn(8, 3, generator=g)
        return x, x.sum(1, keepdim=True)

    def augment(g, x, y):
        seen.append(x.device.type)
        return x + 0.0 * torch.randn(x.shape, generator=g), y

    history = fit(nn.Linear(3, 1), mse, make_batch, steps=200, lr=0.05, augment=augment, device="cpu")
    assert seen == ["cpu"] * 200
    assert history.mean(last=20) < 0.01


def test_batch_size_larger_than_the_data_draws_all_rows_count():
    x, y = regression_data(n=5)
    sizes = []

    def loss(model, xb, yb):
        sizes.append(len(xb))
        return mse(model, xb, yb)

    fit(nn.Linear(3, 1), loss, (x, y), steps=3, batch_size=64, device="cpu")
    assert sizes == [5, 5, 5]


def test_step_cap_from_the_environment(monkeypatch):
    x, y = regression_data()
    monkeypatch.setenv(train.MAX_STEPS_ENV, "4")
    assert fit(nn.Linear(3, 1), mse, (x, y), steps=100, device="cpu").steps == 4
    assert train.capped(2) == 2 and train.capped(1000) == 4
    monkeypatch.setenv(train.MAX_STEPS_ENV, "four")
    with pytest.raises(ValueError, match="COURSE_MAX_STEPS"):
        train.capped(10)
    monkeypatch.delenv(train.MAX_STEPS_ENV)
    assert train.capped(1000) == 1000


@pytest.mark.parametrize("schedule, expected_last_lr", [("onecycle", None), ("linear", 0.1 / 10), (None, 0.1)])
def test_schedules(schedule, expected_last_lr):
    model = nn.Linear(3, 1)
    opt = train.make_optimizer(model.parameters(), "adam", lr=0.1)
    sched = train.make_schedule(opt, schedule, 0.1, steps=10)
    lrs = []
    for _ in range(9):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    if schedule == "onecycle":
        assert max(lrs) == pytest.approx(0.1, rel=0.05) and lrs[0] < 0.01 and lrs[-1] < lrs[3]
    else:
        assert opt.param_groups[0]["lr"] == pytest.approx(expected_last_lr)


def test_bad_input_gets_a_clear_message():
    x, y = regression_data()
    with pytest.raises(ValueError, match="align"):
        fit(nn.Linear(3, 1), mse, (x, y[:10]), steps=2, device="cpu")
    with pytest.raises(ValueError, match="empty"):
        fit(nn.Linear(3, 1), mse, (x[:0], y[:0]), steps=2, device="cpu")
    with pytest.raises(ValueError, match="optimizer"):
        fit(nn.Linear(3, 1), mse, (x, y), steps=2, optimizer="sgd", device="cpu")
    with pytest.raises(TypeError, match="scalar tensor"):
        fit(nn.Linear(3, 1), lambda m, a, b: 1.0, (x, y), steps=2, device="cpu")
    frozen = nn.Linear(3, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters"):
        fit(frozen, mse, (x, y), steps=2, device="cpu")


def test_a_diverging_loss_stops_with_a_hint():
    x, y = regression_data()
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(nn.Linear(3, 1), lambda m, a, b: mse(m, a, b) * float("inf"), (x, y), steps=3, device="cpu")


def test_history_extend_and_mean():
    a = History(loss=[1.0, 2.0], logs={"acc": [0.1, 0.2]}, steps=2, seconds=1.0)
    a.extend(History(loss=[3.0], logs={"acc": [0.3]}, steps=1, seconds=0.5))
    assert a.loss == [1.0, 2.0, 3.0] and a["acc"] == [0.1, 0.2, 0.3] and a.steps == 3
    assert a.mean() == 2.0 and a.mean(last=1) == 3.0 and a.mean("acc", first=2) == pytest.approx(0.15)
    with pytest.raises(ValueError):
        History().mean()


def test_predict_in_chunks_equals_one_pass_and_restores_the_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.Dropout(0.5), nn.Linear(16, 2))
    x = torch.randn(50, 3)
    model.train()
    out = predict(model, x, batch_size=7, device="cpu")
    assert model.training  # given back in the mode it came in
    model.eval()
    torch.testing.assert_close(out, model(x).detach())
    assert out.device.type == "cpu" and not out.requires_grad


def test_predict_gathers_tuples_and_dicts_and_keeps_no_views():
    x = torch.randn(20, 4)
    model = nn.Identity()
    hidden = predict(model, x, lambda m, xb: m(xb)[:, :2], batch_size=6, device="cpu")
    assert hidden._base is None  # owns its memory: no view of a chunk's output stays alive
    pair = predict(model, (x, x * 2), lambda m, a, b: (a, {"b": b}), batch_size=6, device="cpu")
    torch.testing.assert_close(pair[0], x)
    torch.testing.assert_close(pair[1]["b"], x * 2)
    with pytest.raises(ValueError, match="align"):
        predict(model, (x, x[:3]), device="cpu")


def test_embed_gives_unit_vectors():
    torch.manual_seed(0)
    e = embed(nn.Linear(4, 8), torch.randn(30, 4), batch_size=8, device="cpu")
    assert e.shape == (30, 8)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(30))


# ---------------------------------------------------------------------------------------------
# Device discipline on fake CUDA (tests/fake_cuda.py)

def test_fit_puts_the_model_and_every_batch_on_the_device_it_is_given(monkeypatch):
    from fake_cuda import assert_on_cuda, run_training_path

    x, y = regression_data()
    model = nn.Linear(3, 1)
    seen = []

    def loss(m, xb, yb):
        seen.append((xb.device.type, yb.device.type))
        assert_on_cuda(m)
        return mse(m, xb, yb)

    reached = run_training_path(monkeypatch, lambda: fit(model, loss, (x, y), steps=3, device="cuda"))
    assert seen == [("cuda", "cuda")] and reached.device.type == "cuda"


def test_predict_runs_on_the_device_and_returns_cpu_tensors():
    from fake_cuda import assert_on_cuda, fake_cuda

    model = nn.Linear(4, 2)
    with fake_cuda():
        out = predict(model, torch.randn(9, 4), batch_size=4, device="cuda")
        assert_on_cuda(model)
        assert out.device.type == "cpu" and out.shape == (9, 2)
