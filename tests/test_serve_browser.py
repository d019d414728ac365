"""The page in a real browser: Debian's headless Chromium, driven by Selenium through Debian's
chromedriver (never a downloaded browser). It types a prime, generates, watches the text stream
in, stops, checks the text and its tinting, reproduces a generation from its link, scores a
text, and saves screenshots in the test's temporary folder."""
import os
import shutil
from urllib.parse import parse_qs, urlparse

import pytest

httpx = pytest.importorskip("httpx", reason="the browser test needs the test extra: pip install -e '.[test]'")
pytest.importorskip("starlette", reason="serve needs the extra: pip install -e '.[serve]'")
webdriver = pytest.importorskip("selenium.webdriver",
                                reason="the browser test needs selenium: pip install -e '.[test]'")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.serve_support import Server, model_world, wait_until  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver; "
           ".ci/run does it where apt works)")
MAX_LENGTH = 400000


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    server = Server(model_world(root)[0], "--max-length", str(MAX_LENGTH))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1100,900",
                 f"--user-data-dir={root / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    yield type("Site", (), {"server": server, "driver": driver, "shots": root,
                            "http": httpx.Client(base_url=server.url, timeout=60)})
    driver.quit()
    server.stop()
    assert "Traceback" not in server.log()


def fill(driver, field, value):
    element = driver.find_element(By.ID, field)
    element.clear()
    element.send_keys(value)


def wait_done(driver, output="output", timeout=60):
    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.ID, output).get_attribute("data-done") == "1")


def spans(driver, output="output"):
    """(character, p or None, title, background) of every tinted character, read in one call."""
    return driver.execute_script("""
        return [...document.querySelectorAll(`#${arguments[0]} .ch`)].map(s =>
            [s.textContent, s.dataset.p === undefined ? null : Number(s.dataset.p), s.title,
             getComputedStyle(s).backgroundColor]);""", output)


def test_generate_stream_stop_and_reproduce(site):
    d = site.driver
    d.get(site.server.url)
    WebDriverWait(d, 30).until(lambda d: "steps" in d.find_element(By.ID, "model").text)
    fill(d, "prime", "JULIET:")
    fill(d, "length", str(MAX_LENGTH))
    d.find_element(By.ID, "generate").click()
    # the text appears while it is generated; Stop ends it, and the server's work with it
    WebDriverWait(d, 30).until(lambda d: len(spans(d)) >= 50)
    assert d.find_element(By.ID, "status").text.startswith("generating")
    d.find_element(By.ID, "stop-button").click()
    WebDriverWait(d, 10).until(lambda d: d.find_element(By.ID, "status").text.startswith("stopped"))
    assert wait_until(lambda: site.http.get("/api/status").json()["running"] == 0)
    assert d.find_element(By.ID, "output").get_attribute("data-done") is None

    fill(d, "length", "400")
    fill(d, "seed", "42")
    d.find_element(By.ID, "generate").click()
    wait_done(d)
    chars = spans(d)
    text = "".join(c for c, _, _, _ in chars)
    api = site.http.post("/api/generate", json={"prime": "JULIET:", "length": 400, "seed": 42,
                                                "temperature": 0.8}).json()["texts"][0]
    assert text == api["text"] and len(text) == 400
    assert d.find_element(By.ID, "output").text.startswith("JULIET:")
    # tinting: every character has its probability, on hover and as its colour
    shown = [float(title.split()[2]) for _, _, title, _ in chars]     # "p = 0.1234 (2.092 nats)"
    assert all(0 < p <= 1 and abs(p - q) <= 6e-5 for (_, p, _, _), q in zip(chars, shown))
    by_p = sorted(chars, key=lambda c: c[1])
    assert by_p[0][3] != by_p[-1][3] and len({bg for *_, bg in chars}) > 10
    assert all(bg not in ("", "rgba(0, 0, 0, 0)") for *_, bg in chars)
    d.save_screenshot(str(site.shots / "generate.png"))
    # the settings are in the address: opening it again generates the same text
    query = parse_qs(urlparse(d.current_url).query)
    assert query["seed"] == ["42"] and query["prime"] == ["JULIET:"] and query["length"] == ["400"]
    d.get(d.current_url)
    wait_done(d)
    assert "".join(c for c, *_ in spans(d)) == text
    assert d.find_element(By.ID, "seed").get_attribute("value") == "42"


def test_score_tab_tints_by_surprise(site):
    d = site.driver
    d.get(site.server.url)
    d.find_element(By.ID, "tab-score").click()
    fill(d, "score-text", "ROMEO:\nThe good lord of thy heart.")
    d.find_element(By.ID, "score-button").click()
    wait_done(d, "score-output")
    chars = spans(d, "score-output")
    assert "".join(c for c, *_ in chars) == "ROMEO:\nThe good lord of thy heart."
    assert chars[0][1] is None and "not scored" in chars[0][2]
    assert all(p is not None and "nats" in title for _, p, title, _ in chars[1:])
    assert "nats/char" in d.find_element(By.ID, "score-status").text
    d.save_screenshot(str(site.shots / "score.png"))
    print(f"screenshots: {site.shots}")
    assert os.path.getsize(site.shots / "score.png") > 0


def test_bad_settings_show_the_servers_one_line(site):
    d = site.driver
    d.get(site.server.url + "?prime=JULIET%3A&temperature=0&seed=1")
    WebDriverWait(d, 30).until(lambda d: d.find_element(By.ID, "error").text)
    assert "temperature must be > 0" in d.find_element(By.ID, "error").text
