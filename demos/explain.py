"""Write the backprop explainer pages into demos/out/: micrograd's neuron, and the lab's network on XOR.

    python demos/explain.py [OUT_DIR] [--screenshot PNG]

Open the .html files in any browser (they are self-contained and work offline). With --screenshot, the
neuron's page is photographed mid-backward in headless Chromium (Debian's chromium and chromium-driver,
and selenium: pip install 'tinygrad-lab[dev]'), as demos/explain_screenshot.png in the README.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import tinygrad_lab as tl
from tinygrad_lab import viz
from tinygrad_lab.lab import runs
from tinygrad_lab.lab.config import TrainConfig

OUT = Path(__file__).resolve().parent / "out"


def neuron() -> tl.Tensor:
    """micrograd's neuron o = tanh(x1*w1 + x2*w2 + b) on 0-d tensors, every tensor named."""
    x1, x2 = tl.tensor(2.0, name="x1"), tl.tensor(0.0, name="x2")
    w1 = tl.tensor(-3.0, requires_grad=True, name="w1")
    w2 = tl.tensor(1.0, requires_grad=True, name="w2")
    b = tl.tensor(6.8813735870195432, requires_grad=True, name="b")
    x1w1, x2w2 = x1 * w1, x2 * w2
    x1w1.name, x2w2.name = "x1*w1", "x2*w2"
    s = x1w1 + x2w2
    s.name = "x1*w1 + x2*w2"
    n = s + b
    n.name = "n"
    o = n.tanh()
    o.name = "o"
    return o


def screenshot(page: Path, png: Path, steps: int = 4) -> Path:
    """The page after ``steps`` presses of the right arrow, in Debian's headless chromium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1400,860",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(page.resolve().as_uri())
            ActionChains(driver).send_keys(*[Keys.ARROW_RIGHT] * steps).perform()
            driver.save_screenshot(str(png))
        finally:
            driver.quit()
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=OUT)
    parser.add_argument("--screenshot", type=Path, metavar="PNG", help="also photograph the neuron's page")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pages = [
        viz.explain(
            neuron(), args.out / "neuron_backprop.html", title="micrograd's neuron o = tanh(x1*w1 + x2*w2 + b)"
        ),
        runs.explain_page(
            TrainConfig(task="xor", hidden=(2, 2), lr=0.1, epochs=2000),
            args.out / "xor_backprop.html",
            after_epochs=2000,
        ),
    ]
    for page in pages:
        print(f"wrote {page}")
    if args.screenshot:
        print(f"wrote {screenshot(pages[0], args.screenshot)}")


if __name__ == "__main__":
    main()
