"""The backprop explainer: its data against the engine, and the page in a real headless Chromium.

The browser tests drive Debian's chromium through its chromedriver with Selenium; the driver's path is given
explicitly, so nothing is downloaded. They fail (never skip) when the browser is missing.
"""

import io
import json
import re
import shutil
import tempfile

import numpy as np
import pytest

import tinygrad_lab as tl
import tinygrad_lab.nn.functional as F
from tinygrad_lab import nn, viz
from tinygrad_lab.lab import runs
from tinygrad_lab.lab.config import TrainConfig
from tinygrad_lab.viz import explainer as explain

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The page shows 6 significant digits, so a shown number is within 5e-6 (relative) of the engine's.
DISPLAY_RTOL = 1e-5


def graph():
    """A reused weight (b), a diamond (c reaches g two ways) and x * x (e = d * d); every tensor named."""
    a = tl.tensor(0.5, requires_grad=True, name="a")
    b = tl.tensor(-1.5, requires_grad=True, name="b")
    c = a * b
    d = c + a
    e = d * d
    f = e * b
    h = f + c
    g = h.tanh()
    for t, name in zip((c, d, e, f, h, g), "cdefhg"):
        t.name = name
    return g, (a, b), (c, d, e, f, h, g)


def engine_record():
    """Order and arriving gradients of an ordinary backward, seen through tensor hooks; and the leaves' .grad."""
    out, leaves, inner = graph()
    seen = []
    for t in inner:
        t.register_hook(lambda grad, t=t: seen.append((t.name, float(grad.item()))))
    out.backward()
    return seen, {t.name: float(t.grad.item()) for t in leaves}


def numbers(text):
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)]


# ---- the data, against the engine ---------------------------------------------------------------------------


def test_steps_follow_the_engines_order_with_its_gradients():
    seen, _ = engine_record()
    out, _, _ = graph()
    data = explain.page_data(out)
    shown = [(data["tensors"][data["ops"][s["op"]]["out"]]["label"], s["grad"]["text"]) for s in data["steps"]]
    assert [label for label, _ in shown] == [name for name, _ in seen]
    np.testing.assert_allclose([float(g) for _, g in shown], [g for _, g in seen], rtol=DISPLAY_RTOL)


def test_explaining_leaves_grads_and_graph_as_they_were():
    out, (a, b), _ = graph()
    a.grad = tl.tensor(10.0)
    explain.page_data(out)
    assert a.grad.item() == 10.0 and b.grad is None
    out.backward()  # the graph was kept: an ordinary backward still works, and accumulates
    _, expected = engine_record()
    assert a.grad.item() == pytest.approx(10.0 + expected["a"]) and b.grad.item() == pytest.approx(expected["b"])


def test_accumulation_lists_every_contribution_and_the_engines_sum():
    out, _, _ = graph()
    data = explain.page_data(out)
    by_label = {t["label"]: t for t in data["tensors"]}
    _, expected = engine_record()
    for name in "ab":
        t = by_label[name]
        assert len(t["contributions"]) == 2  # a: from c = a * b and d = c + a; b: from c and f = e * b
        total = float(t["grad"]["text"])
        assert sum(float(x["grad"]["text"]) for x in t["contributions"]) == pytest.approx(total, rel=DISPLAY_RTOL)
        assert float(t["grad"]["text"]) == pytest.approx(expected[name], rel=DISPLAY_RTOL)
    d_parts = by_label["d"]["contributions"]
    assert len(d_parts) == 2 and d_parts[0]["step"] == d_parts[1]["step"]  # e = d * d: both in one step


def test_big_tensors_show_shape_and_norm():
    x = tl.Tensor(np.arange(40.0).reshape(8, 5) / 10, requires_grad=True, name="x")
    data = explain.page_data((x * x).sum())
    leaf = data["tensors"][0]
    assert leaf["grad"]["text"].startswith("shape (8, 5), norm ")
    assert numbers(leaf["grad"]["norm"])[0] == pytest.approx(np.linalg.norm(2 * x.data), rel=DISPLAY_RTOL)


def test_every_builtin_op_on_the_lab_path_has_a_rule():
    data = explain.page_data(tl.Tensor(np.ones((3, 2)), requires_grad=True).sigmoid().sum())
    assert [op["formula"] for op in data["ops"]] == ["dx = G · out · (1 − out)", "dx = broadcast(G)"]


@pytest.mark.parametrize("loss", list(F.LOSSES))
@pytest.mark.parametrize("activation", list(nn.ACTIVATIONS))
def test_every_lab_activation_and_loss_has_a_rule(activation, loss):
    """Each op a lab run records has its own rule and formula, not the generic 'see its backward()'."""
    x = tl.Tensor(np.linspace(-1.0, 1.0, 6).reshape(3, 2), requires_grad=True)
    out = nn.make_activation(activation)(x)
    if loss == "cross_entropy":
        target = tl.tensor(np.array([0, 1, 1]), dtype=np.int64)
    else:
        out, target = out.sigmoid(), tl.Tensor(np.full((3, 2), 0.25))
    data = explain.page_data(F.LOSSES[loss](out, target))
    assert [op["op"] for op in data["ops"] if op["formula"] == "see its backward()"] == []


def test_a_collapsed_picture_is_said_and_not_highlighted():
    x = tl.tensor(0.1, requires_grad=True)
    y = x
    for _ in range(40):
        y = (y * 1.01).tanh()
    data = explain.page_data(y, max_nodes=20)
    assert "collapsed" in data["note"] and len(data["steps"]) == 80
    assert all(op["svg"] is None for op in data["ops"])


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="is a leaf"):
        viz.explain(tl.tensor(1.0, requires_grad=True), tmp_path / "p.html")
    with pytest.raises(ValueError, match=r"^explain: the output \(shape \(\)\) does not require grad") as err:
        viz.explain((tl.tensor([1.0, 2.0]) * 2).sum(), tmp_path / "p.html")
    assert "leaf" not in str(err.value) and "\n" not in str(err.value)
    out, _, _ = graph()
    out.backward()
    with pytest.raises(ValueError, match="freed"):
        viz.explain(out, tmp_path / "p.html")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        viz.explain(graph()[0], tmp_path / "missing" / "p.html")
    with pytest.raises(TypeError, match="must be a Tensor"):
        viz.explain(1.0, tmp_path / "p.html")
    assert list(tmp_path.iterdir()) == []


def test_the_page_is_one_file_with_nothing_to_fetch(tmp_path):
    html = viz.explain(graph()[0], tmp_path / "p.html").read_text()
    assert "<svg" in html and "<script src" not in html and "<link" not in html
    for url in re.findall(r"""["'(]\s*(https?://[^"')]+)""", html):
        assert url.startswith(("http://www.w3.org/", "https://www.w3.org/")), url  # SVG namespaces only
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
    assert len(data["steps"]) == 6


# ---- in the browser -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: install Debian's chromium and chromium-driver"
    profile = tempfile.TemporaryDirectory()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,900",
        f"--user-data-dir={profile.name}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # a given driver: no download
    yield driver
    driver.quit()
    profile.cleanup()


class Page:
    def __init__(self, driver, path):
        from selenium.webdriver.common.by import By

        self.driver, self.by = driver, By
        driver.get(path.as_uri())
        driver.get_log("browser")  # start each page with an empty log

    def key(self, *keys):
        from selenium.webdriver.common.action_chains import ActionChains

        chain = ActionChains(self.driver)
        for k in keys:
            chain.send_keys(k)
        chain.perform()

    def step(self):
        return int(self.driver.find_element(self.by.TAG_NAME, "body").get_attribute("data-step"))

    def mode(self):
        return self.driver.find_element(self.by.TAG_NAME, "body").get_attribute("data-mode")

    def values(self, role):
        return [
            (e.get_attribute("data-to"), e.text)
            for e in self.driver.find_elements(self.by.CSS_SELECTOR, f'#card pre.val[data-role="{role}"]')
        ]

    def card(self):
        return self.driver.find_element(self.by.ID, "card").text

    def current_tensor(self):
        """The highlighted tensor box of the picture (record nodes are polygons; ops are ellipses)."""
        found = [
            e.text
            for e in self.driver.find_elements(self.by.CSS_SELECTOR, "g.node.current")
            if not e.find_elements(self.by.TAG_NAME, "ellipse")
        ]
        assert len(found) == 1, found
        return found[0]

    def errors(self):
        return [e for e in self.driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def test_page_loads_without_console_errors_or_network(browser, tmp_path):
    page = Page(browser, viz.explain(graph()[0], tmp_path / "p.html"))
    assert page.errors() == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.execute_script("return document.querySelectorAll('script[src], link[href], img[src]').length") == 0
    assert page.step() == 0 and "seed" in page.card()


def test_stepping_visits_the_engines_order_and_shows_its_numbers(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    seen, leaf_grads = engine_record()
    out, _, _ = graph()
    page = Page(browser, viz.explain(out, tmp_path / "p.html"))
    visited, arrived = [], []
    for k in range(1, len(seen) + 1):
        page.key(Keys.ARROW_RIGHT)
        assert page.step() == k
        visited.append(page.current_tensor().split("\n")[0])
        ((_, text),) = page.values("arrive")
        arrived.append(numbers(text)[0])
    assert visited == [name for name, _ in seen]
    np.testing.assert_allclose(arrived, [g for _, g in seen], rtol=DISPLAY_RTOL)
    page.key(Keys.ARROW_RIGHT)
    assert "Done" in page.card()
    final = {
        page.driver.execute_script(
            f"return JSON.parse(document.getElementById('data').textContent).tensors[{i}].label"
        ): numbers(text)[0]
        for i, text in page.values("final")
    }
    assert final.keys() == leaf_grads.keys()
    for name, g in leaf_grads.items():
        assert final[name] == pytest.approx(g, rel=DISPLAY_RTOL)
    assert page.errors() == []


def test_x_times_x_shows_both_contributions_and_their_sum(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    x = tl.tensor(3.0, requires_grad=True, name="x")
    y = x * x
    page = Page(browser, viz.explain(y, tmp_path / "p.html"))
    page.key(Keys.ARROW_RIGHT)
    sends = page.values("send")
    assert [numbers(text) for _, text in sends] == [[3.0], [3.0]]  # dx = G · (the other factor) = 1 · 3, twice
    assert "contribution 1 of 2" in page.card() and "contribution 2 of 2" in page.card()
    assert [numbers(text) for _, text in page.values("contrib")] == [[3.0], [3.0]]
    y.backward()
    ((_, total),) = page.values("sum")
    assert numbers(total) == [x.grad.item()] == [6.0]


def test_a_hook_that_changes_the_gradient_is_shown_after_the_true_sum(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    x = tl.tensor([1.0, 2.0], requires_grad=True, name="x")
    x.register_hook(lambda g: g * 10)
    y = (x * x).sum()
    data = explain.page_data(y)
    assert data["tensors"][0]["summed"]["text"] == "[2, 4]" and data["tensors"][0]["grad"]["text"] == "[20, 40]"
    page = Page(browser, viz.explain(y, tmp_path / "p.html"))
    page.key(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert [numbers(text) for _, text in page.values("summed")] == [[2.0, 4.0]]
    assert [numbers(text) for _, text in page.values("sum")] == [[20.0, 40.0]]
    assert "a hook registered on x changed the sum into x.grad" in page.card()
    page.key(Keys.ARROW_RIGHT)
    assert "x.grad (the sum of 2 contributions, changed by a hook)" in page.card()
    assert page.errors() == []


def test_a_hook_on_a_tensor_with_one_contribution_is_said():
    x = tl.tensor([1.0, 2.0], requires_grad=True, name="x")
    h = x * 3
    h.register_hook(lambda g: g + 1)
    data = explain.page_data(h.sum())
    inner = data["tensors"][1]
    assert [c["grad"]["text"] for c in inner["contributions"]] == ["[1, 1]"]
    assert inner["summed"]["text"] == "[1, 1]" and inner["grad"]["text"] == "[2, 2]"
    assert "summed" not in data["tensors"][0]  # x has no hook: its one contribution is its .grad
    h2 = x * 3
    h2.register_hook(lambda g: None)  # a hook that only looks changes nothing, and the page says nothing
    assert all("summed" not in t for t in explain.page_data(h2.sum())["tensors"])


def test_keyboard_buttons_and_the_forward_toggle(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    out, _, inner = graph()
    page = Page(browser, viz.explain(out, tmp_path / "p.html"))
    page.key(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_LEFT)
    assert page.step() == 2
    page.key(Keys.END)
    assert page.step() == 7 and "Done" in page.card()
    page.key(Keys.HOME)
    assert page.step() == 0
    page.driver.find_element(page.by.ID, "next").click()
    assert page.step() == 1
    page.key(" ")
    assert "pause" in page.driver.find_element(page.by.ID, "play").text
    page.key(" ")
    assert "play" in page.driver.find_element(page.by.ID, "play").text
    page.key("f")
    assert page.mode() == "forward" and page.step() == 0
    outputs = []
    for _ in range(6):
        page.key(Keys.ARROW_RIGHT)
        ((_, text),) = page.values("output")
        outputs.append(numbers(text)[0])
    forward_values = [t.item() for t in inner]
    np.testing.assert_allclose(outputs, forward_values, rtol=DISPLAY_RTOL)
    assert page.errors() == []


def test_mid_backward_screenshot_of_the_lab_network(browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.keys import Keys

    page = Page(
        browser, runs.explain_page(TrainConfig(hidden=(2, 2), epochs=20), tmp_path / "lab.html", after_epochs=20)
    )
    page.key(Keys.ARROW_RIGHT)
    assert "MseLoss" in page.card() and "twice the difference" in page.card()  # the lab's dL/dpred = 2 (pred - y) / n
    for _ in range(2):
        page.key(Keys.ARROW_RIGHT)
    assert "backward step 3 of 7" in page.card()  # the loss, then sigmoid and linear for each of the three layers
    shot = tmp_path / "mid_backward.png"
    assert browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("RGB"), dtype=float)
    assert pixels.std() > 20  # not blank
    orange = np.all(np.abs(pixels - [232, 89, 12]) < 40, axis=-1)
    assert orange.sum() > 200  # the current node's highlight is drawn
    page.key(Keys.END)
    _, model = runs.graph_root(TrainConfig(hidden=(2, 2), epochs=20), after_epochs=20)
    shown = {i: numbers(text) for i, text in page.values("final")}
    grads = [p.grad.data.ravel() for _, p in model.named_parameters()]
    assert len(shown) == len(grads)
    for got, want in zip(shown.values(), grads):
        np.testing.assert_allclose(got, want, rtol=DISPLAY_RTOL, atol=1e-12)
    assert page.errors() == []


@pytest.mark.parametrize("write", ["y.fill_(2.0)", "y.copy_(x * 3)", "y.zero_()", "y.__setitem__(0, x[1] * 2)"])
def test_in_place_overwrites_have_their_rule(write):
    """zero_, fill_, copy_ and item assignment record a node of their own: the page says what its backward does."""
    x = tl.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    y = x * 1.0
    eval(write, {}, {"x": x, "y": y})  # a fixed statement per case
    data = explain.page_data((y * x).sum())
    assert [op["op"] for op in data["ops"] if op["formula"] == "see its backward()"] == []


def test_a_value_read_before_an_in_place_write_gets_its_own_contributions(tmp_path):
    x = tl.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * 2
    y.name = "y"
    z = y * 3  # reads y before the write
    y.add_(1)
    out = (z + y).sum()
    data = explain.page_data(out)
    by_label = {t["label"]: t for t in data["tensors"]}
    before, after = by_label["y (before an in-place write)"], by_label["y"]
    assert [c["grad"]["text"] for c in before["contributions"]] == ["[1, 1]", "[3, 3]"]  # from add_ and from z
    assert before["grad"]["text"] == "[4, 4]" and after["grad"]["text"] == "[1, 1]"
    assert by_label["x"]["grad"]["text"] == "[8, 8]"
    mul3 = next(op for op in data["ops"] if {"const": {"text": "3", "short": "3", "small": True}} in op["inputs"])
    assert data["tensors"][mul3["inputs"][0]["tensor"]] is before


def test_explaining_a_graph_with_an_in_place_write_on_a_value_read_earlier(tmp_path):
    w = tl.tensor([0.5, -1.0], requires_grad=True, name="w")
    h = w * 2
    h += h.tanh()
    data = explain.page_data(h.sum())
    assert [data["ops"][s["op"]]["op"] for s in data["steps"]] == ["Sum", "Add", "Tanh", "Mul"]
    assert data["note"] == "" and all(t["svg"] for t in data["tensors"])
    expected = 2 * (2 - np.tanh(np.array([1.0, -2.0])) ** 2)
    np.testing.assert_allclose(numbers(data["tensors"][0]["grad"]["text"]), expected, rtol=DISPLAY_RTOL)
    assert viz.explain(h.sum(), tmp_path / "p.html").exists()


def test_a_backward_that_returns_none_for_an_input_that_requires_grad_is_said():
    class FirstOnly(tl.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    a = tl.tensor(1.0, requires_grad=True, name="a")
    b = tl.tensor(2.0, requires_grad=True, name="b")
    k = tl.tensor(3.0, name="k")
    data = explain.page_data(FirstOnly.apply(FirstOnly.apply(a, b), k))
    whys = [send.get("why") for step in data["steps"] for send in step["sends"]]
    assert whys == [
        None,
        "does not require grad: no gradient",
        None,
        "its backward() returned no gradient (None) for it",
    ]
