"""``webshop-http`` against ``serve-webshop`` on localhost: the same episodes as the embedded env, over HTTP."""

import re
import select
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from agentdistill.cli import main
from agentdistill.envs import make_env
from agentdistill.envs.webshop.http_env import WEBSHOP_SPLITS, WebShopHTTPEnv
from agentdistill.envs.webshop.pages import read_done, read_item, read_results, read_subpage, text_nodes
from agentdistill.envs.webshop.routes import item_url, parse_path, search_url, session_id, sub_url
from agentdistill.envs.webshop.site import Shop, make_server
from agentdistill.envs.webshop.text import item_text, results_text
from agentdistill.errors import ConfigError
from agentdistill.trajectory import read_trajectories

SRC = Path(__file__).resolve().parents[2] / "src"


def _serve(shop: Shop):
    server = make_server(shop, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def url():
    server, address = _serve(Shop(seed=0))
    yield address
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def local():
    return make_env("webshop", seed=0)


def _expert_episode(env, task_id):
    """[(thought, action, StepResult)] of the expert's episode and the first observation."""
    first, log = env.reset(task_id), []
    for _ in range(env.max_steps):
        thought, action = env.expert_step()
        res = env.step(action)
        log.append((thought, action, res))
        if res.done:
            break
    return first, log, env.result()


def test_expert_episodes_over_http_equal_the_embedded_ones(url, local):
    remote = make_env("webshop-http", url=url)
    assert remote.splits() == local.splits() == {"train": 3000, "dev": 200, "test": 500}
    tasks = local.task_ids("test")[:20] + local.task_ids("dev")[:3] + local.task_ids("train")[:3]
    actions = []
    for tid in tasks:
        assert remote.task_text(tid) == local.task_text(tid)
        assert remote.task_type(tid) == local.task_type(tid)
        ours, theirs = _expert_episode(local, tid), _expert_episode(remote, tid)
        assert theirs[0] == ours[0]  # the search page with the instruction
        assert len(theirs[1]) == len(ours[1])
        for (t1, a1, r1), (t2, a2, r2) in zip(ours[1], theirs[1], strict=True):
            assert (t2, a2) == (t1, a1)
            assert r2.observation == r1.observation  # observation by observation
            assert (r2.reward, r2.done, r2.info) == (r1.reward, r1.done, r1.info)
        assert theirs[2] == ours[2] == {"success": True, "reward": 1.0, "score": 100.0}
        actions += [a for _, a, _ in ours[1]]
    # the episodes went through every kind of page the expert visits
    assert any(a.startswith("search[") for a in actions)
    assert "click[Buy Now]" in actions and "click[< Prev]" in actions
    assert any(re.fullmatch(r"click\[B0\w{8}\]", a) for a in actions)
    assert any(a[6:-1].islower() for a in actions)  # an option value


WALKS = [
    [
        "click[Buy Now]",  # nothing to click on the search page
        "search[   ]",
        "search[Long Lasting DEODORANT]",
        "search[deodorant]",  # search only on the search page
        "click[Next >]",
        "click[Next >]",
        "click[< Prev]",
        "click[B0NOTHERE1]",
        "think[the second item looks right]",
        "click[{item}]",
        "click[Description]",
        "click[Buy Now]",  # not on a sub page
        "click[< Prev]",
        "click[Features]",
        "click[< Prev]",
        "click[Reviews]",  # the 15th action: the episode ends unbought
        "click[< Prev]",
    ],
    [
        "search[coffee mug]",
        "click[{item_lower}]",
        "dance",
        "click[{option}]",
        "click[< Prev]",
        "click[Back to Search]",
    ],
]


def _fill(template: str, page: str) -> str:
    """An action of ``WALK`` for the page the embedded env shows: the second listed item, the last option value."""
    asins = re.findall(r"^\[(B0\w{8})\]$", page, re.MULTILINE)
    values = re.findall(r"\[([^\]]+)\]", next((x for x in page.splitlines() if x.count("[") >= 2), ""))
    item = asins[1] if len(asins) > 1 else ""
    return template.format(item=item, item_lower=item.lower(), option=values[-1] if values else "")


def test_every_page_and_invalid_action_equal_the_embedded_ones(url, local):
    remote = make_env("webshop-http", url=url)
    firsts: list[list[str]] = []
    for walk in WALKS:
        page = local.reset("webshop-test-0001")
        assert remote.reset("webshop-test-0001") == page
        firsts.append([])
        for template in walk:
            action = _fill(template, page)
            a, b = local.step(action), remote.step(action)
            assert b == a, action
            firsts[-1].append(a.observation.splitlines()[0])
            if a.observation not in ("OK.", "Invalid action!"):
                page = a.observation
        assert remote.result() == local.result() == {"success": False, "reward": 0.0, "score": 0.0}
    assert firsts[0].count("Invalid action!") == 6 and firsts[0].count("OK.") == 1  # 5 + one after the cap
    assert local.step("think[x]").observation == remote.step("think[x]").observation == "OK."
    assert firsts[1] == ["[Back to Search]", "[Back to Search]", "Invalid action!", "[Back to Search]", "[Back to Search]",
                         "WebShop [SEP] Instruction: [SEP] " + local.task_text("webshop-test-0001") + " [SEP] Search"]  # fmt: skip


def test_buying_over_http_reports_the_reward_and_its_terms(url, local):
    remote = make_env("webshop-http", url=url)
    results = []
    for env in (local, remote):
        env.reset("webshop-test-0003")
        page = env.step("search[usb flash drive]").observation
        env.step(f"click{next(x for x in page.splitlines() if x.startswith('[B0'))}")
        results.append(env.step("click[Buy Now]"))
    ours, theirs = results
    assert theirs == ours
    assert theirs.done and 0.0 <= theirs.reward < 1.0
    assert theirs.observation.endswith(f"Your score (min 0.0, max 1.0): {theirs.reward:.2f}")
    assert set(theirs.info["breakdown"]) == {
        "r_type", "attributes_matched", "num_attributes", "options_matched", "num_options", "price_ok"
    }  # fmt: skip
    assert remote.step("click[Back to Search]") == local.step("click[Back to Search]")
    assert remote.step("click[Back to Search]").observation == "Invalid action!"
    assert remote.result() == local.result()


def test_routes_round_trip():
    kw = ["bright", "citrus", "deodorant's"]
    r = parse_path(item_url("fixed_7", "B012345678", kw, 2, {"scent": "bright / citrus", "size": "5 ounce"}))
    assert (r.kind, r.session, r.asin, r.keywords, r.page) == ("item", "fixed_7", "B012345678", tuple(kw), 2)
    assert r.options == {"scent": "bright / citrus", "size": "5 ounce"}
    s = parse_path(sub_url("fixed_7", "B012345678", kw, 3, "Reviews", {}))
    assert (s.kind, s.sub, s.page, s.options) == ("sub", "Reviews", 3, {})
    assert parse_path(search_url("fixed_1", ["a", "b"], 4)).keywords == ("a", "b")
    assert parse_path("/search_results/fixed_1/red%20mug/1").keywords == ("red mug",)  # a plain query string
    assert parse_path("/fixed_12").kind == "index"
    assert session_id("dev", 3) == "fixed_503" and session_id("train", 0) == "fixed_1500"
    for bad in ("/search_results/fixed_1/x/0", "/item_page/s/a/[1]/1/{}", "/done/s/a/__import__('os')", "/nope/a"):
        with pytest.raises(ValueError, match="must|no WebShop route"):
            parse_path(bad)


# The page structure of princeton-nlp/WebShop's templates, written out by hand: ids, classes, tags,
# a few of its mismatched end tags, escaped buttons, a price range, and reviews with titles.
REAL_RESULTS = """<html><head><title>x</title></head><body><div class="container py-5">
<div id="instruction-text"><h4>Instruction: i need a red mug</h4><h4>Current Query:  red  mug </h4></div>
<div><h1>Results</h1><p>Page 2 (11-20) of 50 total results</p></div>
<form><button type="submit" class="btn">Back to Search</button></form>
<form><button type="submit" class="btn">&lt; Prev</button></form>
<form><button type="submit" class="btn">Next &gt;</button></form>
<div class="grid-container">
 <div class="grid-item"><img src="a.jpg" class="result-img">
  <h4 class="product-asin"><a class="product-link" href="/item">B07ABCDEF1</a></h4>
  <h4 class="product-title">Red Mug, 12 oz &amp; Lid</h5>
  <div class="d-flex"><h5 class="product-price">$10.99 to $15.99</h6></div>
 </div>
 <div class="grid-item"><h4 class="product-asin"><a class="product-link" href="/item">B07ABCDEF2</a></h4>
  <h4 class="product-title">Blue Mug</h5><div class="d-flex"><h5 class="product-price">$8.0</h6></div></div>
</div></div></body></html>"""
REAL_ITEM = """<html><body><div id="instruction-text"><h4>Instruction: i need a red mug</h4><h4>Current Query: x</h4></div>
<form><button>Back to Search</button></form><form><button>&lt; Back to Results</button></form>
<div class="row top-buffer"><div class="col-md-4">
 <div class="row top-buffer"><h4>color</h4><div class="radio-toolbar">
  <input type="radio" id="radio_color0" name="color" value="red" data-url="/a"><label for="radio_color0">red</label>
  <input type="radio" id="radio_color1" name="color" value="blue | white" data-url="/b"><label for="radio_color1">blue | white</label>
 </div></div>
 <div class="row top-buffer"><h4>size</h4><div class="radio-toolbar">
  <input type="radio" id="radio_size0" name="size" value="12 oz"><label for="radio_size0">12 oz</label></div></div>
</div><div class="col-md-6"><h2>Red Mug, 12 oz</h2><h4>Price: $10.99 to $15.99</h4><h4>Rating: 4.5</h4>
<div name="description"><form><button class="btn">Description</button></form></div></div></div>
<script>let options = JSON.parse(`{}`);</script></body></html>"""
REAL_REVIEWS = """<html><body><div id="instruction-text"><h4>Instruction:<br>i need a red mug</h4></div>
<div class="col-sm-6" name="reviews"><div class="card card-body">
 <div class="card"><div class="row text-left"><h4 class="blue-text mt-3">"Lovely"</h4>
  <p class="text-left"><span>5</span><span class="fa fa-star star-active"></span></p><p class="content">Holds heat.</p></div></div>
 <div class="card"><div class="row text-left"><h4 class="blue-text mt-3">"Chipped"</h4>
  <p class="text-left"><span>2</span></p><p class="content">Arrived chipped.</p></div></div>
</div></div></body></html>"""
REAL_DONE = """<html><body><div id="thankyou"><h1>Thank you for shopping with us!</h1></div><div id="stats">
<h3 align="mturk_code">Your code: </h3><p><pre>7XK2PQ</pre> (Paste it in your MTurk interface.)</p>
<div style="display:none"><h2 align="left">Purchased</h2><h4 id="asin">asin<pre>B07ABCDEF1</pre></p>
<h4 id="options">options<pre>{"color": "red"}</pre></h4><h4 id="goal-asin">asin<pre>B07ABCDEF9</pre></p></div>
<h3 id="reward">Your score (min 0.0, max 1.0)<pre>0.6666666666666666</pre></h3>
<h4 hidden>Reward Details <div id="reward_info"><pre>{'r_type': 1.0}</pre></div></h4></div></body></html>"""


def test_reads_the_real_apps_page_structure():
    r = read_results(text_nodes(REAL_RESULTS))
    assert (r.page_no, r.total, r.has_prev, r.has_next) == (2, 50, True, True)
    assert r.listings == [
        ("B07ABCDEF1", "Red Mug, 12 oz & Lid", "$10.99 to $15.99"),
        ("B07ABCDEF2", "Blue Mug", "$8.0"),
    ]
    assert results_text(r.page_no, r.total, r.has_prev, r.has_next, r.listings).splitlines()[:5] == [
        "[Back to Search]", "Page 2 (Total results: 50)", "[< Prev]", "[Next >]", "[B07ABCDEF1]",
    ]  # fmt: skip
    item = read_item(text_nodes(REAL_ITEM))
    assert item.options == [("color", ["red", "blue | white"]), ("size", ["12 oz"])]
    assert item_text(item.options, item.title, item.price, item.rating).splitlines()[2:7] == [
        "color [red] [blue | white]", "size [12 oz]", "Red Mug, 12 oz", "Price: $10.99 to $15.99", "Rating: 4.5",
    ]  # fmt: skip
    assert read_subpage(text_nodes(REAL_REVIEWS), "Reviews") == [
        '"Lovely" 5 stars: Holds heat.',
        '"Chipped" 2 stars: Arrived chipped.',
    ]
    done = read_done(text_nodes(REAL_DONE))
    assert (done.code, done.asin, done.options_json, done.reward) == (
        "7XK2PQ",
        "B07ABCDEF1",
        '{"color": "red"}',
        2 / 3,
    )
    assert done.reward_info == "{'r_type': 1.0}"


def test_a_server_without_goals_plays_but_has_no_expert(monkeypatch):
    """What the real app shows: no hidden goal or split sizes; WebShop's split layout, no scripted expert."""
    shop = Shop(seed=0)
    plain = shop._index
    monkeypatch.setattr(
        shop, "_index", lambda route, task: re.sub(r'<div style="display:none">.*</div>', "", plain(route, task))
    )
    server, address = _serve(shop)
    try:
        env = WebShopHTTPEnv(address)
        assert env.splits() == WEBSHOP_SPLITS == {"train": 10587, "dev": 1000, "test": 500}
        assert WebShopHTTPEnv(address, train_size=20000).splits()["train"] == 20000  # unknown sizes: trusted
        obs = env.reset("webshop-test-0002")
        assert obs == make_env("webshop").reset("webshop-test-0002")
        assert env.task_type("webshop-test-0002") == "webshop"
        assert env.step("search[green tea]").observation.startswith("[Back to Search]\nPage 1 (Total results: 50)")
        with pytest.raises(ConfigError, match="does not show task goals before a purchase.*--agent MODEL"):
            env.expert_step()
        with pytest.raises(ConfigError, match="has no task webshop-dev-0500"):
            env.reset("webshop-dev-0500")  # beyond this server's 200 dev goals: HTTP 404
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_one_line_and_exit_2_before_any_work(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    dead = f"http://127.0.0.1:{_free_port()}"
    assert main(["collect", "--env", "webshop-http", "--webshop_url", dead, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: webshop-http: no answer from {dead} (") and "serve-webshop" in err
    assert not out.exists()
    with pytest.raises(ConfigError, match="needs a server: pass --webshop_url"):
        make_env("webshop-http")
    with pytest.raises(ConfigError, match="give an http"):
        make_env("webshop-http", url="localhost:3000")
    assert main(["collect", "--env", "webshop", "--webshop_url", dead, "--out", str(out)]) == 2
    assert "--webshop_url is only for --env webshop-http" in capsys.readouterr().err


def test_a_server_that_is_not_webshop_is_a_clear_error(url):
    with pytest.raises(ConfigError, match=r"answered HTTP 404; is --webshop_url a WebShop server"):
        WebShopHTTPEnv(url + "/elsewhere")
    with pytest.raises(ConfigError, match="has 3000 train tasks, not 3001"):
        WebShopHTTPEnv(url, train_size=3001)
    assert WebShopHTTPEnv(url, train_size=7).task_ids("train")[-1] == "webshop-train-0006"
    with pytest.raises(ConfigError, match="unknown webshop-http task 'webshop-test-0500'"):
        WebShopHTTPEnv(url).reset("webshop-test-0500")


def test_collect_over_http_writes_the_embedded_trajectories(url, tmp_path):
    common = ["collect", "--agent", "expert", "--split", "test", "--episodes", "3"]
    assert main([*common, "--env", "webshop-http", "--webshop_url", url, "--out", str(tmp_path / "h.jsonl")]) == 0
    assert main([*common, "--env", "webshop", "--out", str(tmp_path / "l.jsonl")]) == 0
    theirs, ours = read_trajectories(tmp_path / "h.jsonl"), read_trajectories(tmp_path / "l.jsonl")
    assert (
        [t.id for t in theirs]
        == [t.id for t in ours]
        == ["webshop-test-0000", "webshop-test-0001", "webshop-test-0002"]
    )
    for a, b in zip(theirs, ours, strict=True):
        assert (a.env, b.env) == ("webshop-http", "webshop")
        assert (a.prompt, a.steps, a.success, a.reward, a.task, a.task_type) == (
            b.prompt, b.steps, b.success, b.reward, b.task, b.task_type
        )  # fmt: skip


def test_the_search_form_and_unknown_pages(url):
    req = urllib.request.Request(url + "/fixed_4", data=b"search_query=Green+Tea", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:  # 302 to the results, followed as a GET
        assert "/search_results/fixed_4/" in r.url
        page = read_results(text_nodes(r.read().decode()))
    assert (page.page_no, page.total, len(page.listings)) == (1, 50, 10)
    for path in ("/fixed_999999", "/abc", "/item_page/fixed_0/B0NOTHERE1/x/1/%7B%7D", "/done/fixed_0/x"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + path, timeout=10)
        assert err.value.code == 404


def test_serve_webshop_command_serves_until_stopped(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentdistill", "serve-webshop", "--port", "0", "--seed", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "serve-webshop printed nothing in 120 s"
        line = proc.stdout.readline()
        address = re.search(r"at (http://127\.0\.0\.1:\d+);", line).group(1)
        assert "test fixed_0..fixed_499, dev fixed_500..fixed_699, train fixed_1500..fixed_4499" in line
        env = WebShopHTTPEnv(address)
        assert env.reset("webshop-test-0000") == make_env("webshop").reset("webshop-test-0000")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_webshop_on_a_busy_port_is_one_line(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve-webshop", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port} (") and err.endswith(
        "pass another --port or --host"
    )


def test_sub_pages_keep_their_text(url, local):
    """Every product's Description, Features and Reviews read back line for line (HTML escaping included)."""
    for product in list(local._products.values())[:40]:
        for sub, lines in (
            ("Description", [product.description]),
            ("Features", product.features),
            ("Reviews", product.reviews),
        ):
            page = urllib.request.urlopen(url + sub_url(session_id("test", 0), product.asin, ["x"], 1, sub, {}))
            assert read_subpage(text_nodes(page.read().decode()), sub) == list(lines)


def test_play_over_http(url, monkeypatch):
    lines = iter(["search[deodorant]", "quit"])
    screen: list[str] = []
    monkeypatch.setattr("agentdistill.play._stdin_line", lambda: next(lines) + "\n")
    monkeypatch.setattr("agentdistill.play._stdout_write", screen.append)
    assert main(["play", "--env", "webshop-http", "--webshop_url", url, "--task", "webshop-test-0005"]) == 0
    text = "".join(screen)
    assert make_env("webshop").task_text("webshop-test-0005") in text
    assert "Page 1 (Total results: 50)" in text
